"""AnnyBody against closed-form expectations: T-pose, bend directions, yaw, mirror symmetry, parts, cavities."""

import copy
import math
import os
import subprocess
import sys
import time

import anny
import anny.paths
import pytest
import torch

from lwgan.body import PART_NAMES, AnnyBody, BodyOutput, create_body_model, tables
from lwgan.body.anny_body import CAVITY_FILE, DEFAULT_PHENOTYPES
from lwgan.body.anny_cache import (
    COMPACT_FILE_PATTERN,
    READY_MARKER_NAME,
    default_cache_dir,
    prepare_anny_cache,
)
from lwgan.body.anny_retarget import (
    ANNY_TO_SMPL,
    align_frames,
    rotation_between,
    smpl_world_rotations,
)
from lwgan.body.camera import camera_to_fit, project
from lwgan.body.rotations import axis_angle_to_matrix
from lwgan.body.skeleton import (
    COCO17_NAMES,
    SMPL_JOINT_NAMES,
    SMPL_MIRROR,
    SMPL_PARENTS,
)
from lwgan.render import rasterize

JOINT = {name: index for index, name in enumerate(SMPL_JOINT_NAMES)}
X_AXIS, Y_AXIS, Z_AXIS = torch.eye(3)
MIRROR_X = torch.tensor([-1.0, 1.0, 1.0])


def zero_pose(batch_size: int = 1) -> torch.Tensor:
    return torch.zeros(batch_size, 24, 3)


def random_inputs(batch_size: int, seed: int = 0, scale: float = 0.4) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    pose = scale * torch.randn(batch_size, 24, 3, generator=generator)
    shape = 0.1 + 0.8 * torch.rand(batch_size, 6, generator=generator)
    return pose, shape


def angle_degrees(vector: torch.Tensor, direction: torch.Tensor) -> float:
    cosine = torch.dot(vector, direction) / (vector.norm() * direction.norm())
    return math.degrees(math.acos(float(cosine.clamp(-1.0, 1.0))))


def mirror_pose(pose: torch.Tensor) -> torch.Tensor:
    """Left-right mirror of SMPL axis-angle: swap sides, negate the y and z components."""
    return pose[:, list(SMPL_MIRROR)] * torch.tensor([1.0, -1.0, -1.0])


@pytest.fixture(scope="module")
def rest(anny_body):
    with torch.no_grad():
        return anny_body(zero_pose())


# --- the zero pose is SMPL's T-pose, facing +z ------------------------------------------------


def test_zero_pose_gives_a_t_pose_facing_plus_z(anny_body, rest):
    joints = rest.joints[0]
    for side, direction in (("left", X_AXIS), ("right", -X_AXIS)):
        arm = joints[JOINT[f"{side}_wrist"]] - joints[JOINT[f"{side}_shoulder"]]
        assert angle_degrees(arm, direction) < 10.0, f"{side} arm not horizontal along {direction.tolist()}"
        forearm = joints[JOINT[f"{side}_wrist"]] - joints[JOINT[f"{side}_elbow"]]
        assert angle_degrees(forearm, direction) < 10.0
        leg = joints[JOINT[f"{side}_ankle"]] - joints[JOINT[f"{side}_hip"]]
        assert angle_degrees(leg, -Y_AXIS) < 10.0, f"{side} leg not vertical"
    keypoints = rest.keypoints[0]
    nose = keypoints[COCO17_NAMES.index("nose")]
    assert nose[2] > joints[JOINT["pelvis"], 2] + 0.05
    assert joints[JOINT["left_hip"], 0] > joints[JOINT["right_hip"], 0]
    assert keypoints[COCO17_NAMES.index("left_shoulder"), 0] > 0 > keypoints[COCO17_NAMES.index("right_shoulder"), 0]
    assert joints[JOINT["head"], 1] > joints[JOINT["pelvis"], 1] > joints[JOINT["left_ankle"], 1]


