"""The Gradio page of `lwgan serve`: the person's photos and shared settings on top, a tab each for imitate, swap and view.

Every button calls lwgan.web.jobs.SynthesisService (the Python API); a user's mistake (no photo, a
file over the size limit, nobody in the photo) comes back as an error box with the API's message.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gradio as gr
from tqdm import tqdm

from lwgan.bundled import MOTIONS, bundled_photo
from lwgan.io.images import IMAGE_EXTENSIONS
from lwgan.recovery.frames import VIDEO_EXTENSIONS
from lwgan.tasks.pipeline import MAX_SOURCES
from lwgan.tasks.references import CAMERA_STRATEGIES, MOTION_SUFFIXES
from lwgan.tasks.swap import CLOTHING_PARTS
from lwgan.web.jobs import PageResult, SynthesisService

SIZES = (128, 256, 384, 512)
"""Frame sides the page offers (the configured default is added when it is another)."""
WARPING = "texture warping (no network)"
CAMERA_HELP = ("smooth: the photo's camera, moved as the reference's moves; source: the photo's camera on every frame; "
               "copy: the reference video's own camera per frame")
PROGRESS = gr.Progress(track_tqdm=True)
"""The handlers' progress default: gradio gives each click its own tracker, fed by the pipelines' tqdm bars."""
# gradio's patched tqdm methods read each bar's _progress, which bars made before the patch lack: closing
# them (at the latest when the process exits) raised AttributeError. A class default gives them None.
tqdm._progress = None
INTRODUCTION = """# lwgan
Motion imitation, appearance transfer and novel views from 1 to 8 photos of one person, on your own
machine. Upload photos of the whole person (front and back help), or use the bundled one, then pick a tab."""


def build_page(service: SynthesisService, image_size: int = 256, frames: int = 60) -> gr.Blocks:
    """The page's gr.Blocks (not launched): `image_size` and `frames` are its initial settings."""
    with gr.Blocks(title="lwgan", analytics_enabled=False) as page:
        gr.Markdown(INTRODUCTION)
        limit = upload_limit(service)
        with gr.Row():
            with gr.Column(scale=2):
                photos = gr.File(label=f"Photos of one person (1 to {MAX_SOURCES}, at most {limit} each)", file_count="multiple", file_types=list(IMAGE_EXTENSIONS),
                                 elem_id="photos", height=160)
                bundled = gr.Button("Use the bundled photo", size="sm", elem_id="use-bundled-photo")
            with gr.Column(scale=1):
                size = gr.Radio(sorted({*SIZES, image_size}), value=image_size, label="Frame size (pixels)", elem_id="image-size")
                checkpoint = gr.Dropdown([(WARPING, "")] + [(path, path) for path in service.checkpoints], value="",
                                         label="Frames made by", visible=bool(service.checkpoints), elem_id="checkpoint")
        bundled.click(lambda: [str(bundled_photo())], outputs=photos, api_visibility="private")
        shared = [photos, size, checkpoint]
        with gr.Tabs():
            imitate_tab(service, shared, frames)
            swap_tab(service, shared)
            view_tab(service, shared)
    return page


def imitate_tab(service: SynthesisService, shared: list[gr.components.Component], frames: int) -> None:
    """The Imitate tab: a bundled motion or an uploaded reference, the camera strategy, the number of frames."""

    def run(photos, size, checkpoint, motion, reference, camera, count, progress=PROGRESS):
        progress(0, desc="fitting the body to the photos, then imitating")
        return shown(lambda: service.imitate(photos, motion, reference, camera, count, int(size), checkpoint or None))

    with gr.Tab("Imitate", id="imitate"), gr.Row():
        with gr.Column():
            motion = gr.Dropdown(list(MOTIONS), value="walk", label="Bundled motion (CMU motion capture)")
            reference = gr.File(label=f"Or your own, used instead (at most {upload_limit(service)}): a video, BVH, iPER pose_shape.pkl or npz of SMPL poses",
                                file_types=[*VIDEO_EXTENSIONS, *MOTION_SUFFIXES], elem_id="reference", height=150)
            camera = gr.Radio(list(CAMERA_STRATEGIES), value="smooth", label="Camera", info=CAMERA_HELP)
            count = gr.Slider(1, 900, value=frames, step=1, label="Frames (at most)", elem_id="imitate-frames")
            button = gr.Button("Imitate", variant="primary", elem_id="imitate-run")
        outputs = result_panel("imitate", video=True)
    button.click(run, inputs=[*shared, motion, reference, camera, count], outputs=outputs, api_name="imitate", concurrency_id="synthesis",
                 concurrency_limit=1)


