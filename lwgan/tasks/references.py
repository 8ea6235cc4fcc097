"""The reference motion of motion imitation: from a video, a folder of frames, a BVH file, an iPER
pose_shape.pkl or an npz of SMPL poses; and the target cameras (the camera strategies).

Videos and folders are preprocessed (lwgan.data.preprocess: detection, fitting, smoothing) into
a work folder, so an interrupted run resumes and the fitted reference stays for reuse.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from lwgan.body.camera import UPRIGHT_ORIENTATION, to_image_frame, yaw_of
from lwgan.body.model import BodyModel
from lwgan.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from lwgan.data.preprocess import (
    PreprocessConfig,
    VideoPaths,
    frame_name,
    preprocess_video,
)
from lwgan.io.images import IMAGE_EXTENSIONS, list_images, load_image
from lwgan.io.media import check_video
from lwgan.recovery.bvh import bvh_to_smpl, read_bvh
from lwgan.recovery.fitting import FitSettings
from lwgan.recovery.frames import VIDEO_EXTENSIONS, FrameSource
from lwgan.recovery.pose_files import SmplMotion, read_pose_npz, read_pose_shape
from lwgan.recovery.smoothing import low_pass, smooth_poses

logger = logging.getLogger(__name__)

CAMERA_STRATEGIES = ("smooth", "source", "copy")
"""How the target camera is chosen (as in the original's cam_strategy):
    source: the source photo's camera on every frame; the person stays where the source is;
    copy: the reference's own camera per frame (needs a reference with cameras: video, folder, pkl);
    smooth: the source's camera moved and scaled as the reference's camera moves relative to its
        first frame, then low-passed; for a motion file, the root's quick moves (root_moves) while
        the camera follows its travel."""

MOTION_SUFFIXES = (".bvh", ".pkl", ".npz")


@dataclass(frozen=True)
class ReferenceMotion:
    """A reference's per-frame bodies (numpy float32).

    pose: (N, 24, 3) SMPL axis-angle in the image orientation (upright flip included).
    camera: (N, 3) weak-perspective cameras of the reference frames' square crops, or None (motion files).
    translation: (N, 3) metres, the root's motion in the image axes, or None (fitted references,
        whose cameras carry the movement).
    fps: frame rate; name: for messages; video: the reference video file (its audio), or None;
    frames_folder: the reference's square crops (side-by-side videos), or None; preview: the
    video of the fitted mesh over those crops (what side-by-side videos show), or None.
    """

    pose: np.ndarray
    camera: np.ndarray | None
    translation: np.ndarray | None
    fps: float
    name: str
    video: Path | None = None
    frames_folder: Path | None = None
    preview: Path | None = None

    def __len__(self) -> int:
        return len(self.pose)

    def frame(self, index: int) -> np.ndarray | None:
        """The reference's (S, S, 3) uint8 crop of frame `index`, when it has frames."""
        if self.frames_folder is None:
            return None
        return load_image(self.frames_folder / f"{frame_name(index)}.jpg")

    def cut(self, count: int | None) -> ReferenceMotion:
        """The first `count` frames (all when None)."""
        if count is None or count >= len(self):
            return self
        def head(array):
            return None if array is None else array[:count]
        return replace(self, pose=self.pose[:count], camera=head(self.camera), translation=head(self.translation))


