"""Fragments: what a rasterizer says about every pixel (which face, where on it, how deep)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Fragments:
    """Per-pixel rasterization result for a batch of meshes.

    face_index: (B, H, W) int64, index into the mesh's faces, -1 on background.
    bary: (B, H, W, 3) float barycentric weights of the face's three corners (0 on background).
    depth: (B, H, W) float interpolated depth (NDC z; smaller is nearer), +inf on background.
    """

    face_index: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """(B, H, W) bool, True where a face covers the pixel."""
        return self.face_index >= 0

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.face_index.shape[1:3])

    def face_values(self, values: torch.Tensor, background: int = -1) -> torch.Tensor:
        """(B, H, W): each pixel's entry of (F,) per-face `values` (e.g. body parts), `background` where no face covers it."""
        return torch.where(self.mask, values[self.face_index.clamp_min(0)], background)
