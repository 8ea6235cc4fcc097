"""Soft, differentiable silhouettes for fitting (SoftRas, Liu et al. ICCV 2019, eq. 1 and 3)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from lwgan.render.candidates import Candidates, barycentric, enumerate_candidates
from lwgan.render.checks import check_mesh


def soft_silhouette(
    vertices_ndc: torch.Tensor,
    faces: torch.Tensor,
    image_size: int | Sequence[int],
    sigma: float = 1.0,
    cutoff: float = 1e-4,
) -> torch.Tensor:
    """Probability that each pixel is covered by the mesh, differentiable w.r.t. the vertices.

    Each face covers pixel i with D = sigmoid(sign * d^2 / sigma^2), d the distance in pixels from
    the pixel centre to the face (sign +1 inside, -1 outside); the silhouette is
    1 - prod over faces (1 - D). Pairs with D < cutoff are skipped. As sigma -> 0 this tends to the
    hard mask of rasterize().

    Args:
        vertices_ndc: (B, V, 3); faces: (F, 3) int64; sigma: softness in pixels.
    Returns:
        (B, H, W) float in [0, 1].
    """
    height, width = check_mesh(vertices_ndc, faces, image_size)
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    margin = sigma * math.sqrt(math.log(1.0 / cutoff))
    candidates = enumerate_candidates(vertices_ndc, faces.long(), height, width, margin=margin)
    inside = (barycentric(candidates) >= 0).all(dim=1)
    distance_squared = _squared_distance_to_triangle(candidates)
    signed = torch.where(inside, distance_squared, -distance_squared) / sigma**2
    # log(1 - sigmoid(t)) = -softplus(t): stable for every t.
    log_uncovered = -torch.nn.functional.softplus(signed)
    batch_size = vertices_ndc.shape[0]
    total = log_uncovered.new_zeros(batch_size * height * width)
    total = total.index_add(0, candidates.pixel, log_uncovered)
    return (1.0 - torch.exp(total)).view(batch_size, height, width)


def _squared_distance_to_triangle(candidates: Candidates) -> torch.Tensor:
    """(N,) squared distance in pixels from each candidate's pixel centre to its face's edges."""
    start = candidates.corners  # corners relative to the pixel centre, so the pixel is the origin
    edge = start.roll(-1, dims=1) - start
    along = (-(start * edge).sum(-1) / (edge * edge).sum(-1).clamp_min(1e-12)).clamp(0.0, 1.0)
    closest = start + along.unsqueeze(-1) * edge
    return (closest * closest).sum(-1).amin(dim=1)
