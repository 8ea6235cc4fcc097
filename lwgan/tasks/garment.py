"""What a photo's person wears where: each person pixel's body region, split at the waist by colour, and bare skin (for swaps).

parse_garments() labels the pixels of a photo's person mask (PhotoPerson.mask):
    region: the body part (PART_NAMES) of the nearest pixel of the fitted clothed mesh, so clothing
        beyond the mesh (a loose sleeve, a hem) belongs to the part it hangs from; the torso below
        the waist line (WAIST_LINE, on the body at rest) is HIPS, which goes with the legs' garment;
    the waist: a pixel goes with the garment whose colours it is closer to, the top's (sampled on
        the chest) or the bottom's (sampled on the thighs), where it is joined to that garment
        through pixels of its colours: the hips and legs' pixels joined to the torso's top (an
        untucked shirt's hem, a long coat) belong to the top; the torso's pixels up to WAIST_BAND
        joined to the legs' bottom (high-waisted trousers) belong to the bottom;
    skin: on the torso, arms and legs, a pixel closer to the person's skin tone than to the colours
        of that part's garment (chest or thighs), and within SKIN_DISTANCE of the skin tone, in
        patches at least 3 pixels across (a red sleeve's edge blended with snow is pink, not skin); the
        skin tone is the median of the face's and the hands' pixels that pass a classic YCrCb skin gate;
    limb distance: how far each pixel lies from each of the mesh's hands and arms (the real hand or
        arm may lie a little off the fitted one: against the thigh or beside the chest).
Colours are compared in CIELAB with the lightness down-weighted: shading changes lightness, not
the hue of a garment or of skin; skin is told from garments by its chroma almost alone (khaki
trousers in the light are as light as skin), garments from each other with more of the lightness
(black and grey trousers). A colour that both the top and the bottom wear tells nothing at the
waist: the bottom's colours leave out those within SHARED_COLOUR of one of the top's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import torch
from scipy import ndimage

from lwgan.body.model import PART_NAMES, BodyModel
from lwgan.flow.inputs import posed_vertices_ndc
from lwgan.render import rasterize
from lwgan.tasks.people import PhotoPerson

HIPS = len(PART_NAMES)
"""The region label of the torso below the waist line: the top of trousers and skirts."""
REGION_NAMES = (*PART_NAMES, "hips")
"""Names of the region labels: PART_NAMES, then HIPS."""
UPPER_REGIONS = ("torso", "left_arm", "right_arm")
LOWER_REGIONS = ("hips", "left_leg", "right_leg")
"""Regions whose skin is told from the garment's colours (the chest's for the upper ones, the thighs' for the lower ones)."""

WAIST_LINE = 0.6
"""The waist line lies this fraction of the way from the pelvis joint up to the first spine joint (SMPL joints 0 and 3), on the body at rest."""
WAIST_BAND = 2.0
"""Trousers may reach up to this multiple of the pelvis joint's distance to the first spine joint, above the pelvis joint (high-waisted ones: about the navel)."""
CHEST = (6, 9)
"""The top's colours are sampled on the torso between these joints' heights (spine2 and spine3), on the body at rest."""
THIGHS = 0.5
"""The bottom's colours are sampled on the legs above this fraction of the way down from the hip joints to the knees."""
HANDS = ("left_hand", "right_hand")
ARMS = ("left_arm", "right_arm")
ARM_INDICES = tuple(PART_NAMES.index(name) for name in ARMS)
"""The arms' indices in PART_NAMES (and REGION_NAMES, which extends it)."""
LIMBS = (*HANDS, *ARMS)
"""The parts (PART_NAMES) whose distance from every pixel PhotoGarments keeps."""
JOIN_MARGIN = 0.008
"""Pixels this fraction of the image side inside the person's outline join no garments (2 px at 256): they blend the background in."""
SKIN_DISTANCE = 20.0
"""A skin pixel lies at most this far from the skin tone (CIELAB units, lightness weighted by SKIN_LIGHTNESS_WEIGHT)."""
SKIN_LIGHTNESS_WEIGHT = 0.2
GARMENT_LIGHTNESS_WEIGHT = 0.5
"""Weights of the lightness against the chroma (a, b) in the colour distances of skin and of garments."""
SHARED_COLOUR = 10.0
"""Colours of the top and the bottom closer than this (CIELAB units, garment weights) are shared."""
SKIN_GATE = ((133, 173), (77, 127))
"""YCrCb ranges of Cr and Cb that skin falls in (Chai and Ngan, 1999): the face's lips, eyes, beard and hair, and gloves, fail it."""
COLOUR_CLUSTERS = 3
"""A garment's colours: up to this many k-means centres (stripes, shading) ..."""
MIN_CLUSTER_SHARE = 0.15
"""... each holding at least this share of the sampled pixels (so a little skin or hair in the sample is no garment colour)."""
MIN_PIXELS = 20
"""Fewer sampled pixels than this give no colours (the skin tone or a garment is not seen)."""
ARM_SAMPLE_MARGIN = 1
"""The arms' skin tone is measured this many pixels inside their bare skin (its outline blends the background or the sleeve in)."""


