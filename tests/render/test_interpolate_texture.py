"""Interpolation, textures and soft silhouettes against closed forms."""

import torch

from lwgan.body.camera import pixel_centers
from lwgan.render import (
    interpolate_corner_attributes,
    interpolate_vertex_attributes,
    lookup_face_attributes,
    rasterize,
    render_texture,
    soft_silhouette,
)
from lwgan.render.silhouette import faces_facing_the_camera


def square(depth: float = 1.0):
    """Two triangles covering NDC [-0.5, 0.5]^2, corners in order (-,-), (+,-), (+,+), (-,+)."""
    vertices = torch.tensor([[[-0.5, -0.5, depth], [0.5, -0.5, depth], [0.5, 0.5, depth], [-0.5, 0.5, depth]]])
    return vertices, torch.tensor([[0, 1, 2], [0, 2, 3]])


def test_affine_vertex_attribute_is_reproduced_exactly():
    vertices, faces = square()
    fragments = rasterize(vertices, faces, 16)
    attribute = 3.0 * vertices[..., :2] + 0.5  # an affine function of position
    values = interpolate_vertex_attributes(fragments, faces, attribute)
    expected = 3.0 * pixel_centers((16, 16))[None] + 0.5
    assert torch.allclose(values[fragments.mask], expected[fragments.mask], atol=1e-5)
    assert (values[~fragments.mask] == 0).all()


def test_corner_and_face_attributes():
    vertices, faces = square()
    fragments = rasterize(vertices, faces, 16)
    corner = torch.tensor([[[1.0], [1.0], [1.0]], [[2.0], [2.0], [2.0]]])  # constant per face
    face_values = lookup_face_attributes(fragments, torch.tensor([[1.0], [2.0]]), background=-1.0)
    assert torch.equal(interpolate_corner_attributes(fragments, corner)[fragments.mask], face_values[fragments.mask])
    assert (face_values[~fragments.mask] == -1).all()
    # Face 0 holds the corner (+,-): pixels above the diagonal y = x (y down) belong to it.
    centres = pixel_centers((16, 16))
    upper = (centres[..., 1] < centres[..., 0]) & fragments.mask[0]
    assert (face_values[0][upper] == 1.0).all()


def test_texture_lookup_reads_u_and_v():
    vertices, faces = square()
    fragments = rasterize(vertices, faces, 16)
    uv = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    # A texture whose red channel is u and green channel is v (v up: row 0 is v = 1).
    size = 64
    u = (torch.arange(size) + 0.5) / size
    texture = torch.stack([u.expand(size, size), u.flip(0)[:, None].expand(size, size), torch.zeros(size, size)])[None]
    image = render_texture(fragments, uv, faces, texture, background=torch.full((1, 3, 16, 16), 0.25))
    # Pixel centre x maps to u = x + 0.5 on the square; y (down) maps to v = y + 0.5 (corner (-,-) has v = 0).
    centres = pixel_centers((16, 16))
    inside = fragments.mask[0]
    interior = inside & (centres.abs() < 0.45).all(-1)
    assert torch.allclose(image[0, 0][interior], centres[..., 0][interior] + 0.5, atol=1e-3)
    assert torch.allclose(image[0, 1][interior], centres[..., 1][interior] + 0.5, atol=1e-3)
    assert (image[0, :, ~inside] == 0.25).all()


def test_soft_silhouette_tends_to_the_hard_mask():
    # A rectangle whose shared diagonal y = x + 0.1 passes through no pixel centre (there, two faces
    # at distance 0 would each give 1/2).
    vertices, faces = square()
    vertices = vertices + torch.tensor([0.0, 0.1, 0.0]) * (vertices[..., 1:2] > 0)
    hard = rasterize(vertices, faces, 32).mask.float()
    errors = [(soft_silhouette(vertices, faces, 32, sigma=s) - hard).abs().mean().item() for s in (2.0, 0.5, 0.01)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-3
    # At the square's boundary (distance 0) a single face gives exactly 1/2.
    single = torch.tensor([[[-1.0, -1.0, 0.0], [3.0, -1.0, 0.0], [-1.0, 3.0, 0.0]]]) * torch.tensor([1.0, 1.0, 0.0])
    edge_vertices = single.clone()
    edge_vertices[..., 0] += (2 * 8 + 1) / 16 - 1 + 1.0  # left edge through the centres of column 8
    soft = soft_silhouette(edge_vertices, torch.tensor([[0, 1, 2]]), 16, sigma=1.0)
    assert torch.allclose(soft[0, 2:10, 8], torch.full((8,), 0.5), atol=1e-5)


def test_soft_silhouette_gradient_is_correct():
    vertices = torch.tensor([[[-0.3, -0.4, 0.0], [0.5, -0.2, 0.0], [0.1, 0.6, 0.0]]], dtype=torch.float64, requires_grad=True)
    faces = torch.tensor([[0, 1, 2]])
    assert torch.autograd.gradcheck(lambda v: soft_silhouette(v, faces, 8, sigma=1.5), (vertices,), atol=1e-6)


def test_straight_through_silhouette_has_hard_values_and_soft_gradients():
    # Two overlapping triangles and a square: values are rasterize()'s mask, gradients the soft silhouette's.
    vertices, faces = square()
    vertices = torch.cat([vertices, torch.tensor([[[-0.9, 0.7, 1.0], [0.2, -0.95, 1.0], [0.6, 0.8, 1.0]]])], dim=1)
    faces = torch.cat([faces, torch.tensor([[4, 5, 6]])])
    weights = torch.rand(1, 24, 24, generator=torch.Generator().manual_seed(0))
    gradients = []
    for straight_through in (False, True):
        moving = vertices.clone().requires_grad_(True)
        silhouette = soft_silhouette(moving, faces, 24, sigma=0.5, straight_through=straight_through)
        (silhouette * weights).sum().backward()
        gradients.append(moving.grad)
    assert torch.equal(silhouette.detach(), rasterize(vertices, faces, 24).mask.float())
    assert torch.equal(gradients[0], gradients[1]) and gradients[1].abs().sum() > 0


def test_culling_draws_each_mesh_with_the_faces_that_face_its_own_camera():
    # The square and a triangle wound the other way; the second view is mirrored, which turns every face round.
    vertices, faces = square()
    vertices = torch.cat([vertices, torch.tensor([[[-0.9, 0.7, 1.0], [0.2, -0.95, 1.0], [0.6, 0.8, 1.0]]])], dim=1)
    faces = torch.cat([faces, torch.tensor([[4, 6, 5]])])
    views = torch.cat([vertices, vertices * torch.tensor([-0.8, 1.1, 1.0])])
    facing = faces_facing_the_camera(views, faces)
    assert facing.any(dim=1).all() and not facing.all(dim=1).any() and not (facing[0] & facing[1]).any()
    for straight_through in (False, True):
        culled = soft_silhouette(views, faces, 20, sigma=0.5, straight_through=straight_through, cull_back_faces=True)
        for view in range(2):
            alone = soft_silhouette(views[view : view + 1], faces[facing[view]], 20, sigma=0.5, straight_through=straight_through)
            assert torch.allclose(culled[view], alone[0], atol=1e-6)
    every_face = soft_silhouette(views, faces, 20, sigma=0.5)
    assert (every_face - culled.detach()).abs().amax(dim=(1, 2)).min() > 0.5  # each view dropped a face that covers pixels
