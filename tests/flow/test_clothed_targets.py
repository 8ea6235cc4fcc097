"""posed_vertices_ndc with clothing offsets against a brute-force reference: per-face normals summed in a Python loop and
the weak-perspective projection written out; a constant offset grows the body by that much (volume and distance)."""

import math

import numpy as np
import pytest
import torch

from lwgan.body.camera import UPRIGHT_ORIENTATION
from lwgan.body.model import PART_NAMES
from lwgan.flow.inputs import posed_vertices_ndc


def reference_clothed_ndc(vertices: np.ndarray, faces: np.ndarray, offsets: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """(B, V, 3) float64 posed vertices, (F, 3) faces, (B, V) offsets, (B, 3) (s, tx, ty) -> (B, V, 3) clothed NDC.

    Each face's cross product (twice its area times its unit normal) is added to its three corners one face at a time;
    the sums are normalised, the vertices moved along them and projected: x = s (X + tx), y = s (Y + ty), depth Z.
    """
    edge_1 = vertices[:, faces[:, 1]] - vertices[:, faces[:, 0]]
    edge_2 = vertices[:, faces[:, 2]] - vertices[:, faces[:, 0]]
    face_normals = np.cross(edge_1, edge_2)  # (B, F, 3)
    sums = np.zeros_like(vertices)
    for face, (first, second, third) in enumerate(faces.tolist()):
        for corner in (first, second, third):
            sums[:, corner] += face_normals[:, face]
    normals = sums / np.maximum(np.linalg.norm(sums, axis=-1, keepdims=True), 1e-12)
    clothed = vertices + offsets[..., None] * normals
    scale, translation = camera[:, None, :1], camera[:, None, 1:]
    return np.concatenate([scale * (clothed[..., :2] + translation), clothed[..., 2:]], axis=-1)


def test_clothed_vertices_in_ndc_match_the_brute_force_reference(anny_body):
    generator = torch.Generator().manual_seed(0)
    pose = 0.3 * torch.randn(2, 24, 3, generator=generator)
    pose[:, 0] = torch.tensor(UPRIGHT_ORIENTATION)
    shape = anny_body.default_shape(2) + 0.2 * torch.randn(2, anny_body.shape_dim, generator=generator)
    camera = torch.tensor([[0.9, 0.05, -0.1], [1.3, -0.2, 0.15]])
    vertex_count = anny_body.mirror_vertices.shape[0]
    per_mesh = 0.05 * torch.rand(2, vertex_count, generator=generator) - 0.01
    with torch.no_grad():
        naked = anny_body(pose, shape).vertices
        found_per_mesh = posed_vertices_ndc(anny_body, pose, shape, camera, per_mesh)
        found_shared = posed_vertices_ndc(anny_body, pose, shape, camera, per_mesh[0])
        found_naked = posed_vertices_ndc(anny_body, pose, shape, camera)
        found_zero = posed_vertices_ndc(anny_body, pose, shape, camera, torch.zeros(vertex_count))
    faces = anny_body.faces.numpy()
    naked64, camera64 = naked.double().numpy(), camera.double().numpy()
    expected_per_mesh = reference_clothed_ndc(naked64, faces, per_mesh.double().numpy(), camera64)
    expected_shared = reference_clothed_ndc(naked64, faces, per_mesh[0].double().numpy()[None].repeat(2, 0), camera64)
    np.testing.assert_allclose(found_per_mesh.numpy(), expected_per_mesh, atol=2e-6)
    np.testing.assert_allclose(found_shared.numpy(), expected_shared, atol=2e-6)
    # The offsets moved the vertices (the comparison is not between two naked bodies): up to 4 cm, times s in NDC.
    assert np.linalg.norm(expected_per_mesh - found_naked.numpy(), axis=-1).max() > 0.02
    # Zero offsets are the naked body exactly.
    assert torch.equal(found_zero, found_naked)


def test_offsets_of_the_wrong_length_are_rejected(anny_body):
    pose = torch.zeros(1, 24, 3)
    with pytest.raises(ValueError, match=r"offsets must have shape \(\d+,\) or \(1, \d+\).*got \(100,\)"):
        posed_vertices_ndc(anny_body, pose, anny_body.default_shape(1), torch.tensor([[1.0, 0.0, 0.0]]), torch.zeros(100))


def enclosed_volume(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """The divergence-theorem volume of a (V, 3) mesh: the sum of the signed tetrahedra (origin, face)."""
    return torch.linalg.det(vertices[faces]).sum() / 6


def surface_area(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    corners = vertices[faces]
    return torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]).norm(dim=-1).sum() / 2


def point_to_triangles_distance(points: torch.Tensor, triangles: torch.Tensor) -> torch.Tensor:
    """(P, 3) points, (T, 3, 3) triangles -> (P,) the distance from each point to the nearest triangle, brute force:
    the distance to the plane where the foot of the perpendicular falls inside, else to the nearest edge."""
    a, b, c = (triangles[None, :, corner] for corner in range(3))
    p = points[:, None]
    normal = torch.linalg.cross(b - a, c - a)
    normal = normal / normal.norm(dim=-1, keepdim=True)
    height = ((p - a) * normal).sum(-1)
    foot = p - height[..., None] * normal
    inside = torch.ones_like(height, dtype=torch.bool)
    for start, end in ((a, b), (b, c), (c, a)):
        inside &= (torch.linalg.cross(end - start, foot - start) * normal).sum(-1) >= 0
    best = torch.where(inside, height.abs(), torch.full_like(height, math.inf))
    for start, end in ((a, b), (b, c), (c, a)):
        edge = end - start
        along = (((p - start) * edge).sum(-1) / (edge * edge).sum(-1)).clamp(0, 1)
        best = torch.minimum(best, (p - start - along[..., None] * edge).norm(dim=-1))
    return best.min(dim=1).values


def test_a_constant_offset_grows_the_body_outwards_by_that_distance(anny_body):
    pose = torch.zeros(1, 24, 3)
    pose[0, 0] = torch.tensor(UPRIGHT_ORIENTATION)
    shape = anny_body.default_shape(1)
    camera = torch.tensor([[1.0, 0.0, 0.0]])  # NDC x, y and depth are the body frame's own metres
    vertex_count = anny_body.mirror_vertices.shape[0]
    distance = 0.02
    with torch.no_grad():
        naked, outward, inward = (posed_vertices_ndc(anny_body, pose, shape, camera, offsets)[0].double()
                                  for offsets in (None, torch.full((vertex_count,), distance), torch.full((vertex_count,), -distance)))
    faces = anny_body.faces
    # Steiner: moving a closed surface outwards by d changes its volume by area * d (+ O(d^2)); the area-weighted
    # vertex normals give a little less than the area (their sums are shorter than the sums of the face areas).
    # Signed volumes: the faces wind outwards, so an inward move (or inward normals) gives a negative growth.
    naked_volume = enclosed_volume(naked, faces)
    growth = (enclosed_volume(outward, faces) - enclosed_volume(inward, faces)) / (2 * distance)
    area = surface_area(naked, faces)
    assert 0.03 < naked_volume < 0.2  # m^3: a person of a few tens of litres
    assert 0.95 < growth / area <= 1.0, f"dV/dd = {growth:.4f} m^2 against the area {area:.4f} m^2"
    # Torso vertices (a closed, mostly convex region) end up `distance` from the naked torso's surface: not nearer
    # (a move along the surface or a shorter one), and never farther (each moves exactly `distance`).
    torso_faces = faces[anny_body.face_part == PART_NAMES.index("torso")]
    torso = torch.unique(torso_faces.reshape(-1))
    sample = torso[torch.randperm(len(torso), generator=torch.Generator().manual_seed(0))[:300]]
    gap = point_to_triangles_distance(outward[sample], naked[torso_faces]) / distance
    quantiles = gap.quantile(torch.tensor([0.0, 0.1, 0.5, 1.0], dtype=gap.dtype))
    assert gap.max() <= 1 + 1e-4 and gap.median() > 0.99 and gap.quantile(0.1) > 0.95, quantiles
    moved = (outward - naked).norm(dim=-1)
    assert torch.allclose(moved, torch.full_like(moved, distance), atol=1e-5)
