"""Textured renders: UV texture lookup over rasterized fragments, for previews and synthetic data."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lwgan.checks import check_shape
from lwgan.render.fragments import Fragments
from lwgan.render.interpolate import interpolate_corner_attributes


def uv_to_grid(uv: torch.Tensor) -> torch.Tensor:
    """(..., 2) texture coordinates (u right, v up, in [0, 1]) -> grid_sample positions (x, y down)."""
    return torch.stack([2.0 * uv[..., 0] - 1.0, 1.0 - 2.0 * uv[..., 1]], dim=-1)


def render_texture(
    fragments: Fragments,
    uv: torch.Tensor,
    face_uv: torch.Tensor,
    texture: torch.Tensor,
    background: torch.Tensor | None = None,
) -> torch.Tensor:
    """Colour every covered pixel from a UV texture (bilinear, align_corners=False).

    Args:
        fragments: rasterization of B meshes at H x W.
        uv: (T, 2) texture coordinates in [0, 1], v up; face_uv: (F, 3) int64 index into uv.
        texture: (B, C, Ht, Wt) float; row 0 is the top of the texture (v = 1).
        background: (B, C, H, W) image behind the body, zeros when None.
    Returns:
        (B, C, H, W) image.
    """
    batch_size = fragments.face_index.shape[0]
    check_shape("texture", texture, (batch_size, None, None, None))
    pixel_uv = interpolate_corner_attributes(fragments, uv[face_uv])  # (B, H, W, 2)
    colour = F.grid_sample(texture, uv_to_grid(pixel_uv).to(texture.dtype), mode="bilinear", align_corners=False)
    mask = fragments.mask.unsqueeze(1).to(colour.dtype)
    if background is None:
        return colour * mask
    check_shape("background", background, (batch_size, texture.shape[1], *fragments.image_size))
    return colour * mask + background * (1.0 - mask)


def rasterize_uv_atlas(uv: torch.Tensor, face_uv: torch.Tensor, size: int) -> Fragments:
    """Rasterize the UV atlas itself: pixel (i, j) of the result is texel (i, j) of a size x size texture.

    uv: (T, 2) in [0, 1], v up; face_uv: (F, 3). Returns Fragments of batch 1 whose face_index
    names the body face at each texel and whose bary locates the texel on that face.
    """
    from lwgan.render.rasterize import rasterize

    atlas = torch.stack([2.0 * uv[:, 0] - 1.0, 1.0 - 2.0 * uv[:, 1], torch.zeros_like(uv[:, 0])], dim=-1)
    return rasterize(atlas[None].float(), face_uv, size)

