"""AnnyBody: the free default body model, NAVER Labs' Anny (CC0 assets) driven by SMPL-24 poses."""

from __future__ import annotations

import logging
import os

import roma
import torch

from lwgan.body import tables
from lwgan.body.anny_cache import load_anny, prepare_anny_cache
from lwgan.body.anny_kinematics import RestBones, bone_ancestry, posed_bones, rest_bones
from lwgan.body.anny_retarget import (
    ANNY_TO_SMPL,
    SmplToAnnyRetarget,
    bone_drivers,
    joint_regressor,
    tpose_calibration,
)
from lwgan.body.model import BodyModel, BodyOutput, Skeleton
from lwgan.body.skeleton import BODY_KEYPOINT_NAMES, SMPL_JOINT_NAMES

logger = logging.getLogger(__name__)

PHENOTYPE_NAMES = ("gender", "age", "muscle", "weight", "height", "proportions")
"""The shape vector's entries, each in [0, 1] (gender 0 = male, 1 = female; age .33 child, .67 young adult, 1 old)."""

DEFAULT_PHENOTYPES = (0.5, 0.67, 0.5, 0.5, 0.5, 0.5)
"""A gender-neutral young adult of average build (about 1.84 m tall)."""

SKINNING_METHODS = ("auto", "lbs", "warp_lbs")

CAVITY_FILE = "data/template_mesh_internal_cavities.pth"
"""Inside anny's package: base-mesh ids of the eyeball, mouth-cavity and tongue vertices and quads."""


