"""Interpolation of per-vertex, per-face-corner and per-face attributes over rasterized pixels."""

from __future__ import annotations

import torch

from lwgan.checks import check_shape
from lwgan.render.fragments import Fragments


def _batched(attributes: torch.Tensor, batch_size: int, trailing: int) -> torch.Tensor:
    """Add a batch dimension to shared attributes with `trailing` dims after the batch dimension."""
    if attributes.dim() == trailing:
        return attributes.unsqueeze(0).expand(batch_size, *attributes.shape)
    return attributes


def interpolate_corner_attributes(fragments: Fragments, corner_attributes: torch.Tensor) -> torch.Tensor:
    """Barycentric interpolation of values given at each face's three corners.

    Args:
        fragments: rasterization of B meshes with F faces at H x W.
        corner_attributes: (F, 3, C) or (B, F, 3, C).
    Returns:
        (B, H, W, C); zero on background pixels.
    """
    face_index, bary = fragments.face_index, fragments.bary
    batch_size = face_index.shape[0]
    corner_attributes = _batched(corner_attributes, batch_size, 3)
    check_shape("corner_attributes", corner_attributes, (batch_size, None, 3, None))
    batch = torch.arange(batch_size, device=face_index.device).view(-1, 1, 1)
    corners = corner_attributes[batch, face_index.clamp_min(0)]  # (B, H, W, 3, C)
    values = (bary.to(corners.dtype).unsqueeze(-1) * corners).sum(dim=-2)
    return values * fragments.mask.unsqueeze(-1).to(values.dtype)


def interpolate_vertex_attributes(fragments: Fragments, faces: torch.Tensor, vertex_attributes: torch.Tensor) -> torch.Tensor:
    """Barycentric interpolation of per-vertex values.

    Args:
        faces: (F, 3) int64; vertex_attributes: (V, C) or (B, V, C).
    Returns:
        (B, H, W, C); zero on background pixels.
    """
    batch_size = fragments.face_index.shape[0]
    vertex_attributes = _batched(vertex_attributes, batch_size, 2)
    check_shape("vertex_attributes", vertex_attributes, (batch_size, None, None))
    return interpolate_corner_attributes(fragments, vertex_attributes[:, faces])


def lookup_face_attributes(fragments: Fragments, face_attributes: torch.Tensor, background: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Per-face values at each pixel.

    Args:
        face_attributes: (F, C) or (B, F, C).
        background: value of background pixels, a float or a (C,) tensor.
    Returns:
        (B, H, W, C).
    """
    face_index = fragments.face_index
    batch_size = face_index.shape[0]
    face_attributes = _batched(face_attributes, batch_size, 2)
    check_shape("face_attributes", face_attributes, (batch_size, None, None))
    batch = torch.arange(batch_size, device=face_index.device).view(-1, 1, 1)
    values = face_attributes[batch, face_index.clamp_min(0)]
    background = torch.as_tensor(background, dtype=values.dtype, device=values.device)
    return torch.where(fragments.mask.unsqueeze(-1), values, background)
