"""The two recipes of a generator's inputs, and the choice between them by the generator's `inputs` key.

"warped" (lwgan.flow.inputs.generator_inputs, what `lwgan train` builds from dataset items): the
    source image warped along the flow with its UV atlas behind, and the source with its body cut
    out for the background stream to inpaint.
"classical" (classical_inputs, what `lwgan personalize` trains): texture warping's body layer
    (trusted source pixels of every source of the bank, the hidden surface from the other side of
    the body) as the warped image, its opacity (the person's own outline, feathered) as the target's
    background indicator, and the bank's inpainted background as a background with no hole. A
    refining generator (refine=True) that has not been trained makes texture warping's frames from
    it, up to the feathered edge, so training starts where texture warping ends.
"""

from __future__ import annotations

import torch
from torch import nn

from lwgan.body.model import BodyModel
from lwgan.flow.inputs import (
    GeneratorInputs,
    generator_inputs,
    source_stream_input,
    stacked_inputs,
)
from lwgan.flow.texture_warping import SourceBank, warped_layers
from lwgan.flow.transfer import TransferFlow
from lwgan.image_ranges import unit_to_signed_range

BODY_DILATION = 3
"""The source stream keeps this many pixels around the source mesh (the original's 3)."""


def classical_inputs(bank: SourceBank, target_vertices: torch.Tensor, body: BodyModel, source_count: int) -> tuple[GeneratorInputs, list[TransferFlow]]:
    """The "classical" recipe for B targets: (B, V, 3) target meshes in NDC.

    Every source of the bank colours the warped image; the first `source_count` sources feed the
    source stream and the flows (1 for the ICCV generator). Returns GeneratorInputs with S =
    source_count and those sources' flows.
    """
    batch_size = target_vertices.shape[0]
    layers = warped_layers(bank, target_vertices, body)
    background = torch.cat([unit_to_signed_range(bank.background), torch.ones_like(bank.background[:, :1])], dim=1).expand(batch_size, -1, -1, -1)
    flows = layers.flows[:source_count]
    condition = flows[0].target_condition.to(layers.colour.dtype)
    transfer = torch.cat([unit_to_signed_range(layers.colour), condition[:, :2], 1 - layers.alpha], dim=1)
    source_inputs = [source_stream_input(bank.signed_range_images[index : index + 1].expand(batch_size, -1, -1, -1), flow, BODY_DILATION)
                     for index, flow in enumerate(flows)]
    return stacked_inputs([background] * len(flows), source_inputs, [transfer] * len(flows), flows), flows


def input_recipe(generator: nn.Module) -> str:
    """The recipe of the inputs `generator` takes: its config's `inputs` ("warped" for exports made before the key existed)."""
    return generator.config.get("inputs", "warped")


def inputs_for(generator: nn.Module, bank: SourceBank, target_vertices: torch.Tensor, body: BodyModel, hole_dilation: int) -> tuple[GeneratorInputs, list[TransferFlow]]:
    """The inputs `generator` was trained on (its config's `inputs`, "warped" when absent) for (B, V, 3) target meshes in NDC.

    The ICCV generator (one source) takes the bank's first source in its streams; with the
    classical recipe every source still colours the warped image. hole_dilation: the warped
    recipe's background hole growth, pixels.
    """
    source_count = min(generator.source_limit or bank.images.shape[0], bank.images.shape[0])
    if input_recipe(generator) == "classical":
        return classical_inputs(bank, target_vertices, body, source_count)
    batch_size = target_vertices.shape[0]
    images = bank.signed_range_images[:source_count][None].expand(batch_size, -1, -1, -1, -1)
    sources = bank.vertices[:source_count][None].expand(batch_size, -1, -1, -1)
    return generator_inputs(images, sources, target_vertices, body, hole_dilation=hole_dilation, body_dilation=BODY_DILATION)
