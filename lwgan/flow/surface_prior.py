"""A prior for the surface no source photo sees: the colour of its counterpart on the other side of the body.

A person photographed from the front shows the front of the torso, arms and legs; their back,
in a new view, is most likely the same garment in the same colour. For every texel of the UV
atlas this module finds two counterparts on the body at rest (arms out, seen straight on), and
marks the hair:
    opposite: the surface point straight through the body part (front <-> back): the rest body
        is drawn orthographically from the front and from behind; a texel seen in one of the two
        drawings takes the point the other drawing shows at the same pixel, when it is on the
        same body part (the head is left out: the back of the head is hair, not a face);
    mirror: the point at the mirrored position (left <-> right) in the drawing that sees the
        texel, on the mirrored body part; a second choice where the opposite side is unseen too.
    hair: the head off the front of the face from the height of the nose up, and its back (behind
        the ears) down to the chin's height: hair, or a bald head's skin. An unseen hair texel
        takes the colour of the seen crown (the head above the top of the face) nearest to the
        point straight above it at the crown's lowest height: the back of a head seen from the
        front shows the hair on top, carried on straight down (not the skin of the temples, ears or
        cheeks, which lie nearer but are skin on a short-haired head). Only the crown's texels not
        coloured like the face count, when there are enough of them: above a high hairline the
        crown starts with the forehead's skin (on a bald head every crown texel is skin, and is used).
fill_hidden_surface() gives unseen texels their opposite counterpart's colour where that was
seen, else their mirror's, else on the hair the crown's; what is left is filled smoothly. Before
that, the seen region of each body part grows by a few texels (a smooth fill from the nearest
seen texels): the front of a thin limb is seen only along its middle (its edges are not
trusted), and its back should show the whole front, edges included.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import kornia
import torch
import torch.nn.functional as F
from scipy.spatial import cKDTree

from lwgan.body.camera import OUTSIDE
from lwgan.body.model import PART_NAMES, BodyModel
from lwgan.checks import check_shape
from lwgan.render.fragments import Fragments
from lwgan.render.inpaint import fill_holes
from lwgan.render.interpolate import (
    interpolate_corner_attributes,
    interpolate_vertex_attributes,
)
from lwgan.render.rasterize import rasterize
from lwgan.render.texture import rasterize_uv_atlas, uv_to_grid

OPPOSITE_PARTS = ("torso", "left_leg", "right_leg", "left_arm", "right_arm", "left_foot", "right_foot", "left_hand", "right_hand")
"""Parts whose back takes the colour of their front and the other way round."""

DRAWING_RESOLUTION_FACTOR = 2
"""The rest body is drawn at this many times the atlas side (so a texel finds its own face)."""

DEPTH_TOLERANCE = 0.01
"""A texel counts as seen by a drawing when its depth is within this (metres) of the drawn depth."""

HAIR_CONTRAST = 0.12
"""A seen crown texel is hair, not the forehead's skin, when it differs from the face's median colour by more than this in some channel.

With the forehead counted as hair, a man with short dark hair and a high hairline, photographed
from the front, had a back of the head in his skin's colour (with a dark stripe down the middle)
in lwgan view turn=8: the crown's seen texels were half forehead. Now it is dark hair, and lwgan
evaluate's body PSNR on fashion_turn (she turns her back) rose 17.73 -> 17.89 (dance_aerobic
17.16 -> 17.14, taiji and dance_ball within 0.01). Only texels HAIR_MARGIN inside the seen
region count: at its edge they mix in what the photo shows beyond it.
"""
HAIR_MARGIN = 2
"""Texels (at 512) a crown texel must lie inside the seen region to give the hair its colour."""
MIN_HAIR_TEXELS = 20
"""Fewer seen crown texels unlike the face than this, and the whole known crown gives the hair its colour (a bald head, or blond hair like the skin)."""

SEEN_GROWTH = 1 / 64
"""Each part's seen texels grow by this fraction of the atlas side (8 texels at 512) before the counterparts are looked up."""


