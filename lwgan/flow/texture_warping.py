"""Frames without learned weights: source photos warped onto target bodies, the hidden surface from a prior.

make_bank() prepares one person's sources once:
    trusted pixels: a source pixel colours the body only when the fitted mesh and the person mask
        both cover it and it lies a few pixels inside both, away from self-occlusion edges (depth
        jumps between neighbouring pixels of different body parts): the fit is never exact there, and pixels next to a
        silhouette are background (white halos on hands, streaks between the legs) or the wrong
        limb;
    atlas: the trusted pixels of every source unwrapped into the body's UV atlas and fused, where
        the surface faces that source's camera (not edge-on: GRAZING_COSINE); texels no source saw
        so take the colour of their counterpart on the other side of the body
        (lwgan.flow.surface_prior: back <-> front, else left <-> right), the rest is filled smoothly;
    background: the first source with the person, the clothed mesh, a margin and the contact
        shadow under the feet removed (lwgan.render.inpaint.background_hole) and the hole
        inpainted, the ground under the feet first from the floor beside it (inpaint_background).
warped_frames() then colours each target body pixel from the first source that sees its surface
point, facing it, at a trusted pixel; a point sources see only near an edge takes the colour of
the trusted pixels of its own body part around it; a point no source sees (or sees only
edge-on), the atlas's. Single stray pixels among those last two (dark or bluish dots along a
forearm) take their neighbourhood's median (despeckled). The body goes over the background with
a feathered edge. Where a source sees the surface point off the person (the fitted mesh is a
little wider than the person, or loose hair and clothes make it narrower), the point stays
transparent:
the body's opacity is the source's person mask carried along the flow, so the person keeps their
own outline in the new pose instead of the mesh's. That holds only for transparent points joined
to the outside within OUTLINE_BAND of the target's outline: elsewhere a point seen off the person
is the fit's error, not a gap in the person, and stays opaque (no holes in the body).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import kornia
import torch

from lwgan.body.model import PART_NAMES, BodyModel
from lwgan.body.tables import face_normals
from lwgan.checks import check_shape
from lwgan.flow.atlas import unwrap_to_atlas
from lwgan.flow.inputs import dilate
from lwgan.flow.surface_prior import fill_hidden_surface, surface_counterparts
from lwgan.flow.transfer import TransferFlow, transfer_flow
from lwgan.flow.warp import lies_within, warp
from lwgan.image_ranges import signed_to_unit_range, unit_to_signed_range
from lwgan.render import rasterize, render_texture
from lwgan.render.fragments import Fragments
from lwgan.render.inpaint import (
    background_hole,
    fill_holes,
    ground_rows,
    inpaint_background,
)
from lwgan.render.interpolate import lookup_face_attributes

ATLAS_SIZE = 512
TRUST_MARGIN = 0.004
"""Source pixels closer than this fraction of the image side to a silhouette or an occlusion edge are not trusted (1 px at 256).

One pixel keeps the background halo of a soft mask edge off the body; two lost the hair: a head of
hair is a band a few pixels wide around the face, and with it untrusted the head took the face's
colours (lwgan evaluate on the same preprocessed videos: body PSNR 14.64 -> 14.80 on taiji, 16.53 ->
16.62 on dance_aerobic, 20.43 -> 21.47 on a synthetic val split; body SSIM 0.392 -> 0.403, 0.484 -> 0.499
and 0.657 -> 0.690).
"""
GRAZING_COSINE = 0.3
"""A source sees a surface point usefully only where the surface faces its camera: the cosine between the outward normal and the line of sight above this (73 degrees).

Seen nearly edge-on, a few source pixels at the person's outline (blurred, half background) spread
over a whole side in a turned view: lwgan view turn=8 of the fashion photo showed white streaks
down the side of her dress and pink patches in her hair at 270 degrees. Such points are now
untrusted in that source and take the atlas's colours, from the sources that face them or else
from the hidden-surface prior. lwgan evaluate (warping) body PSNR: taiji 14.42 -> 14.43,
dance_aerobic 17.12 -> 17.16, fashion_turn 17.70 -> 17.73, dance_ball 13.95 -> 13.96, SSIM the
same or up; the synthetic val split 21.34 both ways. 0.15 and 0.5 gave within 0.03 dB of these.
"""
OCCLUSION_DEPTH_JUMP = 0.05
"""Neighbouring source pixels of different body parts whose depths differ by more (metres) lie on an occlusion edge (an arm in front of the chest)."""
ARM_PARTS = tuple(PART_NAMES.index(name) for name in ("left_arm", "right_arm", "left_hand", "right_hand"))
"""Where an arm or a hand meets another part (an arm hanging beside a dress, a hand on the thigh), the edge is untrusted at any depth.

