"""Loss terms of the SMPLify-style fit (Bogo et al., ECCV 2016), each returning one value per sample (B,)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import torch

from lwgan.body.skeleton import BODY_KEYPOINT_NAMES, SMPL_JOINT_NAMES, SMPL_MIRROR
from lwgan.checks import check_shape

_INF = math.inf

JOINT_ANGLE_LIMITS: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    # joint: ((x low, x high), (y low, y high), (z low, z high)), axis-angle components in radians,
    # for the subject's LEFT side and the midline; right-side joints mirror them (see joint_angle_bounds).
    # SMPL body frame: x = subject's left, y up, z forward.
    "left_knee": ((-0.05, 2.6), (-0.5, 0.5), (-0.2, 0.2)),  # flexion is +x; no hyperextension, little sideways bending
    "left_elbow": ((-1.6, 1.6), (-2.7, 0.1), (-1.4, 1.4)),  # flexion is -y; x is forearm twist
    "left_hip": ((-2.6, 0.8), (-1.0, 1.0), (-0.6, 1.6)),  # flexion is -x, abduction +z
    "left_ankle": ((-1.0, 1.0), (-1.2, 1.2), (-0.8, 0.8)),
    "left_wrist": ((-1.6, 1.6), (-1.6, 1.6), (-1.6, 1.6)),
    "left_collar": ((-0.6, 0.6), (-0.6, 0.6), (-0.6, 0.6)),
    "spine1": ((-0.6, 1.2), (-0.6, 0.6), (-0.6, 0.6)),  # forward bending is +x; y is the twist
    "spine2": ((-0.6, 1.0), (-0.6, 0.6), (-0.6, 0.6)),
    "spine3": ((-0.6, 1.0), (-0.6, 0.6), (-0.6, 0.6)),
    "neck": ((-0.8, 1.0), (-1.2, 1.2), (-0.7, 0.7)),
    "head": ((-0.6, 0.6), (-0.8, 0.8), (-0.5, 0.5)),
}
"""Anatomical ranges of the SMPL axis-angle components (radians) that joint_limit_loss enforces.

Every component outside its range is penalised. The ranges hold every frame of the CMU clips in
tests/data/cmu_mocap after bvh_to_smpl() with margin; the hinge joints carry the anatomy:
knees bend one way only (flexion +x), elbows too (left flexion -y, right +y by mirroring), spine
twist (y) stays within about 35 degrees per spine joint. The elbow's sideways (z) range is wide
because SMPL's elbow axis depends on the upper arm's roll, which retargeted motion puts partly at
the elbow. Joints not listed (pelvis = global orientation, shoulders, feet, hands) are free.
"""

BONES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("left_upper_arm", ("left_shoulder",), ("left_elbow",)),
    ("right_upper_arm", ("right_shoulder",), ("right_elbow",)),
    ("left_forearm", ("left_elbow",), ("left_wrist",)),
    ("right_forearm", ("right_elbow",), ("right_wrist",)),
    ("left_thigh", ("left_hip",), ("left_knee",)),
    ("right_thigh", ("right_hip",), ("right_knee",)),
    ("left_shin", ("left_knee",), ("left_ankle",)),
    ("right_shin", ("right_knee",), ("right_ankle",)),
    ("left_foot", ("left_heel",), ("left_big_toe",)),
    ("right_foot", ("right_heel",), ("right_big_toe",)),
    ("shoulder_line", ("right_shoulder",), ("left_shoulder",)),
    ("hip_line", ("right_hip",), ("left_hip",)),
    ("spine", ("left_hip", "right_hip"), ("left_shoulder", "right_shoulder")),
    ("head", ("left_shoulder", "right_shoulder"), ("nose",)),
    ("ear_line", ("right_ear",), ("left_ear",)),
)
"""Bones between keypoints (BODY_KEYPOINT_NAMES) whose 3D directions bone_direction_loss compares:
(name, start keypoints, end keypoints); an end with several keypoints is their mean."""

TORSO_BONES = ("shoulder_line", "hip_line", "spine")
"""The bones of BONES that the orientation stage uses (its body pose is not fitted yet)."""


def gmof(squared_residual: torch.Tensor, scale: float) -> torch.Tensor:
    """Geman-McClure robust penalty, SMPLify's GMoF: rho(r) = scale^2 r^2 / (scale^2 + r^2).

    It behaves like r^2 for |r| << scale and tends to scale^2 for |r| >> scale (bounded, so an
    outlier keypoint pulls with a vanishing force), and increases monotonically with |r|.

    Args:
        squared_residual: (...) r^2 >= 0; scale: the robust scale, in the residual's unit.
    Returns:
        (...) penalty in [0, scale^2).
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    scale_squared = scale * scale
    return scale_squared * squared_residual / (scale_squared + squared_residual)


