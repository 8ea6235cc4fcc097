"""Transfer flow on the real body: identity, mirror symmetry, and warping against synthetic ground truth."""

import math

import pytest
import torch

from lwgan.body.camera import UPRIGHT_ORIENTATION, pixel_centers, project
from lwgan.body.skeleton import SMPL_MIRROR
from lwgan.flow import transfer_flow, warp
from lwgan.flow.inputs import warped_source
from lwgan.render import interpolate_vertex_attributes, rasterize

SIZE = 256
CAMERA = torch.tensor([[1.0, 0.0, 0.1]])  # tx = 0: the image's vertical centre line is the mirror axis


def standing() -> torch.Tensor:
    pose = torch.zeros(1, 24, 3)
    pose[0, 0] = torch.tensor(UPRIGHT_ORIENTATION)
    pose[0, 16, 2], pose[0, 17, 2] = -1.1, 1.1  # arms down
    return pose


def moving() -> torch.Tensor:
    pose = standing()
    pose[0, 1, 0], pose[0, 4, 0] = -0.6, 0.8  # left thigh forward, knee bent
    pose[0, 18, 1], pose[0, 17, 2] = -1.2, 0.3  # left elbow bent, right arm raised
    pose[0, 15, 1] = 0.4  # head turned
    return pose


def mirror_pose(pose: torch.Tensor) -> torch.Tensor:
    """Left-right mirror of SMPL poses: swap sides, negate the y and z axis-angle components."""
    mirrored = pose[:, list(SMPL_MIRROR)].clone()
    mirrored[..., 1:] *= -1
    return mirrored


def ndc(body, pose, camera=CAMERA):
    with torch.no_grad():
        return project(body(pose).vertices, camera)


def test_identity_pose_gives_the_identity_grid(anny_body):
    vertices = ndc(anny_body, moving())
    flow = transfer_flow(vertices, vertices, anny_body.faces, SIZE, anny_body.uv, anny_body.face_uv)
    mask = flow.target_mask[0]
    assert mask.sum() > 5000
    error = (flow.grid[0][mask] - pixel_centers((SIZE, SIZE))[mask]).abs().max()
    assert error < 1e-4
    assert flow.visible[0].equal(mask)


def test_mirrored_poses_give_the_mirrored_flow(anny_body):
    faces, uv, face_uv = anny_body.faces, anny_body.uv, anny_body.face_uv
    flow = transfer_flow(ndc(anny_body, standing()), ndc(anny_body, moving()), faces, SIZE, uv, face_uv)
    mirrored_camera = CAMERA * torch.tensor([1.0, -1.0, 1.0])
    mirrored = transfer_flow(ndc(anny_body, mirror_pose(standing()), mirrored_camera), ndc(anny_body, mirror_pose(moving()), mirrored_camera), faces, SIZE, uv, face_uv)
    # Mirror the first flow's image (columns reversed) and its values (x negated).
    expected = flow.grid[0].flip(1) * torch.tensor([-1.0, 1.0])
    expected_mask = flow.target_mask[0].flip(1)
    agreement = (expected_mask == mirrored.target_mask[0]).float().mean()
    assert agreement > 0.999
    both = expected_mask & mirrored.target_mask[0] & flow.visible[0].flip(1) & mirrored.visible[0]
    error_pixels = (mirrored.grid[0][both] - expected[both]).norm(dim=-1) * SIZE / 2
    assert error_pixels.median() < 0.05 and error_pixels.quantile(0.99) < 0.5


@pytest.fixture(scope="module")
def two_renders(anny_body):
    """A smooth colour field on the body (period 15-25 cm), rendered in two poses, and their flow."""
    faces = anny_body.faces
    with torch.no_grad():
        rest = anny_body(torch.zeros(1, 24, 3)).vertices[0]
    colour = 0.5 + 0.4 * torch.stack([
        torch.sin(2 * math.pi * rest[:, 1] / 0.15),
        torch.sin(2 * math.pi * (rest[:, 0] + rest[:, 2]) / 0.2),
        torch.cos(2 * math.pi * rest[:, 1] / 0.25),
    ], dim=-1)
    source, target = ndc(anny_body, standing()), ndc(anny_body, moving())
    source_fragments = rasterize(source, faces, SIZE)
    flow = transfer_flow(source, target, faces, SIZE, anny_body.uv, anny_body.face_uv)
    render_source = interpolate_vertex_attributes(source_fragments, faces, colour).permute(0, 3, 1, 2)
    render_target = interpolate_vertex_attributes(flow.target_fragments, faces, colour).permute(0, 3, 1, 2)
    return source_fragments, flow, render_source, render_target


def psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / ((a - b)[0][:, mask[0]] ** 2).mean()))


def test_warping_the_source_render_reproduces_the_target_render(two_renders):
    source_fragments, flow, render_source, render_target = two_renders
    assert flow.visible.sum() > 0.9 * flow.target_mask.sum()
    warped = warp(render_source, flow.grid, mask=source_fragments.mask)
    assert psnr(warped, render_target, flow.visible) >= 35.0


def test_hidden_points_differ_from_the_target(two_renders):
    source_fragments, flow, render_source, render_target = two_renders
    hidden = flow.target_mask & ~flow.visible
    warped = warp(render_source, flow.grid, mask=source_fragments.mask)
    # Points the source does not show get someone else's colour: the visibility test is needed.
    assert psnr(warped, render_target, hidden) < psnr(warped, render_target, flow.visible) - 10


def test_the_generator_input_takes_hidden_points_from_the_source_atlas(two_renders, anny_body):
    """warped_source: the direct warp where the source sees the point, the source's UV atlas (filled around what it
    sees) where it does not, which lands nearer the truth than the colour of whatever hides the point."""
    source_fragments, flow, render_source, render_target = two_renders
    warped = warped_source(render_source, ndc(anny_body, standing()), flow, anny_body)
    hidden = flow.target_mask & ~flow.visible
    plain = warp(render_source, flow.grid, mask=source_fragments.mask)
    assert psnr(warped, render_target, flow.visible) >= 35.0
    assert psnr(warped, render_target, hidden) > psnr(plain, render_target, hidden) + 1.5  # measured +2.3 dB
    assert (warped[0][:, ~flow.target_mask[0]] == 0).all()
