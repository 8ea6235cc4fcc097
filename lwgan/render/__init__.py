"""Mesh rendering: exact rasterization to Fragments, interpolation, textures, soft silhouettes."""

from lwgan.render.fragments import Fragments
from lwgan.render.interpolate import (
    interpolate_corner_attributes,
    interpolate_vertex_attributes,
    lookup_face_attributes,
)
from lwgan.render.rasterize import rasterize
from lwgan.render.reference import rasterize_reference
from lwgan.render.silhouette import soft_silhouette
from lwgan.render.texture import render_texture, uv_to_grid

__all__ = [
    "Fragments", "interpolate_corner_attributes", "interpolate_vertex_attributes", "lookup_face_attributes",
    "rasterize", "rasterize_reference", "soft_silhouette", "render_texture", "uv_to_grid",
]