def keypoint_loss(
    predicted: torch.Tensor,
    observed: torch.Tensor,
    confidence: torch.Tensor,
    box_size: torch.Tensor,
    robust_scale: float,
) -> torch.Tensor:
    """Confidence-weighted robust 2D keypoint error, in units of the person's box size.

    Each keypoint's distance is divided by the box size, passed through gmof(), weighted by its
    confidence; the result is the weighted mean over the keypoints (0 when all confidences are 0).
    A keypoint of confidence 0 has no effect on the value or on any gradient.

    Args:
        predicted: (B, K, 2) projected body keypoints; observed: (B, K, 2) detected keypoints, in
            the same unit as box_size (e.g. NDC of the square frame).
        confidence: (B, K) in [0, 1]; box_size: (B,) > 0, the person's size in that unit.
        robust_scale: gmof scale as a fraction of the box size.
    Returns:
        (B,) float.
    """
    check_shape("predicted", predicted, (None, None, 2))
    batch_size, count = predicted.shape[:2]
    check_shape("observed", observed, (batch_size, count, 2))
    check_shape("confidence", confidence, (batch_size, count))
    check_shape("box_size", box_size, (batch_size,))
    seen = confidence > 0
    # Unseen keypoints may carry any coordinates (even NaN): replace them so 0 * NaN never appears.
    difference = torch.where(seen[..., None], predicted - observed, torch.zeros_like(predicted))
    squared = (difference / box_size[:, None, None]).pow(2).sum(-1)
    penalty = gmof(squared, robust_scale)
    return (confidence * penalty).sum(-1) / confidence.sum(-1).clamp_min(1e-8)


@lru_cache(maxsize=8)
def bone_matrices(bones=BONES, names: tuple[str, ...] = BODY_KEYPOINT_NAMES) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, K) start and end averaging weights of the bones over the keypoints `names` (cached; do not modify)."""
    start = torch.zeros(len(bones), len(names))
    end = torch.zeros(len(bones), len(names))
    for row, (_, start_names, end_names) in enumerate(bones):
        for name in start_names:
            start[row, names.index(name)] = 1.0 / len(start_names)
        for name in end_names:
            end[row, names.index(name)] = 1.0 / len(end_names)
    return start, end


def bone_direction_loss(
    keypoints: torch.Tensor,
    landmarks: torch.Tensor,
    confidence: torch.Tensor,
    bones=BONES,
) -> torch.Tensor:
    """Cosine distance between the body's bone directions and those of the detector's 3D landmarks.

    For every bone of `bones`, 1 - cos(angle between the two directions), weighted by the bone's
    confidence (the smallest confidence of its keypoints); the weighted mean over the bones.
    Scale-free, so the landmarks' own scale and centring do not matter; it fixes what the 2D
    keypoints leave open: which way each limb points in depth.

    Args:
        keypoints: (B, K, 3) posed body keypoints in the camera axes (lwgan.body.camera: x right,
            y down, z depth), K = len(BODY_KEYPOINT_NAMES).
        landmarks: (B, K, 3) the detector's world landmarks in the same axes.
        confidence: (B, K) in [0, 1].
        bones: a subset of BONES.
    Returns:
        (B,) float in [0, 2].
    """
    check_shape("keypoints", keypoints, (None, len(BODY_KEYPOINT_NAMES), 3))
    check_shape("landmarks", landmarks, tuple(keypoints.shape))
    check_shape("confidence", confidence, tuple(keypoints.shape[:2]))
    start, end = (matrix.to(keypoints) for matrix in bone_matrices(bones))
    member = (start + end) > 0  # (N, K)
    bone_confidence = torch.where(member[None], confidence[:, None, :], torch.ones_like(confidence[:, None, :])).amin(-1)
    seen = torch.where(member[None], confidence[:, None, :] > 0, torch.ones_like(member[None])).all(-1)
    landmarks = torch.where((confidence > 0)[..., None], landmarks, torch.zeros_like(landmarks))
    body_direction = torch.einsum("nk,bkd->bnd", end - start, keypoints)
    landmark_direction = torch.einsum("nk,bkd->bnd", end - start, landmarks)
    cosine = torch.nn.functional.cosine_similarity(body_direction, landmark_direction, dim=-1, eps=1e-8)
    weight = torch.where(seen, bone_confidence, torch.zeros_like(bone_confidence))
    return (weight * (1.0 - cosine)).sum(-1) / weight.sum(-1).clamp_min(1e-8)


@lru_cache(maxsize=8)
def joint_angle_bounds(dtype=torch.float32, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(24, 3) lower and upper bounds of every SMPL joint's axis-angle components (+-inf where free; cached, do not modify).

    Right-side joints take the mirror of the left-side ranges of JOINT_ANGLE_LIMITS: mirroring
    across the body's midplane (x -> -x) maps an axis-angle (x, y, z) to (x, -y, -z).
    """
    low = torch.full((len(SMPL_JOINT_NAMES), 3), -_INF, dtype=dtype, device=device)
    high = torch.full((len(SMPL_JOINT_NAMES), 3), _INF, dtype=dtype, device=device)
    for name, ranges in JOINT_ANGLE_LIMITS.items():
        index = SMPL_JOINT_NAMES.index(name)
        for axis, (lower, upper) in enumerate(ranges):
            low[index, axis], high[index, axis] = lower, upper
        partner = SMPL_MIRROR[index]
        if partner != index:
            for axis, (lower, upper) in enumerate(ranges):
                if axis == 0:
                    low[partner, axis], high[partner, axis] = lower, upper
                else:
                    low[partner, axis], high[partner, axis] = -upper, -lower
    return low, high


