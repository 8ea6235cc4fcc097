"""SmplBody: the SMPL body model (smplx, user-supplied licensed files) behind the BodyModel interface."""

from __future__ import annotations

import contextlib
import io
import logging
import os
from pathlib import Path

import numpy as np
import torch

from lwgan.body.model import PART_NAMES, BodyModel, BodyOutput
from lwgan.body.skeleton import BODY_KEYPOINT_NAMES, SMPL_JOINT_NAMES
from lwgan.body.tables import (
    face_masks_from_rest,
    face_parts_from_weights,
    mirror_vertex_map,
    silhouette_mesh,
)
from lwgan.io.safe_unpickling import load_pickle_dict

logger = logging.getLogger(__name__)

SMPL_DIRECTORY = Path(__file__).resolve().parents[2] / "assets" / "smpl"
"""Default folder of the licensed SMPL files (assets/smpl/ of the repository; see its README.md)."""

SMPL_FILE_NAMES = (
    "SMPL_NEUTRAL.pkl",                             # SMPL 1.1 / smplx layout
    "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl",   # SMPLify release
    "smpl_model.pkl",                               # LWGAN's assets/pretrains
    "SMPL_NEUTRAL.npz",
)
"""File names looked for, in this order, when model_path is a folder or not given."""

SMPL_URL = "https://smpl.is.tue.mpg.de"

REQUIRED_KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")
"""Arrays every SMPL model file holds (official pkl files hold more, which are ignored)."""

VERTEX_KEYPOINTS = {
    "nose": "nose", "left_eye": "leye", "right_eye": "reye", "left_ear": "lear", "right_ear": "rear",
    "left_big_toe": "LBigToe", "left_small_toe": "LSmallToe", "left_heel": "LHeel",
    "right_big_toe": "RBigToe", "right_small_toe": "RSmallToe", "right_heel": "RHeel",
}
"""Keypoints read off single mesh vertices: our name -> smplx vertex_ids key."""

"""Keypoints after COCO-17 in BodyOutput.keypoints (the foot points of COCO-WholeBody, in its order)."""

_warned_about_uv = False


def _smplx():
    """Import smplx on demand: it is an optional extra with a non-commercial licence."""
    try:
        import smplx
    except ImportError as error:
        raise ImportError("the SMPL body needs the optional package smplx: pip install lwgan[smpl]") from error
    return smplx


def resolve_model_path(model_path: str | os.PathLike | None = None) -> Path:
    """The SMPL file to load: `model_path` itself, or the first of SMPL_FILE_NAMES in it (a folder) or in assets/smpl/.

    Raises FileNotFoundError naming the expected path(s) and where to get SMPL.
    """
    folder = SMPL_DIRECTORY if model_path is None else Path(model_path)
    if model_path is not None and not folder.is_dir():
        if folder.is_file():
            return folder
        expected = f"{folder}"
    else:
        for name in SMPL_FILE_NAMES:
            if (folder / name).is_file():
                return folder / name
        expected = f"one of {', '.join(str(folder / name) for name in SMPL_FILE_NAMES)}"
    raise FileNotFoundError(
        f"SMPL model file not found: expected {expected}. SMPL is licensed for non-commercial use and is "
        f"not shipped: register at {SMPL_URL}, download the SMPL model, and put the file there or pass "
        "model_path (see assets/smpl/README.md)."
    )


def _dense(array, source: str, key: str) -> np.ndarray:
    if hasattr(array, "toarray"):  # scipy.sparse
        array = array.toarray()
    try:
        return np.asarray(array)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: '{key}' is not an array ({type(array).__name__}: {error})") from error


