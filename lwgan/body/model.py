"""The BodyModel interface that every body backend implements, and its output dataclass."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lwgan.checks import check_shape

PART_NAMES = (
    "head", "torso", "left_leg", "right_leg", "left_arm", "right_arm",
    "left_foot", "right_foot", "left_hand", "right_hand",
)
"""Body parts of LWGAN's smpl_part_info.json, in its order; BodyModel.face_part indexes this."""

FACE_MASK_NAMES = ("front_face", "head", "front_body")
"""Face subsets every BodyModel exposes in face_masks (LWGAN's front_facial/head/front_body json)."""


@dataclass(frozen=True)
class BodyOutput:
    """A posed body, in the body frame of lwgan.body.camera (metres, y up, facing +z before orientation).

    vertices: (B, V, 3); joints: (B, 24, 3) in SMPL order; keypoints: (B, K, 3), COCO-17 first, then
    the model's extra keypoints (names in BodyModel.keypoint_names).
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    keypoints: torch.Tensor


@dataclass(frozen=True)
class Skeleton:
    """The joints and keypoints of a posed body, without its mesh (BodyOutput's fields of the same names).

    vertices: (B, n, 3) the posed vertices that skeleton() was asked for (vertex_indices), or None.
    """

    joints: torch.Tensor
    keypoints: torch.Tensor
    vertices: torch.Tensor | None = None


class BodyModel(nn.Module):
    """A parametric body driven by SMPL-24 axis-angle poses.

    Attributes every backend sets (buffers move with .to(device)):
        name: short backend name ("anny", "smpl").
        shape_dim: length of the shape vector.
        keypoint_names: names of BodyOutput.keypoints, COCO-17 first.
        faces: (F, 3) int64 triangles of the rendered mesh.
        uv: (T, 2) float texture coordinates in [0, 1], v up (row 0 of a texture image is v = 1).
        face_uv: (F, 3) int64 index into uv for each face corner (UV seams split corners).
        face_part: (F,) int64 index into PART_NAMES.
        face_masks: dict name -> (F,) bool, for each of FACE_MASK_NAMES.
        mirror_vertices: (V,) int64, the left-right partner of each vertex (itself on the midline).
        silhouette_vertices: (n,) int64 and silhouette_faces: (f, 3) int64 into them: a coarser mesh
            made of some of the vertices, whose silhouette is the mesh's to about a percent
            (lwgan.body.tables.silhouette_mesh), for the fits' rendered silhouette term.
    """

    name: str
    shape_dim: int
    keypoint_names: tuple[str, ...]
    faces: torch.Tensor
    uv: torch.Tensor
    face_uv: torch.Tensor
    face_part: torch.Tensor
    mirror_vertices: torch.Tensor
    silhouette_vertices: torch.Tensor
    silhouette_faces: torch.Tensor

    @property
    def face_masks(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, f"face_mask_{name}") for name in FACE_MASK_NAMES}

    def default_shape(self, batch_size: int = 1) -> torch.Tensor:
        """(batch_size, shape_dim) neutral adult shape."""
        raise NotImplementedError

    def prepare_inputs(
        self, pose: torch.Tensor, shape: torch.Tensor | None, translation: torch.Tensor | None, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Check forward()'s arguments and fill defaults: (pose (B, 24, 3), shape (B, shape_dim), translation (B, 3)) in dtype."""
        check_shape("pose", pose, (None, 24, 3))
        batch_size = pose.shape[0]
        shape = self.default_shape(batch_size) if shape is None else shape
        check_shape("shape", shape, (batch_size, self.shape_dim))
        translation = pose.new_zeros(batch_size, 3) if translation is None else translation
        check_shape("translation", translation, (batch_size, 3))
        return pose.to(dtype), shape.to(dtype), translation.to(dtype)

    def forward(
        self,
        pose: torch.Tensor,
        shape: torch.Tensor | None = None,
        translation: torch.Tensor | None = None,
    ) -> BodyOutput:
        """Pose the body.

        Args:
            pose: (B, 24, 3) SMPL axis-angle; pose[:, 0] is the global orientation about the pelvis.
            shape: (B, shape_dim), default_shape() when None.
            translation: (B, 3) metres added to every output point, zero when None.
        """
        raise NotImplementedError

    def skeleton(
        self,
        pose: torch.Tensor,
        shape: torch.Tensor | None = None,
        translation: torch.Tensor | None = None,
        vertex_indices: torch.Tensor | None = None,
    ) -> Skeleton:
        """The joints and keypoints forward() would return, for code that needs no full mesh (keypoint fitting).

        vertex_indices: (n,) int64, also return those posed vertices (e.g. a sparse sample of the
        surface for a silhouette term). Backends where the mesh dominates the cost override this
        with a path that skips the rest of it.
        """
        output = self(pose, shape, translation)
        vertices = None if vertex_indices is None else output.vertices[:, vertex_indices]
        return Skeleton(joints=output.joints, keypoints=output.keypoints, vertices=vertices)
