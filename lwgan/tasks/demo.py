"""The default demo: a textured body, posed as a "photo", animated with a motion clip.

Without a checkpoint no network is involved: every output frame samples the source image along
the transfer flow (lwgan.flow), and surface the source does not show comes from the source
unwrapped into the UV atlas and filled smoothly. With `checkpoint=EXPORT_DIR` a trained generator
(lwgan train) makes the frames from the same flows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from lwgan.body import AnnyBody
from lwgan.body.camera import UPRIGHT_ORIENTATION, camera_to_fit, project
from lwgan.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from lwgan.config import to_yaml
from lwgan.files import write_bytes_atomic
from lwgan.flow import transfer_flow, unwrap_to_atlas, warp
from lwgan.flow.inputs import generator_inputs
from lwgan.media import to_uint8, write_image, write_video
from lwgan.models import from_pretrained
from lwgan.recovery.bvh import bvh_to_smpl, read_bvh
from lwgan.render import rasterize, render_texture
from lwgan.render.procedural import background_image, clothing_texture
from lwgan.render.shading import render_shaded
from lwgan.train.step import generate, scaled_hole_dilation

logger = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    output: str = "outputs/demo"  # folder for demo.mp4, demo_side_by_side.mp4, source.png, config.yaml
    motion: str | None = None  # a BVH file (CMU skeleton); default: the bundled CMU walk clip
    fps: float = 30.0
    max_frames: int | None = None  # cut the clip to this many output frames
    image_size: int = 256
    texture_size: int = 512
    seed: int = 0  # picks the clothing and the background
    side_by_side: bool = True  # also write source | target mesh | result
    batch_size: int = 8
    cache_dir: str | None = None  # body model cache (default ~/.cache/lwgan)
    checkpoint: str | None = None  # a trained generator (export folder of `lwgan train`) instead of pure warping


def bundled_motion() -> Path:
    """Path of the CMU walk clip shipped with the package."""
    return Path(str(resources.files("lwgan") / "assets" / "motion" / "cmu_131_01_walk.bvh"))


def to_image_frame(pose: torch.Tensor, translation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn y-up body-frame poses (B, 24, 3) and translations (B, 3) upright in the y-down image."""
    upright = axis_angle_to_matrix(torch.tensor(UPRIGHT_ORIENTATION, dtype=pose.dtype))
    pose = pose.clone()
    pose[:, 0] = matrix_to_axis_angle(upright @ axis_angle_to_matrix(pose[:, 0]))
    return pose, translation @ upright.T


def standing_pose() -> torch.Tensor:
    """(1, 24, 3) a relaxed standing pose facing the camera, arms lowered, in the image frame."""
    pose = torch.zeros(1, 24, 3)
    pose[0, 0] = torch.tensor(UPRIGHT_ORIENTATION)
    pose[0, 16, 2], pose[0, 17, 2] = -1.15, 1.15  # shoulders: arms down from the T-pose
    pose[0, 18, 1], pose[0, 19, 1] = -0.25, 0.25  # elbows slightly bent forward
    pose[0, 1, 2], pose[0, 2, 2] = 0.08, -0.08  # feet a little apart
    return pose


def load_generator(checkpoint: str | None, image_size: int):
    """The exported generator at `checkpoint` (None when not given), checked against the image size."""
    if not checkpoint:
        logger.info("no checkpoint given: frames are made by texture warping along the flow")
        return None
    generator = from_pretrained(checkpoint)
    if image_size % generator.size_multiple:
        raise ValueError(f"image_size {image_size} must be a multiple of {generator.size_multiple} for the generator in {checkpoint}")
    logger.info("frames are made by the generator in %s", checkpoint)
    return generator