class AnnyBody(BodyModel):
    """Anny (NAVER Labs, code Apache-2.0, model data CC0) behind the BodyModel interface.

    pose (B, 24, 3) SMPL axis-angle is retargeted onto Anny's 104-bone rig (lwgan.body.anny_retarget)
    with a calibration that makes the zero pose a T-pose like SMPL's rest pose: arms horizontal
    along +-x, palms down, legs straight (calibrated on the default shape; other shapes' limbs
    deviate from it by under 3 degrees). shape (B, 6) holds Anny's phenotypes PHENOTYPE_NAMES in
    [0, 1] (values outside are clamped by Anny). Outputs are in the SMPL body frame (metres, y up,
    facing +z, x = subject's left).

    Origin: the pelvis joint (Anny's root bone) sits at the origin for every shape when translation
    is zero, and the global orientation pose[:, 0] rotates the body about it. (SMPL itself leaves
    the pelvis at a shape-dependent offset; here the offset is zero.)

    The rendered mesh leaves out the internal cavities (eyeballs, mouth interior, tongue): their
    faces and the vertices no other face uses are dropped. Keypoints come from Anny's COCO
    regressor on its full vertex set, because the eye keypoints put 30% of their weight on eyeball
    vertices (renormalising over the kept vertices would move them 5-6 mm).
    """

    name = "anny"
    shape_dim = len(PHENOTYPE_NAMES)
    keypoint_names = BODY_KEYPOINT_NAMES

    def __init__(self, cache_dir: str | os.PathLike | None = None, skinning: str = "auto") -> None:
        """
        Args:
            cache_dir: folder for Anny's model cache (in its "anny" subfolder); default
                $LWGAN_CACHE_DIR or ~/.cache/lwgan. The first use builds it (about 1-2 minutes).
            skinning: "lbs" (Anny's dense linear blend skinning in PyTorch), "warp_lbs" (Anny's
                sparse NVIDIA Warp kernel) or "auto" = "lbs". On 2 CPU threads at batch 16 both
                forwards take 20-30 ms; Warp's forward+backward is about a third faster (60 vs
                90 ms) but compiles a kernel on first use, writes ~/.cache/warp, prints a CUDA
                driver warning on machines without one, and does not run on every torch device.
        """
        super().__init__()
        if skinning not in SKINNING_METHODS:
            raise ValueError(f"skinning must be one of {SKINNING_METHODS}, got {skinning!r}")
        skinning_method = "lbs" if skinning == "auto" else skinning
        if skinning_method == "warp_lbs":
            import warp

            warp.config.log_level = warp.LOG_WARNING  # Anny's Warp module calls warp.init(), which prints a banner otherwise
        anny_model = load_anny(prepare_anny_cache(cache_dir), skinning_method).to(torch.float32)
        if tuple(anny_model.phenotype_labels) != PHENOTYPE_NAMES:
            raise RuntimeError(f"unexpected Anny phenotypes {anny_model.phenotype_labels}, expected {PHENOTYPE_NAMES}")
        self.anny = anny_model
        self.register_buffer("frame", torch.tensor(ANNY_TO_SMPL), persistent=False)
        self.register_buffer("default_phenotypes", torch.tensor(DEFAULT_PHENOTYPES), persistent=False)
        with torch.no_grad():
            self._build_retarget()
            self._register_mesh()
            rest_vertices = self.forward(torch.zeros(1, len(SMPL_JOINT_NAMES), 3)).vertices[0]
        self._register_surface_tables(rest_vertices)

    def _build_retarget(self) -> None:
        """The SMPL-24 retarget, calibrated on the reference pose of the default shape, and the joint and keypoint regressors."""
        bone_labels = list(self.anny.bone_labels)
        reference = self.anny(pose_parameters=None, phenotype_kwargs=self.default_shape(1))
        reference_heads = reference["bone_poses"][0, :, :3, 3] @ self.frame
        calibration = tpose_calibration(reference_heads, bone_labels)
        self.retarget = SmplToAnnyRetarget(bone_labels, list(self.anny.bone_parents), calibration)
        self.register_buffer("bone_ancestry", bone_ancestry(self.retarget.parents), persistent=False)
        self.register_buffer("joint_weights", joint_regressor(bone_labels), persistent=False)
        self.register_buffer("keypoint_weights", _coco_regressor(self.anny, self.keypoint_names), persistent=False)
        template, shapes = _keypoint_blends(_keypoint_bone_weights(self.keypoint_weights, self.anny), self.anny)
        self.register_buffer("keypoint_blend_template", template, persistent=False)
        self.register_buffer("keypoint_blend_shapes", shapes, persistent=False)

    def _register_mesh(self) -> None:
        """faces, uv and face_uv without the cavities; kept_vertices indexes Anny's full vertex set."""
        full_faces = self.anny.faces.to(torch.int64)
        mesh = tables.drop_faces(
            full_faces,
            self.anny.face_texture_coordinate_indices.to(torch.int64),
            _cavity_faces(self.anny, full_faces),
            vertex_count=self.anny.template_vertices.shape[0],
            uv_count=self.anny.texture_coordinates.shape[0],
        )
        self.register_buffer("kept_vertices", mesh.kept_vertices, persistent=False)
        self.register_buffer("faces", mesh.faces, persistent=False)
        self.register_buffer("face_uv", mesh.face_uv, persistent=False)
        self.register_buffer("uv", self.anny.texture_coordinates[mesh.kept_uv].to(torch.float32), persistent=False)
        logger.debug("Anny mesh: %d vertices and %d faces after dropping %d cavity faces",
                     mesh.kept_vertices.shape[0], mesh.faces.shape[0], full_faces.shape[0] - mesh.faces.shape[0])

    def _register_surface_tables(self, rest_vertices: torch.Tensor) -> None:
        """face_part, face masks, mirror_vertices and the silhouette mesh from the (V, 3) T-pose of the default shape."""
        bone_weights = _vertex_bone_weights(self.anny).to_dense()
        smpl_weights = torch.zeros(bone_weights.shape[0], len(SMPL_JOINT_NAMES))
        smpl_weights.index_add_(1, bone_drivers(self.anny.bone_labels), bone_weights)
        face_part = tables.face_parts_from_weights(smpl_weights[self.kept_vertices], self.faces)
        self.register_buffer("face_part", face_part, persistent=False)
        for mask_name, mask in tables.face_masks_from_rest(rest_vertices, self.faces, face_part).items():
            self.register_buffer(f"face_mask_{mask_name}", mask, persistent=False)
        self.register_buffer("mirror_vertices", tables.mirror_vertex_map(rest_vertices), persistent=False)
        coarse = tables.silhouette_mesh(rest_vertices, self.faces, smpl_weights[self.kept_vertices])
        self.register_buffer("silhouette_vertices", coarse.vertices, persistent=False)
        self.register_buffer("silhouette_faces", coarse.faces, persistent=False)
        symmetry = tables.mirror_symmetry(rest_vertices, self.mirror_vertices)
        logger.debug(
            "Anny mirror map: an involution on %.4f of the vertices; mirrored-partner distance mean %.3f mm, max %.3f mm",
            symmetry["involution_fraction"], 1000 * symmetry["mean_distance"], 1000 * symmetry["max_distance"],
        )

    def default_shape(self, batch_size: int = 1) -> torch.Tensor:
        """(batch_size, 6) DEFAULT_PHENOTYPES: a neutral young adult."""
        return self.default_phenotypes.expand(batch_size, -1).clone()

    def forward(
        self,
        pose: torch.Tensor,
        shape: torch.Tensor | None = None,
        translation: torch.Tensor | None = None,
    ) -> BodyOutput:
        """Pose the body.

        Args:
            pose: (B, 24, 3) float SMPL axis-angle, radians; pose[:, 0] is the global orientation
                about the pelvis joint (which sits at the origin before translation).
            shape: (B, 6) float phenotypes in [0, 1], PHENOTYPE_NAMES; default_shape(B) when None.
            translation: (B, 3) float metres added to every output point; zero when None.
        Returns:
            BodyOutput with vertices (B, V, 3), joints (B, 24, 3) in SMPL order (heads of Anny's
            driving bones; hands at the mean knuckle, feet at the mean toe base) and keypoints
            (B, 23, 3) named by keypoint_names, all in the SMPL body frame, in metres.
        """
        pose, shape, translation = self.prepare_inputs(pose, shape, translation, self.default_phenotypes.dtype)
        coefficients, bone_transforms, bone_heads = self._pose_bones(pose, shape)
        rest_vertices = self.anny.get_rest_vertices(coefficients)
        anny_vertices = self.anny.get_skinned_vertices(rest_vertices.expand(bone_transforms.shape[0], -1, -1), bone_transforms)
        offset = translation[:, None]
        vertices = anny_vertices[:, self.kept_vertices] @ self.frame + offset
        keypoints = torch.einsum("kv,bvd->bkd", self.keypoint_weights, anny_vertices) @ self.frame + offset
        return BodyOutput(vertices=vertices, joints=self._joints(bone_heads) + offset, keypoints=keypoints)

    def skeleton(
        self,
        pose: torch.Tensor,
        shape: torch.Tensor | None = None,
        translation: torch.Tensor | None = None,
        vertex_indices: torch.Tensor | None = None,
    ) -> Skeleton:
        """forward()'s joints and keypoints without skinning the mesh (with its backward at batch 32, one fixed shape: 24 ms against forward()'s 114 ms on 2 CPU threads).

        A keypoint is a fixed blend of skinned vertices, and skinning is linear in the rest
        positions, so keypoint k = sum over bones j of T_j A_kj, where
        A_kj = sum over vertices v of regressor weight w_kv * bone weight b_vj * [x_v; 1]. The rest
        positions x_v are linear in the blendshape coefficients too, so A is precomputed per
        blendshape (_keypoint_blends): no rest mesh is built, and 23 x 104 small transforms replace
        13,718 x 104. The vertices at vertex_indices (of the rendered mesh) are skinned alone.
        """
        pose, shape, translation = self.prepare_inputs(pose, shape, translation, self.default_phenotypes.dtype)
        coefficients, bone_transforms, bone_heads = self._pose_bones(pose, shape)
        offset = translation[:, None]
        blends = self.keypoint_blend_template + torch.einsum("bc,ckjn->bkjn", coefficients, self.keypoint_blend_shapes)  # (1 or B, K, J, 4)
        anny_keypoints = torch.einsum("bjmn,bkjn->bkm", bone_transforms[..., :3, :], blends.expand(bone_transforms.shape[0], -1, -1, -1))
        vertices = None
        if vertex_indices is not None:
            full_indices = self.kept_vertices[vertex_indices]
            rest = self.anny.template_vertices[full_indices] + torch.einsum("bc,cnd->bnd", coefficients, self.anny.blendshapes[:, full_indices])
            vertices = self._skin_vertices(rest, bone_transforms, full_indices) @ self.frame + offset
        return Skeleton(joints=self._joints(bone_heads) + offset, keypoints=anny_keypoints @ self.frame + offset, vertices=vertices)

    def _skin_vertices(self, rest: torch.Tensor, bone_transforms: torch.Tensor, full_indices: torch.Tensor) -> torch.Tensor:
        """Linear blend skinning of Anny's vertices `full_indices` (n,) alone: (1 or B, n, 3) their rest positions, (B, J, 4, 4) bones -> (B, n, 3)."""
        batch_size, bone_count = bone_transforms.shape[:2]
        weights = torch.zeros(len(full_indices), bone_count, dtype=bone_transforms.dtype, device=bone_transforms.device)
        weights.scatter_add_(1, self.anny.vertex_bone_indices[full_indices].long(), self.anny.vertex_bone_weights[full_indices].to(weights.dtype))
        # A dense (n, J) @ (J, B * 12) product: far cheaper to differentiate than gathering each vertex's bones.
        blended = (weights @ bone_transforms[..., :3, :].permute(1, 0, 2, 3).reshape(bone_count, -1)).view(-1, batch_size, 3, 4).transpose(0, 1)
        rest = rest.expand(batch_size, -1, -1)
        return torch.einsum("bnij,bnj->bni", blended[..., :3], rest) + blended[..., 3]

    def _pose_bones(self, pose: torch.Tensor, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Anny's blendshape coefficients and posed bones, as its own forward computes them before the rest mesh and skinning.

        pose (B, 24, 3) SMPL axis-angle, shape (B, 6) -> blendshape coefficients (B, C), bone
        transforms (B, J, 4, 4) (rest to posed; what skinning blends) and posed bone heads (B, J, 3).
        The kinematics are in closed form (lwgan.body.anny_kinematics), not Anny's level-by-level
        chain. When every row has the same constant shape (a tracked video's fixed shape), the
        coefficients are (1, C), and the rest bones are built once. Only on the CPU: on a GPU the
        comparison would wait for the device in every call, and building B rest bones costs it little.
        """
        if shape.shape[0] > 1 and not shape.requires_grad and shape.device.type == "cpu" and bool((shape == shape[:1]).all()):
            shape = shape[:1]
        phenotypes, local_changes, facial_actions = self.anny.get_tensor_inputs(None, shape, None, None)[1:]
        coefficients = self.anny._get_phenotype_blendshape_coefficients(phenotypes, local_changes, facial_actions)
        world_rotations = self.retarget.bone_world_rotations(pose)
        transforms, heads = posed_bones(world_rotations, self._rest_bones(coefficients), self.retarget.parents, self.bone_ancestry)
        return coefficients, transforms, heads

    def _rest_bones(self, coefficients: torch.Tensor) -> RestBones:
        """(1 or B, C) blendshape coefficients -> the RestBones of Anny's rest skeleton, as its get_rest_model() makes it.

        For Anny's "cached" bone orientation (its default) without the rest mesh, which is most of
        get_rest_model()'s cost: heads and orientation cross-covariances are linear blends, the
        orientation their special Procrustes rotation.
        """
        anny = self.anny
        if anny.bone_orientation != "cached" or anny.rest_orientation_refiner is not None or anny.root_identity_orientation:
            poses = anny.get_rest_model(coefficients)["rest_bone_poses"]
            heads, orientations = poses[..., :3, 3], poses[..., :3, :3]
        else:
            heads = anny.template_bone_heads + torch.einsum("bc,cjd->bjd", coefficients, anny.bone_heads_blendshapes)
            covariances = anny.bone_template_orientation_matrices + torch.einsum("bc,cjmn->bjmn", coefficients, anny.bone_orientation_blendshapes)
            orientations = roma.special_procrustes(covariances)
        return rest_bones(heads, orientations, anny.reference_bone_orientations, self.retarget.parents)

    def _joints(self, bone_heads: torch.Tensor) -> torch.Tensor:
        """(B, J, 3) posed Anny bone heads -> (B, 24, 3) SMPL joints in the SMPL body frame (before translation)."""
        return torch.einsum("jn,bnd->bjd", self.joint_weights, bone_heads) @ self.frame


def _coco_regressor(anny_model, names: tuple[str, ...]) -> torch.Tensor:
    """(K, V_full) float32 keypoint weights over Anny's full vertex set, rows in the order of `names`."""
    import anny

    regressor = anny.KeypointsRegressor.coco(anny_model, labels=list(names))
    return regressor.regression_weights.detach().to(torch.float32).clone()


def _cavity_faces(anny_model, faces: torch.Tensor) -> torch.Tensor:
    """(F,) bool: faces whose three corners are all cavity vertices (eyeballs, mouth interior, tongue).

    Anny's cavity file lists base-mesh vertex ids; the model's vertex i is base-mesh vertex
    base_mesh_vertex_indices[i]. Its face ids count quads, each split into two of the model's triangles.
    """
    import anny.paths

    cavities = torch.load(anny.paths.get_anny_root_dir() / CAVITY_FILE, weights_only=True)
    base_ids = anny_model.base_mesh_vertex_indices.long()
    to_model = torch.full((int(base_ids.max()) + 1,), -1, dtype=torch.int64)
    to_model[base_ids] = torch.arange(base_ids.shape[0])
    cavity_base = torch.tensor(cavities["vertex_indices"], dtype=torch.int64)
    cavity_base = cavity_base[cavity_base <= base_ids.max()]
    cavity_vertices = to_model[cavity_base]
    cavity_vertices = cavity_vertices[cavity_vertices >= 0]
    cavity = torch.isin(faces, cavity_vertices).all(dim=1)
    expected = 2 * len(set(cavities["face_indices"]))
    if int(cavity.sum()) != expected:
        raise RuntimeError(f"found {int(cavity.sum())} cavity triangles, expected {expected} (two per cavity quad)")
    return cavity


def _vertex_bone_weights(anny_model) -> torch.Tensor:
    """(V_full, J) float32 sparse skinning weights of every Anny vertex over its bones."""
    indices = anny_model.vertex_bone_indices.long()  # (V, n)
    vertex = torch.arange(indices.shape[0])[:, None].expand_as(indices)
    weights = anny_model.vertex_bone_weights.float()
    size = (indices.shape[0], len(anny_model.bone_labels))
    return torch.sparse_coo_tensor(torch.stack([vertex.reshape(-1), indices.reshape(-1)]), weights.reshape(-1), size, check_invariants=True).coalesce()


def _keypoint_blends(keypoint_bone_weights: torch.Tensor, anny_model) -> tuple[torch.Tensor, torch.Tensor]:
    """AnnyBody.skeleton's blends A_kj of the rest vertices: (K * J, V_full) sparse weights (_keypoint_bone_weights) ->
    (K, J, 4) the template's and (C, K, J, 4) each blendshape's (fourth column 0), in Anny's frame."""
    vertex_count = anny_model.template_vertices.shape[0]
    bone_count = len(anny_model.bone_labels)
    # Summed in float64: the sums run over thousands of vertices.
    weights = keypoint_bone_weights.double()
    template = torch.cat([anny_model.template_vertices.double(), torch.ones(vertex_count, 1, dtype=torch.float64)], dim=-1)
    blendshapes = anny_model.blendshapes.double()  # (C, V_full, 3)
    shapes = torch.sparse.mm(weights, blendshapes.permute(1, 0, 2).reshape(vertex_count, -1))  # (K * J, C * 3)
    shapes = shapes.view(-1, bone_count, blendshapes.shape[0], 3).permute(2, 0, 1, 3)
    blend_template = torch.sparse.mm(weights, template).view(-1, bone_count, 4)
    return blend_template.float(), torch.cat([shapes, torch.zeros_like(shapes[..., :1])], dim=-1).float().contiguous()


def _keypoint_bone_weights(keypoint_weights: torch.Tensor, anny_model) -> torch.Tensor:
    """(K * J, V_full) float32 sparse: row k * J + j, column v holds keypoint_weights[k, v] * bone weight b_vj (AnnyBody.skeleton)."""
    bone_weights = _vertex_bone_weights(anny_model)
    bone_count = bone_weights.shape[1]
    vertex, bone = bone_weights.indices()
    keypoint, regressed = keypoint_weights.nonzero(as_tuple=True)
    # Pair every nonzero regressor weight (k, v) with every nonzero bone weight (v, j) of the same vertex.
    starts = torch.searchsorted(vertex, regressed)
    counts = torch.searchsorted(vertex, regressed, right=True) - starts
    pair = torch.repeat_interleave(torch.arange(len(regressed)), counts)
    entry = starts[pair] + torch.arange(len(pair)) - torch.repeat_interleave(counts.cumsum(0) - counts, counts)
    rows = keypoint[pair] * bone_count + bone[entry]
    values = keypoint_weights[keypoint[pair], regressed[pair]] * bone_weights.values()[entry]
    size = (keypoint_weights.shape[0] * bone_count, keypoint_weights.shape[1])
    return torch.sparse_coo_tensor(torch.stack([rows, regressed[pair]]), values, size, check_invariants=True).coalesce()
