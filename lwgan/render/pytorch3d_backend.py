"""Optional pytorch3d backend for rasterize(), used only when pytorch3d is importable."""

from __future__ import annotations

import torch

from lwgan.render.fragments import Fragments


def pytorch3d_available() -> bool:
    """True when pytorch3d's rasterizer can be imported."""
    try:
        import pytorch3d.renderer.mesh.rasterize_meshes  # noqa: F401
    except ImportError:
        return False
    return True


def rasterize_pytorch3d(vertices_ndc: torch.Tensor, faces: torch.Tensor, image_size: tuple[int, int]) -> Fragments:
    """rasterize() through pytorch3d.renderer.mesh.rasterize_meshes (same contract).

    pytorch3d's NDC has +x left and +y up, and on a non-square image the shorter side spans
    [-1, 1]; ours has +x right, +y down and both sides span [-1, 1]. Its tie-breaking between
    faces at equal depth may differ from ours.
    """
    try:
        from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes
        from pytorch3d.structures import Meshes
    except ImportError as error:
        raise ImportError("backend='pytorch3d' needs pytorch3d; install it or use backend='torch'") from error
    height, width = image_size
    x_scale = max(width / height, 1.0)
    y_scale = max(height / width, 1.0)
    converted = vertices_ndc * vertices_ndc.new_tensor([-x_scale, -y_scale, 1.0])
    batch_size = vertices_ndc.shape[0]
    meshes = Meshes(verts=list(converted), faces=[faces.long()] * batch_size)
    pixel_to_face, zbuffer, bary, _ = rasterize_meshes(
        meshes, image_size=(height, width), blur_radius=0.0, faces_per_pixel=1,
        perspective_correct=False, cull_backfaces=False,
    )
    packed = pixel_to_face[..., 0]
    offsets = torch.arange(batch_size, device=packed.device).view(-1, 1, 1) * faces.shape[0]
    face_index = torch.where(packed >= 0, packed - offsets, -1)
    covered = face_index >= 0
    depth = torch.where(covered, zbuffer[..., 0], torch.full_like(zbuffer[..., 0], float("inf")))
    return Fragments(face_index=face_index, bary=bary[..., 0, :] * covered.unsqueeze(-1), depth=depth)
