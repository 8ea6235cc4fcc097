"""Clothing geometry: vertex normals and offsets against closed forms on a tetrahedron, outward normals on the body,
the free-vertex mask and the uniform Laplacian."""

import pytest
import torch

from lwgan.body.clothing import (
    apply_laplacian,
    clothed_vertices,
    clothing_vertex_mask,
    uniform_laplacian,
    vertex_normals,
)
from lwgan.body.model import PART_NAMES

# A tetrahedron with unequal faces, wound counter-clockwise seen from outside.
TETRAHEDRON = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
TETRAHEDRON_FACES = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])


def opposite_face_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(4, 3) for each vertex of a tetrahedron, the unit outward normal of the face not touching it."""
    normals = torch.empty(4, 3)
    for face in faces:
        corners = vertices[face]
        normal = torch.linalg.cross(corners[1] - corners[0], corners[2] - corners[0])
        missing = ({0, 1, 2, 3} - set(face.tolist())).pop()
        normals[missing] = normal / normal.norm()
    return normals


def test_tetrahedron_vertex_normals_match_the_closed_form():
    # The area vectors of a closed surface sum to zero, so at each vertex of a tetrahedron the
    # area-weighted sum over its three faces is minus the opposite face's area vector: the vertex
    # normal is the opposite face's inward normal. An unweighted mean of unit face normals is not.
    expected = -opposite_face_normals(TETRAHEDRON, TETRAHEDRON_FACES)
    turned = TETRAHEDRON @ torch.linalg.matrix_exp(torch.tensor([[0.0, -0.4, 0.2], [0.4, 0.0, -0.7], [-0.2, 0.7, 0.0]])).T
    normals = vertex_normals(torch.stack([TETRAHEDRON, 5.0 * turned + 1.0]), TETRAHEDRON_FACES)
    assert torch.allclose(normals[0], expected, atol=1e-6)
    assert torch.allclose(normals[1], -opposite_face_normals(turned, TETRAHEDRON_FACES), atol=1e-6)
    assert torch.allclose(vertex_normals(TETRAHEDRON[None], TETRAHEDRON_FACES.flip(1))[0], -expected, atol=1e-6)


def test_offsets_move_along_the_normals():
    # A regular tetrahedron centred at the origin: every vertex normal is the vertex's direction,
    # so a uniform offset t scales it by 1 + t / |v|.
    regular = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]])
    faces = torch.tensor([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])
    assert torch.allclose(vertex_normals(regular[None], faces)[0], regular / 3**0.5, atol=1e-6)
    shared = clothed_vertices(regular[None].expand(2, -1, -1), faces, torch.full((4,), 0.5))
    assert torch.allclose(shared, (regular * (1 + 0.5 / 3**0.5)).expand(2, -1, -1), atol=1e-6)
    per_mesh = clothed_vertices(regular[None].expand(2, -1, -1), faces, torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -3**0.5]]))
    assert torch.allclose(per_mesh[0], regular) and torch.allclose(per_mesh[1, 3], torch.zeros(3), atol=1e-6)


@pytest.mark.parametrize("shape", [(5,), (3, 4), (4, 1)])
def test_offsets_of_the_wrong_shape_are_rejected_with_their_shape(shape):
    with pytest.raises(ValueError) as error:
        clothed_vertices(TETRAHEDRON[None].expand(2, -1, -1), TETRAHEDRON_FACES, torch.zeros(shape))
    assert "offsets must have shape (4,) or (2, 4)" in str(error.value) and f"got {shape}" in str(error.value)


def test_body_normals_point_outwards(anny_body):
    """body.faces' winding is checked, not assumed: torso normals point away from the torso's vertical axis."""
    with torch.no_grad():
        vertices = anny_body(torch.zeros(1, 24, 3)).vertices
    normals = vertex_normals(vertices, anny_body.faces)[0]
    torso = torch.zeros(vertices.shape[1], dtype=torch.bool)
    torso[anny_body.faces[anny_body.face_part == PART_NAMES.index("torso")].reshape(-1)] = True
    points = vertices[0, torso]
    radial = (points - points.mean(dim=0)) * torch.tensor([1.0, 0.0, 1.0])  # away from the axis, in the horizontal plane
    outward = (normals[torso] * radial).sum(-1) > 0
    assert outward.float().mean() > 0.95, f"{outward.float().mean():.3f} of the torso normals point outwards"


def test_free_vertices_avoid_the_front_of_the_face_and_the_hands(anny_body):
    free = clothing_vertex_mask(anny_body)
    hands = torch.isin(anny_body.face_part, torch.tensor([PART_NAMES.index("left_hand"), PART_NAMES.index("right_hand")]))
    fixed_faces = anny_body.face_masks["front_face"] | hands
    touched_by_fixed = torch.zeros_like(free)
    touched_by_fixed[anny_body.faces[fixed_faces].flatten()] = True
    assert torch.equal(free, ~touched_by_fixed)
    assert free[anny_body.faces[anny_body.face_part == PART_NAMES.index("torso")].flatten()].all()
    assert 0.6 < free.float().mean() < 0.9


def test_uniform_laplacian_matches_its_closed_form():
    # Every vertex of a tetrahedron neighbours the three others (each edge is shared by two faces
    # but counted once): (L x)_i = x_i - mean of the others.
    laplacian = uniform_laplacian(TETRAHEDRON_FACES, 4)
    field = torch.tensor([1.0, 0.0, 0.0, 0.0])
    expected = torch.tensor([1.0, -1 / 3, -1 / 3, -1 / 3])
    assert torch.allclose(laplacian.to_dense() @ field, expected)
    assert torch.allclose(apply_laplacian(laplacian, field), expected)
    with_lonely_vertex = uniform_laplacian(TETRAHEDRON_FACES, 5).to_dense()
    assert torch.equal(with_lonely_vertex[4], torch.zeros(5)) and torch.allclose(with_lonely_vertex.sum(1), torch.zeros(5), atol=1e-6)


def test_apply_laplacian_equals_the_sparse_product_on_the_body(anny_body):
    vertex_count = anny_body.mirror_vertices.shape[0]
    laplacian = uniform_laplacian(anny_body.faces, vertex_count)
    field = torch.randn(vertex_count, generator=torch.Generator().manual_seed(0), requires_grad=True)
    fast = apply_laplacian(laplacian, field)
    assert torch.allclose(fast, torch.sparse.mm(laplacian, field[:, None].detach())[:, 0], atol=1e-5)
    assert torch.allclose(apply_laplacian(laplacian, torch.full((vertex_count,), 0.7)), torch.zeros(vertex_count), atol=1e-6)
    (gradient,) = torch.autograd.grad(fast.pow(2).sum(), field)
    assert torch.allclose(gradient, 2 * torch.sparse.mm(laplacian.t(), fast.detach()[:, None])[:, 0], atol=1e-4)
