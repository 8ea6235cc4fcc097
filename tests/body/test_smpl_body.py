"""SmplBody on a small SMPL-format model built here (plain pkl, pkl with chumpy objects, npz), with smplx."""

import logging
import pickle
import subprocess
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import torch
from scipy.spatial import ConvexHull

pytest.importorskip("smplx")

from lwgan.body import smpl_body  # noqa: E402
from lwgan.body.model import FACE_MASK_NAMES, PART_NAMES  # noqa: E402
from lwgan.body.skeleton import COCO17_NAMES, SMPL_JOINT_NAMES, SMPL_PARENTS  # noqa: E402
from lwgan.body.smpl_body import SmplBody  # noqa: E402


def t_pose_joints() -> np.ndarray:
    """(24, 3) a symmetric T-pose, pelvis off the origin as in SMPL's files."""
    points = {"pelvis": (0, 0, 0), "spine1": (0, 0.1, -0.01), "spine2": (0, 0.24, 0), "spine3": (0, 0.3, 0.01),
              "neck": (0, 0.5, -0.01), "head": (0, 0.6, 0.03)}
    for side, sign in (("left", 1), ("right", -1)):
        points.update({
            f"{side}_hip": (sign * 0.07, -0.09, 0), f"{side}_knee": (sign * 0.1, -0.46, 0),
            f"{side}_ankle": (sign * 0.09, -0.86, -0.04), f"{side}_foot": (sign * 0.11, -0.92, 0.08),
            f"{side}_collar": (sign * 0.08, 0.42, -0.01), f"{side}_shoulder": (sign * 0.17, 0.45, -0.02),
            f"{side}_elbow": (sign * 0.43, 0.44, -0.04), f"{side}_wrist": (sign * 0.68, 0.45, -0.04),
            f"{side}_hand": (sign * 0.77, 0.44, -0.05),
        })
    return np.array([points[name] for name in SMPL_JOINT_NAMES]) + np.array([0.0, -0.22, 0.03])


