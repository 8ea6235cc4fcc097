"""One call for both generators: run a generator on lwgan.flow.inputs.GeneratorInputs."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lwgan.models.blocks import GeneratorOutput

if TYPE_CHECKING:
    from lwgan.flow.inputs import GeneratorInputs


def generate(generator: nn.Module, inputs: GeneratorInputs) -> GeneratorOutput:
    """Run a generator on GeneratorInputs; a DistributedDataParallel wrapper is called (so gradients sync), not its module.

    Each generator class arranges the inputs as its forward takes them (arguments_from): the ICCV
    generator takes one source per target, the attentional one all S.
    """
    model = generator.module if isinstance(generator, DistributedDataParallel) else generator
    return generator(*model.arguments_from(inputs))


FRAME_SIZE_MULTIPLE = 16
MIN_FRAME_SIZE = 64
"""The frames of the synthesis commands (imitate, swap, view), with or without a generator: a multiple of
FRAME_SIZE_MULTIPLE pixels and at least MIN_FRAME_SIZE on a side (check_frame_size)."""


def check_image_size(generator: nn.Module, image_size: int, owner: str) -> None:
    """ValueError unless image_size is a multiple of the generator's size_multiple (2 to the power of its stride-2 levels).

    owner names the generator in the message (a checkpoint path, "the iccv generator", ...); the
    message proposes the nearest sizes that work.
    """
    multiple = generator.size_multiple
    _check_multiple(image_size, multiple, f"which {owner} needs (its {int(math.log2(multiple))} stride-2 levels)")


def check_frame_size(image_size: int) -> None:
    """ValueError unless image_size is a size the synthesis commands make frames at (FRAME_SIZE_MULTIPLE, MIN_FRAME_SIZE).

    With a generator, check_image_size applies as well.
    """
    if image_size < MIN_FRAME_SIZE:
        raise ValueError(f"image_size={image_size} is below {MIN_FRAME_SIZE}, the smallest frames imitate, swap and view make")
    _check_multiple(image_size, FRAME_SIZE_MULTIPLE, "which the frames of imitate, swap and view need")


def _check_multiple(image_size: int, multiple: int, reason: str) -> None:
    """ValueError "image_size=N is not a multiple of M, <reason>: try image_size=<lower> or <upper>" unless it is one."""
    if image_size % multiple:
        lower = image_size // multiple * multiple
        raise ValueError(f"image_size={image_size} is not a multiple of {multiple}, {reason}: try image_size={max(lower, multiple)} or {lower + multiple}")
