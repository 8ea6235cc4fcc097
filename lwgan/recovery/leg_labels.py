"""Which detected leg is the subject's left, decided over the whole video rather than frame by frame.

Seen from the side, BlazePose labels the legs by where they are more than by which they are: on
the turning walk (tools/eval_tracking.py, seeds 0-6) its labels are wrong in 84 of 226 frames with
the feet apart, in runs of two to eight frames that begin and end where the legs are far apart,
and its 3D landmarks and visibilities agree with its labels. A fit that follows them swaps the
body's legs from one frame to the next: the leg in front jumps behind.

consistent_leg_labels keeps or swaps each frame's leg labels (ORDERED_LIMBS), over the frames
whose detected legs stand apart (MIN_SEPARATION), so that
- each leg moves on smoothly: its keypoints continue at constant velocity from the two frames
  before (from the one before, after a video's first frame or a frame without a person); a
  keypoint's squared miss counts up to ERROR_CAP, so one misplaced keypoint cannot force a swap;
- and where the torso is seen from the front or the back, the detector's own labels count: a
  swap costs LABEL_COST times the legs' mean confidence times the torso's frontality squared (its
  width over its height; nearly 0 in profile, where the labels say little).
The cheapest labelling is exact (Viterbi over the labels of a frame and the one before). The
frames whose legs stand close take the labelling nearer their labelled neighbours. So a walker's
legs keep one identity through a profile stretch, and where the video shows the torso square on,
it picks the identity. On the turning walk's detections the labels are then wrong in 5 of 226
frames, and switch identity 8 times over the seven videos against 61.

The settings were chosen on those seven videos and the window is narrow: MIN_SEPARATION 0.04 or
0.07 gives 23 or 21 wrong frames (one video's profile stretch takes the wrong identity), ERROR_CAP
0.005 or none 109 or 28. On five real videos (a walk with a turn, a turning model, tai chi, two
dances) BlazePose's labels needed no change but in the last 5 frames of one dance (legs together).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lwgan.body.skeleton import BODY_KEYPOINT_NAMES
from lwgan.recovery.fitting import (
    ORDERED_LIMBS,
    SWAPPABLE_LIMBS,
    TORSO_KEYPOINTS,
    limb_permutations,
)
from lwgan.recovery.observation import box_side
from lwgan.recovery.video import Detections

LABEL_COST = 0.03
"""What keeping the detector's leg labels is worth in a frame whose torso faces the camera squarely (frontality 1), with
the legs fully confident, against the motion's squared misses (in box sizes, summed over the legs' keypoints)."""

MIN_SEPARATION = 0.05
"""Frames whose detected legs are closer together than this (leg_separation, box sizes) are left out of the motion and
take the labelling nearer their neighbours': the legs' labels say little where they cross, and a detector that puts both
legs in the middle for a frame (the turning walk, as the walker begins to turn) would otherwise break a leg's identity."""

ERROR_CAP = 0.02
"""The most one keypoint's squared miss of its predicted place counts (a miss of 0.14 box sizes)."""


def consistent_leg_labels(detections: Detections, label_cost: float = LABEL_COST) -> Detections:
    """`detections` with the left and right labels of the legs swapped where leg_label_swaps says.

    The legs' 3D landmarks swap their image-plane coordinates (x, y) but keep their depth (z): a
    detector that mistakes the legs in the picture still puts each label on its own side of the body
    in depth (on the turning walk, BlazePose's left and right ankles lie in the true order in depth in
    223 of 225 frames, their 2D places right or wrong).
    """
    swaps = leg_label_swaps(detections, label_cost)
    permutation = _leg_permutation()[0]
    keypoints, world = detections.keypoints.copy(), detections.world_landmarks.copy()
    keypoints[swaps] = keypoints[swaps][:, permutation]
    world[swaps, :, :2] = world[swaps][:, permutation, :2]
    return replace(detections, keypoints=keypoints, world_landmarks=world)


def leg_label_swaps(detections: Detections, label_cost: float = LABEL_COST) -> np.ndarray:
    """(N,) bool: the frames whose leg labels the cheapest labelling of the video swaps (the module's docstring); False where no person was found.

    Positions are in units of each frame's box size (its larger side); a keypoint's weight in the
    motion's miss is the product of its confidences in the frames compared.
    """
    permutation, members = _leg_permutation()
    box_size = box_side(detections.boxes)
    points = np.nan_to_num(detections.keypoints[..., :2] / np.maximum(np.nan_to_num(box_size), 1e-6)[:, None, None])
    confidence = np.nan_to_num(detections.keypoints[..., 2]).clip(0.0, 1.0)
    # Each frame's leg keypoints as detected (index 0) and swapped (index 1): (N, 2, M, 2) and (N, 2, M).
    labelled_points = np.stack([points[:, members], points[:, permutation][:, members]], axis=1)
    labelled_confidence = np.stack([confidence[:, members], confidence[:, permutation][:, members]], axis=1)
    swap_cost = label_cost * confidence[:, members].mean(axis=1) * torso_frontality(points, confidence) ** 2
    apart = leg_separation(labelled_points, labelled_confidence) >= MIN_SEPARATION
    swaps = np.zeros(len(detections), dtype=bool)
    for start, stop in _runs(detections.found.astype(bool)):
        rows = start + np.flatnonzero(apart[start:stop])
        if len(rows):
            swaps[rows] = cheapest_labels(labelled_points[rows], labelled_confidence[rows], swap_cost[rows], rows)
            close = np.setdiff1d(np.arange(start, stop), rows)
            swaps[close] = _nearer_the_neighbours(labelled_points, labelled_confidence, swaps, rows, close)
    return swaps