def test_t_pose_palms_face_down_with_thumbs_forward(anny_body):
    labels = list(anny_body.anny.bone_labels)
    with torch.no_grad():
        output = anny_body.anny(pose_parameters=anny_body.retarget(zero_pose()), phenotype_kwargs=anny_body.default_shape(1))
    heads = output["bone_poses"][0, :, :3, 3] @ torch.tensor(ANNY_TO_SMPL)
    for suffix in (".L", ".R"):
        thumb_tip = heads[labels.index("finger1-3" + suffix)]
        index_knuckle, little_knuckle = heads[labels.index("finger2-1" + suffix)], heads[labels.index("finger5-1" + suffix)]
        across = index_knuckle - little_knuckle
        assert angle_degrees(across, Z_AXIS) < 25.0, "knuckle line should run front to back (palm horizontal)"
        assert thumb_tip[2] > index_knuckle[2], "thumb should point forward"


def test_pelvis_sits_at_the_origin_for_every_shape(anny_body):
    _, shape = random_inputs(4, seed=1)
    with torch.no_grad():
        output = anny_body(zero_pose(4), shape)
    torch.testing.assert_close(output.joints[:, JOINT["pelvis"]], torch.zeros(4, 3), atol=1e-5, rtol=0)


# --- SMPL's sign conventions for elbows, knees and the global orientation ---------------------


def test_elbows_bend_forward_and_keep_their_length(anny_body, rest):
    pose = zero_pose()
    pose[0, JOINT["left_elbow"]] = torch.tensor([0.0, -math.pi / 2, 0.0])
    pose[0, JOINT["right_elbow"]] = torch.tensor([0.0, math.pi / 2, 0.0])
    with torch.no_grad():
        bent = anny_body(pose)
    for side in ("left", "right"):
        elbow, wrist = bent.joints[0, JOINT[f"{side}_elbow"]], bent.joints[0, JOINT[f"{side}_wrist"]]
        rest_length = (rest.joints[0, JOINT[f"{side}_wrist"]] - rest.joints[0, JOINT[f"{side}_elbow"]]).norm()
        assert angle_degrees(wrist - elbow, Z_AXIS) < 10.0, f"{side} wrist should be in front of the elbow"
        torch.testing.assert_close((wrist - elbow).norm(), rest_length, atol=1e-4, rtol=0)
        hand_faces = anny_body.face_part == PART_NAMES.index(f"{side}_hand")
        hand_centre = bent.vertices[0, anny_body.faces[hand_faces].flatten()].mean(0)
        assert hand_centre[2] > elbow[2] + 0.2, "the hand's surface should follow the wrist"


def test_knees_bend_backward_and_keep_their_length(anny_body, rest):
    pose = zero_pose()
    pose[0, JOINT["left_knee"]] = torch.tensor([math.pi / 2, 0.0, 0.0])
    pose[0, JOINT["right_knee"]] = torch.tensor([math.pi / 2, 0.0, 0.0])
    with torch.no_grad():
        bent = anny_body(pose)
    for side in ("left", "right"):
        knee, ankle = bent.joints[0, JOINT[f"{side}_knee"]], bent.joints[0, JOINT[f"{side}_ankle"]]
        rest_length = (rest.joints[0, JOINT[f"{side}_ankle"]] - rest.joints[0, JOINT[f"{side}_knee"]]).norm()
        assert angle_degrees(ankle - knee, -Z_AXIS) < 10.0, f"{side} ankle should be behind the knee"
        torch.testing.assert_close((ankle - knee).norm(), rest_length, atol=1e-4, rtol=0)


def test_global_yaw_turns_the_body_to_face_plus_x(anny_body, rest):
    pose = zero_pose()
    pose[0, 0] = torch.tensor([0.0, math.pi / 2, 0.0])
    with torch.no_grad():
        turned = anny_body(pose)
    rotation = axis_angle_to_matrix(torch.tensor([0.0, math.pi / 2, 0.0]))
    torch.testing.assert_close(turned.joints[0], rest.joints[0] @ rotation.T, atol=3e-3, rtol=0)
    torch.testing.assert_close(turned.vertices[0], rest.vertices[0] @ rotation.T, atol=3e-3, rtol=0)
    assert turned.keypoints[0, COCO17_NAMES.index("nose"), 0] > 0.05


