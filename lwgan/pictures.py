"""Picture grids of image batches (training samples, evaluation reports)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lwgan.checks import check_shape
from lwgan.image_ranges import signed_to_unit_range


def image_grid(columns: Sequence[torch.Tensor], rows: int | None = None) -> torch.Tensor:
    """Side-by-side picture of image batches: row i shows item i of every column.

    Args:
        columns: K tensors (B, 3, H, W) in [-1, 1] (e.g. source | target | warped | generated).
        rows: at most this many items (all B when None).
    Returns:
        (3, rows * H, K * W) float in [0, 1] (lwgan.io.media.to_uint8 writes it).
    """
    if not columns:
        raise ValueError("image_grid needs at least one column")
    first = columns[0]
    for index, column in enumerate(columns):
        check_shape(f"columns[{index}]", column, (first.shape[0], 3, first.shape[2], first.shape[3]))
    count = first.shape[0] if rows is None else min(rows, first.shape[0])
    picture = torch.cat([column[:count].detach().float().cpu() for column in columns], dim=3)  # (n, 3, H, K W)
    picture = torch.cat(list(picture), dim=1)  # (3, n H, K W)
    return signed_to_unit_range(picture).clamp(0.0, 1.0)