def _nearer_the_neighbours(points: np.ndarray, confidence: np.ndarray, swaps: np.ndarray, rows: np.ndarray, close: np.ndarray) -> np.ndarray:
    """(C,) bool swaps of the `close` frames: the labelling whose legs lie nearer the straight-line interpolation of the labelled `rows` frames around each.

    points: (N, 2, M, 2), confidence: (N, 2, M) as in cheapest_labels; swaps: (N,) the labels of `rows` (sorted frame indices).
    """
    labelled = points[rows, swaps[rows].astype(int)]  # (R, M, 2)
    position = np.interp(close, rows, np.arange(len(rows)))  # fractional index among rows
    lower = np.floor(position).astype(int)
    upper = np.minimum(lower + 1, len(rows) - 1)
    fraction = (position - lower)[:, None, None]
    expected = labelled[lower] * (1.0 - fraction) + labelled[upper] * fraction  # (C, M, 2)
    misses = (confidence[close] * np.square(points[close] - expected[:, None]).sum(-1)).sum(-1)  # (C, 2)
    return misses[:, 1] < misses[:, 0]


def leg_separation(points: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """(N,) how far apart the detected legs are: the confidence-weighted mean distance between each leg keypoint and its partner on the other leg.

    points: (N, 2, M, 2) each frame's leg keypoints as detected and swapped, in box sizes; confidence: (N, 2, M) likewise.
    """
    distance = np.linalg.norm(points[:, 0] - points[:, 1], axis=-1)
    weight = confidence[:, 0] * confidence[:, 1]
    return (weight * distance).sum(axis=1) / np.maximum(weight.sum(axis=1), 1e-8)


def torso_frontality(points: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """(N,) how squarely each torso faces the camera or turns its back, in [0, 1]: the mean of the shoulders' and hips' widths over the torso's height, times the least confidence of the four.

    points: (N, K, 2) keypoints (BODY_KEYPOINT_NAMES); confidence: (N, K).
    """
    left_shoulder, right_shoulder, left_hip, right_hip = (BODY_KEYPOINT_NAMES.index(name) for name in TORSO_KEYPOINTS)
    width = (np.linalg.norm(points[:, left_shoulder] - points[:, right_shoulder], axis=-1)
             + np.linalg.norm(points[:, left_hip] - points[:, right_hip], axis=-1)) / 2.0
    height = np.linalg.norm((points[:, left_shoulder] + points[:, right_shoulder] - points[:, left_hip] - points[:, right_hip]) / 2.0, axis=-1)
    seen = confidence[:, [left_shoulder, right_shoulder, left_hip, right_hip]].min(axis=1)
    return np.clip(width / np.maximum(height, 1e-6), 0.0, 1.0) * seen


def cheapest_labels(points: np.ndarray, confidence: np.ndarray, swap_cost: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(T,) bool: the swaps of the cheapest labelling of T frames in order.

    points: (T, 2, M, 2) each frame's leg keypoints as detected (index 0) and swapped (1);
    confidence: (T, 2, M) likewise; swap_cost: (T,); times: (T,) increasing frame indices. A
    labelling costs the swap_cost of each swapped frame plus, for each frame t > 0, its keypoints'
    confidence-weighted squared misses (each at most ERROR_CAP) of their predicted places: at
    constant velocity from frames t - 2 and t - 1 (weights: the product of the three frames'
    confidences), or at frame 0's place for t = 1 (weights: the two frames').

    Viterbi: the state of frame t is the pair (label of t - 1, label of t); total[a, b] is the least
    cost of frames 0..t ending in it, and came_from[t, a, b] the label of t - 2 it came from.
    """
    count = len(points)
    labels = (0, 1)
    total = np.full((2, 2), np.inf)
    total[0] = [0.0, swap_cost[0]]  # frame 0 has no predecessor: the pair's first label is a placeholder 0
    came_from = np.zeros((count, 2, 2), dtype=np.int64)
    for t in range(1, count):
        step = np.full((2, 2, 2), np.inf)  # step[a, b, c]: labels of t - 2, t - 1 and t
        for a in labels:
            for b in labels:
                if not np.isfinite(total[a, b]):
                    continue
                if t >= 2:
                    ahead = (times[t] - times[t - 1]) / (times[t - 1] - times[t - 2])
                    predicted = points[t - 1, b] + ahead * (points[t - 1, b] - points[t - 2, a])
                    weight = confidence[t - 1, b] * confidence[t - 2, a]
                else:
                    predicted, weight = points[t - 1, b], confidence[t - 1, b]
                for c in labels:
                    miss = np.minimum(np.square(points[t, c] - predicted).sum(-1), ERROR_CAP)
                    step[a, b, c] = total[a, b] + (confidence[t, c] * weight * miss).sum() + swap_cost[t] * c
        came_from[t] = step.argmin(axis=0)
        total = step.min(axis=0)
    before, last = np.unravel_index(int(total.argmin()), total.shape)
    swaps = np.zeros(count, dtype=bool)
    swaps[-1] = bool(last)
    for t in range(count - 1, 0, -1):
        swaps[t - 1] = bool(before)
        before, last = came_from[t, before, last], before
    return swaps


def _leg_permutation() -> tuple[list[int], list[int]]:
    """(the permutation of BODY_KEYPOINT_NAMES that swaps the legs' left and right keypoints, the legs' keypoint indices)."""
    return limb_permutations()[SWAPPABLE_LIMBS.index(ORDERED_LIMBS[0])]


def _runs(found: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of consecutive True in `found` (N,)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], found.astype(np.int8), [0]])))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))