# --- plumbing: translation, batching, gradients, dtype ----------------------------------------


def test_translation_adds_exactly(anny_body):
    pose, shape = random_inputs(2, seed=2)
    translation = torch.tensor([[0.3, -1.2, 2.5], [-0.7, 0.1, 0.0]])
    with torch.no_grad():
        moved = anny_body(pose, shape, translation)
        still = anny_body(pose, shape)
    for name in ("vertices", "joints", "keypoints"):
        torch.testing.assert_close(getattr(moved, name), getattr(still, name) + translation[:, None], atol=1e-5, rtol=0)


def test_batch_of_two_equals_two_singles(anny_body):
    pose, shape = random_inputs(2, seed=3)
    with torch.no_grad():
        batch = anny_body(pose, shape)
        singles = [anny_body(pose[i:i + 1], shape[i:i + 1]) for i in range(2)]
    for name in ("vertices", "joints", "keypoints"):
        stacked = torch.cat([getattr(single, name) for single in singles])
        torch.testing.assert_close(getattr(batch, name), stacked, atol=1e-5, rtol=0)


def test_skeleton_matches_the_skinned_mesh_with_its_gradients(anny_body):
    """skeleton() blends bone transforms per keypoint; forward() skins every vertex and then regresses: the same
    numbers (float64, to 0.1 micrometre: Anny keeps some float32 tables)."""
    body = copy.deepcopy(anny_body).double()
    pose, shape = (tensor.double() for tensor in random_inputs(3, seed=6))
    translation = torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    weights = torch.randn(3, 23, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    gradients = []
    for method in (body.forward, body.skeleton):
        inputs = [tensor.clone().requires_grad_(True) for tensor in (pose, shape)]
        output = method(*inputs, translation)
        ((output.keypoints * weights).sum() + output.joints.square().sum()).backward()
        gradients.append((output.keypoints.detach(), output.joints.detach(), *(tensor.grad for tensor in inputs)))
    for name, full, fast in zip(("keypoints", "joints", "pose gradient", "shape gradient"), *gradients, strict=True):
        torch.testing.assert_close(fast, full, atol=1e-7, rtol=1e-6, msg=lambda message, name=name: f"{name}: {message}")


@pytest.mark.parametrize("start", ["zero", "random"])
def test_gradients_reach_pose_shape_and_translation(anny_body, start):
    pose, shape = random_inputs(2, seed=4)
    if start == "zero":
        pose = zero_pose(2)
        shape = anny_body.default_shape(2)
    inputs = [tensor.clone().requires_grad_(True) for tensor in (pose, shape, torch.zeros(2, 3))]
    output = anny_body(*inputs)
    target = torch.randn_like(output.keypoints)
    ((output.keypoints - target).square().sum() + output.vertices[:, ::50].square().sum()).backward()
    for name, tensor in zip(("pose", "shape", "translation"), inputs, strict=True):
        assert torch.isfinite(tensor.grad).all(), f"non-finite gradient for {name}"
        assert tensor.grad.abs().sum() > 0, f"zero gradient for {name}"
    assert inputs[0].grad[:, 1:].abs().sum(-1).gt(0).sum() >= 2 * 20, "most joints should receive a gradient"


def test_float64_gradients_match_finite_differences(anny_body):
    body = copy.deepcopy(anny_body).double()
    pose, shape = random_inputs(1, seed=5)
    pose = pose.double().requires_grad_(True)
    shape = shape.double().requires_grad_(True)
    weights = torch.randn(1, 23, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def keypoint_projection(pose_argument, shape_argument):
        return (body(pose_argument, shape_argument).keypoints * weights).sum(-1)

    assert torch.autograd.gradcheck(keypoint_projection, (pose, shape), eps=1e-6, atol=1e-5, rtol=1e-4)


# --- left-right symmetry ----------------------------------------------------------------------


def test_mirrored_pose_gives_the_mirrored_mesh(anny_body):
    pose, shape = random_inputs(2, seed=6, scale=0.5)
    with torch.no_grad():
        original = anny_body(pose, shape)
        mirrored = anny_body(mirror_pose(pose), shape)
    expected = (original.vertices * MIRROR_X)[:, anny_body.mirror_vertices]
    error = (mirrored.vertices - expected).norm(dim=-1)
    assert error.max() < 5e-3, f"mirror error max {1000 * error.max():.2f} mm, mean {1000 * error.mean():.3f} mm"
    assert error.mean() < 1e-3
    joint_error = (mirrored.joints - (original.joints * MIRROR_X)[:, list(SMPL_MIRROR)]).norm(dim=-1)
    assert joint_error.max() < 5e-3


def test_mirror_map_is_an_involution_that_swaps_sides(anny_body, rest):
    vertices = rest.vertices[0]
    symmetry = tables.mirror_symmetry(vertices, anny_body.mirror_vertices)
    assert symmetry["involution_fraction"] > 0.99
    assert symmetry["max_distance"] < 1e-3, f"the rest mesh is not symmetric: {symmetry}"
    lateral = vertices[:, 0].abs() > 0.01
    partner_x = vertices[anny_body.mirror_vertices, 0]
    assert (torch.sign(partner_x[lateral]) == -torch.sign(vertices[lateral, 0])).all()


def test_keypoints_mirror_onto_their_partners(anny_body, rest):
    names = anny_body.keypoint_names
    partner = [names.index(name.replace("left", "@").replace("right", "left").replace("@", "right")) for name in names]
    keypoints = rest.keypoints[0]
    torch.testing.assert_close(keypoints[partner] * MIRROR_X, keypoints, atol=2e-3, rtol=0)


# --- mesh tables: parts, masks, cavities, uv --------------------------------------------------


def test_every_part_has_faces_on_its_side(anny_body, rest):
    centroids = rest.vertices[0][anny_body.faces].mean(dim=1)
    part_mean_height = {}
    for part, name in enumerate(PART_NAMES):
        faces = anny_body.face_part == part
        assert faces.sum() > 100, f"part {name} has {int(faces.sum())} faces"
        mean = centroids[faces].mean(0)
        part_mean_height[name] = float(mean[1])
        if name.startswith("left_"):
            assert mean[0] > 0.05, f"{name} should lie at x > 0"
        if name.startswith("right_"):
            assert mean[0] < -0.05, f"{name} should lie at x < 0"
    assert max(part_mean_height, key=part_mean_height.get) == "head"
    top_vertex = rest.vertices[0, :, 1].argmax()
    assert (anny_body.face_part[(anny_body.faces == top_vertex).any(dim=1)] == PART_NAMES.index("head")).all()
    assert min(part_mean_height, key=part_mean_height.get) in ("left_foot", "right_foot")


def test_face_masks_are_non_empty_and_face_forward(anny_body, rest):
    masks = anny_body.face_masks
    normals = tables.face_normals(rest.vertices[0], anny_body.faces)
    head = anny_body.face_part == PART_NAMES.index("head")
    assert torch.equal(masks["head"], head)
    for name in ("front_face", "front_body"):
        assert masks[name].sum() > 500, f"{name} mask is (nearly) empty"
        assert normals[masks[name], 2].mean() > 0.5, f"{name} should face +z"
    assert not (masks["front_face"] & ~head).any()
    assert not (masks["front_body"] & head).any()


def test_cavity_faces_and_their_vertices_are_gone(anny_body):
    cavities = torch.load(anny.paths.get_anny_root_dir() / CAVITY_FILE, weights_only=True)
    anny_faces = anny_body.anny.faces
    assert anny_body.faces.shape == (anny_faces.shape[0] - 2 * len(set(cavities["face_indices"])), 3)
    vertex_count = anny_body.kept_vertices.shape[0]
    assert anny_body.faces.dtype == torch.int64
    assert anny_body.faces.min() == 0 and anny_body.faces.max() == vertex_count - 1
    assert torch.unique(anny_body.faces).shape[0] == vertex_count, "every kept vertex is used by a face"
    cavity_base_ids = torch.tensor(cavities["vertex_indices"])
    kept_base_ids = anny_body.anny.base_mesh_vertex_indices[anny_body.kept_vertices]
    assert not torch.isin(kept_base_ids[anny_body.faces], cavity_base_ids).all(dim=1).any(), "a cavity face survived"
    dropped_vertices = anny_body.anny.template_vertices.shape[0] - vertex_count
    assert dropped_vertices > 1000, "most eyeball, mouth and tongue vertices should go with their faces"


def test_mesh_is_closed_outward_and_uv_in_range(anny_body, rest):
    vertices = rest.vertices[0].double()
    signed_volume = torch.linalg.det(vertices[anny_body.faces]).sum() / 6
    assert 0.04 < signed_volume < 0.15, f"signed volume {float(signed_volume):.3f} m^3: faces should wind outward"
    assert anny_body.uv.dtype == torch.float32
    assert anny_body.uv.min() >= 0 and anny_body.uv.max() <= 1
    assert anny_body.face_uv.shape == anny_body.faces.shape
    assert anny_body.face_uv.min() == 0 and anny_body.face_uv.max() == anny_body.uv.shape[0] - 1


def test_outputs_have_the_documented_shapes_and_names(anny_body):
    output = anny_body(zero_pose(3))
    vertex_count = anny_body.kept_vertices.shape[0]
    assert isinstance(output, BodyOutput)
    assert output.vertices.shape == (3, vertex_count, 3)
    assert output.joints.shape == (3, 24, 3)
    assert output.keypoints.shape == (3, 23, 3) and len(anny_body.keypoint_names) == 23
    assert anny_body.keypoint_names[:17] == COCO17_NAMES
    assert anny_body.mirror_vertices.shape == (vertex_count,)
    assert anny_body.face_part.shape == (anny_body.faces.shape[0],)
    assert torch.equal(anny_body.default_shape(2), torch.tensor([DEFAULT_PHENOTYPES] * 2))
    keypoints, joints = output.keypoints[0], output.joints[0]
    for name in ("left_shoulder", "left_elbow", "left_wrist", "left_hip", "left_knee", "left_ankle"):
        distance = (keypoints[COCO17_NAMES.index(name)] - joints[JOINT[name]]).norm()
        assert distance < 0.1, f"keypoint {name} is {100 * float(distance):.1f} cm from the joint"


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argument", "pose", "shape", "translation"),
    [
        ("pose", torch.zeros(2, 23, 3), None, None),
        ("pose", torch.zeros(24, 3), None, None),
        ("shape", torch.zeros(2, 24, 3), torch.zeros(2, 5), None),
        ("shape", torch.zeros(2, 24, 3), torch.zeros(1, 6), None),
        ("translation", torch.zeros(2, 24, 3), None, torch.zeros(2, 2)),
    ],
)
def test_bad_input_raises_naming_the_argument(anny_body, argument, pose, shape, translation):
    with pytest.raises(ValueError, match=rf"^{argument} must have shape .*got"):
        anny_body(pose, shape, translation)


def test_create_body_model_builds_anny_and_rejects_unknown_kinds():
    assert isinstance(create_body_model("anny"), AnnyBody)
    with pytest.raises(ValueError, match="kind"):
        create_body_model("mano")
    with pytest.raises(ValueError, match="skinning"):
        AnnyBody(skinning="fast")


# --- retarget helpers -------------------------------------------------------------------------


def test_smpl_world_rotations_match_a_joint_by_joint_chain():
    pose, _ = random_inputs(3, seed=7, scale=0.8)
    local = axis_angle_to_matrix(pose)
    expected = [local[:, 0]]
    for joint in range(1, 24):
        expected.append(expected[SMPL_PARENTS[joint]] @ local[:, joint])
    torch.testing.assert_close(smpl_world_rotations(pose), torch.stack(expected, dim=1), atol=1e-5, rtol=0)


def test_rotation_helpers_take_sources_to_targets():
    generator = torch.Generator().manual_seed(8)
    source, target, secondary, target_secondary = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    rotation = rotation_between(source, target)
    torch.testing.assert_close(rotation @ rotation.T, torch.eye(3, dtype=torch.float64))
    torch.testing.assert_close(rotation @ (source / source.norm()), target / target.norm())
    aligned = align_frames(source, secondary, target, target_secondary)
    torch.testing.assert_close(torch.linalg.det(aligned), torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(aligned @ (source / source.norm()), target / target.norm())
    moved = aligned @ secondary
    assert torch.dot(torch.linalg.cross(target, moved), torch.linalg.cross(target, target_secondary)) > 0


# --- cache ------------------------------------------------------------------------------------


def test_cache_is_pruned_to_the_compact_file(anny_body):
    start = time.monotonic()
    anny_dir = prepare_anny_cache()
    assert time.monotonic() - start < 1.0, "a ready cache should be found without building"
    assert anny_dir == default_cache_dir() / "anny"
    files = sorted(path.name for path in anny_dir.rglob("*") if path.is_file())
    assert len(files) == 2 and READY_MARKER_NAME in files
    compact = next(anny_dir.rglob(COMPACT_FILE_PATTERN))
    assert 30e6 < compact.stat().st_size < 80e6


@pytest.mark.slow
def test_concurrent_first_builds_build_once(tmp_path):
    script = "from lwgan.body.anny_cache import prepare_anny_cache; import sys; prepare_anny_cache(sys.argv[1])"
    environment = {**os.environ, "PYTHONPATH": os.getcwd()}
    processes = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stderr=subprocess.PIPE, text=True, env=environment)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=900)[1] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert sum(output.count("Building the Anny body model cache") for output in outputs) == 1, outputs
    files = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*") if path.is_file())
    assert len(files) == 3, files  # the lock file, the marker, the compact model file
    body = AnnyBody(cache_dir=tmp_path)
    assert body.faces.shape[1] == 3


