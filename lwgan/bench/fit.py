"""`lwgan bench fit`: mesh recovery speed, one photo end to end (clothing included) and a 100-frame video by stage."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lwgan.body import BodyConfig, build_body_model
from lwgan.body.camera import camera_to_fit, project, to_image_frame
from lwgan.bundled import bundled_motion
from lwgan.data.preprocess import PreprocessConfig, preprocess_video
from lwgan.io.images import load_image
from lwgan.io.media import to_uint8, write_video
from lwgan.recovery.bvh import bvh_to_smpl, read_bvh
from lwgan.recovery.clothing import ClothingSettings, fit_clothing
from lwgan.recovery.detector import PoseDetector
from lwgan.recovery.fitting import FitSettings, fit_bodies
from lwgan.recovery.frames import FrameSource
from lwgan.render import rasterize, render_texture
from lwgan.render.procedural import background_image, clothing_texture
from lwgan.tables import format_table

logger = logging.getLogger(__name__)

PHOTO_TARGET_SECONDS = 5.0
VIDEO_TARGET_SECONDS_PER_FRAME = 0.3


@dataclass
class BenchFitConfig:
    photos: list[str] = field(default_factory=lambda: ["tests/data/coco_skier/000000000785.jpg", "tests/data/pexels_lunge/pexels-anete-lusina-4793258_512.jpg"])
    video_frames: int = 100
    video_size: int = 256
    threads: int = 2
    json: bool = False
    body: BodyConfig = field(default_factory=BodyConfig)
    fitting: FitSettings = field(default_factory=FitSettings)
    clothing_fitting: ClothingSettings = field(default_factory=ClothingSettings)


def render_motion_video(body, path: Path, frames: int, size: int, fps: float = 30.0) -> Path:
    """A synthetic test video: the textured body moving by the bundled CMU clip over a background.

    Lossless (crf 0): a lossy x264 encoding of the same frames decodes to other pixels from one call
    to the next in a process (PyAV 62, libx264), and the fits of a test video would change with it.
    """
    motion = bvh_to_smpl(read_bvh(bundled_motion()), fps=fps)
    pose, translation = to_image_frame(torch.from_numpy(motion.pose[:frames]), torch.from_numpy(motion.translation[:frames]))
    with torch.no_grad():
        rest = body(torch.zeros(1, 24, 3))
        texture = clothing_texture(body.uv, body.face_uv, body.faces, body.face_part, rest.vertices[0], 512, seed=1)[None]
        background = background_image(size, size, seed=1)[None]
        vertices = torch.cat([body(pose[i : i + 16], translation=translation[i : i + 16]).vertices for i in range(0, len(pose), 16)])
        camera = camera_to_fit(vertices.reshape(1, -1, 3), fill=0.8)
        images = []
        for start in range(0, len(vertices), 16):
            chunk = project(vertices[start : start + 16], camera.expand(len(vertices[start : start + 16]), 3))
            rendered = render_texture(rasterize(chunk, body.faces, size), body.uv, body.face_uv, texture.expand(len(chunk), -1, -1, -1), background.expand(len(chunk), -1, -1, -1))
            images += [to_uint8(image) for image in rendered]
    return write_video(path, images, fps, crf=0)


def bench_photo(path: str, body, settings: FitSettings, clothing_settings: ClothingSettings) -> dict:
    """Seconds for one photo: load, detect (detector construction included), fit, clothing."""
    times = {}
    start = time.perf_counter()
    image = load_image(path)
    times["load"] = time.perf_counter() - start
    start = time.perf_counter()
    with PoseDetector() as detector:
        observation = detector.detect(image, name=path)
    times["detect"] = time.perf_counter() - start
    start = time.perf_counter()
    result = fit_bodies(body, [observation], settings)
    times["fit"] = time.perf_counter() - start
    start = time.perf_counter()
    fit_clothing(body, [observation], result, clothing_settings)
    times["clothing"] = time.perf_counter() - start
    return {"photo": Path(path).name, **times, "total": sum(times.values())}


def run(config: BenchFitConfig) -> dict:
    torch.set_num_threads(config.threads)
    start = time.perf_counter()
    body = build_body_model(config.body)
    body_seconds = time.perf_counter() - start
    photos = [bench_photo(path, body, config.fitting, config.clothing_fitting) for path in config.photos]
    with tempfile.TemporaryDirectory() as folder:
        video = render_motion_video(body, Path(folder) / "motion.mp4", config.video_frames, config.video_size)
        settings = PreprocessConfig(input=str(video), output=str(Path(folder) / "dataset"), image_size=config.video_size, preview=False, fitting=config.fitting)
        info = preprocess_video(FrameSource("motion", video), Path(settings.output), body, settings)
    frames = info["frames"]
    per_frame = {stage: seconds / frames for stage, seconds in info["seconds_by_stage"].items()}
    report = {"body_model_load_seconds": body_seconds, "photos": photos, "video": {"frames": frames, "size": config.video_size,
              "lost_frames": len(info["lost_frames"]), "seconds_per_frame": per_frame, "total_per_frame": sum(per_frame.values())}}
    if config.json:
        print(json.dumps(report, indent=2))
        return report
    print(f"body model load (once per process): {body_seconds:.2f} s; CPU threads {config.threads}")
    print(format_table(["photo", "load s", "detect s", "fit s", "clothing s", "total s", f"vs {PHOTO_TARGET_SECONDS:.0f} s target"],
                       [[p["photo"], p["load"], p["detect"], p["fit"], p["clothing"], p["total"], f"{p['total'] / PHOTO_TARGET_SECONDS:.2f}"] for p in photos]))
    print(f"\nvideo: {frames} frames at {config.video_size}x{config.video_size} (synthetic, textured body, CMU clip), {len(info['lost_frames'])} lost")
    rows = [[stage, seconds] for stage, seconds in per_frame.items()]
    rows.append(["total", report["video"]["total_per_frame"]])
    print(format_table(["stage", "s per frame"], rows))
    print(f"total vs {VIDEO_TARGET_SECONDS_PER_FRAME} s/frame target: {report['video']['total_per_frame'] / VIDEO_TARGET_SECONDS_PER_FRAME:.2f}")
    return report
