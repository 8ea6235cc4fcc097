"""One call for both generators: run a generator on lwgan.flow.inputs.GeneratorInputs."""

from __future__ import annotations

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