@dataclass(frozen=True)
class SurfaceCounterparts:
    """Where each texel's counterparts lie in the atlas, as grid_sample positions (uv_to_grid).

    opposite, mirror: (1, T, T, 2), OUTSIDE where a texel has none; part: (1, T, T) int64 each
    texel's body part (PART_NAMES), -1 between the atlas's islands; hair, crown, face: (1, T, T)
    bool, their texels (see the module docstring; face: the front of the face); point: (1, T, T,
    3) each texel's position on the rest body (centred and scaled as _rest_vertices).
    """

    opposite: torch.Tensor
    mirror: torch.Tensor
    part: torch.Tensor
    hair: torch.Tensor
    crown: torch.Tensor
    face: torch.Tensor
    point: torch.Tensor


def surface_counterparts(body: BodyModel, size: int) -> SurfaceCounterparts:
    """The counterparts of every texel of a size x size atlas of `body` (computed once per body and size)."""
    return _cached_counterparts(body, size)


@lru_cache(maxsize=4)
def _cached_counterparts(body: BodyModel, size: int) -> SurfaceCounterparts:
    with torch.no_grad():
        rest, scale = _rest_vertices(body)
        drawings = rasterize(torch.stack([rest, rest * rest.new_tensor([1.0, 1.0, -1.0])]), body.faces, size * DRAWING_RESOLUTION_FACTOR)
        atlas = rasterize_uv_atlas(body.uv, body.face_uv, size)
        point = interpolate_vertex_attributes(atlas, body.faces, rest)[0]  # (T, T, 3) each texel's rest position
        texel_part = atlas.face_values(body.face_part)[0]
        drawn_uv = interpolate_corner_attributes(drawings, body.uv[body.face_uv])  # (2, R, R, 2)
        drawn_part = drawings.face_values(body.face_part, background=-2)
        tolerance = DEPTH_TOLERANCE * scale
        seen_front = _seen_in(drawings.depth[0], point, point[..., 2], tolerance)
        seen_back = _seen_in(drawings.depth[1], point, -point[..., 2], tolerance)
        opposite_part = _part_table(body, OPPOSITE_PARTS, mirrored=False)[texel_part.clamp_min(0)]
        mirror_part = _part_table(body, PART_NAMES, mirrored=True)[texel_part.clamp_min(0)]
        opposite = torch.where(
            seen_front.unsqueeze(-1),
            _look_up(drawn_uv[1], drawn_part[1], point[..., :2], opposite_part),
            _look_up(drawn_uv[0], drawn_part[0], point[..., :2], opposite_part),
        )
        mirrored_xy = point[..., :2] * point.new_tensor([-1.0, 1.0])
        mirror = torch.where(
            seen_front.unsqueeze(-1),
            _look_up(drawn_uv[0], drawn_part[0], mirrored_xy, mirror_part),
            _look_up(drawn_uv[1], drawn_part[1], mirrored_xy, mirror_part),
        )
        known = (atlas.mask[0] & (seen_front | seen_back)).unsqueeze(-1)
        outside = torch.full_like(opposite, OUTSIDE)
        hair, crown, face = _hair_crown_and_face(body, atlas, point)
        return SurfaceCounterparts(torch.where(known, opposite, outside)[None], torch.where(known, mirror, outside)[None], texel_part[None],
                                   hair[None], crown[None], face[None], point[None])


