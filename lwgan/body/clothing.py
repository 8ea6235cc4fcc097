"""Clothed bodies as per-vertex offsets along the normals (after SMPL+D, Alldieck et al., CVPR 2018).

SMPL+D adds free 3D offsets to the template before skinning; here an offset field is one scalar
per vertex, in metres along the POSED mesh's unit normal: positive moves the surface outwards
(loose clothes, hair), negative inwards. Because the offsets are applied after posing, along the
normals of whatever pose the mesh is in, the same field fitted in the source photos is carried
into every target pose by the skinning: a sleeve stays around its arm.
"""

from __future__ import annotations

import torch

from lwgan.body.model import PART_NAMES, BodyModel
from lwgan.checks import check_shape

FIXED_PARTS = ("left_hand", "right_hand")
"""Parts (PART_NAMES) whose vertices keep zero offsets: skin, not clothes (with the front of the face)."""


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Unit area-weighted vertex normals.

    Each face's normal (right-handed winding: counter-clockwise corners seen from outside give an
    outward normal, as in every BodyModel's faces) is weighted by the face's area and summed over
    the faces around each vertex.

    Args:
        vertices: (B, V, 3) float; faces: (F, 3) int64 indices into V.
    Returns:
        (B, V, 3) unit vectors (zero for a vertex with no face of positive area).
    """
    check_shape("vertices", vertices, (None, None, 3))
    check_shape("faces", faces, (None, 3))
    corners = vertices[:, faces]  # (B, F, 3, 3)
    # The cross product's length is twice the face's area: summing it weights by area.
    face_normal = torch.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0], dim=-1)
    per_corner = face_normal[:, :, None].expand(-1, -1, 3, -1).flatten(1, 2)  # (B, 3F, 3), in faces.reshape(-1)'s order
    normal = torch.zeros_like(vertices).index_add(1, faces.reshape(-1), per_corner)
    return normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def clothed_vertices(vertices: torch.Tensor, faces: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """The posed body moved by `offsets` along its own vertex normals: v + d * n(v).

    The offsets are scalars along the normals of the pose given, so one field fitted in the source
    photos' poses dresses the body in any target pose: it is carried there by the skinning.

    Args:
        vertices: (B, V, 3) posed body, metres; faces: (F, 3) int64.
        offsets: (B, V) per mesh, or (V,) shared by the batch: metres along the outward normal.
    Returns:
        (B, V, 3) float, the clothed body.
    """
    check_shape("vertices", vertices, (None, None, 3))
    batch_size, vertex_count = vertices.shape[:2]
    if offsets.shape not in ((vertex_count,), (batch_size, vertex_count)):
        raise ValueError(
            f"offsets must have shape ({vertex_count},) or ({batch_size}, {vertex_count}) for vertices of shape "
            f"{tuple(vertices.shape)}, got {tuple(offsets.shape)}"
        )
    return vertices + offsets.to(vertices.dtype)[..., None] * vertex_normals(vertices, faces)


def clothing_vertex_mask(body: BodyModel) -> torch.Tensor:
    """(V,) bool: the vertices whose offsets may move, on body.faces' device.

    Not the front of the face (body.face_masks["front_face"]) nor the hands (FIXED_PARTS): a vertex
    is free only when none of its faces belongs to them, so the fixed regions keep their edges.
    """
    fixed_parts = torch.tensor([PART_NAMES.index(name) for name in FIXED_PARTS], device=body.face_part.device)
    fixed_faces = body.face_masks["front_face"] | torch.isin(body.face_part, fixed_parts)
    free = torch.ones(body.mirror_vertices.shape[0], dtype=torch.bool, device=body.faces.device)
    free[body.faces[fixed_faces].reshape(-1)] = False
    return free


def uniform_laplacian(faces: torch.Tensor, vertex_count: int) -> torch.Tensor:
    """The mesh's uniform graph Laplacian L = I - D^-1 A as a sparse (V, V) float32 tensor.

    A is the adjacency of the mesh's edges (each edge once, however many faces share it), D the
    vertex degrees: (L x)_i = x_i - the mean of x over i's neighbours, zero for a constant field.
    A vertex without edges has a zero row.

    Args:
        faces: (F, 3) int64; vertex_count: V.
    Returns:
        (V, V) sparse COO float32 on faces' device.
    """
    check_shape("faces", faces, (None, 3))
    ends = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).sort(dim=1).values
    edge_key = torch.unique(ends[:, 0] * vertex_count + ends[:, 1])  # each edge once (a 1-D unique is much faster than dim=0)
    first, second = edge_key // vertex_count, edge_key % vertex_count
    rows = torch.cat([first, second])
    columns = torch.cat([second, first])
    degree = torch.zeros(vertex_count, device=faces.device).index_add(0, rows, torch.ones(rows.shape[0], device=faces.device))
    diagonal = torch.arange(vertex_count, device=faces.device)
    has_edges = degree > 0
    indices = torch.cat([torch.stack([rows, columns]), torch.stack([diagonal[has_edges], diagonal[has_edges]])], dim=1)
    values = torch.cat([-1.0 / degree[rows], torch.ones(int(has_edges.sum()), device=faces.device)])
    return torch.sparse_coo_tensor(indices, values, (vertex_count, vertex_count), check_invariants=True).coalesce()


def apply_laplacian(laplacian: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
    """(V, V) sparse COO Laplacian (uniform_laplacian) times a (V,) per-vertex field -> (V,), differentiable in the field.

    A gather and a scatter over the nonzeros: on CPU, torch.sparse.mm's forward and backward take
    about four times as long, which a fit that applies it at every step notices.
    """
    check_shape("field", field, (laplacian.shape[1],))
    rows, columns = laplacian.indices()
    return torch.zeros_like(field).index_add(0, rows, laplacian.values().to(field.dtype) * field[columns])
