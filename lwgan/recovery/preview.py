"""Previews of fitted bodies: the shaded mesh drawn over the photo or video frame."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lwgan.body.camera import project
from lwgan.recovery.observation import SquareFrame
from lwgan.render.rasterize import rasterize
from lwgan.render.shading import render_shaded


def overlay_fit(
    image: np.ndarray,
    vertices: torch.Tensor,
    faces: torch.Tensor,
    camera: torch.Tensor,
    opacity: float = 0.65,
    max_render_size: int = 1024,
) -> np.ndarray:
    """The fitted mesh, shaded, blended over the image.

    Args:
        image: (H, W, 3) uint8 RGB.
        vertices: (V, 3) posed body (image orientation, metres); faces: (F, 3);
        camera: (3,) weak perspective in the image's square frame (lwgan.recovery.observation).
    Returns:
        (H, W, 3) uint8.
    """
    height, width = image.shape[:2]
    frame = SquareFrame.around((height, width))
    side = int(frame.side)
    render_size = min(side, max_render_size)
    with torch.no_grad():
        ndc = project(vertices[None].float(), camera[None].float())
        fragments = rasterize(ndc, faces, render_size)
        shaded = render_shaded(fragments, ndc, faces, colour=(0.55, 0.75, 1.0))
        layers = torch.cat([shaded, fragments.mask[:, None].float()], dim=1)
        if render_size != side:
            layers = F.interpolate(layers, size=(side, side), mode="bilinear", align_corners=False)
    left, top = int(round(frame.offset_x)), int(round(frame.offset_y))
    layers = layers[0, :, top : top + height, left : left + width].permute(1, 2, 0).numpy()
    colour, alpha = layers[..., :3] * 255.0, opacity * layers[..., 3:]
    return np.clip(image * (1 - alpha) + colour * alpha + 0.5, 0, 255).astype(np.uint8)