def _hair_crown_and_face(body: BodyModel, atlas: Fragments, point: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(T, T) bool each: the hair, the crown (see the module docstring) and the front of the face.

    Heights on the face (body.face_masks["front_face"]): the nose at its mean, the chin at its
    bottom, the crown above its top; behind the ears: behind the head's mean depth.

    atlas: the body's UV atlas rasterized at T x T; point: (T, T, 3) each texel's rest position.
    """
    face = atlas.face_index[0].clamp_min(0)
    on_head = atlas.mask[0] & (body.face_part[face] == PART_NAMES.index("head"))
    front_face = on_head & body.face_masks["front_face"][face]
    off_face = on_head & ~front_face
    height = point[..., 1]  # the rest body's y points up, its z forward
    nose_height, chin_height = height[front_face].mean(), height[front_face].min()
    behind = point[..., 2] < point[..., 2][on_head].mean()
    hair = off_face & ((height >= nose_height) | (behind & (height >= chin_height)))
    return hair, off_face & (height >= height[front_face].max()), front_face


def fill_hidden_surface(atlas: torch.Tensor, seen: torch.Tensor, counterparts: SurfaceCounterparts) -> torch.Tensor:
    """Colour every texel no source saw (see the module docstring); (B, C, T, T) atlas, (B, T, T) bool seen -> (B, C, T, T).

    In order: each part's seen texels grow by SEEN_GROWTH (a smooth fill from the nearest seen
    texels); unseen texels take their opposite counterpart's colour where it is known, else their
    mirror's; unseen hair texels the colour of the seen crown's hair above them; the rest is filled
    smoothly within its own body part (so the neck takes the head's colours, not the torso's
    across the atlas).
    """
    check_shape("atlas", atlas, (None, None, *counterparts.opposite.shape[1:3]))
    check_shape("seen", seen, (atlas.shape[0], *atlas.shape[-2:]))
    near = _near_seen(seen, counterparts.part, max(1, round(SEEN_GROWTH * atlas.shape[-1])))
    atlas = torch.where(near.unsqueeze(1), fill_holes(atlas, seen), atlas)
    known = seen | near
    for grid in (counterparts.opposite, counterparts.mirror):
        grid = grid.expand(atlas.shape[0], -1, -1, -1).to(atlas.dtype)
        colour = F.grid_sample(atlas, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        counterpart_known = F.grid_sample(known.unsqueeze(1).to(atlas.dtype), grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0] > 0.999
        take = ~known & counterpart_known
        atlas = torch.where(take.unsqueeze(1), colour, atlas)
        known = known | take
    atlas, known = _fill_hair(atlas, seen, known, counterparts)
    filled = fill_holes(atlas, known)  # parts nothing is known of take the colours around them
    for index in range(len(PART_NAMES)):
        on_part = counterparts.part == index
        if bool((known & on_part).any()):
            filled = torch.where(on_part.unsqueeze(1), fill_holes(atlas, known & on_part), filled)
    return filled


def _fill_hair(atlas: torch.Tensor, seen: torch.Tensor, known: torch.Tensor, counterparts: SurfaceCounterparts) -> tuple[torch.Tensor, torch.Tensor]:
    """Hair texels of the (B, C, T, T) atlas not `known` (B, T, T) take the colour of the crown's hair texel nearest to the point straight
    above them at the crown's lowest height, on the rest body; returns (atlas, known).

    The crown's hair: its `seen` texels (HAIR_MARGIN inside the seen region) unlike the seen face
    (HAIR_CONTRAST) when there are MIN_HAIR_TEXELS of them, else its known texels.
    """
    hair, crown, face, point = counterparts.hair[0], counterparts.crown[0], counterparts.face[0], counterparts.point[0]
    raised = point.clone()
    raised[..., 1] = raised[..., 1].clamp_min(point[..., 1][crown].min())
    atlas, known = atlas.clone(), known.clone()
    for row in range(atlas.shape[0]):
        source, wanted = _crown_hair(atlas[row], seen[row], known[row], crown, face), ~known[row] & hair
        if not bool(source.any()) or not bool(wanted.any()):
            continue
        _, nearest = cKDTree(point[source].double().cpu().numpy()).query(raised[wanted].double().cpu().numpy())
        atlas[row][:, wanted] = atlas[row][:, source][:, torch.from_numpy(nearest).to(atlas.device)]  # (C, wanted texels)
        known[row] |= wanted
    return atlas, known


def _crown_hair(atlas: torch.Tensor, seen: torch.Tensor, known: torch.Tensor, crown: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """(T, T) bool: the crown texels that give the hair its colour (see _fill_hair), for one (C, T, T) atlas and its (T, T) masks."""
    if bool((seen & face).any()):
        skin = atlas[:, seen & face].median(dim=1).values
        kernel = torch.ones(2 * HAIR_MARGIN + 1, 2 * HAIR_MARGIN + 1, device=seen.device)
        inside = kornia.morphology.erosion(seen[None, None].float(), kernel)[0, 0] > 0.5
        hair = inside & crown & ((atlas - skin[:, None, None]).abs().amax(0) > HAIR_CONTRAST)
        if int(hair.sum()) >= MIN_HAIR_TEXELS:
            return hair
    return known & crown


def _near_seen(seen: torch.Tensor, part: torch.Tensor, growth: int) -> torch.Tensor:
    """(B, T, T) bool: unseen texels within `growth` texels of a seen texel of their own part."""
    kernel = torch.ones(2 * growth + 1, 2 * growth + 1, device=seen.device)
    near = torch.zeros_like(seen)
    for index in range(len(PART_NAMES)):
        on_part = part == index
        grown = kornia.morphology.dilation((seen & on_part).unsqueeze(1).float(), kernel)[:, 0] > 0.5
        near = near | (grown & on_part)
    return near & ~seen


def _rest_vertices(body: BodyModel) -> tuple[torch.Tensor, float]:
    """(V, 3) the default body in the rest pose, arms out, centred and scaled into [-0.9, 0.9] (depth too), and that scale (per metre)."""
    vertices = body(torch.zeros(1, 24, 3, device=body.faces.device), body.default_shape(1).to(body.faces.device)).vertices[0]
    centre = (vertices.amax(0) + vertices.amin(0)) / 2
    scale = 1.8 / (vertices.amax(0) - vertices.amin(0))[:2].max()
    return (vertices - centre) * scale, float(scale)


def _seen_in(depth: torch.Tensor, point: torch.Tensor, point_depth: torch.Tensor, tolerance: float) -> torch.Tensor:
    """(T, T) bool: the drawing with z-buffer `depth` (R, R) shows each texel's point (x, y in NDC, its depth there) within `tolerance`."""
    drawn = F.grid_sample(depth[None, None].nan_to_num(posinf=1e6), point[None, ..., :2], mode="nearest", align_corners=False)[0, 0]
    return (drawn - point_depth).abs() <= tolerance


def _look_up(drawn_uv: torch.Tensor, drawn_part: torch.Tensor, xy: torch.Tensor, wanted_part: torch.Tensor) -> torch.Tensor:
    """(T, T, 2) the atlas grid position drawn at NDC `xy` (T, T, 2), OUTSIDE where the drawing shows another part than `wanted_part`."""
    sample = xy[None]
    uv = F.grid_sample(drawn_uv.permute(2, 0, 1)[None], sample, mode="nearest", align_corners=False)[0].permute(1, 2, 0)
    part = F.grid_sample(drawn_part[None, None].float(), sample, mode="nearest", align_corners=False)[0, 0].long()
    return torch.where((part == wanted_part).unsqueeze(-1), uv_to_grid(uv), torch.full_like(uv, OUTSIDE))


def _part_table(body: BodyModel, parts: tuple[str, ...], mirrored: bool) -> torch.Tensor:
    """(P,) for each part index: the part its counterpart must be on (itself, or its mirror), -1 when the part has none."""
    table = []
    for name in PART_NAMES:
        partner = name.replace("left", "@").replace("right", "left").replace("@", "right") if mirrored else name
        table.append(PART_NAMES.index(partner) if name in parts else -1)
    return torch.tensor(table, device=body.faces.device)