An arm beside the body lies at about the body's depth, so no depth jump marks it, and the fit is a
pixel or two off: the arm's edge pixels then show the dress, and the arm carries the dress's colour
into every frame (cyan streaks along the forearms of a woman in a cyan dress). Untrusted, they fill
from the arm's own pixels. The streaks are gone from the frames; lwgan evaluate's body PSNR moves by
-0.05 to +0.04 dB on four real videos, and by -0.12 dB on a synthetic val split, whose fits are exact
(the edge pixels it gives up were right there).
"""
FEATHER = 0.004
"""The body's edge fades into the background over about this fraction of the image side, inward (1 px at 256)."""
SPECKLE_CONTRAST = 0.08
"""A filled body pixel farther than this, in some channel, from the median of its 3 x 3 neighbourhood is a speckle (despeckled).

A frame's body mixes three colourings pixel by pixel: a source's trusted pixel, the fill of an
untrusted one from its part, the atlas. Where they disagree, single filled pixels stand out: rows
of dark and bluish dots along a forearm raised across a shirt (the tai chi photo imitating the
dance video). Replaced, lwgan evaluate (warping) gains body PSNR 14.38 -> 14.42 on taiji, 17.10 ->
17.12 on dance_aerobic, 17.65 -> 17.70 on fashion_turn and 13.91 -> 13.95 on dance_ball, SSIM up
on all four. Pixels a source coloured directly are left alone: they are the photo's own detail
(at 256 px an eye or the rim of a pair of glasses is one pixel): despeckled too, the COCO skier
imitating her own pose (tests/tasks/test_synthesis_api.py) reproduced 0.75 of her interior
exactly instead of 0.82 (0.815 as it is). A lower contrast gains more in those figures by
smoothing the body. A 5 x 5 neighbourhood also removes the blobs of 2-3 pixels left on a raised
forearm and gains up to 0.04 dB more on the real videos, but loses 0.16 dB of body PSNR on the
synthetic val split, whose fills are right and carry detail (over every body pixel, it frayed
the edges of a striped shirt).
"""
OUTLINE_BAND = 0.01
"""The person's own outline (their mask carried to the target) may move the body's edge inward by up to this fraction of the image side (2.5 px at 256)."""


@dataclass(frozen=True)
class SourceBank:
    """One person's sources, ready for making frames (torch, on one device).

    images: (S, 3, H, W) float in [0, 1]; vertices: (S, V, 3) the source meshes in NDC;
    trusted: (S, H, W) bool, the source pixels that may colour the body; inward: (S, 3, H, W) the
    images with every untrusted pixel replaced by a smooth fill from the trusted ones of its body
    part around it (fill_within_parts: what a surface point the source sees only near an edge takes); person: (S, H, W) float
    in [0, 1], the segmented person (the mesh's coverage when there is no mask); atlas: (1, 3, T, T) the
    sources unwrapped and fused in UV space, hidden surface filled; background: (1, 3, H, W) in
    [0, 1]; offsets: (V,) the person's clothing (lwgan.body.clothing), which target meshes carry too;
    facing: (S, F) each face's facing_cosines in each source.
    The networks take the images in [-1, 1]: signed_range_images.
    """

    images: torch.Tensor
    vertices: torch.Tensor
    trusted: torch.Tensor
    inward: torch.Tensor
    person: torch.Tensor
    atlas: torch.Tensor
    background: torch.Tensor
    offsets: torch.Tensor
    facing: torch.Tensor

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.images.shape[-2:])

    @cached_property
    def signed_range_images(self) -> torch.Tensor:
        """(S, 3, H, W) the images in [-1, 1], the networks' range (lwgan.image_ranges); converted once, when first asked for."""
        return unit_to_signed_range(self.images)


