"""`lwgan serve`: the local web page for imitate, swap and view (Gradio, the optional extra `pip install lwgan[web]`).

The page listens on 127.0.0.1 unless `host=` says otherwise, sends no analytics, and serves its
frontend from the gradio wheel: nothing is fetched from the network.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from lwgan.body import BodyConfig
from lwgan.web.jobs import MEGABYTE, SynthesisService

logger = logging.getLogger(__name__)


@dataclass
class ServeConfig:
    port: int = 7860
    host: str = "127.0.0.1"  # the address to listen on; 0.0.0.0 lets other machines in (there is no login: trusted networks only)
    output: str = "outputs/serve"  # each run writes its result, fitted-mesh preview and a reference's fit into a new folder here
    checkpoints: list[str] = field(default_factory=list)  # generator exports (or original .pth files) the page offers beside texture warping
    image_size: int = 256  # the page's initial frame size
    frames: int = 60  # the page's initial number of imitation frames
    max_upload_mb: float = 50.0  # uploads larger than this are refused, with a message naming the file and this setting
    device: str = "cpu"
    body: BodyConfig = field(default_factory=BodyConfig)


def start(config: ServeConfig, block: bool = True):
    """Serve the page at http://host:port; with block=False return the running gr.Blocks at once (its close() stops it)."""
    try:
        from lwgan.web.page import allowed_folders, build_page
    except ImportError as error:
        raise ImportError(f"lwgan serve needs gradio: pip install -e .[web] (or pip install lwgan[web]); {error}") from error
    service = SynthesisService(config.output, config.checkpoints, config.max_upload_mb, config.device, config.body)
    page = build_page(service, config.image_size, config.frames)
    page.queue(default_concurrency_limit=1)
    logger.info("serving on http://%s:%d (results in %s)", config.host, config.port, service.output)
    page.launch(server_name=config.host, server_port=config.port, share=False, inbrowser=False, prevent_thread_lock=not block,
                max_file_size=round(config.max_upload_mb * MEGABYTE), allowed_paths=allowed_folders(service),
                ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False)
    return page


def run(config: ServeConfig) -> None:
    """Serve until interrupted (Ctrl+C)."""
    start(config, block=True)
