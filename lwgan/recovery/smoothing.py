"""Temporal clean-up of fitted motion: filling frames where the person was lost, zero-phase low-pass.

Poses are filtered in the continuous 6D rotation representation (Zhou et al. CVPR 2019) and
projected back to rotations, as in Impersonator++'s smoothing; cameras are filtered directly. The
filter is a Butterworth low-pass run forwards and backwards (scipy.signal.filtfilt), so it adds no
lag.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from scipy.signal import butter, filtfilt

from lwgan.body.camera import angle_between, root_headings
from lwgan.body.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rotation_6d,
    rotation_6d_to_matrix,
    slerp_matrices,
)

logger = logging.getLogger(__name__)


def fill_missing(pose: np.ndarray, camera: np.ndarray, found: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill frames without a fit from their neighbours.

    Frames between two found frames get the slerp of their rotations and the linear blend of
    their cameras; frames before the first (after the last) found frame copy it.

    Args:
        pose: (N, 24, 3) axis-angle (values of missing frames are ignored); camera: (N, 3);
        found: (N,) bool, at least one True.
    Returns:
        (pose, camera) with every frame filled, float32.
    """
    found = np.asarray(found, dtype=bool)
    if not found.any():
        raise ValueError("no frame has a fit: nothing to interpolate from")
    frames = np.arange(len(found))
    known = frames[found]
    after = np.clip(np.searchsorted(known, frames), 0, len(known) - 1)
    before = np.clip(after - 1, 0, len(known) - 1)
    before = np.where(known[after] <= frames, after, before)  # exact hits and frames past the end
    low, high = known[before], known[after]
    span = np.maximum(high - low, 1)
    weight = np.clip((frames - low) / span, 0.0, 1.0)
    rotations = axis_angle_to_matrix(torch.from_numpy(pose.astype(np.float64)))
    blended = slerp_matrices(rotations[low], rotations[high], torch.from_numpy(weight)[:, None].expand(-1, pose.shape[1]))
    filled_pose = matrix_to_axis_angle(blended).numpy().astype(np.float32)
    filled_camera = (camera[low] * (1 - weight[:, None]) + camera[high] * weight[:, None]).astype(np.float32)
    return filled_pose, filled_camera


