"""(face, pixel) candidate pairs: every pixel centre inside each face's bounding box, as flat tensors.

The shared first stage of the hard rasterizer and the soft silhouette: it turns a batch of meshes
into one flat list of pairs with repeat_interleave, so later stages are plain vectorized maths.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Candidates:
    """N (face, pixel) pairs of a batch of B meshes with F faces each, rendered at H x W.

    face: (N,) int64 index into the flattened (B*F) faces.
    batch: (N,) int64 mesh index; pixel: (N,) int64 index into the flattened (B*H*W) pixels.
    corners: (N, 3, 2) face corners minus the pixel centre, in pixels (x right, y down).
        Differentiable with respect to the vertices.
    depths: (N, 3) corner depths.
    doubled_area: (N,) signed doubled area of the face in pixels (positive when the corners run
        clockwise on screen, since y points down).
    """

    face: torch.Tensor
    batch: torch.Tensor
    pixel: torch.Tensor
    corners: torch.Tensor
    depths: torch.Tensor
    doubled_area: torch.Tensor

    def local_face(self, face_count: int) -> torch.Tensor:
        """(N,) int64 index into the mesh's own faces."""
        return self.face - self.batch * face_count


def enumerate_candidates(
    vertices_ndc: torch.Tensor, faces: torch.Tensor, height: int, width: int, margin: float = 0.0, face_mask: torch.Tensor | None = None
) -> Candidates:
    """All pairs of a face and a pixel centre within `margin` pixels of the face's bounding box.

    vertices_ndc (B, V, 3), faces (F, 3) int64; face_mask (B, F) bool, when given, keeps only those
    faces of each mesh. Faces of zero area, or non-finite, are skipped. Bounding boxes are computed
    in float64 so that no pixel centre on a box edge is missed.
    """
    face_count = faces.shape[0]
    corners = vertices_ndc[:, faces].flatten(0, 1)  # (B*F, 3, 3)
    scale = corners.new_tensor([width / 2.0, height / 2.0])
    pixel_xy = (corners[..., :2] + 1.0) * scale - 0.5  # pixel centre (i, j) sits at (j, i)
    pixel_xy64 = (corners[..., :2].detach().double() + 1.0) * scale.double() - 0.5
    first = (pixel_xy64.amin(dim=1) - margin).ceil().clamp_min(0)
    last = torch.minimum((pixel_xy64.amax(dim=1) + margin).floor(), pixel_xy64.new_tensor([width - 1.0, height - 1.0]))
    box_size = (last - first + 1).clamp_min(0)
    edge_a = pixel_xy64[:, 1] - pixel_xy64[:, 0]
    edge_b = pixel_xy64[:, 2] - pixel_xy64[:, 0]
    doubled_area = edge_a[:, 0] * edge_b[:, 1] - edge_a[:, 1] * edge_b[:, 0]
    keep = (box_size.prod(dim=1) > 0) & (doubled_area != 0) & torch.isfinite(doubled_area)
    if face_mask is not None:
        keep &= face_mask.flatten()
    kept_face = keep.nonzero().squeeze(1)
    origin = first[kept_face]
    # Corner positions relative to the box origin are small, so float32 holds them precisely when
    # they are computed in float64; adding (x - x.detach()) = 0 keeps the gradient of pixel_xy.
    precise = (pixel_xy64[kept_face] - origin[:, None, :]).to(pixel_xy.dtype)
    corners_local = precise + (pixel_xy[kept_face] - pixel_xy[kept_face].detach())
    edges = corners_local[:, 1:] - corners_local[:, :1]  # (K, 2, 2)
    face_area = edges[:, 0, 0] * edges[:, 1, 1] - edges[:, 0, 1] * edges[:, 1, 0]
    box_size = box_size[kept_face].long()
    origin = origin.long()

    counts = box_size[:, 0] * box_size[:, 1]
    device = vertices_ndc.device
    owner = torch.repeat_interleave(torch.arange(len(counts), device=device), counts)
    first_candidate = torch.cumsum(counts, 0) - counts
    local = torch.arange(len(owner), device=device) - first_candidate[owner]
    box_width = box_size[owner, 0]
    offset_row = torch.div(local, box_width, rounding_mode="floor")
    offset_column = local - offset_row * box_width
    offset = torch.stack([offset_column, offset_row], dim=-1).to(corners_local.dtype)

    face = kept_face[owner]
    batch = torch.div(face, face_count, rounding_mode="floor")
    row = origin[owner, 1] + offset_row
    column = origin[owner, 0] + offset_column
    return Candidates(
        face=face,
        batch=batch,
        pixel=(batch * height + row) * width + column,
        corners=corners_local[owner] - offset[:, None, :],
        depths=corners[kept_face, :, 2][owner],
        doubled_area=face_area[owner],
    )


def barycentric(candidates: Candidates) -> torch.Tensor:
    """(N, 3) barycentric weights of each candidate's pixel centre with respect to its face.

    Weight k is the signed doubled area of the triangle (pixel, corner k+1, corner k+2) over the
    face's signed doubled area, so it does not depend on the winding.
    """
    x, y = candidates.corners[..., 0], candidates.corners[..., 1]
    cross = x * y.roll(-1, dims=1) - y * x.roll(-1, dims=1)  # column k: (pixel, corner k, corner k+1)
    return cross.roll(-1, dims=1) / candidates.doubled_area[:, None]