@dataclass(frozen=True)
class BodyRegions:
    """Per-face tables of a body (numpy, (F,)): region (REGION_NAMES index), waist_band, chest, thighs (bool)."""

    region: np.ndarray
    waist_band: np.ndarray
    chest: np.ndarray
    thighs: np.ndarray


@dataclass(frozen=True)
class PhotoGarments:
    """A photo's person parsed into garments (numpy, H x W like the photo).

    region: int64, the REGION_NAMES index of each person pixel, -1 off the person; surface: the same
        before the colours moved the waist (the nearest mesh face's region alone).
    skin: bool, bare skin on the torso, arms or legs.
    layer: int64, 1 on `skin`, 0 on the person's pixels whose colour is not skin's (garments), -1
        elsewhere (off the person; skin-coloured lines too thin to call skin).
    limb_distance: (4, H, W) float32, each pixel's distance in pixels to the mesh's pixels of each
        of LIMBS, inf where the mesh shows none.
    skin_tone: (3,) float32 CIELAB (L in [0, 100]), or None where no face or hand pixel passes the skin gate.
    arm_skin_tone: (3,) float32 CIELAB, the median of the bare arms' skin ARM_SAMPLE_MARGIN pixels inside it, or None
        where fewer than MIN_PIXELS are seen. Arms are often lighter than a tanned face (the man of the tai chi photo:
        L 70 against 59).
    """

    region: np.ndarray
    surface: np.ndarray
    skin: np.ndarray
    layer: np.ndarray
    limb_distance: np.ndarray
    skin_tone: np.ndarray | None
    arm_skin_tone: np.ndarray | None

    def arm_tone(self) -> np.ndarray | None:
        """(3,) the arms' skin tone where their skin is seen, else the skin tone."""
        return self.skin_tone if self.arm_skin_tone is None else self.arm_skin_tone

    def near(self, limbs: tuple[str, ...], margin: float) -> np.ndarray:
        """(H, W) bool: the pixels within `margin` pixels of the mesh's `limbs` (names from LIMBS)."""
        distance = self.limb_distance[[LIMBS.index(name) for name in limbs]]
        return (distance <= margin).any(0)


def body_regions(body: BodyModel) -> BodyRegions:
    """The per-face region tables of `body` (computed once per body)."""
    return _cached_regions(body)


@lru_cache(maxsize=4)
def _cached_regions(body: BodyModel) -> BodyRegions:
    device = body.faces.device
    with torch.no_grad():
        rest = body(torch.zeros(1, 24, 3, device=device), body.default_shape(1).to(device))
    height = rest.vertices[0, :, 1][body.faces].mean(1).cpu().numpy()  # (F,) each face's height at rest
    joint_height = rest.joints[0, :, 1].cpu().numpy()
    part = body.face_part.cpu().numpy()
    pelvis, spine = joint_height[0], joint_height[3]
    torso = part == PART_NAMES.index("torso")
    below_waist = torso & (height < pelvis + WAIST_LINE * (spine - pelvis))
    region = np.where(below_waist, HIPS, part)
    waist_band = (torso & (height < pelvis + WAIST_BAND * (spine - pelvis))) | below_waist
    chest = torso & (height > joint_height[CHEST[0]]) & (height < joint_height[CHEST[1]])
    hip, knee = joint_height[[1, 2]].mean(), joint_height[[4, 5]].mean()
    legs = np.isin(part, [PART_NAMES.index("left_leg"), PART_NAMES.index("right_leg")])
    thighs = legs & (height > hip + THIGHS * (knee - hip))
    return BodyRegions(region, waist_band, chest, thighs)