def test_skeleton_skins_a_vertex_sample_exactly_as_the_full_forward(anny_body):
    generator = torch.Generator().manual_seed(3)
    pose = 0.3 * torch.randn(2, 24, 3, generator=generator)
    shape = torch.rand(2, 6, generator=generator)
    sample = torch.arange(5, len(anny_body.mirror_vertices), 37)
    full = anny_body(pose, shape)
    skeleton = anny_body.skeleton(pose, shape, vertex_indices=sample)
    torch.testing.assert_close(skeleton.vertices, full.vertices[:, sample], atol=1e-5, rtol=0)
    assert anny_body.skeleton(pose, shape).vertices is None


def test_a_shared_constant_shape_builds_one_rest_mesh_with_the_same_results(anny_body):
    """Rows with one constant shape (a tracked video) take the shortcut; a shape that needs gradients does not: same numbers."""
    generator = torch.Generator().manual_seed(8)
    pose = 0.3 * torch.randn(3, 24, 3, generator=generator)
    shape = torch.rand(1, 6, generator=generator).expand(3, -1)
    sample = torch.arange(0, len(anny_body.mirror_vertices), 53)
    results = []
    for shape_needs_gradient in (False, True):
        inputs = [pose.clone().requires_grad_(True), shape.clone().requires_grad_(shape_needs_gradient)]
        full = anny_body(*inputs)
        skeleton = anny_body.skeleton(*inputs, vertex_indices=sample)
        (full.vertices.sum() + skeleton.keypoints.square().sum() + skeleton.vertices.square().sum()).backward()
        results.append((full.vertices.detach(), skeleton.keypoints.detach(), skeleton.vertices.detach(), inputs[0].grad))
    for name, shared, separate in zip(("vertices", "keypoints", "sampled vertices", "pose gradient"), *results, strict=True):
        # Float32 rounding, relative to the largest value: the pose gradient sums 13,718 vertices and reaches about 7,000
        # (differences of 0.005 on one machine, 7.7e-7 of it; a wrong shortcut differs by the gradient's own size).
        scale = max(1.0, float(separate.abs().max()))
        torch.testing.assert_close(shared, separate, atol=1e-5 * scale, rtol=1e-5, msg=lambda message, name=name: f"{name}: {message}")