def joint_limit_loss(pose: torch.Tensor, low: torch.Tensor | None = None, high: torch.Tensor | None = None) -> torch.Tensor:
    """Squared hinge on axis-angle components outside their anatomical range (JOINT_ANGLE_LIMITS).

    Args:
        pose: (B, 24, 3) SMPL axis-angle; joint 0 (global orientation) is never limited.
        low, high: (24, 3) bounds, joint_angle_bounds() when None.
    Returns:
        (B,) sum over joints and components of (radians outside the range)^2; 0 inside the ranges.
    """
    check_shape("pose", pose, (None, len(SMPL_JOINT_NAMES), 3))
    if low is None or high is None:
        low, high = joint_angle_bounds(pose.dtype, pose.device)
    below = torch.relu(low - pose)
    above = torch.relu(pose - high)
    below = torch.where(torch.isfinite(low), below, torch.zeros_like(below))
    above = torch.where(torch.isfinite(high), above, torch.zeros_like(above))
    return (below.pow(2) + above.pow(2)).flatten(1).sum(-1)


def pose_prior_loss(pose: torch.Tensor) -> torch.Tensor:
    """(B, 24, 3) SMPL pose -> (B,) squared norm of the body joints' axis-angles (joint 0 excluded)."""
    check_shape("pose", pose, (None, len(SMPL_JOINT_NAMES), 3))
    return pose[:, 1:].pow(2).flatten(1).sum(-1)


def shape_prior_loss(shape: torch.Tensor, default_shape: torch.Tensor) -> torch.Tensor:
    """(B, D) shape and (B, D) or (D,) default -> (B,) squared distance between them."""
    check_shape("shape", shape, (None, None))
    return (shape - default_shape).pow(2).sum(-1)