def trusted_source_pixels(fragments: Fragments, part: torch.Tensor, covered: torch.Tensor, margin: int,
                          depth_jump: float = OCCLUSION_DEPTH_JUMP) -> torch.Tensor:
    """(S, H, W) bool: `covered` pixels at least `margin` pixels inside it, and as far from occlusion edges.

    An occlusion edge lies between two neighbouring pixels that show different body parts at
    depths more than `depth_jump` apart (a limb in front of the body, crossed legs), or where an
    arm or a hand (ARM_PARTS) meets a part that is neither.

    Args:
        fragments: the S source meshes rasterized at H x W; part: (S, H, W) int64 each pixel's body
            part (Fragments.face_values of the faces' parts), -1 off the mesh; covered: (S, H, W)
            bool, the mesh and the person mask; margin: pixels; depth_jump: metres.
    """
    if margin <= 0:
        return covered
    kernel = torch.ones(2 * margin + 1, 2 * margin + 1, device=covered.device)
    inside = kornia.morphology.erosion(covered.unsqueeze(1).float(), kernel)[:, 0] > 0.5
    depth = torch.where(fragments.mask, fragments.depth, torch.zeros_like(fragments.depth))
    arm_parts = torch.tensor(ARM_PARTS, device=part.device)
    edge = torch.zeros_like(covered)
    for axis in (1, 2):  # rows, then columns
        length = covered.shape[axis] - 1
        here, there = (slice(None),) * axis + (slice(0, length),), (slice(None),) * axis + (slice(1, None),)
        arm_here, arm_there = torch.isin(part[here], arm_parts), torch.isin(part[there], arm_parts)
        apart = ((depth[here] - depth[there]).abs() > depth_jump) | (arm_here != arm_there)
        jump = (part[here] >= 0) & (part[there] >= 0) & (part[here] != part[there]) & apart
        edge[here] |= jump
        edge[there] |= jump
    near_edge = dilate(edge.unsqueeze(1).float(), 2 * margin + 1)[:, 0] > 0.5
    return inside & ~near_edge


def make_bank(body: BodyModel, images: torch.Tensor, vertices: torch.Tensor, camera_scales: torch.Tensor, person_masks: torch.Tensor | None,
              offsets: torch.Tensor, background: torch.Tensor | None = None, layers: torch.Tensor | None = None) -> SourceBank:
    """Prepare S sources of one person (see the module docstring).

    Args:
        images: (S, 3, H, W) in [0, 1]; vertices: (S, V, 3) their fitted (clothed) meshes in NDC;
        camera_scales: (S,) their weak-perspective cameras' scales (NDC units per metre);
        person_masks: (S, H, W) bool, the segmented person, or None; offsets: (V,) the clothing;
        background: (1, 3, H, W) in [0, 1] to use instead of the first source inpainted; layers:
            (S, H, W) int64 or None, which layer each pixel shows (skin or garment; -1: none), kept
            apart when untrusted pixels are filled (fill_within_parts).
    """
    check_shape("images", images, (vertices.shape[0], 3, None, None))
    size = images.shape[-2:]
    fragments = rasterize(vertices, body.faces, size)
    part = fragments.face_values(body.face_part)
    covered = fragments.mask if person_masks is None else fragments.mask & person_masks
    trusted = trusted_source_pixels(fragments, part, covered, max(1, round(TRUST_MARGIN * size[0])))
    facing = facing_cosines(vertices, body.faces, camera_scales)
    textures, seen = unwrap_to_atlas(images, vertices, body.faces, body.uv, body.face_uv, size=ATLAS_SIZE, trusted=trusted,
                                     facing=facing, min_facing=GRAZING_COSINE)
    # Pixels of surface seen edge-on neither colour the target nor fill their untrusted neighbours. The
    # atlas above took them as trusted and skipped edge-on texels by their own faces instead: with the
    # pixels untrusted there too, the crown above a face (its top is edge-on from the front) was lost
    # to the hair prior (0.60 of the back of the head right in the tests).
    trusted = trusted & (lookup_face_attributes(fragments, facing[..., None])[..., 0] >= GRAZING_COSINE)
    weight = seen.unsqueeze(1).float()
    fused = (textures * weight).sum(0, keepdim=True) / weight.sum(0, keepdim=True).clamp_min(1e-6)
    atlas = fill_hidden_surface(fused, seen.any(0, keepdim=True), surface_counterparts(body, ATLAS_SIZE))
    if background is None:
        background = inpainted_background(images[:1], None if person_masks is None else person_masks[:1], fragments.mask[:1])
    person = (fragments.mask if person_masks is None else person_masks).float()
    inward = fill_within_parts(images, trusted, part, covered, layers)
    return SourceBank(images, vertices, trusted, inward, person, atlas, background, offsets, facing)