def check_reference(path: str | os.PathLike) -> Path:
    """The reference path, checked before any work: it exists and is a kind load_reference reads, and a
    video opens and decodes its first frame (lwgan.io.media.check_video: a truncated mp4 does not).

    Raises FileNotFoundError for a missing path and ValueError naming the path otherwise.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"reference not found: {path}")
    if path.is_dir():
        if not list_images(path):
            raise ValueError(f"{path}: a folder of reference frames must hold images ({' '.join(IMAGE_EXTENSIONS)}); it has none")
        return path
    if path.suffix.lower() not in (*VIDEO_EXTENSIONS, *MOTION_SUFFIXES):
        kinds = ", ".join(("a video (" + " ".join(VIDEO_EXTENSIONS) + ")", "a folder of images", *MOTION_SUFFIXES))
        raise ValueError(f"{path}: not a supported reference; give {kinds}")
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        check_video(path)
    return path


def load_reference(
    path: str | os.PathLike,
    body: BodyModel,
    work_folder: Path,
    image_size: int,
    fps: float = 30.0,
    fitting: FitSettings | None = None,
    max_frames: int | None = None,
) -> ReferenceMotion:
    """Read or fit the reference at `path`; `fps` applies to folders, pkl files and BVH resampling.

    max_frames: keep the first frames only (a video or folder is then fitted only that far, in a
    work subfolder of its own).
    Raises what check_reference raises, the readers' errors (naming the file), and
    lwgan.recovery.detector.NoPersonError when no frame shows a person.
    """
    path = check_reference(path)
    suffix = path.suffix.lower()
    if path.is_dir() or suffix in VIDEO_EXTENSIONS:
        name = (path.name if path.is_dir() else path.stem) + ("" if max_frames is None else f"_first{max_frames}")
        return _fit_reference(FrameSource(name, path, fps, max_frames), body, work_folder, image_size, fitting)
    if suffix == ".bvh":
        rest = body.skeleton(torch.zeros(1, 24, 3)).joints[0].detach().numpy()
        motion = _from_motion(bvh_to_smpl(read_bvh(path), fps=fps, rest_joints=rest), path.name)
    elif suffix == ".npz":
        motion = _from_motion(read_pose_npz(path), path.name)
    else:
        pose_shape = read_pose_shape(path)
        motion = ReferenceMotion(pose_shape.pose.reshape(-1, 24, 3), pose_shape.cams, None, fps, path.name)
    return motion.cut(max_frames)


def _from_motion(motion: SmplMotion, name: str) -> ReferenceMotion:
    pose, translation = to_image_frame(torch.from_numpy(motion.pose), torch.from_numpy(motion.translation))
    return ReferenceMotion(pose.numpy().astype(np.float32), None, translation.numpy().astype(np.float32), motion.fps, name)


def _fit_reference(source: FrameSource, body: BodyModel, work_folder: Path, image_size: int, fitting: FitSettings | None) -> ReferenceMotion:
    """Preprocess the video into work_folder (reused when done before, its preview video too) and read its bodies back."""
    settings = PreprocessConfig(input=str(source.path), output=str(work_folder), image_size=image_size, preview_size=image_size,
                                clothing=False, fitting=fitting or FitSettings())  # the source's clothing is what imitate carries
    preprocess_video(source, work_folder, body, settings)
    paths = VideoPaths(work_folder, source.name)
    pose_shape = read_pose_shape(paths.smpls / "pose_shape.pkl")
    logger.info("reference %s: %d fitted frames (work folder %s)", source.name, pose_shape.num_frames, work_folder)
    return ReferenceMotion(pose_shape.pose.reshape(-1, 24, 3), pose_shape.cams, None, source.fps, source.name,
                           video=source.path if source.is_video_file else None, frames_folder=paths.images,
                           preview=paths.preview if paths.preview.exists() else None)


def smooth_reference(reference: ReferenceMotion, pose_cutoff_hz: float) -> ReferenceMotion:
    """The reference with its poses low-passed (zero phase, in the 6D rotation representation)."""
    if len(reference) < 8:
        return reference
    return replace(reference, pose=smooth_poses(reference.pose, reference.fps, pose_cutoff_hz))


def face_heading(reference: ReferenceMotion, yaw: float) -> ReferenceMotion:
    """A motion file's reference turned about the vertical so that its first frame faces like `yaw`
    (radians, lwgan.body.camera.yaw_of of the source): a capture's heading in its room means
    nothing in the photo, and users expect the person to keep facing as in the photo.
    """
    upright = axis_angle_to_matrix(torch.tensor(UPRIGHT_ORIENTATION, dtype=torch.float64))
    turn_angle = torch.tensor([0.0, yaw - yaw_of(reference.pose[0]), 0.0], dtype=torch.float64)
    turn = upright @ axis_angle_to_matrix(turn_angle) @ upright.T  # about the image's vertical axis
    pose = torch.from_numpy(reference.pose).double()
    pose[:, 0] = matrix_to_axis_angle(turn @ axis_angle_to_matrix(pose[:, 0]))
    translation = None if reference.translation is None else (torch.from_numpy(reference.translation).double() @ turn.T).numpy().astype(np.float32)
    return replace(reference, pose=pose.numpy().astype(np.float32), translation=translation)


FOLLOW_CUTOFF_HZ = 0.5
"""Under "smooth", a motion file's root travel slower than this is followed by the camera (a walk
stays in the picture); faster moves (a hop, a side step) show."""


def root_moves(translation: np.ndarray, fps: float) -> np.ndarray:
    """(N, 2) root positions (metres) -> (N, 2) the moves a smoothly following camera still shows.

    The camera follows a zero-phase low-pass of the path at FOLLOW_CUTOFF_HZ; what it shows is the
    rest. Clips shorter than 8 frames (too short to filter) show their moves from the first frame.
    """
    relative = translation - translation[:1]
    if len(translation) < 8:
        return relative.astype(np.float32)
    return (relative - low_pass(relative.astype(np.float64), fps, FOLLOW_CUTOFF_HZ)).astype(np.float32)


def check_camera_strategy(strategy: str) -> None:
    """ValueError unless `strategy` is one of CAMERA_STRATEGIES."""
    if strategy not in CAMERA_STRATEGIES:
        raise ValueError(f"camera must be one of {CAMERA_STRATEGIES}, got {strategy!r}")


def target_cameras(strategy: str, source_camera: np.ndarray, reference: ReferenceMotion, camera_cutoff_hz: float = 2.0) -> np.ndarray:
    """(N, 3) weak-perspective cameras (s, tx, ty) of the target frames.

    Args:
        strategy: one of CAMERA_STRATEGIES.
        source_camera: (3,) the source's (s, tx, ty).
        reference: the reference motion.
        camera_cutoff_hz: low-pass of the "smooth" cameras.
    A motion file's root moves (root_moves, metres) go into the camera: s * (X + T + t) moves the
    body by T in the source's camera (weak perspective ignores the depth part).
    """
    check_camera_strategy(strategy)
    source = np.repeat(source_camera[None].astype(np.float32), len(reference), axis=0)
    if strategy == "source":
        return source
    if strategy == "copy":
        if reference.camera is None:
            raise ValueError(f"camera=copy needs a reference with cameras (a video, a folder or a pose_shape.pkl); {reference.name} has none")
        return reference.camera.astype(np.float32)
    if reference.camera is None:
        source[:, 1:] += root_moves(reference.translation[:, :2], reference.fps)
        return source
    # The reference pelvis sits at s * t in NDC; move the source by that displacement, scaled to the source's size.
    scale_ratio = reference.camera[:, 0] / reference.camera[0, 0]
    position = reference.camera[:, :1] * reference.camera[:, 1:]
    target_scale = source_camera[0] * scale_ratio
    target_position = source_camera[0] * source_camera[1:] + (position - position[:1]) * (source_camera[0] / reference.camera[0, 0])
    cameras = np.concatenate([target_scale[:, None], target_position / target_scale[:, None]], axis=1)
    if len(reference) >= 8:
        cameras = low_pass(cameras.astype(np.float64), reference.fps, camera_cutoff_hz)
    return cameras.astype(np.float32)
