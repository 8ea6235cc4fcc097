"""Networks: the ICCV'19 and TPAMI'21 generators, the PatchGAN discriminator, export checkpoints."""

from lwgan.models.blocks import GeneratorOutput, StreamOutput
from lwgan.models.discriminator import PatchDiscriminator
from lwgan.models.generation import check_frame_size, check_image_size, generate
from lwgan.models.generator_attention import (
    AttentionalLiquidWarpingGenerator,
    MultiSourceFeatures,
)
from lwgan.models.generator_iccv import LiquidWarpingGenerator, SourceFeatures
from lwgan.models.pretrained import from_pretrained, save_pretrained

__all__ = [
    "AttentionalLiquidWarpingGenerator",
    "GeneratorOutput",
    "LiquidWarpingGenerator",
    "MultiSourceFeatures",
    "PatchDiscriminator",
    "SourceFeatures",
    "StreamOutput",
    "check_frame_size",
    "check_image_size",
    "from_pretrained",
    "generate",
    "save_pretrained",
]
