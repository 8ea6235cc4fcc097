"""Argument checks shared by the rasterizers."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lwgan.checks import check_image_size, check_shape


def check_mesh(vertices_ndc: torch.Tensor, faces: torch.Tensor, image_size: int | Sequence[int]) -> tuple[int, int]:
    """Validate rasterizer inputs; return the image size as (H, W).

    vertices_ndc: (B, V, 3) float; faces: (F, 3) integer with F >= 1 and indices in [0, V).
    """
    check_shape("vertices_ndc", vertices_ndc, (None, None, 3))
    if not vertices_ndc.is_floating_point():
        raise TypeError(f"vertices_ndc must be a float tensor, got {vertices_ndc.dtype}")
    check_shape("faces", faces, (None, 3))
    if faces.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"faces must be an int32/int64 tensor, got {faces.dtype}")
    if faces.shape[0] == 0:
        raise ValueError("faces is empty: a mesh needs at least one triangle, got shape (0, 3)")
    vertex_count = vertices_ndc.shape[1]
    low, high = int(faces.min()), int(faces.max())
    if low < 0 or high >= vertex_count:
        raise ValueError(f"faces index vertices out of range: indices span [{low}, {high}] but there are {vertex_count} vertices")
    return check_image_size("image_size", image_size)
