"""Warping images and feature maps along a sampling grid, and resizing grids for feature maps."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lwgan.body.camera import OUTSIDE
from lwgan.checks import check_shape


def warp(image: torch.Tensor, grid: torch.Tensor, mask: torch.Tensor | None = None, mode: str = "bilinear") -> torch.Tensor:
    """Sample `image` at `grid`: output pixel p takes image(grid[p]); zeros where grid is OUTSIDE.

    With `mask`, sampling is normalized over the masked source pixels only (premultiplied
    alpha): warp(image * mask) / warp(mask), so a body warped near its silhouette does not blend
    in the source background; output pixels that read no masked pixel are zero.

    Args:
        image: (B, C, Hs, Ws) float.
        grid: (B, H, W, 2) NDC (x, y) positions in the image (align_corners=False convention).
        mask: (B, Hs, Ws) bool or float in [0, 1], optional.
    Returns:
        (B, C, H, W).
    """
    check_shape("image", image, (None, None, None, None))
    check_shape("grid", grid, (image.shape[0], None, None, 2))
    grid = grid.to(image.dtype)
    if mask is None:
        return F.grid_sample(image, grid, mode=mode, padding_mode="zeros", align_corners=False)
    check_shape("mask", mask, (image.shape[0], *image.shape[-2:]))
    weight = mask.unsqueeze(1).to(image.dtype)
    sampled = F.grid_sample(torch.cat([image * weight, weight], dim=1), grid, mode=mode, padding_mode="zeros", align_corners=False)
    coverage = sampled[:, -1:]
    return torch.where(coverage > 1e-4, sampled[:, :-1] / coverage.clamp_min(1e-4), torch.zeros_like(sampled[:, :-1]))


def lies_within(mask: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """(B, H, W) bool: every pixel that bilinear sampling at `grid` (B, H, W, 2) reads lies on `mask` (B, Hs, Ws) bool."""
    check_shape("mask", mask, (grid.shape[0], None, None))
    return warp(mask.unsqueeze(1).to(grid.dtype), grid)[:, 0] > 0.999


def grid_valid(grid: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 2) grid -> (B, H, W) bool, True where the grid points into the source image."""
    return (grid.abs() <= 1.0).all(dim=-1)


def resize_grid(grid: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a sampling grid to a feature map's size, averaging only valid positions.

    A plain bilinear resize would mix OUTSIDE (-2) with real positions and yield positions inside
    the image that nothing maps to; here an output cell is OUTSIDE unless at least half of the
    area it covers is valid, and otherwise holds the mean of the valid positions.

    Args:
        grid: (B, H, W, 2); size: (h, w).
    Returns:
        (B, h, w, 2).
    """
    check_shape("grid", grid, (None, None, None, 2))
    valid = grid_valid(grid).unsqueeze(1).to(grid.dtype)  # (B, 1, H, W)
    positions = grid.permute(0, 3, 1, 2) * valid
    valid_fraction = F.interpolate(valid, size=size, mode="area")
    mean_position = F.interpolate(positions, size=size, mode="area") / valid_fraction.clamp_min(1e-8)
    resized = torch.where(valid_fraction >= 0.5, mean_position, torch.full_like(mean_position, OUTSIDE))
    return resized.permute(0, 2, 3, 1)
