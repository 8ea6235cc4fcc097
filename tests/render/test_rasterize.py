"""rasterize() against the brute-force reference and closed-form coverage."""

import pytest
import torch

from lwgan.render import rasterize, rasterize_reference
from lwgan.render.pytorch3d_backend import pytorch3d_available


def random_triangles(count: int, seed: int, batch_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Random triangle soup in NDC (some partly off-screen) with random depths."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.rand(batch_size, count, 1, 3, generator=generator) * 2.4 - 1.2
    offsets = (torch.rand(batch_size, count, 3, 3, generator=generator) - 0.5) * 0.6
    vertices = (centres + offsets).reshape(batch_size, count * 3, 3)
    faces = torch.arange(count * 3).view(count, 3)
    return vertices, faces


def assert_same_fragments(fragments, reference, allowed_differences=0):
    differ = fragments.face_index != reference.face_index
    assert differ.sum().item() <= allowed_differences
    same = ~differ & (reference.face_index >= 0)
    assert torch.allclose(fragments.bary[same].double(), reference.bary[same], atol=1e-5)
    assert torch.allclose(fragments.depth[same].double(), reference.depth[same], atol=1e-5)
    assert torch.isinf(fragments.depth[reference.face_index < 0]).all()


@pytest.mark.parametrize("image_size", [(48, 48), (40, 56)])
def test_random_triangles_match_brute_force(image_size):
    vertices, faces = random_triangles(60, seed=0, batch_size=2)
    assert_same_fragments(rasterize(vertices, faces, image_size), rasterize_reference(vertices, faces, image_size))


def test_body_mesh_matches_brute_force(anny_body):
    from lwgan.body.camera import UPRIGHT_ORIENTATION, camera_to_fit, project

    pose = torch.zeros(1, 24, 3)
    pose[0, 0] = torch.tensor(UPRIGHT_ORIENTATION)
    pose[0, 16, 2], pose[0, 17, 2] = -1.2, 1.2  # arms down beside the hips
    pose[0, 18, 1] = -1.5  # the left forearm bent across the torso: self-occlusion
    vertices = anny_body(pose).vertices
    vertices_ndc = project(vertices, camera_to_fit(vertices, fill=0.9))
    fragments = rasterize(vertices_ndc, anny_body.faces, 128)
    reference = rasterize_reference(vertices_ndc, anny_body.faces, 128)
    assert fragments.mask.sum() > 1500
    assert_same_fragments(fragments, reference)


def test_square_covers_exactly_the_pixel_centres_inside():
    # Square [-0.5, 0.5]^2 at 8x8: pixel centres at (2j+1)/8 - 1 = -0.875 ... 0.875; inside: j in 2..5.
    vertices = torch.tensor([[[-0.5, -0.5, 1.0], [0.5, -0.5, 1.0], [0.5, 0.5, 1.0], [-0.5, 0.5, 1.0]]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    mask = rasterize(vertices, faces, 8).mask[0]
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[2:6, 2:6] = True
    assert torch.equal(mask, expected)


def test_pixel_centre_on_an_edge_is_covered():
    # At 8 px, column 5 has its centres at x = (2*5 + 1)/8 - 1 = 0.375: the right edge runs through them.
    vertices = torch.tensor([[[-1.0, -1.0, 0.0], [0.375, -1.0, 0.0], [0.375, 1.0, 0.0]]])
    mask = rasterize(vertices, torch.tensor([[0, 1, 2]]), 8).mask[0]
    assert mask[:, 5].sum() == 8  # every centre of column 5 lies on the edge
    assert mask[:, 6].sum() == 0


def test_nearer_face_wins_and_ties_go_to_the_smaller_index():
    big = [[-1.0, -1.0], [3.0, -1.0], [-1.0, 3.0]]
    vertices = torch.tensor([[[*p, 2.0] for p in big] + [[*p, 1.0] for p in big] + [[*p, 1.0] for p in big]])
    faces = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    fragments = rasterize(vertices, faces, 16)
    assert (fragments.face_index == 1).all()  # face 1 and 2 tie at depth 1, nearer than face 0
    assert torch.allclose(fragments.depth, torch.ones(1, 16, 16))


def test_barycentrics_reproduce_pixel_centres():
    vertices, faces = random_triangles(40, seed=1)
    fragments = rasterize(vertices, faces, 32)
    corners = vertices[0, faces[fragments.face_index[fragments.mask]]]  # (P, 3, 3)
    position = (fragments.bary[fragments.mask].unsqueeze(-1) * corners[..., :2]).sum(1)
    from lwgan.body.camera import pixel_centers

    assert torch.allclose(position, pixel_centers((32, 32)).expand(1, -1, -1, -1)[fragments.mask], atol=1e-5)


def test_winding_does_not_matter():
    vertices, faces = random_triangles(30, seed=2)
    forward = rasterize(vertices, faces, 32)
    backward = rasterize(vertices, faces[:, [0, 2, 1]], 32)
    assert torch.equal(forward.face_index, backward.face_index)
    assert torch.allclose(forward.bary, backward.bary[..., [0, 2, 1]], atol=1e-6)


def test_off_screen_and_degenerate_faces_draw_nothing():
    vertices = torch.tensor([[[2.0, 2.0, 0.0], [3.0, 2.0, 0.0], [2.0, 3.0, 0.0], [0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1.0, 1.0, 0.0]]])
    fragments = rasterize(vertices, torch.tensor([[0, 1, 2], [3, 4, 5]]), 16)
    assert not fragments.mask.any()


@pytest.mark.parametrize(
    "faces, image_size, message",
    [
        (torch.zeros(0, 3, dtype=torch.int64), 16, "faces is empty"),
        (torch.tensor([[0, 1, 7]]), 16, "out of range"),
        (torch.tensor([[0, -1, 2]]), 16, "out of range"),
        (torch.tensor([[0, 1, 2]]), 0, "image_size must be positive"),
        (torch.tensor([[0, 1, 2]]), (16, -3), "image_size must be positive"),
        (torch.tensor([[0.0, 1.0, 2.0]]), 16, "int32/int64"),
    ],
)
def test_bad_input_gives_clear_errors(faces, image_size, message):
    vertices = torch.zeros(1, 3, 3)
    with pytest.raises((ValueError, TypeError), match=message):
        rasterize(vertices, faces, image_size)


def test_bad_vertex_shape_names_the_argument():
    with pytest.raises(ValueError, match=r"vertices_ndc must have shape \(\*, \*, 3\), got \(3, 3\)"):
        rasterize(torch.zeros(3, 3), torch.tensor([[0, 1, 2]]), 16)


@pytest.mark.skipif(not pytorch3d_available(), reason="pytorch3d is not installed")
def test_pytorch3d_backend_agrees():
    vertices, faces = random_triangles(60, seed=3, batch_size=2)
    ours = rasterize(vertices, faces, (40, 56))
    theirs = rasterize(vertices, faces, (40, 56), backend="pytorch3d")
    assert (ours.face_index != theirs.face_index).float().mean() < 0.01


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    vertices, faces = random_triangles(200, seed=4, batch_size=2)
    cpu = rasterize(vertices, faces, 64)
    cuda = rasterize(vertices.cuda(), faces.cuda(), 64)
    assert (cpu.face_index != cuda.face_index.cpu()).sum() <= 2