def facing_cosines(vertices: torch.Tensor, faces: torch.Tensor, camera_scales: torch.Tensor) -> torch.Tensor:
    """(B, F) for (B, V, 3) NDC meshes (lwgan.body.camera.project) with (B,) camera scales: the cosine between each face's outward normal and the direction to the camera.

    1 faces the camera, 0 is edge-on, negative faces away. NDC x and y are metres times the scale,
    depth is metres: the normal is taken with x and y divided by the scale.
    """
    check_shape("camera_scales", camera_scales, (vertices.shape[0],))
    metres = torch.cat([vertices[..., :2] / camera_scales[:, None, None], vertices[..., 2:]], dim=-1)
    return -face_normals(metres, faces)[..., 2]  # the camera looks along +z (depth grows away from it)


def fill_within_parts(images: torch.Tensor, trusted: torch.Tensor, part: torch.Tensor, covered: torch.Tensor,
                      layers: torch.Tensor | None = None) -> torch.Tensor:
    """(S, 3, H, W) `images` with every untrusted pixel replaced by a smooth fill from the trusted pixels of its own body part.

    A thin limb against the body (an arm hanging beside a dress) has few trusted pixels of its
    own, and a fill from every trusted pixel around it would paint it in the garment's colour.
    A part with no trusted pixel in a source fills from its own covered pixels; pixels of no part
    (off the mesh) fill from every trusted pixel. With `layers`, each part is split further by
    its layer (skin and garment: a shoulder's untrusted garment pixels take the sleeve, not the
    bare forearm below it); pixels of no layer (-1: off the person) and a layer with no covered
    pixel of its part keep the part's fill.

    Args:
        images: (S, 3, H, W); trusted, covered: (S, H, W) bool (covered: the mesh and the person
            mask); part: (S, H, W) int64, each pixel's body part (PART_NAMES index), -1 off the mesh;
            layers: (S, H, W) int64, -1 or a layer index, or None.
    """
    filled = _fill_regions(images, trusted, covered, part, fill_holes(images, trusted))
    if layers is None:
        return filled
    layered = torch.where((part >= 0) & (layers >= 0), part * (int(layers.max()) + 1) + layers, -1)
    return _fill_regions(images, trusted, covered, layered, filled)


def _fill_regions(images: torch.Tensor, trusted: torch.Tensor, covered: torch.Tensor, region_index: torch.Tensor, filled: torch.Tensor) -> torch.Tensor:
    """`filled` with the untrusted pixels of each region (region_index >= 0) filled from that region's trusted pixels, else its covered ones."""
    for index in region_index.unique().tolist():
        if index < 0:
            continue
        region = region_index == index
        known = trusted & region
        known = torch.where(known.flatten(1).any(1)[:, None, None], known, covered & region)
        usable = known.flatten(1).any(1)[:, None, None]
        filled = torch.where((region & ~trusted & usable).unsqueeze(1), fill_holes(images, known), filled)
    return filled