def generated_frames(generator, body, source_image: torch.Tensor, source_ndc: torch.Tensor, target_ndc: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) frames in [0, 1] from the generator, for one source image (1, 3, H, W) in [0, 1]."""
    batch = len(target_ndc)
    images = (source_image * 2 - 1).expand(batch, -1, -1, -1)[:, None]
    inputs, _ = generator_inputs(images, source_ndc.expand(batch, -1, -1)[:, None], target_ndc, body,
                                 hole_dilation=scaled_hole_dilation(source_image.shape[-1]))
    return (generate(generator, inputs).image.clamp(-1, 1) + 1) / 2


def run(config: DemoConfig) -> dict[str, Path]:
    """Render the demo videos into config.output; returns the written paths by name."""
    output = Path(config.output)
    size = (config.image_size, config.image_size)
    body = AnnyBody(cache_dir=config.cache_dir)
    faces, uv, face_uv = body.faces, body.uv, body.face_uv

    with torch.no_grad():
        rest = body(torch.zeros(1, 24, 3))
        texture = clothing_texture(uv, face_uv, faces, body.face_part, rest.vertices[0], config.texture_size, config.seed)[None]
        background = background_image(*size, seed=config.seed)[None]

        source_vertices = body(standing_pose()).vertices
        source_ndc = project(source_vertices, camera_to_fit(source_vertices, fill=0.85))
        source_fragments = rasterize(source_ndc, faces, size)
        source_image = render_texture(source_fragments, uv, face_uv, texture, background)

        motion_path = Path(config.motion) if config.motion else bundled_motion()
        motion = bvh_to_smpl(read_bvh(motion_path), fps=config.fps, rest_joints=rest.joints[0].numpy())
        count = motion.num_frames if config.max_frames is None else min(config.max_frames, motion.num_frames)
        pose, translation = to_image_frame(torch.from_numpy(motion.pose[:count]), torch.from_numpy(motion.translation[:count]))
        logger.info("motion %s: %d frames at %.1f fps", motion_path.name, count, config.fps)

        target_vertices = torch.cat([body(pose[i : i + config.batch_size], translation=translation[i : i + config.batch_size]).vertices
                                     for i in range(0, count, config.batch_size)])
        # One camera for the whole clip, framing every frame, so the walk moves across the picture.
        all_points = target_vertices.reshape(1, -1, 3)
        target_camera = camera_to_fit(all_points, fill=0.9)
        atlas_texture, _ = unwrap_to_atlas(source_image, source_ndc, faces, uv, face_uv, size=config.texture_size)

        generator = load_generator(config.checkpoint, config.image_size)
        results, side_by_side = [], []
        for start in tqdm(range(0, count, config.batch_size), desc="generating frames" if generator else "warping frames", unit="batch"):
            chunk = target_vertices[start : start + config.batch_size]
            batch = len(chunk)
            target_ndc = project(chunk, target_camera.expand(batch, 3))
            flow = transfer_flow(source_ndc.expand(batch, -1, -1), target_ndc, faces, size, uv, face_uv)
            direct = warp(source_image.expand(batch, -1, -1, -1), flow.grid, mask=source_fragments.mask.expand(batch, -1, -1))
            from_atlas = render_texture(flow.target_fragments, uv, face_uv, atlas_texture.expand(batch, -1, -1, -1))
            body_colour = torch.where(flow.visible.unsqueeze(1), direct, from_atlas)
            mask = flow.target_mask.unsqueeze(1)
            frames = torch.where(mask, body_colour, background.expand(batch, -1, -1, -1))
            if generator is not None:
                frames = generated_frames(generator, body, source_image, source_ndc, target_ndc)
            results += [to_uint8(frame) for frame in frames]
            if config.side_by_side:
                shaded = render_shaded(flow.target_fragments, target_ndc, faces, background=background.expand(batch, -1, -1, -1) * 0.35)
                side_by_side += [np.concatenate([to_uint8(source_image[0]), to_uint8(s), to_uint8(f)], axis=1) for s, f in zip(shaded, frames)]

    paths = {"video": write_video(output / "demo.mp4", results, config.fps), "source": write_image(output / "source.png", to_uint8(source_image[0]))}
    if config.side_by_side:
        paths["side_by_side"] = write_video(output / "demo_side_by_side.mp4", side_by_side, config.fps)
    write_bytes_atomic(output / "config.yaml", to_yaml(config).encode())
    for name, path in paths.items():
        logger.info("wrote %s: %s", name, path)
    return paths
