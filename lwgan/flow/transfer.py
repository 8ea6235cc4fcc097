"""The transformation flow between a source and a target mesh of one topology (LWGAN §3.2).

For every target pixel covered by the target mesh: the face and barycentric position it shows,
and where that same surface point lies in the source image, so that the source can be sampled
there. A point is visible in the source when the source pixel that contains it shows that same
surface: its z-buffer depth equals the point's depth within a tolerance (a nearer surface means
the point is hidden; background or a farther surface means the point falls between the pixels
that show the body, at the silhouette).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lwgan.body.camera import OUTSIDE, ndc_to_pixels
from lwgan.checks import check_image_size, check_shape
from lwgan.flow.conditions import condition_map
from lwgan.render.fragments import Fragments
from lwgan.render.interpolate import interpolate_vertex_attributes
from lwgan.render.rasterize import rasterize


@dataclass(frozen=True)
class TransferFlow:
    """Flow from a source image to a target image.

    grid: (B, H, W, 2) NDC position in the source of each target pixel's surface point; OUTSIDE
        on target background (and on hidden points when computed with only_visible=True).
    target_mask: (B, H, W) bool, the target mesh covers the pixel.
    visible: (B, H, W) bool, the target pixel's surface point is seen in the source.
    source_depth_of_target: (B, H, W) depth of that surface point in the source (inf on background).
    source_condition, target_condition: (B, 3, H, W) condition maps (lwgan.flow.conditions).
    source_fragments, target_fragments: the two rasterizations.
    """

    grid: torch.Tensor
    target_mask: torch.Tensor
    visible: torch.Tensor
    source_depth_of_target: torch.Tensor
    source_condition: torch.Tensor
    target_condition: torch.Tensor
    source_fragments: Fragments
    target_fragments: Fragments


def transfer_flow(
    source_vertices_ndc: torch.Tensor,
    target_vertices_ndc: torch.Tensor,
    faces: torch.Tensor,
    image_size: int | tuple[int, int],
    uv: torch.Tensor,
    face_uv: torch.Tensor,
    depth_tolerance: float = 0.02,
    encoding: str = "uv_seg",
) -> TransferFlow:
    """Compute the flow that samples a source image to show the source surface in the target pose.

    Args:
        source_vertices_ndc, target_vertices_ndc: (B, V, 3) meshes of one topology in NDC with
            depth (lwgan.body.camera.project); target = source shape in the reference pose.
        faces: (F, 3) int64; image_size: S or (H, W), used for source and target alike.
        uv: (T, 2), face_uv: (F, 3): the body's texture coordinates, for the condition maps.
        depth_tolerance: a point counts as visible in the source when the depth shown by the source
            pixel containing it differs from its own by at most this (depth units: metres for
            camera.project).
    """
    check_shape("source_vertices_ndc", source_vertices_ndc, (None, None, 3))
    check_shape("target_vertices_ndc", target_vertices_ndc, source_vertices_ndc.shape)
    height, width = check_image_size("image_size", image_size)
    source_fragments = rasterize(source_vertices_ndc, faces, (height, width))
    target_fragments = rasterize(target_vertices_ndc, faces, (height, width))
    target_mask = target_fragments.mask

    grid, visible, point_depth = locate_in_source(target_fragments, faces, source_vertices_ndc, source_fragments.depth, depth_tolerance)
    return TransferFlow(
        grid=grid,
        target_mask=target_mask,
        visible=visible,
        source_depth_of_target=point_depth,
        source_condition=condition_map(source_fragments, uv, face_uv, encoding),
        target_condition=condition_map(target_fragments, uv, face_uv, encoding),
        source_fragments=source_fragments,
        target_fragments=target_fragments,
    )


def locate_in_source(
    fragments: Fragments,
    faces: torch.Tensor,
    source_vertices_ndc: torch.Tensor,
    source_depth: torch.Tensor,
    depth_tolerance: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where the surface point shown at each pixel of `fragments` lies in the source image.

    Args:
        fragments: (B, H, W) rasterization of any mesh of the source's topology and faces: a
            posed target, or the UV atlas (lwgan.flow.atlas).
        faces: (F, 3); source_vertices_ndc: (B, V, 3); source_depth: (B, Hs, Ws) source z-buffer.
    Returns:
        grid (B, H, W, 2) source NDC position (OUTSIDE where no face), visible (B, H, W) bool,
        point_depth (B, H, W) the point's depth in the source (inf where no face).
    """
    mask = fragments.mask
    in_source = interpolate_vertex_attributes(fragments, faces, source_vertices_ndc)
    grid = torch.where(mask.unsqueeze(-1), in_source[..., :2], torch.full_like(in_source[..., :2], OUTSIDE))
    point_depth = torch.where(mask, in_source[..., 2], torch.full_like(in_source[..., 2], float("inf")))
    visible = mask & ((point_depth - _depth_at(source_depth, grid)).abs() <= depth_tolerance)
    return grid, visible, point_depth


def _depth_at(depth: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Source z-buffer value of the pixel that contains each grid position.

    depth: (B, Hs, Ws) (inf on background); grid: (B, H, W, 2) NDC. Returns (B, H, W); inf where
    the grid is outside the source.
    """
    batch_size, source_height, source_width = depth.shape
    uv = ndc_to_pixels(grid, (source_height, source_width))
    column = torch.floor(uv[..., 0]).long().clamp(0, source_width - 1)
    row = torch.floor(uv[..., 1]).long().clamp(0, source_height - 1)
    batch = torch.arange(batch_size, device=depth.device).view(-1, 1, 1)
    value = depth[batch, row, column]
    inside = (grid.abs() <= 1.0).all(dim=-1)
    return torch.where(inside, value, torch.full_like(value, float("inf")))
