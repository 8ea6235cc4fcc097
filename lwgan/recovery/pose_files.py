"""Pose files: iPER's pose_shape.pkl (cams, pose, shape per frame) and npz files of SMPL poses.

Arrays read from and written to files are numpy float32 (files are numpy on disk; callers move
them to torch with torch.from_numpy where they need tensors).
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import pickletools
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lwgan.io.atomic_files import atomic_path
from lwgan.io.safe_unpickling import load_pickle_dict

logger = logging.getLogger(__name__)

POSE_SHAPE_KEYS = ("cams", "pose", "shape")
"""Keys of iPER's pose_shape.pkl: cams (N, 3) weak perspective (s, tx, ty), pose (N, 72), shape (N, K).

K = 10 SMPL betas in iPER's files; K = 6 Anny phenotypes in files written with the default body."""


@dataclass(frozen=True)
class PoseShape:
    """Per-frame SMPL parameters of one video, as in iPER's pose_shape.pkl (numpy float32).

    cams: (N, 3) weak-perspective camera (s, tx, ty) of lwgan.body.camera.
    pose: (N, 72) SMPL axis-angle, joint 0 = global orientation (HMR convention: (pi, 0, 0) is upright
        in the y-down image); reshape to (N, 24, 3) for a BodyModel.
    shape: (N, K) body shape: 10 SMPL betas (iPER), or 6 Anny phenotypes.
    """

    cams: np.ndarray
    pose: np.ndarray
    shape: np.ndarray

    @property
    def num_frames(self) -> int:
        return self.pose.shape[0]


@dataclass(frozen=True)
class SmplMotion:
    """A motion as SMPL-24 poses over time (numpy float32), in the y-up body frame of lwgan.body.camera.

    pose: (N, 24, 3) axis-angle; pose[:, 0] is the global orientation in the y-up body frame (NOT the
        image frame: the camera code applies the upright (pi, 0, 0) flip separately).
    translation: (N, 3) metres, the pelvis position (the BodyModel translation argument).
    fps: frames per second.
    shape: (K,) SMPL betas when the file gives them, else None.
    """

    pose: np.ndarray
    translation: np.ndarray
    fps: float
    shape: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return self.pose.shape[0]


def _as_float_array(value: Any, source: str, key: str) -> np.ndarray:
    """Convert a numpy array, torch tensor or nested list to a float32 numpy array; error names the key."""
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch here
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: '{key}' is not a numeric array ({type(value).__name__}: {error})") from error
    return array


def _check_finite(array: np.ndarray, source: str, key: str) -> None:
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array.reshape(array.shape[0], -1)).all(axis=1)).ravel()
        raise ValueError(f"{source}: '{key}' has NaN or infinite values in {bad.size} frame(s), first at frame {bad[0]}")


def _validate_pose_shape(cams: Any, pose: Any, shape: Any, source: str) -> PoseShape:
    """Check and convert the three arrays of a pose_shape file; errors name `source` and the key."""
    cams = _as_float_array(cams, source, "cams")
    pose = _as_float_array(pose, source, "pose")
    shape = _as_float_array(shape, source, "shape")
    if pose.ndim == 3 and pose.shape[1:] == (24, 3):
        pose = pose.reshape(pose.shape[0], 72)
    expected = {"cams": (cams, 3), "pose": (pose, 72), "shape": (shape, None)}
    for key, (array, width) in expected.items():
        if array.ndim != 2 or (width is not None and array.shape[1] != width) or array.shape[1] == 0:
            raise ValueError(f"{source}: '{key}' must have shape (N, {width or 'K'}), got {array.shape}")
    counts = {key: array.shape[0] for key, (array, _) in expected.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"{source}: 'cams', 'pose' and 'shape' must have the same number of frames N, got {counts}")
    if counts["pose"] == 0:
        raise ValueError(f"{source}: the file holds no frames (N = 0)")
    for key, (array, _) in expected.items():
        _check_finite(array, source, key)
    return PoseShape(cams=cams, pose=pose, shape=shape)


def read_pose_shape(path: str | os.PathLike) -> PoseShape:
    """Read an iPER-format pose_shape.pkl (dict with cams (N, 3), pose (N, 72), shape (N, K)).

    The file is read with lwgan.io.safe_unpickling.load_pickle (no code from the file runs). pose may also be
    (N, 24, 3). Extra keys are ignored. Returns numpy float32 arrays.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a pickle, not a dict, missing keys, wrong shapes, different N, NaN or inf;
            the message names the file and the key.
    """
    source = str(path)
    data = load_pickle_dict(path, POSE_SHAPE_KEYS, "an iPER pose_shape.pkl")
    extra = sorted(str(key) for key in data if key not in POSE_SHAPE_KEYS)
    if extra:
        logger.debug("%s: ignoring extra keys %s", source, extra)
    return _validate_pose_shape(data["cams"], data["pose"], data["shape"], source)


def _legacy_numpy_paths(data: bytes) -> bytes:
    """Rewrite `numpy._core.*` globals of a protocol-2 pickle to `numpy.core.*`, which numpy 1.x and 2.x both import."""
    pieces = []
    operations = list(pickletools.genops(data))
    for index, (opcode, argument, position) in enumerate(operations):
        end = operations[index + 1][2] if index + 1 < len(operations) else len(data)
        if opcode.name == "GLOBAL" and argument.startswith("numpy._core."):
            module, name = argument.split(" ", 1)
            pieces.append(b"c" + module.replace("numpy._core.", "numpy.core.", 1).encode() + b"\n" + name.encode() + b"\n")
        else:
            pieces.append(data[position:end])
    return b"".join(pieces)