def test_forward_matches_annys_own_forward_with_its_gradients(anny_body):
    """AnnyBody builds Anny's rest bones without its rest mesh and poses them in closed form (lwgan.body.anny_kinematics).

    The reference is Anny's own forward (rest model, level-by-level kinematic chain, skinning) in
    float64. Float32 rounding is measured against the largest value of each output: the vertices'
    squared sum gives pose gradients of several hundred, and Anny's own float32 forward misses its
    float64 one by about 1e-5 of that; a wrong transform misses by the gradient's own size.
    """
    pose, shape = random_inputs(2, seed=9)
    reference_body = copy.deepcopy(anny_body).to(torch.float64)
    results = []
    for body, ours in ((anny_body, True), (reference_body, False)):
        inputs = [tensor.to(body.frame.dtype).clone().requires_grad_(True) for tensor in (pose, shape)]
        if ours:
            output = body(*inputs)
            vertices, bone_heads = output.vertices, output.joints
        else:
            output = body.anny(pose_parameters=body.retarget(inputs[0]), phenotype_kwargs=inputs[1])
            vertices = output["vertices"][:, body.kept_vertices] @ body.frame
            bone_heads = torch.einsum("jn,bnd->bjd", body.joint_weights, output["bone_poses"][..., :3, 3]) @ body.frame
        (vertices.square().sum() + bone_heads.sum()).backward()
        results.append([tensor.double() for tensor in (vertices.detach(), bone_heads.detach(), *(tensor.grad for tensor in inputs))])
    for name, mine, reference in zip(("vertices", "joints", "pose gradient", "shape gradient"), *results, strict=True):
        scale = max(1.0, float(reference.abs().max()))
        torch.testing.assert_close(mine, reference, atol=1e-5 * scale, rtol=0, msg=lambda message, name=name: f"{name}: {message}")


