"""Appearance transfer: the source person in a donor's clothes, whole body or chosen parts (`Swapper`, `lwgan swap`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import MISSING

from lwgan.body.model import PART_NAMES
from lwgan.media import check_output
from lwgan.render import rasterize
from lwgan.tasks.people import ImageInput, PhotoPerson, as_image_list, fit_photos
from lwgan.tasks.pipeline import (
    MAX_SOURCES,
    Pipeline,
    SynthesisConfig,
    pipeline_arguments,
    source_list,
    write_outputs,
)
from lwgan.tasks.result import SynthesisResult
from lwgan.tasks.synthesis import image_tensor, to_frames

logger = logging.getLogger(__name__)

CLOTHING_PARTS = {
    "upper": ("torso", "left_arm", "right_arm"),
    "lower": ("left_leg", "right_leg", "left_foot", "right_foot"),
}
CLOTHING_PARTS["whole"] = CLOTHING_PARTS["upper"] + CLOTHING_PARTS["lower"]
"""Named groups of body parts (lwgan.body.model.PART_NAMES) that swap together; head and hands stay the person's."""


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
        donors = fit_photos(as_image_list(reference, "reference", MAX_SOURCES), self.body, self.image_size, self.margin, self.fitting, self.clothing)
        return self.swap_people(people, donors, names)

    def swap_people(self, people: list[PhotoPerson], donors: list[PhotoPerson], parts: tuple[str, ...]) -> SynthesisResult:
        """__call__ after fitting both, with part names from chosen_parts()."""
        person = people[0]
        shape = torch.from_numpy(np.mean([p.shape for p in people], axis=0)).to(self.device)
        bank, _ = self.prepare(donors)  # the donor's own shape makes its mesh match the donor photo
        # The swapped parts cover both the person's own clothes and the donor's (whichever reaches further).
        offsets = torch.maximum(torch.from_numpy(person.offsets).to(self.device), bank.offsets)
        target = self.target_meshes(shape, person.pose[None], person.camera[None], offsets)
        dressed = self.render(bank, target)
        fragments = rasterize(target, self.body.faces, dressed.shape[-2:])
        part_indices = torch.tensor([PART_NAMES.index(name) for name in parts], device=self.device)
        on_parts = torch.isin(self.body.face_part[fragments.face_index.clamp_min(0)], part_indices) & fragments.mask
        photo = image_tensor(person.image, self.device)[None]
        frame = torch.where(on_parts.unsqueeze(1), dressed, photo)
        logger.info("swapped %s from %s onto %s (%.0f%% of the picture)", ", ".join(parts), donors[0].name, person.name, 100 * float(on_parts.float().mean()))
        return SynthesisResult(to_frames(frame), 1.0, person.pose[None], shape.cpu().numpy(), person.camera[None],
                               sources=[person.image], references=[donors[0].image], people=[person], offsets=offsets.cpu().numpy())


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
