"""`lwgan make-dataset output=DIR`: a synthetic iPER-format dataset with exactly known fits.

Subjects are free bodies of varied shape in procedural clothes; each clip moves by a stretch of a
CMU clip with random perturbations (joint offsets, a slow sway, a random facing), in front of a
static camera and a procedural background. Frames, masks and pose_shape.pkl go in the layout
lwgan.data.iper reads; val.txt holds the last `val_subjects` subjects, never seen in training.
The fitted camera of each frame carries the body's translation (iPER's pose_shape.pkl has none).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from omegaconf import MISSING
from tqdm import tqdm

from lwgan.body import BodyConfig, build_body_model
from lwgan.body.camera import camera_to_fit, project, to_image_frame
from lwgan.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from lwgan.bundled import MOTIONS, bundled_motion
from lwgan.io.atomic_files import write_bytes_atomic
from lwgan.io.media import to_uint8, write_image
from lwgan.recovery.bvh import bvh_to_smpl, read_bvh
from lwgan.recovery.pose_files import write_pose_shape
from lwgan.render import rasterize, render_texture
from lwgan.render.procedural import background_image, clothing_texture

logger = logging.getLogger(__name__)


def bundled_motions() -> list[str]:
    """The CMU clips shipped with the package (walk, hop)."""
    return sorted(str(bundled_motion(name)) for name in MOTIONS)


@dataclass
class MakeDatasetConfig:
    output: str = MISSING
    subjects: int = 20
    clips_per_subject: int = 2
    frames_per_clip: int = 48
    val_subjects: int = 4  # the last subjects go to val.txt only
    image_size: int = 128
    fps: float = 15.0
    texture_size: int = 512
    joint_noise: float = 0.12  # radians: constant random offset per joint and clip
    sway: float = 0.15  # radians: amplitude of a slow random sway of the spine and arms
    seed: int = 0
    motions: list[str] = field(default_factory=bundled_motions)  # BVH files (CMU skeleton)
    body: BodyConfig = field(default_factory=BodyConfig)


def random_shape(body, generator: np.random.Generator) -> torch.Tensor:
    """(1, K) a random adult shape: Anny phenotypes in plausible ranges, or small SMPL betas."""
    if body.name == "anny":  # gender, age, muscle, weight, height, proportions
        low = np.array([0.0, 0.5, 0.25, 0.25, 0.25, 0.35])
        high = np.array([1.0, 0.9, 0.75, 0.75, 0.75, 0.65])
        return torch.tensor(generator.uniform(low, high), dtype=torch.float32)[None]
    return torch.tensor(generator.normal(0.0, 0.8, body.shape_dim), dtype=torch.float32)[None]


def perturbed_clip(motion, frames: int, config: MakeDatasetConfig, generator: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A random stretch of `motion`, perturbed: (frames, 24, 3) image-oriented poses, (frames, 3) translations."""
    start = int(generator.integers(0, max(1, motion.num_frames - frames)))
    pose = torch.from_numpy(motion.pose[start : start + frames].copy())
    translation = torch.from_numpy(motion.translation[start : start + frames].copy())
    count = len(pose)
    offsets = torch.from_numpy(generator.normal(0.0, config.joint_noise, (1, 24, 3))).float()
    offsets[:, 0] = 0.0
    time = torch.arange(count, dtype=torch.float32)[:, None, None] / config.fps
    frequency = torch.from_numpy(generator.uniform(0.2, 0.6, (1, 24, 3))).float()
    phase = torch.from_numpy(generator.uniform(0, 2 * np.pi, (1, 24, 3))).float()
    sway = config.sway * torch.sin(2 * np.pi * frequency * time + phase)
    swaying = torch.zeros(1, 24, 1)
    swaying[:, [3, 6, 9, 13, 14, 16, 17, 18, 19]] = 1.0  # spine, collars, shoulders, elbows
    local = axis_angle_to_matrix(pose[:, 1:]) @ axis_angle_to_matrix((offsets + sway * swaying)[:, 1:].expand(count, -1, -1))
    pose[:, 1:] = matrix_to_axis_angle(local)
    # A random facing: turn the whole clip about the vertical axis through its first pelvis position.
    yaw = axis_angle_to_matrix(torch.tensor([0.0, float(generator.uniform(-np.pi, np.pi)), 0.0]))
    pose[:, 0] = matrix_to_axis_angle(yaw @ axis_angle_to_matrix(pose[:, 0]))
    translation = (translation - translation[:1]) @ yaw.T + translation[:1]
    return to_image_frame(pose, translation)


