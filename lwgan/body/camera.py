"""Weak-perspective camera: the one home of the project's coordinate convention.

Convention:
    Body frame: SMPL's. Metres, y up, the body faces +z, x is the subject's left. Pose is SMPL-24
        axis-angle (B, 24, 3); joint 0 is the global orientation.
    Camera: weak perspective (s, tx, ty) as in HMR and iPER's pose_shape.pkl:
        x_ndc = s * (X + tx),  y_ndc = s * (Y + ty),  depth = Z (smaller is nearer).
        No axis is flipped here: the global orientation carries the flip. HMR's upright mean
        orientation (pi, 0, 0) turns y down and the face towards -z, i.e. towards the camera.
    NDC: x and y in [-1, 1] span the full image; x to the right, y DOWN.
    Pixels: pixel (i, j) = (row, column) has its centre at x = (2j + 1)/W - 1, y = (2i + 1)/H - 1.
        Continuous pixel coordinates (u, v) = ((x + 1) W / 2, (y + 1) H / 2): pixel (i, j) covers
        [j, j + 1) x [i, i + 1), as in COCO annotations.
    Sampling: every grid_sample uses align_corners=False, so an NDC position is directly a grid
        value. A grid value outside [-1, 1] (we use OUTSIDE = -2) means "nothing to sample".
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lwgan.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from lwgan.checks import check_shape

OUTSIDE = -2.0
"""Grid value for "nothing to sample": grid_sample with zero padding returns 0 there."""

UPRIGHT_ORIENTATION = (math.pi, 0.0, 0.0)
"""Axis-angle global orientation that shows a standing body upright in the y-down image."""


def project(points: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    """Weak-perspective projection.

    Args:
        points: (B, N, 3) positions in the (globally oriented) body frame, metres.
        camera: (B, 3) weak-perspective (s, tx, ty).
    Returns:
        (B, N, 3): x_ndc, y_ndc and depth Z.
    """
    check_shape("points", points, (None, None, 3))
    check_shape("camera", camera, (points.shape[0], 3))
    scale = camera[:, None, 0:1]
    translation = camera[:, None, 1:3]
    xy = scale * (points[..., :2] + translation)
    return torch.cat([xy, points[..., 2:3]], dim=-1)



def ndc_to_pixels(xy: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """(..., 2) NDC x, y -> (..., 2) continuous pixel coordinates u (column), v (row)."""
    height, width = image_size
    scale = xy.new_tensor([width / 2.0, height / 2.0])
    return (xy + 1.0) * scale


def pixels_to_ndc(uv: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """(..., 2) continuous pixel coordinates u, v -> (..., 2) NDC x, y (inverse of ndc_to_pixels)."""
    height, width = image_size
    scale = uv.new_tensor([2.0 / width, 2.0 / height])
    return uv * scale - 1.0


def pixel_centers(image_size: tuple[int, int], device=None, dtype=torch.float32) -> torch.Tensor:
    """(H, W, 2) NDC (x, y) of every pixel centre: the identity sampling grid."""
    height, width = image_size
    x = (2 * torch.arange(width, device=device, dtype=dtype) + 1) / width - 1
    y = (2 * torch.arange(height, device=device, dtype=dtype) + 1) / height - 1
    grid_y, grid_x = torch.meshgrid(y, x, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1)


def camera_to_fit(points: torch.Tensor, fill: float = 0.8) -> torch.Tensor:
    """(B, 3) camera that centres (B, N, 3) points and makes their larger x/y extent span `fill` of NDC."""
    check_shape("points", points, (None, None, 3))
    low = points[..., :2].amin(dim=1)
    high = points[..., :2].amax(dim=1)
    extent = (high - low).amax(dim=-1).clamp_min(1e-8)
    scale = 2.0 * fill / extent
    translation = -(low + high) / 2.0
    return torch.cat([scale[:, None], translation], dim=-1)


def to_image_frame(pose: torch.Tensor, translation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Stand y-up body-frame poses (B, 24, 3) and root translations (B, 3) upright in the y-down image.

    The upright flip UPRIGHT_ORIENTATION goes in front of each global orientation and turns the
    translations; motion files (BVH, SMPL npz) are in the y-up frame, fitted poses already upright.
    """
    upright = axis_angle_to_matrix(torch.tensor(UPRIGHT_ORIENTATION, dtype=pose.dtype))
    pose = pose.clone()
    pose[:, 0] = matrix_to_axis_angle(upright @ axis_angle_to_matrix(pose[:, 0]))
    return pose, translation @ upright.T


