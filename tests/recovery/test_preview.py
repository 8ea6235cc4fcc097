"""Previews of fits: the fitted silhouette against a closed-form rectangle, pixel-exact on images of every shape."""

import numpy as np
import pytest
import torch

from lwgan.recovery.observation import SquareFrame
from lwgan.recovery.preview import fitted_silhouette, overlay_fit


def rectangle(image_size: tuple[int, int], left: float, top: float, right: float, bottom: float):
    """Two triangles covering [left, right] x [top, bottom] in image pixels, for the camera (1, 0, 0) of the image's square frame."""
    corners = np.array([[left, top], [right, top], [right, bottom], [left, bottom]])
    xy = SquareFrame.around(image_size).pixels_to_ndc(corners)
    vertices = torch.tensor(np.concatenate([xy, np.ones((4, 1))], axis=1), dtype=torch.float32)
    return vertices, torch.tensor([[0, 1, 2], [0, 2, 3]]), torch.tensor([1.0, 0.0, 0.0])


def expected_rectangle(image_size, left, top, right, bottom) -> np.ndarray:
    """(H, W) bool: the pixels whose centres (j + 0.5, i + 0.5) lie in the rectangle."""
    rows = np.arange(image_size[0])[:, None] + 0.5
    columns = np.arange(image_size[1])[None, :] + 0.5
    return (columns >= left) & (columns <= right) & (rows >= top) & (rows <= bottom)


@pytest.mark.parametrize("image_size", [(41, 64), (64, 41), (40, 64), (48, 48)])
def test_fitted_silhouette_is_pixel_exact(image_size):
    # Sides differing by an odd count put the image half a pixel off a square render's grid.
    bounds = (5.3, 7.8, 30.6, 33.2)
    vertices, faces, camera = rectangle(image_size, *bounds)
    mask = fitted_silhouette(image_size, vertices, faces, camera)
    assert mask.shape == image_size and np.array_equal(mask, expected_rectangle(image_size, *bounds))


def test_large_images_render_smaller_and_resize():
    image_size, bounds = (301, 480), (40.3, 20.7, 400.2, 260.6)
    vertices, faces, camera = rectangle(image_size, *bounds)
    mask = fitted_silhouette(image_size, vertices, faces, camera, max_render_size=160)
    expected = expected_rectangle(image_size, *bounds)
    assert (mask != expected).sum() < 0.02 * expected.sum()
    overlay = overlay_fit(np.zeros((*image_size, 3), np.uint8), vertices, faces, camera, max_render_size=160)
    assert overlay.shape == (*image_size, 3) and ((overlay.max(axis=-1) > 0) != expected).sum() < 0.02 * expected.sum()
