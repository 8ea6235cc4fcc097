"""Appearance transfer: the source person in a donor's clothes, whole body or chosen parts (`Swapper`, `lwgan swap`).

A swap repaints the person's photo; lwgan.tasks.garment parses both photos into garments first.
    The new garment: only the donor's pixels of the chosen regions (the parts; the hips go with
        the legs) give colours, and only where both the mesh and the colours say so: a top takes
        nothing below the donor's waist line nor the trousers above it; no pixel within reach of a
        hand that is not chosen, nor skin on the chest beside an arm (the real hand or arm may lie
        there). The donor's bare skin takes the person's skin tone, shading kept: a user trying on
        a sleeveless top expects their own arms, not the donor's (and bare arms in the tone of the
        person's own arms where the photo shows them, not the face's). These colours are warped
        onto the person's body (texture warping, or the generator), dressed in the donor's clothing
        on the chosen regions (its offsets there, the person's elsewhere).
    The old garment: the person's pixels of the chosen regions that are not skin (with clothing
        beyond the mesh, and an untucked hem that colour joins to the top), and a FRINGE around them
        off the person, take the person's inpainted background; the new garment then covers them
        wherever the dressed body lies, carried on past the waist over an old hem. So the old top
        goes whole, sleeves to the cuffs and hem; where a loose old garment reached beyond the new
        one, the background it hid shows (off the body there is no skin to show).
The new garment is painted over the dressed body's chosen regions and the old garment on it, but
never over the person's pixels of other regions (face, hands, the trousers a top is tucked into),
their skin next to a hand that is not chosen, nor their own skin where the new garment is skin too
(but for the shadow just beyond an old hem: OLD_HEM). Where the donor's outline lets the
background through inside the dressed body, the new garment stays opaque over the person's own
pixels (covering_the_person). The donor's pixels a fit leaves untrusted fill from their own layer
(lwgan.flow.texture_warping.fill_within_parts): a shoulder's garment from the sleeve, a wrist's
skin from the forearm.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from omegaconf import MISSING

from lwgan.body.model import PART_NAMES
from lwgan.flow.texture_warping import SourceBank, inpainted_background, warped_layers
from lwgan.io.media import check_output
from lwgan.render import rasterize
from lwgan.render.inpaint import fill_holes
from lwgan.tasks.garment import (
    ARM_INDICES,
    HANDS,
    REGION_NAMES,
    PhotoGarments,
    body_regions,
    in_skin_tones_of,
    parse_garments,
    swapped_regions,
)
from lwgan.tasks.people import ImageInput, PhotoPerson
from lwgan.tasks.pipeline import (
    Pipeline,
    SynthesisConfig,
    pipeline_arguments,
    source_list,
    write_outputs,
)
from lwgan.tasks.result import SynthesisResult
from lwgan.tasks.synthesis import (
    build_bank,
    image_tensor_unit_range,
    source_meshes,
    to_frames,
)

logger = logging.getLogger(__name__)

CLOTHING_PARTS = {
    "upper": ("torso", "left_arm", "right_arm"),
    "lower": ("left_leg", "right_leg", "left_foot", "right_foot"),
}
CLOTHING_PARTS["whole"] = CLOTHING_PARTS["upper"] + CLOTHING_PARTS["lower"]
"""Named groups of body parts (lwgan.body.model.PART_NAMES) that swap together; head and hands stay the person's."""
OLD_HEM = 0.02
"""The person's skin this fraction of the image side from their old garment on the same body region (5 px at 256), and darker than
their skin tone there by SHADOW_DEPTH, is covered by the new garment's opaque skin: the shadow under a sleeve's or a trouser leg's hem
and the hem's edge blended into the skin, dark but of skin's chroma, which would stay as a dark band across an arm that a sleeveless
top leaves bare."""
SHADOW_DEPTH = 10.0
"""CIELAB L below the person's skin tone that makes skin beside an old hem its shadow (OLD_HEM); lit skin beside an old garment (an
arm beside a sleeveless dress) stays the person's."""
FRINGE = 0.008
"""The old garment's removal reaches this fraction of the image side beyond the person mask (its soft edge; 2 px at 256)."""
DONOR_HAND_MARGIN = 0.04
"""The donor's pixels this fraction of the image side around a hand that is not swapped give no colour (10 px at 256): the real hand may lie there."""
ARM_MARGIN = 0.02
"""The donor's skin on the torso this fraction of the image side beside an arm gives no colour (5 px at 256): the real arm's edge, a little off
the fitted one; more would leave out a bare midriff beside a hanging arm."""
PERSON_HAND_MARGIN = 0.02
"""The person's skin this fraction of the image side around a hand that is not swapped stays (5 px at 256): the real hand's edge, which the new
garment must not cover; more would keep bare skin next to the hand (a belly) that the new garment should cover."""