def silhouette_loss(silhouette: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the two silhouettes after a small blur of both.

    (B, H, W) soft silhouette and (B, H, W) target coverage in [0, 1] -> (B,). The blur (5 x 5
    binomial, about one pixel) and the square make the gradient vary smoothly: an L1 difference of
    soft silhouettes of a dense mesh (many sub-pixel faces) has a gradient that changes sign from
    pixel to pixel, and with the weight real photos need (clothes widen the mask) it made the fit
    wander by a pixel or more from run to run.
    """
    check_shape("silhouette", silhouette, (None, None, None))
    check_shape("target", target, tuple(silhouette.shape))
    binomial = silhouette.new_tensor([1.0, 4.0, 6.0, 4.0, 1.0])
    kernel = (binomial[:, None] * binomial[None, :] / binomial.sum() ** 2)[None, None]
    difference = torch.nn.functional.conv2d((silhouette - target)[:, None], kernel, padding=2)
    return difference.pow(2).flatten(1).mean(-1)


@dataclass(frozen=True)
class MaskDistances:
    """What chamfer_silhouette_loss needs of B masks on their (R, R) crops, in crop NDC ([-1, 1] across the crop).

    outside: (B, R, R) distance of each pixel to the mask (0 inside); outline: (B, M, 2) x, y of
    points on the mask's outline; outline_weight: (B, M) 1 for real points, 0 for padding.
    """

    outside: torch.Tensor
    outline: torch.Tensor
    outline_weight: torch.Tensor

    def select(self, rows: torch.Tensor) -> MaskDistances:
        return MaskDistances(self.outside[rows], self.outline[rows], self.outline_weight[rows])


def mask_distances(coverage: torch.Tensor, points: int) -> MaskDistances:
    """(B, R, R) mask coverage in [0, 1] -> MaskDistances with up to `points` outline points per mask (evenly taken along the outline's pixels)."""
    check_shape("coverage", coverage, (None, None, None))
    batch_size, resolution = coverage.shape[0], coverage.shape[-1]
    outside = np.zeros((batch_size, resolution, resolution), np.float32)
    outline = np.zeros((batch_size, points, 2), np.float32)
    weight = np.zeros((batch_size, points), np.float32)
    for index, mask in enumerate((coverage > 0.5).cpu().numpy().astype(np.uint8)):
        if not mask.any():
            continue
        outside[index] = cv2.distanceTransform(1 - mask, cv2.DIST_L2, 5) * (2.0 / resolution)
        rows, columns = np.nonzero(mask - cv2.erode(mask, np.ones((3, 3), np.uint8)))
        chosen = np.linspace(0, len(rows) - 1, min(points, len(rows))).round().astype(int)
        outline[index, : len(chosen)] = np.stack([(2 * columns[chosen] + 1) / resolution - 1, (2 * rows[chosen] + 1) / resolution - 1], axis=-1)
        weight[index, : len(chosen)] = 1.0
    def tensor(array):
        return torch.from_numpy(array).to(coverage)
    return MaskDistances(tensor(outside), tensor(outline), tensor(weight))


NEAREST_VERTEX_FRAMES = 8
"""Frames whose (M, V) outline-to-vertex rankings _nearest_vertex builds at a time (they stay in the CPU's cache)."""


def _nearest_vertex(vertices: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B, M) index of the nearest of the (B, V, 2) vertices to each of the (B, M, 2) points, without gradients.

    The distance to the chosen vertex carries the same gradient as the minimum over all vertices
    would, without a backward through the (B, M, V) distances. The squared distance less the
    point's own squared norm, |v|^2 - 2 p.v, has the same minimum and costs one batched matrix
    product (a sixth less than cdist). NEAREST_VERTEX_FRAMES frames at a time, and their indices
    from min(), not argmin(): on 100 frames of 256 points and 800 vertices (2 CPU threads) that
    takes 12 ms, against 36 ms for all frames at once and 4 times as long with argmin(), with the
    same choices.
    """
    with torch.no_grad():
        squared_norms = vertices.pow(2).sum(-1)[:, None, :]
        nearest = []
        for start in range(0, len(vertices), NEAREST_VERTEX_FRAMES):
            rows = slice(start, start + NEAREST_VERTEX_FRAMES)
            ranking = torch.baddbmm(squared_norms[rows], points[rows], vertices[rows].transpose(1, 2), alpha=-2.0)
            nearest.append(ranking.min(-1).indices)
        return torch.cat(nearest)


def chamfer_silhouette_loss(vertices: torch.Tensor, distances: MaskDistances) -> torch.Tensor:
    """Two-sided chamfer distance between projected vertices and a mask, without rendering.

    The mean squared distance of the vertices to the mask (0 for those inside it) plus the
    weighted mean squared distance of the mask's outline points to their nearest vertex: the first
    pulls the body inside the person, the second makes it reach every part of the outline.

    Args:
        vertices: (B, V, 2) projected vertices in crop NDC; distances: the B masks' MaskDistances.
    Returns:
        (B,) float, in squared crop half-sides.
    """
    check_shape("vertices", vertices, (None, None, 2))
    outside = torch.nn.functional.grid_sample(distances.outside[:, None], vertices[:, None], align_corners=False, padding_mode="border")
    outside_term = outside[:, 0, 0].pow(2).mean(-1)
    nearest = torch.gather(vertices, 1, _nearest_vertex(vertices, distances.outline)[..., None].expand(-1, -1, 2))
    weight = distances.outline_weight
    coverage_term = (weight * (distances.outline - nearest).pow(2).sum(-1)).sum(-1) / weight.sum(-1).clamp_min(1.0)
    return outside_term + coverage_term