def heading_of(orientation: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) image-oriented global orientations -> (...) headings in radians.

    The heading is the rotation about the body's vertical axis before the upright flip: 0 faces
    the camera, pi shows the back, +pi/2 faces the image's right (the subject's right side
    towards the camera).
    """
    upright = axis_angle_to_matrix(torch.tensor(UPRIGHT_ORIENTATION, dtype=orientation.dtype, device=orientation.device))
    forward = (upright.T @ orientation)[..., :, 2]  # where the body's front (+z) points, in the y-up frame
    return torch.atan2(forward[..., 0], forward[..., 2])


def root_headings(roots: np.ndarray) -> np.ndarray:
    """(...,) headings in radians (heading_of) of (..., 3) image-oriented axis-angle global orientations, such as poses' roots (pose[:, 0]); float64."""
    return heading_of(axis_angle_to_matrix(torch.from_numpy(np.asarray(roots, dtype=np.float64)))).numpy()


def angle_between(angles: np.ndarray, others: np.ndarray | float) -> np.ndarray:
    """The unsigned difference of angles (radians, broadcast), wrapped into [0, pi]."""
    return np.abs(np.angle(np.exp(1j * (np.asarray(angles) - np.asarray(others)))))


def with_heading(orientation: torch.Tensor, heading: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) image-oriented global orientations turned about the vertical to (...) headings (radians); tilts are kept."""
    turn = heading - heading_of(orientation)
    about_vertical = axis_angle_to_matrix(torch.stack([torch.zeros_like(turn), turn, torch.zeros_like(turn)], dim=-1))
    upright = axis_angle_to_matrix(torch.tensor(UPRIGHT_ORIENTATION, dtype=orientation.dtype, device=orientation.device))
    return upright @ about_vertical @ upright.T @ orientation


def heading_of_left_direction(left: torch.Tensor) -> torch.Tensor:
    """(..., 3) the subject's left direction (e.g. right hip to left hip) in camera axes -> (...) heading in radians.

    A body at heading h has its left side along (cos h, 0, sin h) in camera axes (x right, y
    down, z away): facing the camera (h = 0) its left is the image's right.
    """
    return torch.atan2(left[..., 2], left[..., 0])


def orient_for_image(pose: torch.Tensor, yaw: float | torch.Tensor = 0.0) -> torch.Tensor:
    """Stand a y-up pose (e.g. from bvh_to_smpl) upright in the image, turned by `yaw` about the vertical.

    The root's heading (its rotation about the vertical axis, e.g. a walker's direction in the
    capture room) is replaced by `yaw`; its tilt is kept. yaw 0 faces the camera, pi shows the back,
    +pi/2 faces the image's right (the subject's right side towards the camera). Then the upright
    flip UPRIGHT_ORIENTATION applies.

    Args:
        pose: (..., 24, 3) SMPL axis-angle in the y-up body frame; yaw: radians, scalar or (...).
    Returns:
        (..., 24, 3) pose in the image orientation (as FitResult.pose).
    """
    if pose.shape[-2:] != (24, 3):
        raise ValueError(f"pose must have shape (..., 24, 3), got {tuple(pose.shape)}")
    root = axis_angle_to_matrix(pose[..., 0, :])
    forward = root[..., :, 2]  # where the body's +z (its front) points
    heading = torch.atan2(forward[..., 0], forward[..., 2])
    yaw = torch.as_tensor(yaw, dtype=pose.dtype, device=pose.device).expand_as(heading)
    turn = _rotation_about_y(yaw - heading)
    upright = axis_angle_to_matrix(torch.tensor(UPRIGHT_ORIENTATION, dtype=pose.dtype, device=pose.device))
    oriented = pose.clone()
    oriented[..., 0, :] = matrix_to_axis_angle(upright @ turn @ root)
    return oriented


def _rotation_about_y(angle: torch.Tensor) -> torch.Tensor:
    """(...) radians -> (..., 3, 3) rotations about the y axis."""
    axis_angle = torch.stack([torch.zeros_like(angle), angle, torch.zeros_like(angle)], dim=-1)
    return axis_angle_to_matrix(axis_angle)


def yaw_of(pose: np.ndarray | torch.Tensor) -> float:
    """Yaw (radians, as orient_for_image's `yaw` and heading_of) of an image-oriented pose's (24, 3) global orientation."""
    pose = torch.as_tensor(np.asarray(pose), dtype=torch.float32)
    upright = axis_angle_to_matrix(torch.tensor(UPRIGHT_ORIENTATION))
    body_root = upright.T @ axis_angle_to_matrix(pose[0])
    forward = body_root[:, 2]
    return math.atan2(float(forward[0]), float(forward[2]))