def test_the_silhouette_mesh_draws_the_full_meshs_silhouette_with_fewer_faces(anny_body):
    """Three poses (T-pose, a stride turned sideways, arms down seen from behind) at the fits' 96-pixel crop."""
    coarse_vertices, coarse_faces = anny_body.silhouette_vertices, anny_body.silhouette_faces
    assert torch.equal(coarse_vertices, torch.unique(coarse_vertices)) and coarse_vertices.max() < anny_body.mirror_vertices.shape[0]
    assert coarse_faces.min() == 0 and coarse_faces.max() == len(coarse_vertices) - 1
    assert len(coarse_faces) < 0.5 * len(anny_body.faces)
    pose = zero_pose(3)
    pose[1, 0, 1], pose[1, JOINT["left_hip"], 0], pose[1, JOINT["right_hip"], 0], pose[1, JOINT["right_knee"], 0] = math.pi / 2, -0.6, 0.5, 0.8
    pose[2, 0, 1], pose[2, JOINT["left_shoulder"], 2], pose[2, JOINT["right_shoulder"], 2] = math.pi, -1.2, 1.2
    with torch.no_grad():
        vertices = anny_body(pose).vertices
    vertices_ndc = project(vertices, camera_to_fit(vertices))
    full = rasterize(vertices_ndc, anny_body.faces, 96).mask
    coarse = rasterize(vertices_ndc[:, coarse_vertices], coarse_faces, 96).mask
    iou = (full & coarse).sum(dim=(1, 2)) / (full | coarse).sum(dim=(1, 2))
    assert (iou > 0.985).all(), iou