def swapped_regions(parts: tuple[str, ...]) -> tuple[int, ...]:
    """REGION_NAMES indices that swap with `parts` (PART_NAMES): the parts, and HIPS with either leg."""
    regions = [PART_NAMES.index(name) for name in parts]
    if {"left_leg", "right_leg"} & set(parts):
        regions.append(HIPS)
    return tuple(regions)


def parse_garments(body: BodyModel, person: PhotoPerson) -> PhotoGarments:
    """Label the pixels of `person`'s photo (see the module docstring) from its fitted clothed mesh and colours."""
    regions = body_regions(body)
    device = body.faces.device
    size = person.image.shape[:2]
    with torch.no_grad():
        vertices = posed_vertices_ndc(body, torch.from_numpy(person.pose)[None].to(device), torch.from_numpy(person.shape)[None].to(device),
                                      torch.from_numpy(person.camera)[None].to(device), torch.from_numpy(person.offsets).to(device))
        face_index = rasterize(vertices, body.faces, size).face_index[0].cpu().numpy()
    covered = face_index >= 0
    on_person = person.mask > 0.5
    if not covered.any():
        nothing = np.full(size, -1, np.int64)
        return PhotoGarments(nothing, nothing, np.zeros(size, bool), nothing, np.full((len(LIMBS), *size), np.inf, np.float32), None, None)
    _, (rows, columns) = ndimage.distance_transform_edt(~covered, return_indices=True)
    face = face_index[rows, columns]  # the nearest covered pixel's face, everywhere
    surface = np.where(on_person, regions.region[face], -1)
    region = surface
    lab = cv2.cvtColor(person.image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)

    part = body.face_part.cpu().numpy()[face]
    front_face = body.face_masks["front_face"].cpu().numpy()[face]
    hand_parts = [PART_NAMES.index(name) for name in HANDS]
    skin_sample = on_person & covered & (front_face | np.isin(part, hand_parts)) & _skin_gate(person.image)
    skin_tone = np.median(lab[skin_sample], axis=0) if skin_sample.sum() >= MIN_PIXELS else None
    top = _colour_centres(lab[on_person & covered & regions.chest[face]])
    bottom = _colour_centres(lab[on_person & covered & regions.thighs[face]])
    if len(top) and len(bottom):
        bottom = bottom[_distance(bottom, top, GARMENT_LIGHTNESS_WEIGHT) >= SHARED_COLOUR]

    skin_coloured = np.zeros(size, bool)
    if skin_tone is not None:
        to_skin = _distance(lab, skin_tone[None], SKIN_LIGHTNESS_WEIGHT)
        for names, garment in ((UPPER_REGIONS, top), (LOWER_REGIONS, bottom)):
            on_regions = np.isin(region, [REGION_NAMES.index(name) for name in names])
            skin_coloured |= on_regions & (to_skin < _distance(lab, garment, SKIN_LIGHTNESS_WEIGHT)) & (to_skin < SKIN_DISTANCE)
    skin = ndimage.binary_opening(skin_coloured, np.ones((3, 3), bool))  # no thin lines: a garment's edge blended with the background
    layer = np.where(skin, 1, np.where(on_person & ~skin_coloured, 0, -1))
    if len(top) and len(bottom):
        closer_to_top = _distance(lab, top, GARMENT_LIGHTNESS_WEIGHT) < _distance(lab, bottom, GARMENT_LIGHTNESS_WEIGHT)
        torso = region == PART_NAMES.index("torso")
        lower = np.isin(region, [REGION_NAMES.index(name) for name in LOWER_REGIONS])
        margin = max(1, round(JOIN_MARGIN * max(size)))
        top_garment = _joined(on_person & ~skin & closer_to_top, torso, on_person, margin)
        bottom_garment = _joined(on_person & ~skin & ~closer_to_top, lower, on_person, margin)
        region = np.where(lower & top_garment, PART_NAMES.index("torso"), region)
        region = np.where(torso & regions.waist_band[face] & bottom_garment, HIPS, region)

    limb_distance = np.stack([_distance_to(covered & (part == PART_NAMES.index(name))) for name in LIMBS])
    bare_arms = ndimage.binary_erosion(skin & np.isin(surface, ARM_INDICES), iterations=ARM_SAMPLE_MARGIN)
    arm_skin_tone = np.median(lab[bare_arms], axis=0) if bare_arms.sum() >= MIN_PIXELS else None
    return PhotoGarments(region, surface, skin, layer, limb_distance, skin_tone, arm_skin_tone)