def flipped_headings(pose: np.ndarray, found: np.ndarray, window: int = 9) -> np.ndarray:
    """(N,) bool: the found frames whose body faces the opposite way to most of the frames around them.

    A crouching or bending person's keypoints fit a body seen from the front nearly as well as one
    seen from the back, so a tracked fit can turn half round for a frame or a few; the low-pass
    would then blend it with its neighbours into a body that faces neither way. The headings'
    local axis (modulo a half turn) is the mean of their doubled angles over `window` frames, which
    a half turn leaves unchanged; each frame faces one way or the other along it, and a frame is
    flipped when at least two thirds of its window's found frames face the other way and it lies
    more than 60 degrees off the axis's nearer direction (a sideways frame is left alone). So a
    run of up to 3 turned frames in a window of 9 is found. Longer runs are found by their edges
    (turned_runs): the body turns more than HALF_TURN_JUMP from one found frame to the next, into the
    run and back out of it. Where the two ways are even and nothing returns (say a chunk tracked
    turned round after a gap), nothing says which is right, and nothing is flagged. A person who
    turns keeps a consistent side, however fast, while the window's headings span less than a half
    turn.

    Args:
        pose: (N, 24, 3) axis-angle image-oriented poses (rows not found are ignored); found: (N,) bool.
    Returns:
        (N,) bool, False where found is False.
    """
    found = np.asarray(found, dtype=bool)
    headings = root_headings(np.where(found[:, None], pose[:, 0], 0.0))
    flipped = np.zeros(len(found), dtype=bool)
    for index in np.flatnonzero(found):
        rows = np.arange(max(0, index - window // 2), min(len(found), index + window // 2 + 1))
        around = headings[rows[found[rows]]]
        axis = 0.5 * np.arctan2(np.sin(2.0 * around).sum(), np.cos(2.0 * around).sum())
        alignment = np.cos(headings[index] - axis)
        against = np.mean(np.sign(np.cos(around - axis)) != np.sign(alignment))
        flipped[index] = against >= 2.0 / 3.0 and abs(alignment) > 0.5
    return flipped | turned_runs(headings, found)


HALF_TURN_JUMP = np.radians(120.0)
"""A change of heading between two found frames that no person makes (a dancer's fast spin, two turns a second, is 24
degrees a frame at 30 fps and 48 at 15): the fit has turned half round, or turned back."""


def turned_runs(headings: np.ndarray, found: np.ndarray) -> np.ndarray:
    """(N,) bool: the found frames of each run that jumps half round and back, shorter than the found frames on each side.

    The found frames are cut into stretches wherever the heading changes by more than HALF_TURN_JUMP
    from one frame to the next, both found (across lost frames the person may really have turned). A
    stretch is turned when the stretches before and after it face the same way where they meet it
    (within 60 degrees) and both are longer: the majority around it faces the other way, and no one
    turns that fast.

    headings: (N,) radians (heading_of), ignored where found is False; found: (N,) bool.
    """
    rows = np.flatnonzero(found)
    jumped = angle_between(headings[rows[1:]], headings[rows[:-1]]) > HALF_TURN_JUMP
    jumps = np.flatnonzero(jumped & (np.diff(rows) == 1)) + 1
    stretches = np.split(rows, jumps)
    turned = np.zeros(len(found), dtype=bool)
    for before, run, after in zip(stretches, stretches[1:], stretches[2:]):
        returns = angle_between(headings[before[-1]], headings[after[0]]) < np.radians(60.0)
        if returns and len(run) < min(len(before), len(after)):
            turned[run] = True
    return turned


def low_pass(signal: np.ndarray, fps: float, cutoff_hz: float, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth low-pass of (N, ...) along axis 0.

    Returns the input unchanged when the cutoff is at or above the Nyquist frequency (fps / 2) or
    the clip is too short to filter (fewer than 2 frames).
    """
    if cutoff_hz <= 0:
        raise ValueError(f"cutoff_hz must be positive, got {cutoff_hz}")
    nyquist = fps / 2.0
    if cutoff_hz >= nyquist or len(signal) < 2:
        return signal
    numerator, denominator = butter(order, cutoff_hz / nyquist)
    # Odd (point-mirrored) padding continues a trend through the ends; three periods of the cutoff
    # let the filter's start-up transient die out before the real samples (scipy's default pad of
    # 3 x 5 samples leaves a lag at the ends of slow filters: 0.3 m on a 1 m/s walk at 0.5 Hz).
    padding = min(max(3 * max(len(numerator), len(denominator)), round(3 * fps / cutoff_hz)), len(signal) - 1)
    return filtfilt(numerator, denominator, signal, axis=0, padtype="odd", padlen=padding)


def smooth_poses(pose: np.ndarray, fps: float, cutoff_hz: float = 4.0) -> np.ndarray:
    """Low-pass (N, 24, 3) axis-angle poses without lag, in the continuous 6D rotation representation -> (N, 24, 3) float32."""
    rotations = axis_angle_to_matrix(torch.from_numpy(pose.astype(np.float64)))
    smoothed_six = low_pass(matrix_to_rotation_6d(rotations).numpy(), fps, cutoff_hz)
    smoothed = matrix_to_axis_angle(rotation_6d_to_matrix(torch.from_numpy(np.ascontiguousarray(smoothed_six))))
    return smoothed.numpy().astype(np.float32)


def smooth_motion(
    pose: np.ndarray, camera: np.ndarray, fps: float, pose_cutoff_hz: float = 4.0, camera_cutoff_hz: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Low-pass a fitted motion without lag.

    Args:
        pose: (N, 24, 3) axis-angle; camera: (N, 3); fps: frame rate;
        pose_cutoff_hz, camera_cutoff_hz: -3 dB frequencies of the filters.
    Returns:
        (pose (N, 24, 3), camera (N, 3)) float32.
    """
    smoothed_camera = low_pass(camera.astype(np.float64), fps, camera_cutoff_hz)
    return smooth_poses(pose, fps, pose_cutoff_hz), smoothed_camera.astype(np.float32)