def inpainted_background(image: torch.Tensor, person_mask: torch.Tensor | None, body_mask: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) in [0, 1] with the person removed: the hole of lwgan.render.inpaint.background_hole for the (1, H, W) bool person and
    clothed-mesh masks, inpainted, the ground under the feet first (inpaint_background)."""
    hole = background_hole(person_mask, body_mask)
    return signed_to_unit_range(inpaint_background(unit_to_signed_range(image), hole, ground_rows(person_mask, body_mask)))


def warped_frames(bank: SourceBank, target_vertices: torch.Tensor, body: BodyModel) -> torch.Tensor:
    """Frames by texture warping: (B, V, 3) target meshes in NDC -> (B, 3, H, W) in [0, 1]."""
    layers = warped_layers(bank, target_vertices, body)
    background = bank.background.expand(target_vertices.shape[0], -1, -1, -1)
    return layers.alpha * layers.colour + (1 - layers.alpha) * background


@dataclass(frozen=True)
class WarpedLayers:
    """Texture warping's body layer for B targets, before it goes over a background.

    colour: (B, 3, H, W) in [0, 1], the body's colour on the target mesh (0 off it); alpha:
    (B, 1, H, W) in [0, 1], its opacity (the person's outline carried along the flow, feathered
    inward); flows: the TransferFlow of every source of the bank to the targets.
    """

    colour: torch.Tensor
    alpha: torch.Tensor
    flows: list[TransferFlow]


def warped_layers(bank: SourceBank, target_vertices: torch.Tensor, body: BodyModel) -> WarpedLayers:
    """The body layer of texture warping (see the module docstring) for (B, V, 3) target meshes in NDC."""
    batch_size = target_vertices.shape[0]
    flows = [transfer_flow(bank.vertices[index : index + 1].expand(batch_size, -1, -1), target_vertices, body.faces, bank.image_size,
                           body.uv, body.face_uv) for index in range(bank.images.shape[0])]
    target = flows[0].target_fragments  # the same rasterization of the targets in every flow
    colour = render_texture(target, body.uv, body.face_uv, bank.atlas.expand(batch_size, -1, -1, -1))
    opacity = torch.ones_like(colour[:, :1])
    coloured = torch.zeros_like(target.mask)  # by a source that sees the point, facing it, at a trusted pixel
    near_edge = torch.zeros_like(colour)  # the first source that sees the point facing it, from its trusted pixels around it
    seen = torch.zeros_like(target.mask)  # by a source facing the point
    outlined = torch.zeros_like(target.mask)  # by any source (its person mask gives the opacity)
    for index, flow in enumerate(flows):
        def sampled(maps: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # this source's (C, H, W) maps along the flow
            return warp(maps[index].expand(batch_size, -1, -1, -1), flow.grid, mask=mask)

        trusted = bank.trusted[index : index + 1].expand(batch_size, -1, -1)
        facing = flow.visible & (lookup_face_attributes(target, bank.facing[index, :, None])[..., 0] >= GRAZING_COSINE)
        take = facing & lies_within(trusted, flow.grid) & ~coloured
        colour = torch.where(take.unsqueeze(1), sampled(bank.images, trusted), colour)
        coloured = coloured | take
        near_edge = torch.where((facing & ~seen).unsqueeze(1), sampled(bank.inward), near_edge)
        opacity = torch.where((flow.visible & ~outlined).unsqueeze(1), sampled(bank.person.unsqueeze(1)), opacity)
        seen = seen | facing
        outlined = outlined | flow.visible
    colour = torch.where((seen & ~coloured).unsqueeze(1), near_edge, colour)
    colour = despeckled(colour, target.mask, ~coloured)
    opacity = outline_opacity(opacity, target.mask, max(1, round(OUTLINE_BAND * bank.image_size[0])))
    return WarpedLayers(colour=colour * target.mask.unsqueeze(1), alpha=feathered_alpha(target.mask, opacity), flows=flows)


def despeckled(colour: torch.Tensor, body: torch.Tensor, candidates: torch.Tensor, contrast: float = SPECKLE_CONTRAST) -> torch.Tensor:
    """(B, 3, H, W) `colour` with each speckle replaced by the median of its 3 x 3 neighbourhood.

    A speckle is one of the (B, H, W) bool `candidates` whose neighbourhood lies wholly on the
    (B, H, W) bool `body` and which differs from that neighbourhood's median (per channel) by more
    than `contrast` in some channel. A pixel, or a line one pixel wide, is replaced; an edge, a
    stripe two or more pixels wide and the body's outline are kept (a convex corner is rounded by a
    pixel).
    """
    median = kornia.filters.median_blur(colour, (3, 3))
    inside = kornia.morphology.erosion(body.unsqueeze(1).float(), torch.ones(3, 3, device=body.device)) > 0.5
    speckle = inside & candidates.unsqueeze(1) & ((colour - median).abs().amax(1, keepdim=True) > contrast)
    return torch.where(speckle, median, colour)


def outline_opacity(opacity: torch.Tensor, mask: torch.Tensor, band: int) -> torch.Tensor:
    """(B, 1, H, W) opacity kept only where it is transparent (< 0.5) along a path of such pixels at most `band` pixels from outside the (B, H, W) mask; 1 elsewhere.

    So the person's own outline can move the body's edge inward, but a point seen off the person
    deep inside the body (the fit's error there) leaves no hole.
    """
    transparent = opacity < 0.5
    reached = ~mask.unsqueeze(1)
    for _ in range(band):
        reached = reached | ((dilate(reached.float(), 3) > 0.5) & transparent)
    return torch.where(reached, opacity, torch.ones_like(opacity))


def feathered_alpha(mask: torch.Tensor, opacity: torch.Tensor) -> torch.Tensor:
    """The body's (B, 1, H, W) alpha from the (B, H, W) target mask and (B, 1, H, W) `opacity`, with a soft edge.

    The edge fades inward: the alpha rises from 0 on the mask's outline to 1 about FEATHER of
    the image side inside, so nothing of the body reaches past the mask.
    """
    sigma = max(0.5, FEATHER * mask.shape[-2])
    radius = max(1, round(2 * sigma))
    inside = mask.unsqueeze(1).float()
    edge = (2 * kornia.filters.gaussian_blur2d(inside, (2 * radius + 1, 2 * radius + 1), (sigma, sigma), border_type="replicate") - 1).clamp(0, 1)
    return edge * inside * opacity.clamp(0, 1)
