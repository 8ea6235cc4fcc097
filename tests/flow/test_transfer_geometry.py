"""Transfer flow, visibility, grid resizing and warping against closed-form geometry (no body model)."""

import math

import torch

from lwgan.body.camera import OUTSIDE, pixel_centers
from lwgan.flow import grid_valid, resize_grid, transfer_flow, warp

SIZE = 48


def plane(count: int = 9, half: float = 0.6, depth: float = 1.0):
    """A count x count vertex grid over NDC [-half, half]^2 at one depth, with its faces and UVs."""
    axis = torch.linspace(-half, half, count)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    vertices = torch.stack([x, y, torch.full_like(x, depth)], dim=-1).reshape(-1, 3)
    index = torch.arange(count * count).view(count, count)
    a, b, c, d = index[:-1, :-1], index[:-1, 1:], index[1:, 1:], index[1:, :-1]
    faces = torch.cat([torch.stack([a, b, c], -1).reshape(-1, 3), torch.stack([a, c, d], -1).reshape(-1, 3)])
    uv = (vertices[:, :2] / (2 * half) + 0.5).clamp(0, 1)
    return vertices, faces, uv


def test_affine_motion_gives_the_inverse_affine_grid():
    vertices, faces, uv = plane()
    angle = math.radians(20)
    matrix = 0.8 * torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    shift = torch.tensor([0.1, -0.05])
    target = vertices.clone()
    target[:, :2] = vertices[:, :2] @ matrix.T + shift
    flow = transfer_flow(vertices[None], target[None], faces, SIZE, uv, faces)
    centres = pixel_centers((SIZE, SIZE))
    expected = (centres - shift) @ torch.linalg.inv(matrix).T
    mask = flow.target_mask[0]
    assert mask.sum() > 400
    assert (flow.grid[0][mask] - expected[mask]).abs().max() < 1e-5
    assert (flow.grid[0][~mask] == OUTSIDE).all()
    # One layer: a point is seen wherever the source pixel containing it is covered by the plane,
    # i.e. at least on every point more than a pixel inside the source plane's edges.
    pixel = 2.0 / SIZE
    well_inside = mask & (expected.abs() < 0.6 - pixel).all(-1)
    assert flow.visible[0][well_inside].all()
    assert not flow.visible[0][~mask].any()
    assert (mask & ~flow.visible[0]).sum() < 0.1 * mask.sum()


def test_occluded_source_points_are_invisible():
    back, back_faces, back_uv = plane(count=9, half=0.9, depth=1.0)
    front, front_faces, front_uv = plane(count=2, half=0.25, depth=0.0)
    faces = torch.cat([back_faces, front_faces + len(back)])
    uv = torch.cat([back_uv, front_uv])
    source = torch.cat([back, front])
    target = torch.cat([back, front + torch.tensor([0.6, 0.6, 0.0])])  # the occluder moves away
    flow = transfer_flow(source[None], target[None], faces, SIZE, uv, faces)
    centres = pixel_centers((SIZE, SIZE))
    on_back = flow.target_fragments.face_index[0] < len(back_faces)
    pixel = 2.0 / SIZE
    hidden_in_source = (centres.abs() <= 0.25 - pixel).all(-1)  # well inside the source occluder
    clear_of_source = (centres.abs() >= 0.25 + pixel).any(-1)   # more than a pixel outside it
    assert not flow.visible[0][on_back & hidden_in_source].any()
    assert flow.visible[0][on_back & clear_of_source & flow.target_mask[0]].all()
    assert (on_back & hidden_in_source).sum() > 50
    # The occluder itself is frontmost in the source: visible.
    on_front = flow.target_mask[0] & ~on_back
    assert flow.visible[0][on_front].all()


def test_condition_maps_encode_uv_and_background():
    vertices, faces, uv = plane()
    flow = transfer_flow(vertices[None], vertices[None], faces, SIZE, uv, faces, encoding="uv")
    mask = flow.target_mask[0]
    condition = flow.target_condition[0]
    expected_uv = pixel_centers((SIZE, SIZE)) / 1.2 + 0.5
    assert torch.allclose(condition[:2].permute(1, 2, 0)[mask], expected_uv[mask], atol=1e-5)
    assert (condition[2][mask] == 0).all() and (condition[2][~mask] == 1).all()
    assert (condition[:2][:, ~mask] == 0).all()
    seg = transfer_flow(vertices[None], vertices[None], faces, SIZE, uv, faces, encoding="uv_seg").target_condition[0]
    assert (seg[:2].permute(1, 2, 0)[mask] - expected_uv[mask]).abs().max() < 1 / 8  # a face centroid is within one grid cell


def test_identity_grid_warps_an_image_onto_itself_and_shifts_move_it():
    image = torch.rand(1, 3, SIZE, SIZE)
    identity = pixel_centers((SIZE, SIZE))[None]
    assert torch.allclose(warp(image, identity), image, atol=1e-5)
    shifted = identity + torch.tensor([2 * 3 / SIZE, 0.0])  # sample 3 pixels to the right
    assert torch.allclose(warp(image, shifted)[..., :-3], image[..., 3:], atol=1e-5)
    assert (warp(image, torch.full_like(identity, OUTSIDE)) == 0).all()


def test_resize_grid_averages_valid_positions_only():
    grid = pixel_centers((SIZE, SIZE))[None].clone()
    half = resize_grid(grid, (SIZE // 2, SIZE // 2))
    assert torch.allclose(half, pixel_centers((SIZE // 2, SIZE // 2))[None], atol=1e-6)
    grid[:, :, : SIZE // 2] = OUTSIDE
    grid[:, :, SIZE // 2] = OUTSIDE  # one more column: coarse column SIZE//4 is half valid
    half = resize_grid(grid, (SIZE // 2, SIZE // 2))
    valid = grid_valid(half)[0]
    assert not valid[:, : SIZE // 4].any() and valid[:, SIZE // 4 :].all()
    # The half-valid cells take the valid fine column only.
    assert torch.allclose(half[0, :, SIZE // 4, 0], torch.full((SIZE // 2,), (2 * (SIZE // 2 + 1) + 1) / SIZE - 1))
