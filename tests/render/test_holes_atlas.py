"""UV-atlas unwrapping."""

import torch

from lwgan.body.camera import UPRIGHT_ORIENTATION, camera_to_fit, project
from lwgan.flow import unwrap_to_atlas
from lwgan.render import rasterize, render_texture


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
