"""The two float ranges of images and the one conversion each way: [0, 1] for source banks, texture warping and frames on their way out; [-1, 1] inside the networks and the datasets that feed them."""

from __future__ import annotations

import torch


def unit_to_signed_range(images: torch.Tensor) -> torch.Tensor:
    """Images (any shape) in [0, 1] -> the same in [-1, 1]: 2 x - 1."""
    return images * 2 - 1


def signed_to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """Images (any shape) in [-1, 1] -> the same in [0, 1]: (x + 1) / 2."""
    return (images + 1) / 2