def recolour_skin(image: np.ndarray, skin: np.ndarray, tone: np.ndarray | None, new_tone: np.ndarray | None) -> np.ndarray:
    """(H, W, 3) uint8 with the (H, W) `skin` pixels moved from skin tone `tone` to `new_tone` in CIELAB (shading and texture kept).

    Tones as PhotoGarments.skin_tone; either None leaves the image as it is.
    """
    if tone is None or new_tone is None:
        return image
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    moved = cv2.cvtColor((lab + (new_tone - tone)).astype(np.float32), cv2.COLOR_LAB2RGB)
    recoloured = np.clip(moved * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.where(skin[..., None], recoloured, image)


def in_skin_tones_of(wearer: PhotoGarments, donor: PhotoGarments, image: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: the donor's (H, W, 3) uint8 `image` with its (H, W) `skin` pixels in the wearer's skin tones (recolour_skin).

    The donor's bare arms move from the donor's arm tone to the wearer's (PhotoGarments.arm_tone), the rest of the skin
    between their skin tones.
    """
    arms = np.isin(donor.surface, ARM_INDICES)
    image = recolour_skin(image, skin & ~arms, donor.skin_tone, wearer.skin_tone)
    return recolour_skin(image, skin & arms, donor.arm_tone(), wearer.arm_tone())


def _distance_to(pixels: np.ndarray) -> np.ndarray:
    """(H, W) float32 Euclidean distance in pixels to the nearest of the (H, W) bool `pixels`; inf where there is none."""
    if not pixels.any():
        return np.full(pixels.shape, np.inf, np.float32)
    return ndimage.distance_transform_edt(~pixels).astype(np.float32)


def _joined(pixels: np.ndarray, seeds: np.ndarray, person: np.ndarray, margin: int) -> np.ndarray:
    """(H, W) bool: the `pixels` joined to one of them in `seeds` through `pixels` (8-connected) at least `margin` pixels inside `person`.

    The pixels nearer the outline join nothing themselves (they blend the background in); they
    belong to a joined component within `margin` pixels of them.
    """
    square = np.ones((3, 3), bool)
    inside = ndimage.binary_erosion(person, square, iterations=margin)
    components, _ = ndimage.label(pixels & inside, structure=square)
    touching = np.unique(components[pixels & inside & seeds])
    joined = np.isin(components, touching[touching > 0])
    return pixels & (joined | (ndimage.binary_dilation(joined, square, iterations=margin) & ~inside))


def _skin_gate(image: np.ndarray) -> np.ndarray:
    """(H, W) bool: the (H, W, 3) uint8 RGB pixels whose chroma lies in SKIN_GATE."""
    ycrcb = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
    (cr_low, cr_high), (cb_low, cb_high) = SKIN_GATE
    return (ycrcb[..., 1] >= cr_low) & (ycrcb[..., 1] <= cr_high) & (ycrcb[..., 2] >= cb_low) & (ycrcb[..., 2] <= cb_high)


def _colour_centres(pixels: np.ndarray) -> np.ndarray:
    """(k, 3) k-means centres of (N, 3) colours holding at least MIN_CLUSTER_SHARE of them each; none (k = 0) for fewer than MIN_PIXELS.

    Deterministic: the clusters start as lightness quantiles.
    """
    if len(pixels) < MIN_PIXELS:
        return np.zeros((0, 3), np.float32)
    count = min(COLOUR_CLUSTERS, len(pixels))
    order = np.argsort(pixels[:, 0], kind="stable")
    start = np.empty(len(pixels), np.int32)
    start[order] = np.arange(len(pixels)) * count // len(pixels)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.1)
    _, labels, centres = cv2.kmeans(np.ascontiguousarray(pixels, np.float32), count, start[:, None].copy(), criteria, 1, cv2.KMEANS_USE_INITIAL_LABELS)
    share = np.bincount(labels[:, 0], minlength=count) / len(pixels)
    return centres[share >= MIN_CLUSTER_SHARE]


def _distance(colours: np.ndarray, centres: np.ndarray, lightness_weight: float) -> np.ndarray:
    """(...) distance of each (..., 3) CIELAB colour to the nearest of (k, 3) centres, lightness weighted; inf for k = 0."""
    if not len(centres):
        return np.full(colours.shape[:-1], np.inf, np.float32)
    weights = np.array([lightness_weight, 1.0, 1.0], np.float32)
    return np.linalg.norm((colours[..., None, :] - centres) * weights, axis=-1).min(-1)
