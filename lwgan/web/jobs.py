"""What the web page runs: the Python API (Imitator, Swapper, Viewer) on uploaded files, each run's files in a folder of its own.

Nothing here imports gradio: the page (lwgan.web.page) turns its widgets' values into these calls,
and tests call them directly.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from lwgan.body import BodyConfig, build_body_model
from lwgan.bundled import bundled_motion
from lwgan.io.media import write_image
from lwgan.tasks.imitate import Imitator
from lwgan.tasks.pipeline import MAX_SOURCES, Pipeline
from lwgan.tasks.result import SynthesisResult
from lwgan.tasks.swap import Swapper
from lwgan.tasks.view import Viewer

logger = logging.getLogger(__name__)

PIPELINES = {"imitate": Imitator, "swap": Swapper, "view": Viewer}
MEGABYTE = 1024 * 1024


@dataclass(frozen=True)
class PageResult:
    """One run's files and a line that says what was made.

    media: the video (.mp4) or, for a swap, the picture (.png); fits: the fitted meshes over the
    source photos (.png); summary: frames, size, how they were made and how long it took.
    """

    media: Path
    fits: Path
    summary: str


class SynthesisService:
    """The page's calls to the Python API: one body model, one pipeline per (task, checkpoint, size), checked uploads.

    Args:
        output: every run writes into a new folder under it.
        checkpoints: generator exports (or original released .pth files) the page may use; a run
            names one of them or None (texture warping).
        max_upload_mb: uploads larger than this many megabytes are refused.
        device: torch device of the pipelines.
        body: which body model (lwgan.body.BodyConfig).
    """

    def __init__(self, output: str | os.PathLike, checkpoints: Sequence[str] = (), max_upload_mb: float = 50.0,
                 device: str = "cpu", body: BodyConfig | None = None) -> None:
        for checkpoint in checkpoints:
            if not Path(checkpoint).exists():
                raise FileNotFoundError(f"checkpoints: {checkpoint} does not exist (give generator export folders or original .pth files)")
        if max_upload_mb <= 0:
            raise ValueError(f"max_upload_mb must be positive, got {max_upload_mb}")
        self.output = Path(output)
        self.checkpoints = [str(checkpoint) for checkpoint in checkpoints]
        self.max_upload_mb = max_upload_mb
        self.device = device
        self.body_config = body or BodyConfig()
        self._pipelines: dict[tuple[str, str | None, int], Pipeline] = {}

    @cached_property
    def body(self):
        """The body model every pipeline shares (built on first use)."""
        return build_body_model(self.body_config)

    def pipeline(self, task: str, checkpoint: str | None, image_size: int) -> Pipeline:
        """The Imitator, Swapper or Viewer for these settings (made once, then reused)."""
        if checkpoint is not None and checkpoint not in self.checkpoints:
            raise ValueError(f"checkpoint {checkpoint} is not one the page was started with; start it with checkpoints=[{checkpoint}]")
        key = (task, checkpoint, int(image_size))
        if key not in self._pipelines:
            self._pipelines[key] = PIPELINES[task](image_size=int(image_size), checkpoint=checkpoint, device=self.device, body=self.body)
        return self._pipelines[key]

    def checked_uploads(self, paths: list[str | os.PathLike] | None, what: str, most: int = MAX_SOURCES) -> list[Path]:
        """The uploaded files as paths: 1 to `most` of them, each no larger than max_upload_mb (ValueError naming the file otherwise)."""
        files = [Path(path) for path in paths or []]
        if not 1 <= len(files) <= most:
            raise ValueError(f"{what}: upload 1 to {most} files, got {len(files)}")
        for path in files:
            size = path.stat().st_size
            if size > self.max_upload_mb * MEGABYTE:
                raise ValueError(f"{what}: {path.name} is {size / MEGABYTE:.1f} MB, over the limit of {self.max_upload_mb:g} MB (the setting max_upload_mb)")
        return files

    def imitate(self, photos: list[str], motion: str, reference_upload: str | None, camera: str, frames: int, image_size: int,
                checkpoint: str | None) -> PageResult:
        """The person in `photos` performing a bundled motion (lwgan.bundled.MOTIONS) or an uploaded reference (it wins when given)."""
        sources = self.checked_uploads(photos, "photos")
        reference = self.checked_uploads([reference_upload], "reference", most=1)[0] if reference_upload else bundled_motion(motion)
        folder = self.run_folder("imitate")
        imitator = self.pipeline("imitate", checkpoint, image_size)
        start = time.perf_counter()
        result = imitator(source=sources, reference=reference, camera=camera, max_frames=int(frames), work_folder=folder / "reference")
        return self.finish(imitator, result, folder / "imitation.mp4", start, checkpoint)

    def swap(self, photos: list[str], donors: list[str], parts: str, image_size: int, checkpoint: str | None) -> PageResult:
        """The person in `photos` wearing the clothes of the person in `donors` on `parts` (upper, lower, whole)."""
        sources = self.checked_uploads(photos, "photos")
        references = self.checked_uploads(donors, "donor photos")
        folder = self.run_folder("swap")
        swapper = self.pipeline("swap", checkpoint, image_size)
        start = time.perf_counter()
        result = swapper(source=sources, reference=references, parts=parts)
        return self.finish(swapper, result, folder / "swap.png", start, checkpoint)

    def view(self, photos: list[str], views: int, pitch: float, image_size: int, checkpoint: str | None) -> PageResult:
        """The person in `photos` seen from `views` angles over a full turn, the camera raised by `pitch` degrees."""
        sources = self.checked_uploads(photos, "photos")
        folder = self.run_folder("view")
        viewer = self.pipeline("view", checkpoint, image_size)
        start = time.perf_counter()
        result = viewer(source=sources, turn=int(views), pitch=float(pitch))
        return self.finish(viewer, result, folder / "views.mp4", start, checkpoint)

    def run_folder(self, task: str) -> Path:
        """A new folder under output for one run: TASK-YYYYmmdd-HHMMSS-xxxx."""
        self.output.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{task}-{time.strftime('%Y%m%d-%H%M%S')}-", dir=self.output))

    def finish(self, pipeline: Pipeline, result: SynthesisResult, media: Path, start: float, checkpoint: str | None) -> PageResult:
        """Save the result and the fitted meshes' preview beside it; the summary line."""
        saved = result.save(media)
        fits = write_image(media.with_name("fits.png"), pipeline.fit_previews(result.people))
        method = f"the generator in {checkpoint}" if checkpoint else "texture warping (no network)"
        size = result.frames[0].shape[0]
        count = f"{len(result)} frame{'s' if len(result) != 1 else ''}"
        summary = f"{count} at {size}×{size} px by {method} in {time.perf_counter() - start:.1f} s; saved in {saved.parent}"
        logger.info(summary)
        return PageResult(saved, fits, summary)
