"""Exact z-buffer rasterization of triangle meshes in pure PyTorch (CPU and CUDA), no loops.

Method: every face lists the pixel centres inside its bounding box (one flat batch of
(face, pixel) candidates, made with repeat_interleave); each candidate gets barycentric weights
from three edge functions; candidates outside their face are dropped; each pixel keeps the
nearest candidate, ties broken by the smaller face index, with one scatter_reduce over a 64-bit
key (ordered depth bits << 32 | face index). Work is proportional to the summed bounding-box area
of the faces, not to faces x pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lwgan.render.candidates import barycentric, enumerate_candidates
from lwgan.render.checks import check_mesh
from lwgan.render.fragments import Fragments

_EMPTY_KEY = torch.iinfo(torch.int64).max


def rasterize(
    vertices_ndc: torch.Tensor,
    faces: torch.Tensor,
    image_size: int | Sequence[int],
    backend: str = "torch",
) -> Fragments:
    """Rasterize a batch of meshes that share one topology.

    Args:
        vertices_ndc: (B, V, 3) float: x, y in NDC (y down; see lwgan.body.camera) and depth z
            (smaller is nearer). Faces of either winding are drawn (no back-face culling).
        faces: (F, 3) int64 vertex indices.
        image_size: S or (H, W).
        backend: "torch" (this module) or "pytorch3d" (when installed).
    Returns:
        Fragments with face_index (B, H, W), bary (B, H, W, 3), depth (B, H, W). A pixel is
        covered by a face when its centre lies inside or on the face's edges.
    """
    height, width = check_mesh(vertices_ndc, faces, image_size)
    if backend == "pytorch3d":
        from lwgan.render.pytorch3d_backend import rasterize_pytorch3d

        return rasterize_pytorch3d(vertices_ndc, faces, (height, width))
    if backend != "torch":
        raise ValueError(f"backend must be 'torch' or 'pytorch3d', got {backend!r}")
    return _rasterize_torch(vertices_ndc, faces.long(), height, width)


def _ordered_depth_key(depth: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """(N,) float32 depth and (N,) face index -> (N,) int64 keys ordered by (depth, face)."""
    bits = depth.float().view(torch.int32)
    ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # IEEE-754 floats -> integers of the same order
    return (ordered.long() << 32) | face


def _rasterize_torch(vertices_ndc: torch.Tensor, faces: torch.Tensor, height: int, width: int) -> Fragments:
    batch_size, face_count = vertices_ndc.shape[0], faces.shape[0]
    pixel_count = batch_size * height * width
    device, dtype = vertices_ndc.device, vertices_ndc.dtype
    candidates = enumerate_candidates(vertices_ndc, faces, height, width)
    bary = barycentric(candidates)
    inside = (bary >= 0).all(dim=1).nonzero().squeeze(1)
    bary = bary[inside]
    depth = (bary * candidates.depths[inside]).sum(dim=1)
    pixel = candidates.pixel[inside]

    # Nearest candidate per pixel; equal depths go to the smaller face index.
    key = _ordered_depth_key(depth, candidates.local_face(face_count)[inside])
    best = torch.full((pixel_count,), _EMPTY_KEY, dtype=torch.int64, device=device)
    best.scatter_reduce_(0, pixel, key, reduce="amin")
    winner = (key == best[pixel]).nonzero().squeeze(1)
    winning_pixel = pixel[winner]

    face_index = torch.full((pixel_count,), -1, dtype=torch.int64, device=device)
    face_index[winning_pixel] = key[winner] & 0xFFFFFFFF
    out_bary = torch.zeros(pixel_count, 3, dtype=dtype, device=device)
    out_bary[winning_pixel] = bary[winner]
    out_depth = torch.full((pixel_count,), float("inf"), dtype=dtype, device=device)
    out_depth[winning_pixel] = depth[winner]
    return Fragments(
        face_index=face_index.view(batch_size, height, width),
        bary=out_bary.view(batch_size, height, width, 3),
        depth=out_depth.view(batch_size, height, width),
    )
