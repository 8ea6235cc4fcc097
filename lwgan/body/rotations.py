"""Rotation conversions (axis-angle, matrices, 6D, Euler), thin shapes-checked wrappers over roma."""

from __future__ import annotations

import roma
import torch


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle (radians, Rodrigues vector) -> (..., 3, 3) rotation matrices."""
    if axis_angle.shape[-1] != 3:
        raise ValueError(f"axis_angle must have shape (..., 3), got {tuple(axis_angle.shape)}")
    return roma.rotvec_to_rotmat(axis_angle)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle with angle in [0, pi]."""
    if matrix.shape[-2:] != (3, 3):
        raise ValueError(f"matrix must have shape (..., 3, 3), got {tuple(matrix.shape)}")
    return roma.rotmat_to_rotvec(matrix)


def matrix_to_rotation_6d(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6): the first two columns, as in Zhou et al. (CVPR 2019), column-major."""
    if matrix.shape[-2:] != (3, 3):
        raise ValueError(f"matrix must have shape (..., 3, 3), got {tuple(matrix.shape)}")
    return matrix[..., :, :2].transpose(-1, -2).reshape(*matrix.shape[:-2], 6)


def rotation_6d_to_matrix(rotation_6d: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt on the two stored columns (inverse of matrix_to_rotation_6d)."""
    if rotation_6d.shape[-1] != 6:
        raise ValueError(f"rotation_6d must have shape (..., 6), got {tuple(rotation_6d.shape)}")
    columns = rotation_6d.reshape(*rotation_6d.shape[:-1], 2, 3).transpose(-1, -2)
    return roma.special_gramschmidt(columns)



def slerp_matrices(start: torch.Tensor, end: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of (..., 3, 3) rotations; weight (...) in [0, 1] (0 gives start)."""
    q0 = roma.rotmat_to_unitquat(start)
    q1 = roma.rotmat_to_unitquat(end)
    dot = (q0 * q1).sum(-1, keepdim=True)
    q1 = torch.where(dot < 0, -q1, q1)  # shortest arc
    cos = dot.abs().clamp(max=1.0)
    angle = torch.acos(cos)
    sin = torch.sin(angle)
    w = weight[..., None].to(q0.dtype)
    small = sin < 1e-6
    safe_sin = torch.where(small, torch.ones_like(sin), sin)
    a = torch.where(small, 1 - w, torch.sin((1 - w) * angle) / safe_sin)
    b = torch.where(small, w, torch.sin(w * angle) / safe_sin)
    quaternion = a * q0 + b * q1
    return roma.unitquat_to_rotmat(quaternion / quaternion.norm(dim=-1, keepdim=True))
