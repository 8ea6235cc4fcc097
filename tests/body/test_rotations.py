"""Rotation helpers against closed forms: explicit axis rotations, round trips, Euler order, slerp."""

import math

import pytest
import torch

from lwgan.body.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rotation_6d,
    rotation_6d_to_matrix,
    slerp_matrices,
)


def rotation_about(axis: str, angle: float) -> torch.Tensor:
    """The textbook matrix of a right-handed rotation by `angle` about x, y or z (float64)."""
    c, s = math.cos(angle), math.sin(angle)
    matrices = {
        "x": [[1, 0, 0], [0, c, -s], [0, s, c]],
        "y": [[c, 0, s], [0, 1, 0], [-s, 0, c]],
        "z": [[c, -s, 0], [s, c, 0], [0, 0, 1]],
    }
    return torch.tensor(matrices[axis], dtype=torch.float64)


def random_rotations(count: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    axis_angle = torch.randn(count, 3, generator=generator, dtype=torch.float64)
    axis_angle = axis_angle / axis_angle.norm(dim=-1, keepdim=True) * torch.rand(count, 1, generator=generator, dtype=torch.float64) * 3.0
    return axis_angle_to_matrix(axis_angle)


@pytest.mark.parametrize("axis, index", [("x", 0), ("y", 1), ("z", 2)])
@pytest.mark.parametrize("angle", [0.3, -1.2, 2.9])
def test_axis_angle_about_coordinate_axes(axis, index, angle):
    axis_angle = torch.zeros(3, dtype=torch.float64)
    axis_angle[index] = angle
    torch.testing.assert_close(axis_angle_to_matrix(axis_angle), rotation_about(axis, angle))


def test_matrix_axis_angle_round_trip():
    matrices = random_rotations(64)
    axis_angle = matrix_to_axis_angle(matrices)
    assert (axis_angle.norm(dim=-1) <= math.pi + 1e-9).all()
    torch.testing.assert_close(axis_angle_to_matrix(axis_angle), matrices)
    torch.testing.assert_close(matrix_to_axis_angle(axis_angle_to_matrix(axis_angle)), axis_angle)


def test_rotation_6d_round_trip_and_layout():
    matrices = random_rotations(32, seed=1)
    six = matrix_to_rotation_6d(matrices)
    assert six.shape == (32, 6)
    torch.testing.assert_close(six[:, :3], matrices[:, :, 0])  # first column, then second column
    torch.testing.assert_close(six[:, 3:], matrices[:, :, 1])
    torch.testing.assert_close(rotation_6d_to_matrix(six), matrices)
    # Gram-Schmidt turns a perturbed 6D vector into a proper rotation.
    noisy = rotation_6d_to_matrix(six + 0.05 * torch.randn(six.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64))
    torch.testing.assert_close(noisy @ noisy.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(32, 3, 3))
    torch.testing.assert_close(torch.linalg.det(noisy), torch.ones(32, dtype=torch.float64))


def test_slerp_midpoint_and_ends():
    start = torch.eye(3, dtype=torch.float64)[None]
    end = rotation_about("z", math.pi / 2)[None]
    torch.testing.assert_close(slerp_matrices(start, end, torch.tensor([0.5])), rotation_about("z", math.pi / 4)[None])
    torch.testing.assert_close(slerp_matrices(start, end, torch.tensor([0.0])), start)
    torch.testing.assert_close(slerp_matrices(start, end, torch.tensor([1.0])), end)
    torch.testing.assert_close(slerp_matrices(end, end, torch.tensor([0.3])), end)  # identical ends
    # The shortest arc: 350 degrees about z is reached by turning -10 degrees.
    far = rotation_about("z", math.radians(350))[None]
    torch.testing.assert_close(slerp_matrices(start, far, torch.tensor([0.5])), rotation_about("z", math.radians(-5))[None])


def test_gradients_are_finite():
    axis_angle = torch.tensor([[0.3, -0.2, 0.9], [0.0, 0.0, 0.0], [1e-7, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    matrices = axis_angle_to_matrix(axis_angle)
    loss = matrix_to_axis_angle(matrices[:1]).sum() + matrices.sum() + rotation_6d_to_matrix(matrix_to_rotation_6d(matrices)).sum()
    loss.backward()
    assert torch.isfinite(axis_angle.grad).all()
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (axis_angle[:1].detach().clone().requires_grad_(),))