def convex_part(points: np.ndarray, offset: int) -> np.ndarray:
    """Outward-wound triangles of the convex hull of `points`, indices shifted by `offset`."""
    faces = ConvexHull(points).simplices
    corners = points[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    outward = ((corners.mean(axis=1) - points.mean(axis=0)) * normals).sum(-1) > 0
    faces[~outward] = faces[~outward][:, ::-1]
    return faces + offset


def build_model(seed: int = 0) -> tuple[dict, dict]:
    """A small SMPL-format model (same keys, shapes and dtypes as the official file) and its vertex ids.

    Each joint is an octahedron (6 vertices, J_regressor averages them, skinned to the joint); each
    bone is a box skinned to its parent joint. Symmetric under x -> -x.
    """
    joints = t_pose_joints()
    unit = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float64)
    vertices, faces, owner = [], [], []
    for joint, centre in enumerate(joints):
        faces.append(convex_part(centre + 0.04 * unit, len(owner)))
        vertices.append(centre + 0.04 * unit)
        owner += [joint] * 6
    regressor = scipy.sparse.csc_matrix((np.full(24 * 6, 1 / 6), (np.repeat(np.arange(24), 6), np.arange(24 * 6))), shape=(24, 24 * 6 + 23 * 8))
    for child, parent in enumerate(SMPL_PARENTS):
        if parent < 0:
            continue
        start, end = joints[parent], joints[child]
        direction = (end - start) / np.linalg.norm(end - start)
        reference = np.array([0.0, 0.0, 1.0]) if abs(direction[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
        across = np.cross(direction, reference)
        across /= np.linalg.norm(across)
        other = np.cross(direction, across)
        box = np.array([point + 0.025 * (a * across + b * other) for point in (start, end) for a in (-1, 1) for b in (-1, 1)])
        faces.append(convex_part(box, len(owner)))
        vertices.append(box)
        owner += [parent] * 8
    vertices = np.concatenate(vertices)
    generator = np.random.default_rng(seed)
    num_vertices = len(vertices)
    weights = np.zeros((num_vertices, 24))
    weights[np.arange(num_vertices), owner] = 1.0
    kintree = np.array([SMPL_PARENTS, range(24)], dtype=np.int64)
    kintree[0, 0] = 4294967295
    model = {
        "v_template": vertices.astype(np.float64),
        "f": np.concatenate(faces).astype(np.uint32),
        "shapedirs": generator.normal(scale=0.01, size=(num_vertices, 3, 10)),
        "posedirs": generator.normal(scale=0.001, size=(num_vertices, 3, 207)),
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": kintree.astype(np.uint32),
        "bs_style": "lbs",
    }
    head, neck = SMPL_JOINT_NAMES.index("head") * 6, SMPL_JOINT_NAMES.index("neck") * 6
    index = {name: SMPL_JOINT_NAMES.index(name) * 6 for name in ("left_foot", "right_foot", "left_ankle", "right_ankle")}
    vertex_ids = {
        "nose": head + 4, "leye": head + 0, "reye": head + 1, "lear": neck + 0, "rear": neck + 1,
        "LBigToe": index["left_foot"] + 4, "LSmallToe": index["left_foot"] + 0, "LHeel": index["left_ankle"] + 5,
        "RBigToe": index["right_foot"] + 4, "RSmallToe": index["right_foot"] + 1, "RHeel": index["right_ankle"] + 5,
    }
    return model, vertex_ids


def pickle_with_chumpy(model: dict) -> bytes:
    """Pickle `model` with some arrays as objects of a class named chumpy.ch.Ch (as official SMPL files are)."""

    class Ch:
        def __init__(self, x):
            self.x = np.asarray(x)
            self._dirty_vars = set()
            self._itr = None

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    package, module = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
    module.Ch, package.ch = Ch, module
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = package, module
    try:
        chumpy_keys = ("shapedirs", "posedirs", "v_template", "weights")
        return pickle.dumps({key: Ch(value) if key in chumpy_keys else value for key, value in model.items()}, protocol=2)
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("smpl")
    model, vertex_ids = build_model()
    (folder / "plain.pkl").write_bytes(pickle.dumps(model, protocol=2))
    (folder / "chumpy.pkl").write_bytes(pickle_with_chumpy(model))
    dense = {key: value for key, value in model.items() if key != "bs_style"}
    dense["J_regressor"] = model["J_regressor"].toarray()
    np.savez(folder / "model.npz", **dense)
    return folder, model, vertex_ids


@pytest.fixture(scope="module")
def body(model_files):
    folder, _, vertex_ids = model_files
    return SmplBody(folder / "plain.pkl", vertex_ids=vertex_ids)


def random_inputs(batch: int, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    pose = 0.4 * torch.randn(batch, 24, 3, generator=generator)
    shape = torch.randn(batch, 10, generator=generator)
    translation = torch.randn(batch, 3, generator=generator)
    return pose, shape, translation


def test_all_file_formats_give_the_same_body(model_files, body):
    folder, _, vertex_ids = model_files
    assert "chumpy" not in sys.modules
    pose, shape, translation = random_inputs(3)
    expected = body(pose, shape, translation)
    for name in ("chumpy.pkl", "model.npz"):
        other = SmplBody(folder / name, vertex_ids=vertex_ids)(pose, shape, translation)
        torch.testing.assert_close(other.vertices, expected.vertices)
        torch.testing.assert_close(other.keypoints, expected.keypoints)
    assert "chumpy" not in sys.modules


def test_agrees_with_smplx_reading_the_file_itself(model_files, body):
    import smplx

    folder, model, vertex_ids = model_files
    reference = smplx.SMPL(str(folder / "plain.pkl"), vertex_ids=vertex_ids, use_hands=False, use_feet_keypoints=False)
    pose, shape, translation = random_inputs(2, seed=4)
    with torch.no_grad():
        smplx_output = reference(betas=shape, global_orient=pose[:, 0], body_pose=pose[:, 1:].reshape(2, 69))
        ours = body(pose, shape, translation)
    rest_joints = model["J_regressor"].toarray() @ (model["v_template"][None] + np.einsum("vck,bk->bvc", model["shapedirs"], shape.double().numpy()))
    pelvis = torch.from_numpy(rest_joints[:, 0]).float()
    torch.testing.assert_close(ours.vertices, smplx_output.vertices - pelvis[:, None] + translation[:, None], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.joints, smplx_output.joints[:, :24] - pelvis[:, None] + translation[:, None], atol=1e-5, rtol=1e-5)


def test_zero_pose_is_the_template_minus_its_pelvis(model_files, body):
    _, model, _ = model_files
    output = body(torch.zeros(1, 24, 3))
    pelvis = t_pose_joints()[0]
    np.testing.assert_allclose(output.vertices[0].numpy(), model["v_template"] - pelvis, atol=1e-6)
    np.testing.assert_allclose(output.joints[0].numpy(), t_pose_joints() - pelvis, atol=1e-6)
    torch.testing.assert_close(output.joints[0, 0], torch.zeros(3))


def test_global_orientation_rotates_rigidly_about_the_pelvis(body):
    rest = body(torch.zeros(1, 24, 3))
    pose = torch.zeros(2, 24, 3)
    pose[0, 0] = torch.tensor([0.0, 0.0, 1.0])
    pose[1, 0] = torch.tensor([torch.pi, 0.0, 0.0])  # the upright flip of lwgan.body.camera
    translation = torch.tensor([[0.0, 0.0, 0.0], [0.5, -0.2, 3.0]])
    output = body(pose, translation=translation)
    cos, sin = np.cos(1.0), np.sin(1.0)
    about_z = torch.tensor([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]], dtype=torch.float32)
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
    torch.testing.assert_close(output.vertices[0], rest.vertices[0] @ about_z.T, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(output.vertices[1], rest.vertices[0] @ flip.T + translation[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(output.joints[:, 0], translation)


def test_translation_is_the_pelvis_for_any_shape_and_pose(body):
    pose, shape, translation = random_inputs(4, seed=7)
    output = body(pose, shape, translation)
    torch.testing.assert_close(output.joints[:, 0], translation, atol=1e-5, rtol=1e-5)


def test_output_shapes_and_keypoints(model_files, body):
    _, model, vertex_ids = model_files
    pose, shape, translation = random_inputs(5)
    output = body(pose, shape, translation)
    num_vertices = model["v_template"].shape[0]
    assert output.vertices.shape == (5, num_vertices, 3) and output.joints.shape == (5, 24, 3)
    assert body.keypoint_names[:17] == COCO17_NAMES and len(body.keypoint_names) == 23
    assert output.keypoints.shape == (5, 23, 3) and output.vertices.dtype == torch.float32
    names = body.keypoint_names
    torch.testing.assert_close(output.keypoints[:, names.index("nose")], output.vertices[:, vertex_ids["nose"]])
    torch.testing.assert_close(output.keypoints[:, names.index("right_ear")], output.vertices[:, vertex_ids["rear"]])
    torch.testing.assert_close(output.keypoints[:, names.index("left_heel")], output.vertices[:, vertex_ids["LHeel"]])
    for name in ("left_shoulder", "right_elbow", "left_wrist", "right_hip", "left_knee", "right_ankle"):
        torch.testing.assert_close(output.keypoints[:, names.index(name)], output.joints[:, SMPL_JOINT_NAMES.index(name)])
    assert body.shape_dim == 10 and body.default_shape(2).shape == (2, 10)
    with pytest.raises(ValueError, match=r"pose must have shape \(\*, 24, 3\)"):
        body(torch.zeros(2, 72))
    with pytest.raises(ValueError, match="shape must have shape"):
        body(torch.zeros(2, 24, 3), torch.zeros(2, 11))


def test_gradients_flow_to_pose_and_shape(body):
    pose, shape, _ = random_inputs(2)
    pose.requires_grad_(True)
    shape.requires_grad_(True)
    body(pose, shape).vertices.square().sum().backward()
    assert torch.isfinite(pose.grad).all() and pose.grad.abs().sum() > 0 and shape.grad.abs().sum() > 0


def test_tables(model_files, body):
    _, model, vertex_ids = model_files
    num_faces = model["f"].shape[0]
    assert body.faces.dtype == torch.int64 and body.faces.shape == (num_faces, 3)
    assert body.face_part.shape == (num_faces,) and int(body.face_part.max()) < len(PART_NAMES)
    head = PART_NAMES.index("head")
    assert set(body.face_part.tolist()) == set(range(len(PART_NAMES)))
    assert sorted(body.face_masks) == sorted(FACE_MASK_NAMES)
    for mask in body.face_masks.values():
        assert mask.dtype == torch.bool and mask.shape == (num_faces,)
    assert torch.equal(body.face_masks["head"], body.face_part == head)
    assert body.face_masks["front_face"].any() and not (body.face_masks["front_face"] & ~body.face_masks["head"]).any()
    mirror = body.mirror_vertices
    assert torch.equal(mirror[mirror], torch.arange(len(mirror)))
    assert mirror[vertex_ids["nose"]] == vertex_ids["nose"] and mirror[vertex_ids["leye"]] == vertex_ids["reye"]
    buffers = dict(body.named_buffers())
    for name in ("faces", "uv", "face_uv", "face_part", "mirror_vertices", *(f"face_mask_{n}" for n in FACE_MASK_NAMES)):
        assert name in buffers


def test_fallback_atlas_packs_parts_in_separate_tiles(model_files, monkeypatch, caplog):
    folder, _, vertex_ids = model_files
    monkeypatch.setattr(smpl_body, "_warned_about_uv", False)
    with caplog.at_level(logging.WARNING, logger="lwgan.body.smpl_body"):
        body = SmplBody(folder / "plain.pkl", vertex_ids=vertex_ids)
        SmplBody(folder / "model.npz", vertex_ids=vertex_ids)
    assert sum("cylindrical UV atlas" in record.getMessage() for record in caplog.records) == 1
    uv, face_uv = body.uv, body.face_uv
    assert uv.shape[1] == 2 and (uv >= 0).all() and (uv <= 1).all()
    assert face_uv.shape == body.faces.shape and int(face_uv.max()) < len(uv)
    corners = uv[face_uv]  # (F, 3, 2)
    tile = (corners[..., 0] * 4).floor() + 4 * ((1 - corners[..., 1]) * 3).floor()
    assert torch.equal(tile, body.face_part[:, None].expand(-1, 3).to(tile.dtype))
    edges = corners[:, 1:] - corners[:, :1]
    area = 0.5 * (edges[:, 0, 0] * edges[:, 1, 1] - edges[:, 0, 1] * edges[:, 1, 0]).abs()
    assert (area > 1e-7).float().mean() > 0.9


def write_obj(path, vertices, faces, uv, rotate: bool):
    lines = [f"v {x} {y} {z}" for x, y, z in vertices] + [f"vt {u} {v}" for u, v in uv]
    order = np.random.default_rng(0).permutation(len(faces))
    for face in faces[order]:
        corners = [f"{index + 1}/{index + 1}" for index in face]
        if rotate:
            corners = corners[1:] + corners[:1]
        lines.append("f " + " ".join(corners))
    path.write_text("\n".join(lines) + "\n")


def test_uv_from_an_obj_file(model_files, tmp_path):
    folder, model, vertex_ids = model_files
    vertices, faces = model["v_template"], model["f"].astype(np.int64)
    uv = (vertices[:, :2] - vertices[:, :2].min(0)) / np.ptp(vertices[:, :2], axis=0)
    write_obj(tmp_path / "smpl_uv.obj", vertices, faces, uv, rotate=True)
    body = SmplBody(folder / "plain.pkl", uv_path=tmp_path / "smpl_uv.obj", vertex_ids=vertex_ids)
    np.testing.assert_allclose(body.uv[body.face_uv].numpy(), uv[faces], atol=1e-6)

    write_obj(tmp_path / "other.obj", vertices, faces[:, ::-1], uv, rotate=False)  # other winding: other triangles
    with pytest.raises(ValueError, match="other.obj: its faces do not match"):
        SmplBody(folder / "plain.pkl", uv_path=tmp_path / "other.obj", vertex_ids=vertex_ids)


def test_missing_files_name_the_expected_path(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="absent.pkl") as error:
        SmplBody(tmp_path / "absent.pkl")
    assert "https://smpl.is.tue.mpg.de" in str(error.value) and "non-commercial" in str(error.value)
    monkeypatch.setattr(smpl_body, "SMPL_DIRECTORY", tmp_path / "assets" / "smpl")
    with pytest.raises(FileNotFoundError, match="SMPL_NEUTRAL.pkl") as error:
        SmplBody()
    assert str(tmp_path / "assets" / "smpl") in str(error.value)


def test_default_folder_is_searched(model_files, tmp_path, monkeypatch):
    folder, _, vertex_ids = model_files
    (tmp_path / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl").write_bytes((folder / "chumpy.pkl").read_bytes())
    monkeypatch.setattr(smpl_body, "SMPL_DIRECTORY", tmp_path)
    assert SmplBody(vertex_ids=vertex_ids).model_path.name == "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
    assert SmplBody(tmp_path, vertex_ids=vertex_ids).faces.shape[1] == 3


def test_not_a_body_model(model_files, tmp_path):
    folder, model, vertex_ids = model_files
    path = tmp_path / "not_a_model.pkl"
    path.write_bytes(pickle.dumps({"f": model["f"], "weights": model["weights"]}, protocol=2))
    with pytest.raises(ValueError, match="not an SMPL model: missing key") as error:
        SmplBody(path, vertex_ids=vertex_ids)
    assert str(path) in str(error.value) and "v_template" in str(error.value) and "J_regressor" in str(error.value)
    path.write_bytes(pickle.dumps({**model, "weights": model["weights"][:, :20]}, protocol=2))
    with pytest.raises(ValueError, match=r"'weights' must have shape \(\d+, 24\)"):
        SmplBody(path, vertex_ids=vertex_ids)
    path.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(ValueError, match="expected a dict"):
        SmplBody(path, vertex_ids=vertex_ids)


def test_default_vertex_ids_need_the_full_mesh(model_files):
    folder, _, _ = model_files
    with pytest.raises(ValueError, match="pass vertex_ids"):
        SmplBody(folder / "plain.pkl")


def test_smplx_is_optional(model_files, monkeypatch):
    folder, _, vertex_ids = model_files
    monkeypatch.setitem(sys.modules, "smplx", None)  # makes `import smplx` fail
    with pytest.raises(ImportError, match=r"pip install lwgan\[smpl\]"):
        SmplBody(folder / "plain.pkl", vertex_ids=vertex_ids)


def test_importing_the_body_package_does_not_import_smplx():
    code = "import sys, lwgan.body, lwgan.body.smpl_body; assert 'smplx' not in sys.modules, 'smplx imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