def chosen_parts(parts: str | list[str]) -> tuple[str, ...]:
    """A group name of CLOTHING_PARTS, or a list of PART_NAMES and group names -> the part names."""
    names = [parts] if isinstance(parts, str) else list(parts)
    chosen: list[str] = []
    for name in names:
        if name in CLOTHING_PARTS:
            chosen += CLOTHING_PARTS[name]
        elif name in PART_NAMES:
            chosen.append(name)
        else:
            raise ValueError(f"unknown part {name!r}; use {', '.join(CLOTHING_PARTS)} or body parts {', '.join(PART_NAMES)}")
    return tuple(dict.fromkeys(chosen))


class Swapper(Pipeline):
    """Dress the source person in the reference (donor) person's clothes.

    Example:
        Swapper()(source="me.jpg", reference="jacket_person.jpg", parts="upper").save("me_in_jacket.png")
    """

    def __call__(self, source: ImageInput | list[ImageInput], reference: ImageInput | list[ImageInput], parts: str | list[str] = "upper") -> SynthesisResult:
        """
        Args:
            source: photo(s) of the person to dress; the first one is the picture that changes.
            reference: photo(s) of the donor whose clothes are taken.
            parts: "upper", "lower", "whole", or a list of body part names (PART_NAMES).
        Returns:
            SynthesisResult with one frame: the source photo's crop with the chosen parts swapped.
        """
        names = chosen_parts(parts)
        people = self.fit_sources(source)
        donors = self.fit_sources(reference, "reference")
        return self.swap_people(people, donors, names)

    def swap_people(self, people: list[PhotoPerson], donors: list[PhotoPerson], parts: tuple[str, ...]) -> SynthesisResult:
        """__call__ after fitting both, with part names from chosen_parts(); see the module docstring."""
        person = people[0]
        shape = torch.from_numpy(np.mean([p.shape for p in people], axis=0)).to(self.device)
        regions = swapped_regions(parts)
        kept_hands = tuple(name for name in HANDS if name not in parts)
        wearer = parse_garments(self.body, person)
        on_regions = np.isin(wearer.region, regions)
        old = self.old_garment(wearer, on_regions)
        bank, skin_bank = self.garment_banks(donors, wearer, regions, kept_hands, parts)
        offsets = self.garment_offsets(torch.from_numpy(person.offsets).to(self.device), bank.offsets, regions)
        target = self.target_meshes(shape, person.pose[None], person.camera[None], offsets)
        fragments = rasterize(target, self.body.faces, (self.image_size, self.image_size))
        target_region = np.where(fragments.mask[0].cpu().numpy(), body_regions(self.body).region[fragments.face_index[0].clamp_min(0).cpu().numpy()], -1)
        new = np.isin(target_region, regions)
        # The old garment's pixels on the dressed body take the new garment too (its colours carried on past the waist over an
        # old hem), except on the head and the hands that stay the person's.
        under_old = old & (target_region >= 0) & ~np.isin(target_region, [REGION_NAMES.index(name) for name in ("head", *kept_hands)])
        base = self.undressed(people, shape, old)
        dressed = self.render(replace(bank, background=base[None]), target)[0]
        with torch.no_grad():
            skin_layers = warped_layers(skin_bank, target, self.body)  # the donor's skin: 1, over a background of 0
        new_skin = (skin_layers.alpha * skin_layers.colour)[0, 0].cpu().numpy() > 0.5
        protected = ((wearer.region >= 0) & ~on_regions) | (wearer.skin & wearer.near(kept_hands, PERSON_HAND_MARGIN * self.image_size))
        own_skin = wearer.skin & on_regions & ~self.hem_shadow(wearer, person.image, on_regions)
        paint = (new | under_old) & ~protected & ~(new_skin & own_skin)
        dressed = self.covering_the_person(dressed, bank, skin_layers.colour[:, :1], target, new, new & on_regions)
        frame = torch.where(torch.from_numpy(paint).to(self.device), dressed, base)
        logger.info("swapped %s from %s onto %s: %.0f%% of the picture repainted, the old garment %.0f%%", ", ".join(parts), donors[0].name,
                    person.name, 100 * float((paint | old).mean()), 100 * float(old.mean()))
        return SynthesisResult(to_frames(frame[None]), 1.0, person.pose[None], shape.cpu().numpy(), person.camera[None],
                               sources=[person.image], references=[donors[0].image], people=[person], offsets=offsets.cpu().numpy())

    def covering_the_person(self, dressed: torch.Tensor, bank: SourceBank, skin: torch.Tensor, target: torch.Tensor, new: np.ndarray,
                            person: np.ndarray) -> torch.Tensor:
        """(3, H, W) `dressed` with the new garment made opaque over the `person`'s (H, W) own pixels where it reaches there.

        The new garment lets what lies behind it through where the donor's outline lies inside the dressed body (its edge,
        the waist line a top is cut at, a hand's surroundings that give no colour). Behind it lies the person: their bare
        skin, which would show beside the garment (a sleeveless person's shoulders beside a T-shirt's), or their old
        garment's removed pixels, which show the background (a white line along a hem). Such a pixel takes the colour
        (texture warping's, under a generator too) and the skin-or-garment decision ((1, 1, H, W) `skin`, 1 on the donor's
        skin) of the opaque pixels of the `new` (H, W) garment nearest to it: garment beside a shoulder seam, the person's
        skin beside a bare forearm.
        """
        with torch.no_grad():
            layers = warped_layers(bank, target, self.body)
            opaque = layers.alpha[:, 0] > 0.5
            nearest = fill_holes(torch.cat([layers.colour, skin], dim=1), opaque & torch.from_numpy(new).to(self.device))[0]
        covered = torch.from_numpy(person).to(self.device) & ~opaque[0] & (nearest[3] < 0.5)
        return torch.where(covered, nearest[:3], dressed)

    def old_garment(self, wearer: PhotoGarments, on_regions: np.ndarray) -> np.ndarray:
        """(H, W) bool: the person's pixels of the swapped regions (`on_regions`) that are not skin, and FRINGE beyond the person around them."""
        old = on_regions & ~wearer.skin
        fringe = max(1, round(FRINGE * self.image_size))
        grown = cv2.dilate(old.astype(np.uint8), np.ones((2 * fringe + 1, 2 * fringe + 1), np.uint8)) > 0
        return old | (grown & (wearer.region < 0))

    def hem_shadow(self, wearer: PhotoGarments, image: np.ndarray, on_regions: np.ndarray) -> np.ndarray:
        """(H, W) bool: the person's skin of the swapped regions darker than their tone there by SHADOW_DEPTH and within OLD_HEM of
        their old garment on the same region (a sleeve on its arm); `image` (H, W, 3) uint8 is the person's photo."""
        lightness = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[..., 0]
        reach = np.ones((2 * max(1, round(OLD_HEM * self.image_size)) + 1,) * 2, np.uint8)
        shadow = np.zeros(on_regions.shape, bool)
        for region in np.unique(wearer.region[on_regions]):
            tone = wearer.arm_tone() if region in ARM_INDICES else wearer.skin_tone
            if tone is None:
                continue
            on_region = wearer.region == region
            beside_old = cv2.dilate((on_region & ~wearer.skin).astype(np.uint8), reach) > 0
            shadow |= on_region & wearer.skin & beside_old & (lightness < tone[0] - SHADOW_DEPTH)
        return shadow

    def garment_banks(self, donors: list[PhotoPerson], wearer: PhotoGarments, regions: tuple[int, ...], kept_hands: tuple[str, ...],
                      parts: tuple[str, ...]) -> tuple[SourceBank, SourceBank]:
        """The donors' SourceBank of the new garment (their usable pixels, bare skin in the `wearer`'s tones) and one whose images are 1 on that skin.

        Usable: the donor's pixels of the swapped `regions` both on the mesh and by colour (a top takes nothing below the
        waist line nor the trousers above it; trousers take no untucked hem), away from the hands not swapped (`kept_hands`),
        and no skin on the torso next to an arm (the real arm, a little off the fitted one, would leave its skin on the chest).
        """
        garments, skins, layers = [], [], []
        for donor in donors:
            parsing = parse_garments(self.body, donor)
            usable = np.isin(parsing.region, regions) & np.isin(parsing.surface, regions) & ~parsing.near(kept_hands, DONOR_HAND_MARGIN * self.image_size)
            beside_arms = parsing.near(("left_arm", "right_arm"), ARM_MARGIN * self.image_size)
            usable &= ~(parsing.skin & (parsing.surface == PART_NAMES.index("torso")) & beside_arms)
            if not usable.any():
                logger.warning("%s shows none of %s: the new garment's colours are a guess", donor.name, ", ".join(parts))
            skin = parsing.skin & usable
            image = in_skin_tones_of(wearer, parsing, donor.image, skin)
            garments.append(replace(donor, image=image, mask=usable.astype(np.float32)))
            skins.append(replace(donor, image=np.repeat(skin[..., None], 3, axis=-1).astype(np.uint8) * 255, mask=usable.astype(np.float32)))
            layers.append(parsing.layer)
        bank, donor_shape = self.prepare(garments, layers)
        with torch.no_grad():
            skin_bank = build_bank(self.body, skins, donor_shape, np.zeros_like(donors[0].image), layers)
        return bank, skin_bank

    def garment_offsets(self, person_offsets: torch.Tensor, donor_offsets: torch.Tensor, regions: tuple[int, ...]) -> torch.Tensor:
        """(V,) clothing of the dressed person: the donor's (V,) offsets on the vertices of the swapped regions, the person's (V,) elsewhere."""
        target_region = torch.from_numpy(body_regions(self.body).region).to(self.device)
        swapped_faces = torch.isin(target_region, torch.tensor(regions, device=self.device))
        swapped = torch.zeros_like(person_offsets, dtype=torch.bool)
        swapped[self.body.faces[swapped_faces].reshape(-1)] = True
        return torch.where(swapped, donor_offsets, person_offsets)

    def undressed(self, people: list[PhotoPerson], shape: torch.Tensor, old: np.ndarray) -> torch.Tensor:
        """(3, H, W) in [0, 1]: the first person's photo with the `old` garment's (H, W) pixels replaced by their inpainted background."""
        person = people[0]
        photo = image_tensor_unit_range(person.image, self.device)
        with torch.no_grad():
            mesh = source_meshes(self.body, [person], shape, torch.from_numpy(person.offsets).to(self.device))
            body_mask = rasterize(mesh, self.body.faces, photo.shape[-2:]).mask
            background = inpainted_background(photo[None], torch.from_numpy(person.mask > 0.5).to(self.device)[None], body_mask)[0]
        return torch.where(torch.from_numpy(old).to(self.device), background, photo)


@dataclass
class SwapConfig(SynthesisConfig):
    source: Any = MISSING  # the person's photo(s)
    reference: Any = MISSING  # the donor's photo(s)
    parts: Any = "upper"  # upper | lower | whole, or a list of body parts: parts=[torso,left_arm]


def run(config: SwapConfig) -> dict[str, Path]:
    check_output(config.output)
    swapper = Swapper(**pipeline_arguments(config))
    result = swapper(source=source_list(config.source), reference=source_list(config.reference), parts=config.parts)
    return write_outputs(config, result, swapper)
