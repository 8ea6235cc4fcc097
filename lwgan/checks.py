"""Boundary checks for tensor arguments, with errors that show the actual shape."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def check_shape(name: str, tensor: torch.Tensor, expected: Sequence[int | None]) -> None:
    """Raise ValueError unless `tensor` has len(expected) dims matching `expected` (None = any size).

    Example: check_shape("vertices", v, (None, None, 3)) accepts (B, V, 3).
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    shape = tuple(tensor.shape)
    matches = len(shape) == len(expected) and all(e is None or e == s for s, e in zip(shape, expected))
    if not matches:
        wanted = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise ValueError(f"{name} must have shape {wanted}, got {shape}")


def check_image_size(name: str, image_size: int | Sequence[int]) -> tuple[int, int]:
    """Normalise an image size given as S or (H, W) to (H, W); both must be positive integers."""
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) for s in size):
        raise ValueError(f"{name} must be an int or a pair (H, W) of ints, got {image_size!r}")
    if min(size) <= 0:
        raise ValueError(f"{name} must be positive, got {image_size!r}")
    return size
