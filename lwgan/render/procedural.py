"""Procedural clothing textures and backgrounds, for the demo and synthetic datasets.

A texture is painted in the body's UV space: the UV atlas is rasterized with our own rasterizer,
so every texel knows its body part and its 3D position on the rest (T-pose) body. Patterns are
functions of that 3D position, so they run continuously across UV seams.
"""

from __future__ import annotations

import torch

from lwgan.body.model import PART_NAMES
from lwgan.render.inpaint import fill_holes
from lwgan.render.interpolate import (
    interpolate_vertex_attributes,
    lookup_face_attributes,
)
from lwgan.render.texture import rasterize_uv_atlas

SKIN_TONES = ((0.96, 0.80, 0.69), (0.87, 0.67, 0.52), (0.71, 0.50, 0.36), (0.47, 0.32, 0.22), (0.33, 0.22, 0.15))
HAIR_COLOURS = ((0.10, 0.07, 0.05), (0.35, 0.22, 0.12), (0.75, 0.60, 0.35), (0.50, 0.50, 0.50))


def _random_colour(generator: torch.Generator, low: float = 0.1, high: float = 0.9) -> torch.Tensor:
    return low + (high - low) * torch.rand(3, generator=generator)


def _stripes(coordinate: torch.Tensor, period: float, duty: float = 0.5) -> torch.Tensor:
    """1 on a fraction `duty` of each period of `coordinate` (metres), else 0; smooth edges."""
    phase = torch.remainder(coordinate / period, 1.0)
    edge = 0.08
    rise = torch.clamp(phase / edge, 0, 1)
    fall = torch.clamp((duty - phase) / edge, 0, 1)
    return torch.minimum(rise, fall)


def clothing_texture(
    uv: torch.Tensor,
    face_uv: torch.Tensor,
    faces: torch.Tensor,
    face_part: torch.Tensor,
    rest_vertices: torch.Tensor,
    size: int = 512,
    seed: int = 0,
) -> torch.Tensor:
    """A dressed-person texture: skin, hair, a shirt with a pattern, trousers or shorts, shoes.

    Args:
        uv (T, 2), face_uv (F, 3), faces (F, 3), face_part (F,): the body's tables (BodyModel).
        rest_vertices: (V, 3) the body in the T-pose (zero pose), body frame (y up, facing +z).
        size: texture side in texels; seed: picks colours, patterns and sleeve/leg lengths.
    Returns:
        (3, size, size) float in [0, 1], row 0 at v = 1 (the layout render_texture expects).
    """
    generator = torch.Generator().manual_seed(seed)
    atlas = rasterize_uv_atlas(uv, face_uv, size)
    covered = atlas.mask[0]
    part = lookup_face_attributes(atlas, face_part[:, None].float(), background=-1.0)[0, ..., 0].long()
    position = interpolate_vertex_attributes(atlas, faces, rest_vertices.float())[0]  # (S, S, 3) metres
    x, y, z = position.unbind(-1)
    is_part = {name: part == index for index, name in enumerate(PART_NAMES)}

    skin = torch.tensor(SKIN_TONES[int(torch.randint(len(SKIN_TONES), (1,), generator=generator))])
    hair = torch.tensor(HAIR_COLOURS[int(torch.randint(len(HAIR_COLOURS), (1,), generator=generator))])
    shirt, shirt_second = _random_colour(generator), _random_colour(generator)
    trousers = _random_colour(generator, 0.05, 0.6)
    shoes = _random_colour(generator, 0.02, 0.3)
    pattern = int(torch.randint(3, (1,), generator=generator))
    short_sleeves = bool(torch.rand(1, generator=generator) < 0.5)
    shorts = bool(torch.rand(1, generator=generator) < 0.3)

    colour = skin.view(3, 1, 1).expand(3, size, size).clone()

    def paint(where: torch.Tensor, value: torch.Tensor) -> None:
        colour[:] = torch.where(where[None], value if value.dim() == 3 else value.view(3, 1, 1), colour)

    head = is_part["head"]
    head_y = y[head]
    if head_y.numel():
        head_top, head_bottom = head_y.max(), head_y.min()
        head_z = z[head]
        face_front = head_z.max()
        hairline = head_bottom + 0.62 * (head_top - head_bottom)
        # Hair: the crown, and the back of the head down to the neck.
        back = z < face_front - 0.6 * (face_front - head_z.min())
        paint(head & ((y > hairline) | (back & (y > head_bottom + 0.25 * (head_top - head_bottom)))), hair)

    torso = is_part["torso"]
    arms = is_part["left_arm"] | is_part["right_arm"]
    if torso.any():
        shoulder_x = x[torso].abs().max()
        sleeve_end = shoulder_x + (0.12 if short_sleeves else 0.5)
        shirt_region = torso | (arms & (x.abs() < sleeve_end))
        if pattern == 0:
            shirt_colour = shirt.view(3, 1, 1).expand(3, size, size)
        else:
            band = _stripes(y, period=0.09) if pattern == 1 else _stripes(x, 0.1) * _stripes(y, 0.1) + (1 - _stripes(x, 0.1)) * (1 - _stripes(y, 0.1))
            shirt_colour = shirt.view(3, 1, 1) * band + shirt_second.view(3, 1, 1) * (1 - band)
        paint(shirt_region, shirt_colour)
        # Trousers (or shorts) from a band below the waist down the legs.
        waist = y[torso].min()
        legs = is_part["left_leg"] | is_part["right_leg"]
        knee_y = y[legs].min() + 0.55 * (y[legs].max() - y[legs].min()) if legs.any() else waist
        trouser_region = (legs & ((y > knee_y) if shorts else torch.ones_like(legs))) | (torso & (y < waist + 0.08))
        paint(trouser_region, trousers)
    feet = is_part["left_foot"] | is_part["right_foot"]
    paint(feet, shoes)

    shade = 0.92 + 0.08 * torch.sin(7.0 * x + 5.0 * y) * torch.cos(6.0 * z)
    colour = (colour * shade[None]).clamp(0, 1)
    return fill_holes(colour[None], covered[None])[0]


def background_image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A plain indoor-like background: a wall with a vertical gradient, a floor, a few panels.

    Returns (3, height, width) float in [0, 1].
    """
    generator = torch.Generator().manual_seed(seed)
    wall, floor = _random_colour(generator, 0.4, 0.95), _random_colour(generator, 0.2, 0.7)
    rows = torch.linspace(0, 1, height).view(height, 1)
    columns = torch.linspace(0, 1, width).view(1, width)
    horizon = 0.62 + 0.1 * float(torch.rand(1, generator=generator))
    wall_shade = (0.85 + 0.15 * (1 - rows)) * torch.ones_like(columns)
    image = torch.where((rows < horizon)[None], wall.view(3, 1, 1) * wall_shade[None], floor.view(3, 1, 1) * (0.8 + 0.2 * rows)[None])
    for _ in range(3):
        left, top = float(torch.rand(1, generator=generator)) * 0.8, float(torch.rand(1, generator=generator)) * (horizon - 0.25)
        panel = (columns > left) & (columns < left + 0.15) & (rows > top) & (rows < top + 0.2)
        image = torch.where(panel[None], _random_colour(generator).view(3, 1, 1), image)
    return image.clamp(0, 1)
