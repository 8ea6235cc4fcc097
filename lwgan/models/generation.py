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


def check_image_size(generator: nn.Module, image_size: int, owner: str) -> None:
    """ValueError unless image_size is a multiple of the generator's size_multiple (2 to the power of its stride-2 levels).

    owner names the generator in the message (a checkpoint path, "the iccv generator", ...); the
    message proposes the nearest sizes that work.
    """
    multiple = generator.size_multiple
    if image_size % multiple:
        lower = image_size // multiple * multiple
        raise ValueError(f"image_size={image_size} is not a multiple of {multiple}, which {owner} needs "
                         f"(its {int(math.log2(multiple))} stride-2 levels): try image_size={max(lower, multiple)} or {lower + multiple}")