def write_pose_shape(path: str | os.PathLike, cams: Any, pose: Any, shape: Any) -> None:
    """Write an iPER-format pose_shape.pkl atomically (numpy or torch inputs).

    Args:
        path: destination .pkl; written to a temporary file beside it, then renamed.
        cams: (N, 3) weak-perspective (s, tx, ty).
        pose: (N, 72) or (N, 24, 3) SMPL axis-angle (stored as (N, 72)).
        shape: (N, K) body shape: 10 SMPL betas (iPER), or 6 Anny phenotypes.
    The file is a dict of plain float32 numpy arrays in pickle protocol 2 with numpy's long-standing
    `numpy.core.multiarray` module path, so the original LWGAN code (Python 3, numpy 1.x) reads it.
    Raises ValueError (naming `path` and the key) on wrong shapes, different N or NaN values.
    """
    checked = _validate_pose_shape(cams, pose, shape, str(path))
    payload = {"cams": checked.cams, "pose": checked.pose, "shape": checked.shape}
    data = _legacy_numpy_paths(pickle.dumps(payload, protocol=2))
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def _fps_from_npz(arrays: dict[str, np.ndarray], source: str) -> float:
    for key in ("fps", "mocap_framerate", "mocap_frame_rate"):
        if key in arrays:
            try:
                fps = float(np.asarray(arrays[key]).reshape(-1)[0])
            except (TypeError, ValueError, IndexError) as error:
                raise ValueError(f"{source}: '{key}' is not a number ({error})") from error
            if not np.isfinite(fps) or fps <= 0:
                raise ValueError(f"{source}: '{key}' must be a positive frame rate, got {fps}")
            return fps
    logger.info("%s: no 'fps' key, assuming 30 frames per second", source)
    return 30.0


def _load_npz(path: Path, source: str) -> dict[str, np.ndarray]:
    """All arrays of an npz file (no pickled objects); errors name `source`."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("found a single .npy array, expected an .npz archive of named arrays")
        with loaded as archive:
            return {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, pickle.UnpicklingError) as error:
        raise ValueError(f"{source}: not a readable npz file ({type(error).__name__}: {error})") from error


def read_pose_npz(path: str | os.PathLike) -> SmplMotion:
    """Read an npz of SMPL poses into a SmplMotion (numpy float32).

    Keys:
        poses: (N, 72) or (N, 24, 3) SMPL axis-angle (required), global orientation in the y-up body frame.
        trans: (N, 3) pelvis translation in metres (optional, zeros when absent).
        betas: (K,) or (N, K) SMPL shape (optional; a per-frame array keeps frame 0).
        fps: frame rate (optional; `mocap_framerate` / `mocap_frame_rate` are read too; 30 when absent).
    Object arrays are refused (the file is read with allow_pickle=False).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an npz, missing `poses`, wrong shapes, different N, NaN or inf; the message
            names the file and the key.
    """
    source = str(path)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{source}: no such file")
    arrays = _load_npz(path, source)
    if "poses" not in arrays:
        raise ValueError(f"{source}: missing key 'poses'; found {sorted(arrays)}")
    pose = _as_float_array(arrays["poses"], source, "poses")
    if pose.ndim == 2 and pose.shape[1] == 72:
        pose = pose.reshape(-1, 24, 3)
    if pose.ndim != 3 or pose.shape[1:] != (24, 3):
        raise ValueError(f"{source}: 'poses' must have shape (N, 72) or (N, 24, 3), got {pose.shape}")
    if pose.shape[0] == 0:
        raise ValueError(f"{source}: 'poses' holds no frames (N = 0)")
    _check_finite(pose, source, "poses")
    num_frames = pose.shape[0]
    if "trans" in arrays:
        translation = _as_float_array(arrays["trans"], source, "trans")
        if translation.shape != (num_frames, 3):
            raise ValueError(f"{source}: 'trans' must have shape ({num_frames}, 3) to match 'poses', got {translation.shape}")
        _check_finite(translation, source, "trans")
    else:
        translation = np.zeros((num_frames, 3), np.float32)
    shape = None
    if "betas" in arrays:
        shape = _as_float_array(arrays["betas"], source, "betas")
        if shape.ndim == 2 and shape.shape[0] in (1, num_frames):
            shape = shape[0]
        if shape.ndim != 1 or shape.size == 0:
            raise ValueError(f"{source}: 'betas' must have shape (K,) or (N, K), got {arrays['betas'].shape}")
        if not np.isfinite(shape).all():
            raise ValueError(f"{source}: 'betas' has NaN or infinite values")
    return SmplMotion(pose=pose, translation=translation, fps=_fps_from_npz(arrays, source), shape=shape)


def write_pose_npz(path: str | os.PathLike, motion: SmplMotion) -> None:
    """Write a SmplMotion as an npz readable by read_pose_npz (poses (N, 72), trans, fps, betas), atomically."""
    arrays = {
        "poses": np.asarray(motion.pose, np.float32).reshape(-1, 72),
        "trans": np.asarray(motion.translation, np.float32),
        "fps": np.asarray(motion.fps, np.float64),
    }
    if motion.shape is not None:
        arrays["betas"] = np.asarray(motion.shape, np.float32)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with atomic_path(path) as temporary:
        temporary.write_bytes(buffer.getvalue())
