"""Brute-force rasterizer: every pixel against every face, in float64. Slow; the reference for tests.

Deliberately shares no code with lwgan.render.rasterize beyond the argument checks: it works in
NDC rather than pixel units, on pixel tiles, and picks the nearest face with a plain min/argmin.
The only shortcut is to skip faces whose bounding box misses a tile (widened by a pixel).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lwgan.render.checks import check_mesh
from lwgan.render.fragments import Fragments


def rasterize_reference(
    vertices_ndc: torch.Tensor,
    faces: torch.Tensor,
    image_size: int | Sequence[int],
    tile: int = 16,
) -> Fragments:
    """Same contract as lwgan.render.rasterize (see there); bary and depth come back in float64."""
    height, width = check_mesh(vertices_ndc, faces, image_size)
    batch_size = vertices_ndc.shape[0]
    face_index = torch.full((batch_size, height, width), -1, dtype=torch.int64)
    bary = torch.zeros(batch_size, height, width, 3, dtype=torch.float64)
    depth = torch.full((batch_size, height, width), float("inf"), dtype=torch.float64)
    column_centres = (2 * torch.arange(width, dtype=torch.float64) + 1) / width - 1
    row_centres = (2 * torch.arange(height, dtype=torch.float64) + 1) / height - 1
    pixel_width, pixel_height = 2.0 / width, 2.0 / height
    for batch in range(batch_size):
        corners = vertices_ndc[batch].detach().cpu().double()[faces.long().cpu()]  # (F, 3, 3)
        low, high = corners[..., :2].amin(dim=1), corners[..., :2].amax(dim=1)
        for top in range(0, height, tile):
            ys = row_centres[top : top + tile]
            for left in range(0, width, tile):
                xs = column_centres[left : left + tile]
                near = (
                    (high[:, 0] >= xs[0] - pixel_width) & (low[:, 0] <= xs[-1] + pixel_width)
                    & (high[:, 1] >= ys[0] - pixel_height) & (low[:, 1] <= ys[-1] + pixel_height)
                ).nonzero().squeeze(1)
                if len(near) == 0:
                    continue
                best_face, best_bary, best_depth = _tile(corners[near], xs, ys)
                rows, columns = slice(top, top + len(ys)), slice(left, left + len(xs))
                covered = best_face >= 0
                face_index[batch, rows, columns] = torch.where(covered, near[best_face.clamp_min(0)], -1)
                bary[batch, rows, columns] = best_bary
                depth[batch, rows, columns] = best_depth
    return Fragments(face_index=face_index, bary=bary, depth=depth)


def _tile(corners: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor):
    """corners (K, 3, 3) float64 of the faces near a tile of len(ys) x len(xs) pixel centres.

    Returns (face (h, w) int64 index into the K faces or -1, bary (h, w, 3), depth (h, w)).
    """
    point_y, point_x = torch.meshgrid(ys, xs, indexing="ij")
    px, py = point_x.reshape(1, -1), point_y.reshape(1, -1)  # (1, P)
    (x0, y0), (x1, y1), (x2, y2) = [(corners[:, k, 0:1], corners[:, k, 1:2]) for k in range(3)]
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)  # (K, 1)
    weight0 = ((x1 - px) * (y2 - py) - (x2 - px) * (y1 - py)) / area
    weight1 = ((x2 - px) * (y0 - py) - (x0 - px) * (y2 - py)) / area
    weight2 = ((x0 - px) * (y1 - py) - (x1 - px) * (y0 - py)) / area
    weights = torch.stack([weight0, weight1, weight2], dim=-1)  # (K, P, 3)
    inside = (weights >= 0).all(dim=-1) & (area != 0)
    depth = (weights * corners[:, None, :, 2]).sum(dim=-1)
    depth = torch.where(inside, depth, torch.full_like(depth, float("inf")))
    # Nearest face; among equally near faces the smallest index (argmin returns the first).
    best_depth, best = depth.min(dim=0)
    first_best = (depth == best_depth[None]).float().argmax(dim=0)
    covered = torch.isfinite(best_depth)
    best = torch.where(covered, first_best, -1)
    best_bary = weights[best.clamp_min(0), torch.arange(weights.shape[1])]
    best_bary = torch.where(covered[:, None], best_bary, torch.zeros_like(best_bary))
    shape = (len(ys), len(xs))
    return best.view(shape), best_bary.view(*shape, 3), best_depth.view(shape)
