"""UV-coded condition maps: where on the body surface each pixel lies (LWGAN's "uv_seg" and "uv")."""

from __future__ import annotations

import torch

from lwgan.render.fragments import Fragments
from lwgan.render.interpolate import (
    interpolate_corner_attributes,
    lookup_face_attributes,
)

ENCODINGS = ("uv_seg", "uv")


def condition_map(fragments: Fragments, uv: torch.Tensor, face_uv: torch.Tensor, encoding: str = "uv_seg") -> torch.Tensor:
    """(B, 3, H, W) condition map in [0, 1]: channels u, v and a background indicator.

    encoding "uv_seg" (the original's default): the face's UV centroid, constant over each face;
    "uv": the UV coordinate interpolated at the pixel. Background pixels are (0, 0, 1), so channel
    2 is the body model's background mask.

    Args:
        fragments: a rasterization of B meshes; uv: (T, 2); face_uv: (F, 3) int64.
    """
    if encoding == "uv_seg":
        face_centroid = uv[face_uv].mean(dim=1)  # (F, 2)
        body_uv = lookup_face_attributes(fragments, face_centroid)
    elif encoding == "uv":
        body_uv = interpolate_corner_attributes(fragments, uv[face_uv])
    else:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    background = (~fragments.mask).unsqueeze(-1).to(body_uv.dtype)
    body_uv = body_uv * (1.0 - background)
    return torch.cat([body_uv, background], dim=-1).permute(0, 3, 1, 2)
