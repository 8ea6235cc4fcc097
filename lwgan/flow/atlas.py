"""Unwrapping a source image into the body's UV atlas, so points hidden in the source get a colour."""

from __future__ import annotations

import torch

from lwgan.checks import check_shape
from lwgan.flow.transfer import locate_in_source
from lwgan.flow.warp import lies_within, warp
from lwgan.render.fragments import Fragments
from lwgan.render.inpaint import fill_holes
from lwgan.render.interpolate import lookup_face_attributes
from lwgan.render.rasterize import rasterize
from lwgan.render.texture import rasterize_uv_atlas


def unwrap_to_atlas(
    source_image: torch.Tensor,
    source_vertices_ndc: torch.Tensor,
    faces: torch.Tensor,
    uv: torch.Tensor,
    face_uv: torch.Tensor,
    size: int = 512,
    depth_tolerance: float = 0.02,
    trusted: torch.Tensor | None = None,
    facing: torch.Tensor | None = None,
    min_facing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample the source image into a UV texture; texels the source does not see are filled smoothly.

    Args:
        source_image: (B, C, H, W); source_vertices_ndc: (B, V, 3) the source mesh as rasterized;
        faces (F, 3), uv (T, 2), face_uv (F, 3): the body's tables; size: texture side.
        trusted: (B, H, W) bool, the source pixels that may colour the surface (None: all the
            mesh covers); a texel is seen only where it lies on trusted pixels, and samples only them.
        facing: (B, F) how squarely each face faces each source's camera (e.g. the cosines of
            lwgan.flow.texture_warping.facing_cosines), or None; a texel of a face below
            `min_facing` is not seen.
    Returns:
        texture (B, C, size, size) for lwgan.render.render_texture, and seen (B, size, size) bool:
        the texels taken from the source (the rest are filled by push-pull).
    """
    check_shape("source_image", source_image, (source_vertices_ndc.shape[0], None, None, None))
    batch_size = source_image.shape[0]
    atlas = rasterize_uv_atlas(uv, face_uv, size)
    atlas = Fragments(
        face_index=atlas.face_index.expand(batch_size, -1, -1),
        bary=atlas.bary.expand(batch_size, -1, -1, -1),
        depth=atlas.depth.expand(batch_size, -1, -1),
    )
    source_depth = rasterize(source_vertices_ndc, faces, source_image.shape[-2:]).depth
    grid, visible, _ = locate_in_source(atlas, faces, source_vertices_ndc, source_depth, depth_tolerance)
    if trusted is None:
        texture = warp(source_image, grid)
    else:
        check_shape("trusted", trusted, (batch_size, *source_image.shape[-2:]))
        texture = warp(source_image, grid, mask=trusted)
        visible = visible & lies_within(trusted, grid)
    if facing is not None:
        check_shape("facing", facing, (batch_size, faces.shape[0]))
        visible = visible & (lookup_face_attributes(atlas, facing[..., None])[..., 0] >= min_facing)
    return fill_holes(texture, visible), visible