def load_smpl_data(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read and check the arrays of an SMPL model file (.pkl through lwgan.io.safe_unpickling, .npz without pickles).

    Returns REQUIRED_KEYS -> dense numpy arrays: v_template (V, 3), f (F, 3), shapedirs (V, 3, K),
    posedirs (V, 3, 207), J_regressor (24, V), weights (V, 24), kintree_table (2, 24).
    Raises ValueError naming the file and the missing keys or wrong shapes.
    """
    path = Path(path)
    source = str(path)
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                data = {key: archive[key] for key in archive.files}
        except (ValueError, OSError, EOFError) as error:
            raise ValueError(
                f"{source}: not a readable SMPL npz ({error}); J_regressor must be stored dense in an npz"
            ) from error
    else:
        data = load_pickle_dict(path, REQUIRED_KEYS, "an SMPL model")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise ValueError(f"{source}: not an SMPL model: missing key(s) {missing}; found {sorted(map(str, data))}")
    arrays = {key: _dense(data[key], source, key) for key in REQUIRED_KEYS}
    num_vertices = arrays["v_template"].shape[0]
    if arrays["posedirs"].ndim == 2:
        arrays["posedirs"] = arrays["posedirs"].reshape(num_vertices, 3, -1)
    expected = {
        "v_template": (num_vertices, 3), "f": (None, 3), "shapedirs": (num_vertices, 3, None),
        "posedirs": (num_vertices, 3, 207), "J_regressor": (24, num_vertices), "weights": (num_vertices, 24),
        "kintree_table": (2, 24),
    }
    for key, shape in expected.items():
        actual = arrays[key].shape
        if len(actual) != len(shape) or any(size is not None and size != got for size, got in zip(shape, actual)):
            wanted = "(" + ", ".join("*" if size is None else str(size) for size in shape) + ")"
            raise ValueError(f"{source}: '{key}' must have shape {wanted} for an SMPL model, got {actual}")
    faces = arrays["f"].astype(np.int64)
    if faces.min() < 0 or faces.max() >= num_vertices:
        raise ValueError(f"{source}: 'f' indexes vertices outside [0, {num_vertices})")
    arrays["f"] = faces
    return arrays


def read_obj_uv(path: str | os.PathLike, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Texture coordinates from an OBJ text with `vt` and `f v/vt ...` lines (SMPL's smpl_uv.obj, LWGAN's mapper.txt).

    Args:
        path: the OBJ file.
        faces: (F, 3) int64 faces of the model; the OBJ must have the same triangles (any order, any
            starting corner).
    Returns:
        uv (T, 2) float32 in [0, 1] with v up, face_uv (F, 3) int64 in the corner order of `faces`.
    Raises FileNotFoundError, or ValueError naming the file and the line or face that does not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"UV file not found: {path}")
    texture: list[list[float]] = []
    corners: dict[tuple[int, int, int], tuple[int, int, int]] = {}
    num_positions = 0
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        try:
            if words[0] == "v":
                num_positions += 1
            elif words[0] == "vt":
                texture.append([float(words[1]), float(words[2])])
            elif words[0] == "f":
                if len(words) != 4:
                    raise ValueError(f"only triangles are supported, found {len(words) - 1} corners")
                pairs = [word.split("/") for word in words[1:]]
                if any(len(pair) < 2 or not pair[1] for pair in pairs):
                    raise ValueError("face corners need a texture index (v/vt)")
                vertex = [int(pair[0]) for pair in pairs]
                uv_index = [int(pair[1]) for pair in pairs]
                vertex = [index - 1 if index > 0 else num_positions + index for index in vertex]
                uv_index = [index - 1 if index > 0 else len(texture) + index for index in uv_index]
                for shift in range(3):
                    key = tuple(vertex[shift:] + vertex[:shift])
                    corners[key] = tuple(uv_index[shift:] + uv_index[:shift])
        except (ValueError, IndexError) as error:
            raise ValueError(f"{path}:{number}: cannot read {line.strip()!r} ({error})") from None
    if not texture:
        raise ValueError(f"{path}: no texture coordinates ('vt' lines)")
    face_uv = np.empty_like(faces)
    for index, face in enumerate(faces.tolist()):
        found = corners.get(tuple(face))
        if found is None:
            raise ValueError(f"{path}: its faces do not match the model's: no triangle {face} (face {index})")
        face_uv[index] = found
    uv = np.asarray(texture, dtype=np.float32)
    if face_uv.min() < 0 or face_uv.max() >= len(uv):
        raise ValueError(f"{path}: a face uses a texture index outside the {len(uv)} 'vt' lines")
    return uv, face_uv


def cylindrical_atlas(vertices: np.ndarray, faces: np.ndarray, face_part: np.ndarray, columns: int = 4, rows: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A UV atlas without a UV file: each body part unrolled about its long axis into its own tile.

    Each part (PART_NAMES) is projected onto a cylinder around its principal axis through its
    centre (angle -> u, height -> v), the seam behind the body (under the feet for the feet), and
    placed in tile `part` of a columns x rows grid with a small margin. Corners on either side of
    the seam get separate texture coordinates.

    Args:
        vertices: (V, 3) rest vertices facing +z, y up.
        faces: (F, 3) int64.
        face_part: (F,) int64 index into PART_NAMES.
    Returns:
        uv (T, 2) float32 in [0, 1] (v up), face_uv (F, 3) int64.
    """
    if columns * rows < len(PART_NAMES):
        raise ValueError(f"a {columns}x{rows} grid has fewer tiles than the {len(PART_NAMES)} parts")
    margin = 0.02
    corner_uv = np.zeros((faces.shape[0], 3, 2))
    for part in range(len(PART_NAMES)):
        selected = np.flatnonzero(face_part == part)
        if selected.size == 0:
            continue
        points = vertices[np.unique(faces[selected])]
        centre = points.mean(axis=0)
        _, vectors = np.linalg.eigh(np.cov((points - centre).T) + 1e-12 * np.eye(3))
        axis = vectors[:, -1] * (1.0 if vectors[1, -1] >= 0 else -1.0)
        front = np.array([0.0, 0.0, 1.0])
        first = front - axis * np.dot(front, axis)
        if np.linalg.norm(first) < 0.3:  # part along z (the feet): seam underneath
            up = np.array([0.0, 1.0, 0.0])
            first = up - axis * np.dot(up, axis)
        first /= np.linalg.norm(first)
        second = np.cross(axis, first)
        relative = vertices[faces[selected]] - centre  # (n, 3 corners, 3)
        angle = np.arctan2(relative @ second, relative @ first)
        angle = angle[:, :1] + np.angle(np.exp(1j * (angle - angle[:, :1])))  # unwrap across the seam
        height = relative @ axis
        u = (angle - angle.min()) / max(np.ptp(angle), 1e-9)
        v = (height - height.min()) / max(np.ptp(height), 1e-9)
        column, row = part % columns, part // columns
        corner_uv[selected, :, 0] = (column + margin + (1 - 2 * margin) * u) / columns
        corner_uv[selected, :, 1] = 1.0 - (row + 1 - margin - (1 - 2 * margin) * v) / rows
    keys = np.concatenate([faces.reshape(-1, 1).astype(np.float64), corner_uv.reshape(-1, 2)], axis=1)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    return unique[:, 1:].astype(np.float32), inverse.reshape(faces.shape).astype(np.int64)


class SmplBody(BodyModel):
    """SMPL (Loper et al. 2015) through smplx.SMPL, with our conventions.

    Origin: the pelvis. Outputs are shifted by the rest pelvis of the given shape (J_regressor row 0
    applied to v_template + shapedirs . betas), so pose[:, 0] rotates the body about the pelvis and
    `translation` is the pelvis position; a zero pose and zero translation give v_template minus
    its pelvis. This is the Anny backend's choice too, so both bodies take the same translations.

    Keypoints (BodyOutput.keypoints, names in keypoint_names): COCO-17 with the nose, eyes and ears
    read off single vertices (smplx's vertex ids) and the shoulders, elbows, wrists, hips, knees and
    ankles taken from the SMPL joints of the same name (SMPL's hip joints sit inside the pelvis,
    a little lower and more medial than COCO's annotated hips); then the six foot points of
    FOOT_KEYPOINT_NAMES (vertices).

    Args:
        model_path: an SMPL .pkl (official files with chumpy objects work without chumpy; read with
            the restricted unpickler of lwgan.io.safe_unpickling) or .npz (dense J_regressor), or a folder
            holding one of SMPL_FILE_NAMES; assets/smpl/ when None.
        uv_path: OBJ text with `vt` and `f v/vt` lines for the same triangles (SMPL's smpl_uv.obj,
            LWGAN's mapper.txt). When None a per-part cylindrical atlas is built (warning logged once).
        vertex_ids: smplx-style dict name -> vertex index for the keys of VERTEX_KEYPOINTS; smplx's
            SMPL ids when None (those need the 6890-vertex SMPL mesh).
        num_betas: number of shape coefficients used (at most the file's).
    Raises:
        ImportError: smplx is not installed (pip install lwgan[smpl]).
        FileNotFoundError: no SMPL file at the expected path.
        ValueError: the file is not an SMPL model (the message names the file and what is missing).
    """

    name = "smpl"

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        uv_path: str | os.PathLike | None = None,
        vertex_ids: dict[str, int] | None = None,
        num_betas: int = 10,
    ) -> None:
        super().__init__()
        smplx = _smplx()
        path = resolve_model_path(model_path)
        data = load_smpl_data(path)
        num_vertices = data["v_template"].shape[0]
        if vertex_ids is None:
            vertex_ids = smplx.vertex_ids.vertex_ids["smplh"]
        missing = [key for key in VERTEX_KEYPOINTS.values() if key not in vertex_ids]
        if missing:
            raise ValueError(f"vertex_ids lacks {missing}")
        out_of_range = {key: vertex_ids[key] for key in VERTEX_KEYPOINTS.values() if not 0 <= vertex_ids[key] < num_vertices}
        if out_of_range:
            raise ValueError(
                f"{path}: the model has {num_vertices} vertices but vertex_ids {out_of_range} lie outside; "
                "pass vertex_ids for this mesh (smplx's defaults are for the 6890-vertex SMPL mesh)"
            )
        num_betas = min(num_betas, data["shapedirs"].shape[2])
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):  # smplx prints a notice about 10-beta models
            self.smpl = smplx.SMPL(
                model_path=str(path), data_struct=smplx.utils.Struct(**data), num_betas=num_betas,
                create_betas=False, create_global_orient=False, create_body_pose=False, create_transl=False,
                vertex_ids=vertex_ids, use_hands=False, use_feet_keypoints=False,
            )
        if printed.getvalue().strip():
            logger.debug("smplx: %s", printed.getvalue().strip())
        num_betas = self.smpl.num_betas
        self.shape_dim = num_betas
        self.model_path = path

        v_template = torch.as_tensor(data["v_template"], dtype=torch.float32)
        faces = torch.as_tensor(data["f"], dtype=torch.int64)
        pelvis_weights = torch.as_tensor(data["J_regressor"][0], dtype=torch.float32)
        shapedirs = torch.as_tensor(data["shapedirs"][:, :, :num_betas], dtype=torch.float32)
        self.register_buffer("pelvis_template", pelvis_weights @ v_template)
        self.register_buffer("pelvis_shapedirs", torch.einsum("v,vck->ck", pelvis_weights, shapedirs))

        self.keypoint_names = BODY_KEYPOINT_NAMES
        from_vertices = [name for name in self.keypoint_names if name in VERTEX_KEYPOINTS]
        from_joints = [name for name in self.keypoint_names if name not in VERTEX_KEYPOINTS]
        self.register_buffer("keypoint_vertices", torch.tensor([vertex_ids[VERTEX_KEYPOINTS[name]] for name in from_vertices]))
        self.register_buffer("keypoint_joints", torch.tensor([SMPL_JOINT_NAMES.index(name) for name in from_joints]))
        order = [(from_vertices + from_joints).index(name) for name in self.keypoint_names]
        self.register_buffer("keypoint_order", torch.tensor(order))

        weights = torch.as_tensor(data["weights"], dtype=torch.float32)
        face_part = face_parts_from_weights(weights, faces)
        if uv_path is not None:
            uv, face_uv = read_obj_uv(uv_path, data["f"])
        else:
            global _warned_about_uv
            if not _warned_about_uv:
                logger.warning("SmplBody: no uv_path given; using a generated per-part cylindrical UV atlas")
                _warned_about_uv = True
            uv, face_uv = cylindrical_atlas(data["v_template"].astype(np.float64), data["f"], face_part.numpy())
        self.register_buffer("faces", faces)
        self.register_buffer("uv", torch.as_tensor(uv, dtype=torch.float32))
        self.register_buffer("face_uv", torch.as_tensor(face_uv, dtype=torch.int64))
        self.register_buffer("face_part", face_part)
        for mask_name, mask in face_masks_from_rest(v_template, faces, face_part).items():
            self.register_buffer(f"face_mask_{mask_name}", mask)
        self.register_buffer("mirror_vertices", mirror_vertex_map(v_template))
        coarse = silhouette_mesh(v_template, faces, weights)
        self.register_buffer("silhouette_vertices", coarse.vertices)
        self.register_buffer("silhouette_faces", coarse.faces)

    def default_shape(self, batch_size: int = 1) -> torch.Tensor:
        """(batch_size, shape_dim) zero betas: SMPL's mean shape."""
        return torch.zeros(batch_size, self.shape_dim, device=self.pelvis_template.device)

    def rest_pelvis(self, shape: torch.Tensor) -> torch.Tensor:
        """(B, shape_dim) betas -> (B, 3) pelvis of the unposed body in SMPL's file coordinates."""
        return self.pelvis_template + shape @ self.pelvis_shapedirs.T

    def forward(
        self,
        pose: torch.Tensor,
        shape: torch.Tensor | None = None,
        translation: torch.Tensor | None = None,
    ) -> BodyOutput:
        """Pose the body.

        Args:
            pose: (B, 24, 3) SMPL axis-angle; pose[:, 0] is the global orientation about the pelvis.
            shape: (B, shape_dim) betas, zeros when None.
            translation: (B, 3) metres: the pelvis position; zero when None.
        Returns:
            BodyOutput: vertices (B, V, 3), joints (B, 24, 3), keypoints (B, 23, 3) (COCO-17 then
            FOOT_KEYPOINT_NAMES), float32, in the y-up body frame.
        """
        pose, shape, translation = self.prepare_inputs(pose, shape, translation, self.pelvis_template.dtype)
        batch_size = pose.shape[0]
        output = self.smpl(
            betas=shape, global_orient=pose[:, 0], body_pose=pose[:, 1:].reshape(batch_size, 69),
        )
        offset = (translation - self.rest_pelvis(shape))[:, None]
        vertices = output.vertices + offset
        joints = output.joints[:, :24] + offset
        keypoints = torch.cat([vertices[:, self.keypoint_vertices], joints[:, self.keypoint_joints]], dim=1)
        return BodyOutput(vertices=vertices, joints=joints, keypoints=keypoints[:, self.keypoint_order])
