"""Shaded (untextured) mesh renders for previews: a grey body lit from the camera."""

from __future__ import annotations

import torch

from lwgan.render.fragments import Fragments
from lwgan.render.interpolate import lookup_face_attributes


def render_shaded(
    fragments: Fragments,
    vertices_ndc: torch.Tensor,
    faces: torch.Tensor,
    colour: tuple[float, float, float] = (0.75, 0.78, 0.85),
    background: torch.Tensor | None = None,
) -> torch.Tensor:
    """Lambert-shaded render with the light at the camera (either face side lit).

    vertices_ndc: (B, V, 3) as rasterized; faces (F, 3). Returns (B, 3, H, W) in [0, 1], on
    `background` (B, 3, H, W) or black.
    """
    corners = vertices_ndc[:, faces]  # (B, F, 3, 3)
    normal = torch.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0], dim=-1)
    facing = (normal[..., 2].abs() / normal.norm(dim=-1).clamp_min(1e-12)).unsqueeze(-1)  # |cos| to the view axis
    shade = lookup_face_attributes(fragments, 0.25 + 0.75 * facing)  # (B, H, W, 1)
    image = (shade * shade.new_tensor(colour)).permute(0, 3, 1, 2)
    if background is None:
        return image
    mask = fragments.mask.unsqueeze(1).to(image.dtype)
    return image * mask + background * (1 - mask)
