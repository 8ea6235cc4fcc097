"""Mesh tables on small synthetic meshes whose answers are known: parts, normals, masks, mirror map, face dropping."""

import math

import pytest
import torch
import trimesh

from lwgan.body import tables
from lwgan.body.model import PART_NAMES
from lwgan.body.skeleton import SMPL_JOINT_NAMES
from lwgan.render import rasterize

JOINT = {name: index for index, name in enumerate(SMPL_JOINT_NAMES)}


def one_hot_weights(joint_names: list[str]) -> torch.Tensor:
    weights = torch.zeros(len(joint_names), 24)
    weights[torch.arange(len(joint_names)), [JOINT[name] for name in joint_names]] = 1.0
    return weights


def test_face_part_is_the_part_with_most_weight_over_the_corners():
    weights = one_hot_weights(["left_elbow", "left_shoulder", "left_wrist", "neck", "head", "spine1"])
    faces = torch.tensor([[0, 1, 2], [3, 4, 5], [0, 2, 5]])
    parts = tables.face_parts_from_weights(weights, faces)
    # two arm corners beat one hand corner; neck and head both count as head; a three-way tie takes the first part
    assert [PART_NAMES[part] for part in parts] == ["left_arm", "head", "torso"]
    assert parts.dtype == torch.int64


def test_every_smpl_joint_maps_to_one_of_the_ten_parts():
    assert set(tables.JOINT_TO_PART) == set(SMPL_JOINT_NAMES)
    assert set(tables.JOINT_TO_PART.values()) == set(PART_NAMES)
    for joint, part in tables.JOINT_TO_PART.items():
        for side in ("left", "right"):
            if joint.startswith(side):
                assert part.startswith(side) or part == "torso", f"{joint} -> {part}"
            if part.startswith(side):
                assert joint.startswith(side), f"{joint} -> {part}"


def test_counter_clockwise_triangle_has_a_plus_z_normal():
    vertices = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    normals = tables.face_normals(vertices, torch.tensor([[0, 1, 2], [0, 2, 1]]))
    torch.testing.assert_close(normals, torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]))


def test_face_masks_of_a_head_sphere_over_a_torso_sphere():
    head = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
    torso = trimesh.creation.icosphere(subdivisions=3, radius=0.3)
    head_vertices = torch.tensor(head.vertices, dtype=torch.float32) + torch.tensor([0.0, 0.5, 0.0])
    torso_vertices = torch.tensor(torso.vertices, dtype=torch.float32)
    vertices = torch.cat([head_vertices, torso_vertices])
    faces = torch.cat([torch.tensor(head.faces), torch.tensor(torso.faces) + head_vertices.shape[0]])
    face_part = torch.cat([
        torch.full((len(head.faces),), PART_NAMES.index("head")),
        torch.full((len(torso.faces),), PART_NAMES.index("torso")),
    ])
    masks = tables.face_masks_from_rest(vertices, faces, face_part)
    normals = tables.face_normals(vertices, faces)
    centroids = vertices[faces].mean(dim=1)
    assert torch.equal(masks["head"], face_part == PART_NAMES.index("head"))
    assert masks["front_face"].any() and not (masks["front_face"] & ~masks["head"]).any()
    assert (normals[masks["front_face"], 2] > 0.3).all()
    assert (centroids[masks["front_face"], 1] < 0.5 + 0.1 * 0.5 + 1e-6).all(), "the hairline cuts the top quarter"
    assert masks["front_body"].any() and not (masks["front_body"] & masks["head"]).any()
    torso_faces = ~masks["head"]
    torch.testing.assert_close(masks["front_body"][torso_faces], normals[torso_faces, 2] > 0.5)


@pytest.fixture()
def symmetric_points() -> tuple[torch.Tensor, torch.Tensor]:
    """Points and their true partners: 50 left points, their mirrors, 10 points on the midline, shuffled."""
    generator = torch.Generator().manual_seed(0)
    left = torch.rand(50, 3, generator=generator) + torch.tensor([0.05, 0.0, 0.0])
    midline = torch.rand(10, 3, generator=generator) * torch.tensor([0.0, 1.0, 1.0])
    points = torch.cat([left, left * torch.tensor([-1.0, 1.0, 1.0]), midline])
    partner = torch.cat([torch.arange(50, 100), torch.arange(0, 50), torch.arange(100, 110)])
    order = torch.randperm(110, generator=generator)
    inverse = torch.argsort(order)
    return points[order], inverse[partner[order]]


def test_mirror_vertex_map_finds_each_partner(symmetric_points):
    points, partner = symmetric_points
    mirror = tables.mirror_vertex_map(points)
    assert torch.equal(mirror, partner)
    assert torch.equal(mirror[mirror], torch.arange(points.shape[0]))
    symmetry = tables.mirror_symmetry(points, mirror)
    assert symmetry["involution_fraction"] == 1.0
    assert symmetry["max_distance"] < 1e-6


