"""The weak-perspective camera, pixel conventions and headings against closed forms."""

import pytest
import torch

from lwgan.body.camera import (
    camera_to_fit,
    heading_of,
    heading_of_left_direction,
    ndc_to_pixels,
    orient_for_image,
    pixel_centers,
    pixels_to_ndc,
    project,
    with_heading,
    yaw_of,
)
from lwgan.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle


def test_project_is_the_weak_perspective_formula():
    points = torch.tensor([[[0.1, -0.2, 0.3], [1.0, 2.0, -3.0]]])
    camera = torch.tensor([[2.0, 0.5, -0.25]])
    projected = project(points, camera)
    expected = torch.tensor([[[2.0 * 0.6, 2.0 * -0.45, 0.3], [2.0 * 1.5, 2.0 * 1.75, -3.0]]])
    assert torch.allclose(projected, expected)


def test_pixel_centres_and_pixel_coordinates():
    centres = pixel_centers((4, 8))
    assert centres.shape == (4, 8, 2)
    assert torch.allclose(centres[0, 0], torch.tensor([-1 + 1 / 8, -1 + 1 / 4]))
    assert torch.allclose(centres[3, 7], torch.tensor([1 - 1 / 8, 1 - 1 / 4]))
    # Continuous pixel coordinates: the centre of pixel (i, j) is (j + 0.5, i + 0.5).
    assert torch.allclose(ndc_to_pixels(centres[2, 5], (4, 8)), torch.tensor([5.5, 2.5]))
    assert torch.allclose(pixels_to_ndc(ndc_to_pixels(centres, (4, 8)), (4, 8)), centres)


def test_camera_to_fit_centres_and_scales():
    points = torch.tensor([[[-1.0, 0.0, 0.0], [3.0, 1.0, 0.0], [1.0, 2.0, 5.0]]])
    projected = project(points, camera_to_fit(points, fill=0.5))
    assert torch.allclose(projected[0, :, 0].min() + projected[0, :, 0].max(), torch.tensor(0.0), atol=1e-6)
    assert torch.allclose(projected[0, :, 0].max() - projected[0, :, 0].min(), torch.tensor(1.0))  # 0.5 of the 2-wide NDC


def test_bad_shapes_name_the_argument():
    with pytest.raises(ValueError, match="camera must have shape"):
        project(torch.zeros(2, 5, 3), torch.zeros(3))


@pytest.mark.parametrize("yaw", [0.0, 0.8, 2.9, -1.7])
def test_headings_agree_with_the_synthetic_orientation(yaw):
    pose = torch.zeros(24, 3)
    pose[0] = torch.tensor([0.15, -0.4, 0.1])  # a tilt that with_heading must keep
    oriented = axis_angle_to_matrix(orient_for_image(pose, yaw)[0])
    assert float(heading_of(oriented)) == pytest.approx(yaw, abs=1e-5)
    turned = with_heading(oriented, torch.tensor(1.2))
    turned_pose = torch.zeros(24, 3)
    turned_pose[0] = matrix_to_axis_angle(turned)
    assert yaw_of(turned_pose) == pytest.approx(1.2, abs=1e-5)
    # The tilt (the body's up axis relative to the image's vertical) is unchanged by the turn.
    assert float(oriented[1, 1]) == pytest.approx(float(turned[1, 1]), abs=1e-5)
    # The body's left axis (its x column) gives the heading back, up to the tilt's small effect.
    plain = axis_angle_to_matrix(orient_for_image(torch.zeros(24, 3), yaw)[0])
    assert float(heading_of_left_direction(plain[:, 0])) == pytest.approx(yaw, abs=1e-5)
