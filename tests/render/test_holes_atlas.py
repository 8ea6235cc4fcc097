"""Hole filling and UV-atlas unwrapping."""

import torch

from lwgan.body.camera import UPRIGHT_ORIENTATION, camera_to_fit, project
from lwgan.flow import unwrap_to_atlas
from lwgan.render import rasterize, render_texture
from lwgan.render.texture import fill_holes


def test_fill_holes_keeps_known_pixels_and_stays_in_range():
    image = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(1, 3, 64, 64).clone()
    known = torch.ones(1, 64, 64, dtype=torch.bool)
    known[:, 20:40, 10:50] = False
    filled = fill_holes(image * known[:, None], known)
    assert torch.equal(filled[:, :, known[0]], image[:, :, known[0]])
    hole = filled[:, :, ~known[0]]
    assert hole.min() >= 0 and hole.max() <= 1
    # A horizontal ramp stays close to the ramp inside the hole.
    assert (hole - image[:, :, ~known[0]]).abs().mean() < 0.1
    assert (fill_holes(image, torch.zeros(1, 64, 64, dtype=torch.bool)) == 0).all()


def test_unwrap_then_render_reproduces_the_visible_source(anny_body):
    faces, uv, face_uv = anny_body.faces, anny_body.uv, anny_body.face_uv
    pose = torch.zeros(1, 24, 3)
    pose[0, 0] = torch.tensor(UPRIGHT_ORIENTATION)
    with torch.no_grad():
        vertices = anny_body(pose).vertices
    ndc = project(vertices, camera_to_fit(vertices))
    fragments = rasterize(ndc, faces, 128)
    # A texture that is smooth in UV space: rendering it, unwrapping and re-rendering must agree.
    texel = torch.linspace(0, 1, 256)
    texture = torch.stack([texel.view(1, -1).expand(256, 256), texel.view(-1, 1).expand(256, 256), 0.5 * torch.ones(256, 256)])[None]
    image = render_texture(fragments, uv, face_uv, texture)
    atlas, seen = unwrap_to_atlas(image, ndc, faces, uv, face_uv, size=256)
    assert seen.float().mean() > 0.1  # the front half of the body is seen
    again = render_texture(fragments, uv, face_uv, atlas)
    mask = fragments.mask[0]
    assert (again[0][:, mask] - image[0][:, mask]).abs().mean() < 0.02