def render_clip(body, shape, pose, translation, texture, background, size: int, batch: int = 16):
    """Frames (N, 3, S, S) in [0, 1], masks (N, S, S) and per-frame cameras (N, 3) that carry the translation."""
    with torch.no_grad():
        vertices = torch.cat([body(pose[i : i + batch], shape.expand(len(pose[i : i + batch]), -1)).vertices for i in range(0, len(pose), batch)])
        placed = vertices + translation[:, None]
        camera = camera_to_fit(placed.reshape(1, -1, 3), fill=0.85)[0]
        cameras = torch.cat([camera[:1].expand(len(pose), 1), camera[1:] + translation[:, :2]], dim=1)  # s (X + T + t)
        images, masks = [], []
        for start in range(0, len(pose), batch):
            ndc = project(vertices[start : start + batch], cameras[start : start + batch])
            fragments = rasterize(ndc, body.faces, size)
            count = len(ndc)
            images.append(render_texture(fragments, body.uv, body.face_uv, texture.expand(count, -1, -1, -1), background.expand(count, -1, -1, -1)))
            masks.append(fragments.mask)
    return torch.cat(images), torch.cat(masks), cameras


def run(config: MakeDatasetConfig) -> dict:
    output = Path(config.output)
    if config.val_subjects >= config.subjects:
        raise ValueError(f"val_subjects ({config.val_subjects}) must be fewer than subjects ({config.subjects})")
    body = build_body_model(config.body)
    motions = [bvh_to_smpl(read_bvh(path), fps=config.fps) for path in config.motions]
    with torch.no_grad():
        rest = body(torch.zeros(1, 24, 3)).vertices[0]
    splits = {"train": [], "val": []}
    for subject in tqdm(range(config.subjects), desc="subjects", unit="subject"):
        generator = np.random.default_rng([config.seed, subject])
        shape = random_shape(body, generator)
        texture_seed, background_seed = (int(v) for v in generator.integers(0, 2**31, 2))
        with torch.no_grad():
            texture = clothing_texture(body.uv, body.face_uv, body.faces, body.face_part, rest, config.texture_size, texture_seed)[None]
        background = background_image(config.image_size, config.image_size, seed=background_seed)[None]
        for clip in range(config.clips_per_subject):
            name = f"subject{subject:03d}_clip{clip}"
            motion_index = int(generator.integers(0, len(motions)))
            pose, translation = perturbed_clip(motions[motion_index], config.frames_per_clip, config, generator)
            images, masks, cameras = render_clip(body, shape, pose, translation, texture, background, config.image_size)
            for index, (image, mask) in enumerate(zip(images, masks)):
                write_image(output / "images" / name / f"{index:06d}.jpg", to_uint8(image))
                write_image(output / "masks" / name / f"{index:06d}.png", (mask.numpy() * 255).astype(np.uint8))
            write_pose_shape(output / "smpls" / name / "pose_shape.pkl", cams=cameras.numpy(), pose=pose.reshape(len(pose), 72).numpy(),
                             shape=shape.expand(len(pose), -1).numpy())
            info = {"subject": subject, "shape": shape[0].tolist(), "texture_seed": texture_seed, "background_seed": background_seed,
                    "motion": Path(config.motions[motion_index]).name, "frames": len(pose), "body": body.name}
            write_bytes_atomic(output / "smpls" / name / "info.json", json.dumps(info, indent=1).encode())
            splits["val" if subject >= config.subjects - config.val_subjects else "train"].append(name)
    for split, names in splits.items():
        write_bytes_atomic(output / f"{split}.txt", ("\n".join(names) + "\n").encode())
    logger.info("wrote %d train and %d val videos to %s", len(splits["train"]), len(splits["val"]), output)
    return splits
