"""Previews of fitted bodies: the shaded mesh drawn over the photo or video frame, and its silhouette at the image's size."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from lwgan.body.camera import project
from lwgan.recovery.observation import SquareFrame, square_to_image_ndc
from lwgan.render.fragments import Fragments
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

    def shaded_and_mask(fragments, ndc):
        return torch.cat([render_shaded(fragments, ndc, faces, colour=(0.55, 0.75, 1.0)), fragments.mask[:, None].float()], dim=1)

    layers = _render_over_image(image.shape[:2], vertices[None], faces, camera[None], max_render_size, shaded_and_mask)[0]
    colour, alpha = layers[..., :3] * 255.0, opacity * layers[..., 3:]
    return np.clip(image * (1 - alpha) + colour * alpha + 0.5, 0, 255).astype(np.uint8)


def fitted_silhouette(
    image_size: tuple[int, int], vertices: torch.Tensor, faces: torch.Tensor, camera: torch.Tensor, max_render_size: int = 1024
) -> np.ndarray:
    """(H, W) bool: the pixels of an (H, W) image that the fitted mesh covers (arguments as overlay_fit's).

    Given (B, V, 3) vertices and (B, 3) cameras, (B, H, W): B meshes over images of one size, in one
    rasterization. Exact (rasterize()'s coverage of each pixel centre) for images up to
    max_render_size pixels a side; larger ones are rendered smaller and the mask resized bilinearly
    and thresholded at one half.
    """
    batched = vertices.dim() == 3
    if not batched:
        vertices, camera = vertices[None], camera[None]
    coverage = _render_over_image(image_size, vertices, faces, camera, max_render_size, lambda fragments, ndc: fragments.mask[:, None].float())
    masks = coverage[..., 0] >= 0.5
    return masks if batched else masks[0]


def _render_over_image(
    image_size: tuple[int, int],
    vertices: torch.Tensor,
    faces: torch.Tensor,
    camera: torch.Tensor,
    max_render_size: int,
    paint: Callable[[Fragments, torch.Tensor], torch.Tensor],
) -> np.ndarray:
    """Rasterize B (B, V, 3) meshes with (B, 3) cameras over (H, W) images: paint's layers as (B, H, W, C) float numpy.

    The camera refers to the image's square frame, but the mesh is rasterized in the image's own
    frame: a cut from a square render would sit half a pixel off wherever the sides differ by an
    odd count. paint(fragments, vertices_ndc) gives (B, C, h, w) layers, vertices_ndc in the square
    frame's NDC (x and y to one scale, for normals); (h, w) is (H, W) shrunk to at most
    max_render_size pixels a side, the layers then resized bilinearly to (H, W).
    """
    height, width = image_size
    scale = min(1.0, max_render_size / max(height, width))
    render_size = (max(1, round(height * scale)), max(1, round(width * scale)))
    with torch.no_grad():
        square_ndc = project(vertices.float(), camera.float())
        image_ndc = square_to_image_ndc(square_ndc, SquareFrame.around(image_size), image_size)
        layers = paint(rasterize(image_ndc, faces, render_size), square_ndc)
        if render_size != (height, width):
            layers = F.interpolate(layers, size=(height, width), mode="bilinear", align_corners=False)
    return layers.permute(0, 2, 3, 1).numpy()
