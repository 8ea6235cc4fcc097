"""Video tracking against known truth: a synthetic walker who crosses the frame and turns around.

`make_turning_walk` renders, the way `lwgan make-dataset` renders its clips (a free body of random
shape in procedural clothes over a procedural background), a person who walks across the picture
in profile, turns 180 degrees in a U-turn and walks back, and writes it as a video with its true
masks, poses, shape and cameras. `score_tracking` compares what `lwgan preprocess` fitted to that
video with the truth, frame by frame: the silhouette IoU of the fitted body against the true
mask (in the crops that preprocess wrote), the MPJPE of the joints (pelvis-aligned, in the
camera axes, so a wrong heading counts), and whether the fitted legs stand swapped.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lwgan.body.camera import project, to_image_frame, with_heading
from lwgan.body.clothing import clothed_vertices
from lwgan.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from lwgan.body.skeleton import SMPL_JOINT_NAMES
from lwgan.bundled import bundled_motion
from lwgan.data.iper import OFFSETS_FILE, read_offsets
from lwgan.data.synthetic import random_shape, render_clip
from lwgan.eval.metrics import mask_iou
from lwgan.io.media import to_uint8, write_video
from lwgan.recovery.bvh import bvh_to_smpl, read_bvh
from lwgan.recovery.pose_files import read_pose_shape
from lwgan.recovery.video import crop_frame
from lwgan.render import rasterize
from lwgan.render.procedural import background_image, clothing_texture

WALK_START_SECONDS = 4.4
"""Where the bundled CMU walk (131_01: start, walk, stop) is in full stride."""


@dataclass(frozen=True)
class TrackingClip:
    """A rendered clip and its truth (numpy float32 unless said otherwise).

    video: the written video file; fps; pose (N, 24, 3) image-oriented; shape (K,); camera (N, 3)
    in the frames' NDC (square frames); masks (N, S, S) bool, the body's exact silhouettes;
    heading (N,) radians (0 faces the camera, pi/2 the image's right).
    """

    video: Path
    fps: float
    pose: np.ndarray
    shape: np.ndarray
    camera: np.ndarray
    masks: np.ndarray
    heading: np.ndarray


def turning_walk_motion(fps: float, seconds: float, turn_start: float, turn_seconds: float, speed: float = 1.4) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """A walk along the image's x axis with a U-turn: (N, 24, 3) image-oriented poses, (N, 3) root translations, (N,) headings.

    The limbs come from the bundled CMU walk at full stride. The heading is pi/2 (walking towards
    the image's right, in profile) until `turn_start` seconds, then turns smoothly (a raised-cosine
    ramp) through pi (the back to the camera) to 3 pi/2 over `turn_seconds`, and the root moves
    at `speed` (metres per second, a brisk walk; the capture's own stride lasts only 1.6 s, so its
    limbs slow down towards the end while the root keeps going) along the heading: the person
    walks a U-turn and comes back.
    """
    motion = bvh_to_smpl(read_bvh(bundled_motion("walk")), fps=fps)
    first = round(WALK_START_SECONDS * fps)
    count = round(seconds * fps)
    if first + count > motion.num_frames:
        raise ValueError(f"the bundled walk has {motion.num_frames / fps - WALK_START_SECONDS:.1f} s of stride, asked for {seconds} s")
    pose = torch.from_numpy(motion.pose[first : first + count].copy())
    captured = motion.translation[first : first + count]
    time = np.arange(count) / fps
    progress = np.clip((time - turn_start) / turn_seconds, 0.0, 1.0)
    heading = math.pi / 2 + math.pi * (1 - np.cos(math.pi * progress)) / 2
    step = speed / fps * np.stack([np.sin(heading), np.zeros(count), np.cos(heading)], axis=-1)  # the body's front is +z at heading 0
    ground = np.cumsum(step, axis=0) - step[0]
    translation = torch.from_numpy(ground + np.stack([np.zeros(count), captured[:, 1], np.zeros(count)], axis=-1)).float()
    pose, translation = to_image_frame(pose, translation)
    # The root's heading (its rotation about the vertical) follows the schedule; its tilt is kept.
    pose[:, 0] = matrix_to_axis_angle(with_heading(axis_angle_to_matrix(pose[:, 0]), torch.from_numpy(heading).float()))
    return pose, translation, heading.astype(np.float32)


def make_turning_walk(body, folder: str | Path, size: int = 256, fps: float = 15.0, seconds: float = 2.4, turn_start: float = 1.3,
                      turn_seconds: float = 0.8, seed: int = 0) -> TrackingClip:
    """Render the turning walk (a random make-dataset subject) into `folder`/turning_walk.mp4 at size x size."""
    generator = np.random.default_rng(seed)
    shape = random_shape(body, generator)
    pose, translation, heading = turning_walk_motion(fps, seconds, turn_start, turn_seconds)
    texture_seed, background_seed = (int(v) for v in generator.integers(0, 2**31, 2))
    with torch.no_grad():
        rest = body(torch.zeros(1, 24, 3), shape).vertices[0]
        texture = clothing_texture(body.uv, body.face_uv, body.faces, body.face_part, rest, 512, texture_seed)[None]
    background = background_image(size, size, seed=background_seed)[None]
    images, masks, cameras = render_clip(body, shape, pose, translation, texture, background, size)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    video = write_video(folder / "turning_walk.mp4", [to_uint8(image) for image in images], fps)
    return TrackingClip(video, fps, pose.numpy(), shape[0].numpy(), cameras.numpy(), masks.numpy().astype(bool), heading)


@dataclass(frozen=True)
class TrackingScore:
    """Per-frame comparison of a fitted video with its truth: iou (N,) of the fitted body, clothed_iou (N,) of that body
    clothed by preprocess's offsets (None where it fitted none), mpjpe_mm (N,), and over the frames whose true ankles
    stand FEET_APART or more apart (feet_apart (N,) bool), legs_swapped (N,) bool: the fitted left knee and ankle lie
    nearer the true right ones, and the right nearer the left, than each to its own (pelvis-aligned; False elsewhere)."""

    iou: np.ndarray
    clothed_iou: np.ndarray | None
    mpjpe_mm: np.ndarray
    legs_swapped: np.ndarray
    feet_apart: np.ndarray

    def identity_switches(self) -> int:
        """How often the fitted legs change between standing right and standing swapped from one judged frame to the next (a leg jumps)."""
        judged = self.legs_swapped[self.feet_apart]
        return int((judged[1:] != judged[:-1]).sum())


FEET_APART = 0.25
"""Metres between the true ankles from which score_tracking judges whether the fitted legs stand swapped."""


def score_tracking(body, clip: TrackingClip, dataset: str | Path, name: str = "turning_walk") -> TrackingScore:
    """Compare `lwgan preprocess`'s fits of `clip` (in `dataset`) with the truth.

    The fitted body is rasterized with its camera into the crops preprocess wrote (at its
    image_size); the true mask is cut to the same crop (info.json's crop). So is the body clothed
    by the video's offsets (offsets.npy), as lwgan evaluate and training use it. MPJPE compares the
    24 SMPL joints of the fitted and the true body, each posed with its own shape and global
    orientation, after moving both pelvises to the origin.
    """
    smpls = Path(dataset) / "smpls" / name
    info = json.loads((smpls / "info.json").read_text())
    fits = read_pose_shape(smpls / "pose_shape.pkl")
    if len(fits.pose) != len(clip.pose):
        raise ValueError(f"{smpls}: {len(fits.pose)} fitted frames, the clip has {len(clip.pose)}")
    size = int(info["image_size"])
    crop = np.array([info["crop"]["x0"], info["crop"]["y0"], info["crop"]["side"]], np.float32)
    truth_masks = torch.from_numpy(np.stack([crop_frame(np.repeat(mask[..., None].astype(np.uint8) * 255, 3, axis=-1), crop, size)[..., 0] > 127
                                             for mask in clip.masks]))
    fitted_pose = torch.from_numpy(fits.pose.reshape(-1, 24, 3))
    count = len(fitted_pose)
    with torch.no_grad():
        fitted = body(fitted_pose, torch.from_numpy(fits.shape))
        truth = body(torch.from_numpy(clip.pose), torch.from_numpy(clip.shape).expand(count, -1))
        cameras = torch.from_numpy(fits.cams)
        fitted_masks = rasterize(project(fitted.vertices, cameras), body.faces, size).mask
        iou = mask_iou(fitted_masks.bool(), truth_masks).numpy()
        offsets = read_offsets(smpls / OFFSETS_FILE)
        clothed_iou = None
        if offsets is not None:
            clothed = clothed_vertices(fitted.vertices, body.faces, torch.from_numpy(offsets).to(fitted.vertices.dtype))
            clothed_iou = mask_iou(rasterize(project(clothed, cameras), body.faces, size).mask.bool(), truth_masks).numpy()
    fitted_joints = fitted.joints - fitted.joints[:, :1]
    truth_joints = truth.joints - truth.joints[:, :1]
    mpjpe = (fitted_joints - truth_joints).norm(dim=-1).mean(dim=-1).numpy() * 1000.0
    left, right = ([SMPL_JOINT_NAMES.index(f"{side}_{joint}") for joint in ("knee", "ankle")] for side in ("left", "right"))
    def distance(fitted_side, truth_side):
        return (fitted_joints[:, fitted_side] - truth_joints[:, truth_side]).norm(dim=-1).sum(dim=-1)
    feet_apart = ((truth.joints[:, left[1]] - truth.joints[:, right[1]]).norm(dim=-1) >= FEET_APART).numpy()
    swapped = (distance(left, right) + distance(right, left) < distance(left, left) + distance(right, right)).numpy() & feet_apart
    return TrackingScore(iou=iou, clothed_iou=clothed_iou, mpjpe_mm=mpjpe, legs_swapped=swapped, feet_apart=feet_apart)