def swap_tab(service: SynthesisService, shared: list[gr.components.Component]) -> None:
    """The Swap tab: the donor's photos and which clothes to take."""

    def run(photos, size, checkpoint, donors, parts, progress=PROGRESS):
        progress(0, desc="fitting the bodies to the photos, then swapping")
        return shown(lambda: service.swap(photos, donors, parts, int(size), checkpoint or None))

    with gr.Tab("Swap", id="swap"), gr.Row():
        with gr.Column():
            donors = gr.File(label=f"Photos of the person whose clothes to take (1 to {MAX_SOURCES}, at most {upload_limit(service)} each)", file_count="multiple",
                             file_types=list(IMAGE_EXTENSIONS), elem_id="donors", height=120)
            parts = gr.Radio(list(CLOTHING_PARTS), value="upper", label="Clothes to swap")
            button = gr.Button("Swap", variant="primary", elem_id="swap-run")
        outputs = result_panel("swap", video=False)
    button.click(run, inputs=[*shared, donors, parts], outputs=outputs, api_name="swap", concurrency_id="synthesis", concurrency_limit=1)


def view_tab(service: SynthesisService, shared: list[gr.components.Component]) -> None:
    """The View tab: how many views over a full turn, and the camera's pitch."""

    def run(photos, size, checkpoint, views, pitch, progress=PROGRESS):
        progress(0, desc="fitting the body to the photos, then rendering the views")
        return shown(lambda: service.view(photos, views, pitch, int(size), checkpoint or None))

    with gr.Tab("View", id="view"), gr.Row():
        with gr.Column():
            views = gr.Slider(1, 72, value=8, step=1, label="Views over a full turn", elem_id="view-count")
            pitch = gr.Slider(-30, 60, value=0, step=5, label="Camera raised by (degrees)")
            button = gr.Button("View", variant="primary", elem_id="view-run")
        outputs = result_panel("view", video=True)
    button.click(run, inputs=[*shared, views, pitch], outputs=outputs, api_name="view", concurrency_id="synthesis", concurrency_limit=1)


def result_panel(task: str, video: bool) -> list[gr.components.Component]:
    """The output column of a tab: the result (video or picture), its download button, the fitted meshes, the summary line."""
    with gr.Column():
        media = (gr.Video(label="Result", elem_id=f"{task}-video", autoplay=True, loop=True, interactive=False, height=420) if video
                 else gr.Image(label="Result", elem_id=f"{task}-image", interactive=False, height=420))
        download = gr.DownloadButton("Download the result", interactive=False, elem_id=f"{task}-download")
        fits = gr.Image(label="Fitted body over the photos", elem_id=f"{task}-fits", interactive=False, height=220)
        summary = gr.Markdown(elem_id=f"{task}-summary")
    return [media, download, fits, summary]


def shown(call: Callable[[], PageResult]) -> tuple:
    """Run one task for a click: the result panel's values, or an error box with the message of an error a user can cause."""
    try:
        result = call()
    except (ValueError, OSError) as error:
        raise gr.Error(str(error)) from error
    return str(result.media), gr.DownloadButton(value=str(result.media), interactive=True), str(result.fits), result.summary


def upload_limit(service: SynthesisService) -> str:
    """The upload size limit as the labels show it ("50 MB"); the setting max_upload_mb."""
    return f"{service.max_upload_mb:g} MB"


def allowed_folders(service: SynthesisService) -> list[str]:
    """Folders whose files the page may serve: the runs' output and the bundled photo's."""
    return [str(service.output.resolve()), str(Path(bundled_photo()).parent)]