def test_mirror_symmetry_reports_a_displaced_vertex(symmetric_points):
    points, partner = symmetric_points
    lateral = int(torch.nonzero(points[:, 0].abs() > 0.05)[0])
    moved = points.clone()
    moved[lateral, 1] += 0.002
    symmetry = tables.mirror_symmetry(moved, partner)
    assert symmetry["max_distance"] == pytest.approx(0.002, abs=1e-6)


def test_drop_faces_removes_unused_vertices_and_uv_and_renumbers():
    #  3---2---5     two quads (0,1,2,3) and (1,4,5,2), each as two triangles;
    #  |   |   |     dropping the right quad's triangles drops vertices 4 and 5
    #  0---1---4     and the uv points only they used.
    vertices = torch.tensor([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [2, 0, 0], [2, 1, 0]], dtype=torch.float32)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [1, 4, 5], [1, 5, 2]])
    face_uv = torch.tensor([[0, 1, 2], [0, 2, 3], [6, 4, 5], [6, 5, 7]])  # the right quad has its own uv island
    drop = torch.tensor([False, False, True, True])
    mesh = tables.drop_faces(faces, face_uv, drop, vertex_count=6, uv_count=8)
    assert torch.equal(mesh.kept_vertices, torch.tensor([0, 1, 2, 3]))
    assert torch.equal(mesh.kept_uv, torch.tensor([0, 1, 2, 3]))
    torch.testing.assert_close(vertices[mesh.kept_vertices][mesh.faces], vertices[faces[~drop]])
    assert torch.equal(mesh.kept_uv[mesh.face_uv], face_uv[~drop])

    keep_right = tables.drop_faces(faces, face_uv, ~drop, vertex_count=6, uv_count=8)
    assert torch.equal(keep_right.kept_vertices, torch.tensor([1, 2, 4, 5]))
    torch.testing.assert_close(vertices[keep_right.kept_vertices][keep_right.faces], vertices[faces[drop]])
    assert torch.equal(keep_right.kept_uv[keep_right.face_uv], face_uv[drop])


def test_coarse_mesh_merges_each_cell_into_the_member_nearest_its_centroid():
    # Cell side 1: vertices 0, 1, 2 share cell (0, 0, 0); their centroid (0.417, 0.267, 0.1) lies
    # 0.36, 0.39 and 0.24 from them, so they merge into vertex 2; vertex 3 shares it too but belongs to another group; vertices 4 and 5 have cells of their own.
    vertices = torch.tensor([
        [0.1, 0.1, 0.1], [0.8, 0.2, 0.1], [0.35, 0.5, 0.1], [0.5, 0.5, 0.5], [1.5, 0.5, 0.1], [0.5, 1.5, 0.1],
    ])
    group = torch.tensor([0, 0, 0, 1, 0, 0])
    faces = torch.tensor([
        [0, 4, 5],  # -> (2, 4, 5)
        [1, 4, 5],  # -> (2, 4, 5) again: dropped
        [5, 2, 4],  # -> the same triangle in the same winding from another corner: dropped
        [2, 5, 4],  # -> the other winding: kept
        [0, 1, 4],  # -> (2, 2, 4): degenerate, dropped
        [3, 0, 4],  # -> (3, 2, 4): the other group's vertex stays
    ])
    coarse = tables.coarse_mesh(vertices, faces, group, cell_size=1.0)
    assert coarse.vertices.tolist() == [2, 3, 4, 5]
    assert coarse.vertices[coarse.faces].tolist() == [[2, 4, 5], [2, 5, 4], [3, 2, 4]]


def test_coarse_mesh_of_a_fine_sphere_keeps_its_disc_silhouette():
    """An icosphere of radius 1 with 20,480 faces, clustered with cells of 0.1, against its analytic silhouette (the unit disc)."""
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=1.0)
    vertices = torch.tensor(sphere.vertices, dtype=torch.float32)
    faces = torch.tensor(sphere.faces)
    coarse = tables.coarse_mesh(vertices, faces, torch.zeros(len(vertices), dtype=torch.int64), cell_size=0.1)
    assert len(coarse.faces) < len(faces) / 4
    kept = vertices[coarse.vertices]
    corners = kept[coarse.faces].double()
    assert 0.97 * 4 / 3 * math.pi < torch.linalg.det(corners).sum() / 6 < 4 / 3 * math.pi, "closed, outward and nearly the sphere's volume"
    size = 200  # pixels over NDC [-1.25, 1.25]
    drawn = rasterize((kept / 1.25)[None], coarse.faces, size).mask[0]
    centre = (torch.arange(size) + 0.5) / size * 2.5 - 1.25
    disc = centre[:, None] ** 2 + centre[None, :] ** 2 <= 1.0
    assert (drawn & disc).sum() / (drawn | disc).sum() > 0.985
