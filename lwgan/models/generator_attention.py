"""The multi-source TPAMI'21 generator (iPERCore's AttLWB-SPADE): attentional Liquid Warping Blocks with SPADE."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from lwgan.checks import check_shape
from lwgan.flow.warp import grid_valid, warp
from lwgan.models.blocks import (
    SPADE,
    GridPyramid,
    ResidualBlock,
    StreamOutput,
    ThreeStreamGenerator,
    background_argument,
    check_input_recipe,
    check_int_arguments,
    composite,
    conv_block,
    initialize_weights,
    match_batch,
    stage_outputs,
    transfer_heads,
    zero_initialize,
)

PRESETS: dict[str, dict[str, Any]] = {
    "original": {
        "source_filters": (64, 128, 256),
        "transfer_filters": (64, 128, 256),
        "res_blocks": 6,
        "background_filters": (64, 128, 128, 256),
        "background_res_blocks": 6,
        "spade_hidden": 128,
    },
    "small": {
        "source_filters": (16, 32, 64),
        "transfer_filters": (16, 32, 64),
        "res_blocks": 2,
        "background_filters": (16, 32, 32, 64),
        "background_res_blocks": 2,
        "spade_hidden": 32,
    },
}
"""Width and depth presets: "original" is the released AttLWB-SPADE model's layout, "small" trains on a CPU."""

if TYPE_CHECKING:
    from lwgan.flow.inputs import GeneratorInputs


@dataclass(frozen=True)
class MultiSourceFeatures:
    """The source stream's features for ns sources, computed once and reused for any number of targets.

    encoder: one map per encoder level l = 1..n (stride 2^l): (B, ns, source_filters[l - 1], H / 2^l, W / 2^l).
    residual: res_blocks maps (B, ns, source_filters[-1], H / 2^n, W / 2^n), the output of each residual block.
    """

    encoder: tuple[torch.Tensor, ...]
    residual: tuple[torch.Tensor, ...]

    @property
    def num_sources(self) -> int:
        return self.encoder[0].shape[1]


class ResNetInpaintor(nn.Module):
    """The background stream (iPERCore `ResNetInpaintor`): (B, in_channels, H, W) -> (B, 3, H, W) tanh image.

    One nn.Sequential `main`: conv7 (bias) + IN + ReLU; len(filters) - 1 stride-2 conv3 (bias) + IN +
    ReLU; res_blocks residual blocks (biased convs, IN); transposed conv4 (stride 2, no bias) + IN +
    ReLU back up; conv7 (no bias) to 3 channels; tanh. Instance norms have no parameters.
    """

    def __init__(self, in_channels: int, filters: Sequence[int], res_blocks: int) -> None:
        super().__init__()
        layers: list[nn.Module] = list(conv_block(in_channels, filters[0], 7, norm="instance", bias=True))
        for previous, current in pairwise(filters):
            layers += list(conv_block(previous, current, 3, stride=2, norm="instance", bias=True))
        layers += [ResidualBlock(filters[-1], norm="instance", bias=True) for _ in range(res_blocks)]
        for current, previous in pairwise(reversed(filters)):
            layers += list(conv_block(current, previous, 4, norm="instance", bias=False, transposed=True))
        layers += [nn.Conv2d(filters[0], 3, 7, padding=3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.main(inputs)


class Encoder(nn.Module):
    """Stride-2 conv3 + ReLU per level, no norm (keys layers.{i}.0): (B, in, H, W) -> maps at strides 2, 4, ..."""

    def __init__(self, in_channels: int, filters: Sequence[int], bias: bool) -> None:
        super().__init__()
        channels = [in_channels, *filters]
        self.layers = nn.Sequential(*[conv_block(a, b, 3, stride=2, bias=bias) for a, b in pairwise(channels)])


class Decoder(nn.Module):
    """Transposed conv4 (stride 2, bias) + ReLU per level, no norm (keys layers.{i}.0)."""

    def __init__(self, in_channels: int, filters: Sequence[int]) -> None:
        super().__init__()
        channels = [in_channels, *filters]
        self.layers = nn.Sequential(*[conv_block(a, b, 4, transposed=True) for a, b in pairwise(channels)])


class SkipDecoder(nn.Module):
    """The transfer stream's decoder: upconvs.i (transposed conv4 + ReLU), then, except after the last,
    skippers.i (conv3 + ReLU) on cat[encoder map of the same size, upconv output]."""

    def __init__(self, in_channels: int, encoder_filters: Sequence[int], decoder_filters: Sequence[int]) -> None:
        super().__init__()
        levels = len(decoder_filters)
        channels = [in_channels, *decoder_filters]
        self.upconvs = nn.Sequential(*[conv_block(a, b, 4, transposed=True) for a, b in pairwise(channels)])
        self.skippers = nn.Sequential(*[
            conv_block(encoder_filters[levels - 2 - index] + decoder_filters[index], decoder_filters[index], 3)
            for index in range(levels - 1)
        ])

    def forward(self, bottleneck: torch.Tensor, encoder_features: Sequence[torch.Tensor]) -> torch.Tensor:
        """(B, C, H / 2^n, W / 2^n) + the n encoder maps (strides 2..2^n) -> (B, decoder_filters[-1], H, W)."""
        levels = len(self.upconvs)
        features = bottleneck
        for index, upconv in enumerate(self.upconvs):
            features = upconv(features)
            if index < levels - 1:
                features = self.skippers[index](torch.cat([encoder_features[levels - 2 - index], features], dim=1))
        return features


class ResAutoEncoder(nn.Module):
    """The source stream (iPERCore `ResAutoEncoder`): encoder, residual blocks, decoder, colour and mask heads.

    encoders (Encoder, biased convs), res_blocks (conv3 + ReLU + conv3, biased, no norm),
    decoders (Decoder), img_reg: conv5 + tanh, att_reg: conv5 + sigmoid (1 = background).
    """

    def __init__(self, in_channels: int, filters: Sequence[int], res_blocks: int) -> None:
        super().__init__()
        self.encoders = Encoder(in_channels, filters, bias=True)
        self.res_blocks = nn.Sequential(*[ResidualBlock(filters[-1], norm="none", bias=True) for _ in range(res_blocks)])
        self.decoders = Decoder(filters[-1], list(reversed(filters)))
        self.img_reg = nn.Sequential(nn.Conv2d(filters[0], 3, 5, padding=2, bias=False), nn.Tanh())
        self.att_reg = nn.Sequential(nn.Conv2d(filters[0], 1, 5, padding=2, bias=False), nn.Sigmoid())


class AttentionalLiquidWarpingBlock(nn.Module):
    """Attentional LWB (iPERCore `SelfAttentionLWB`): fuse ns warped sources into the target features by attention.

    Every source map is warped to the target with its own flow; keys K = fk(warped), values
    V = fv(warped) and the query q = fq(target) are 1x1 convolutions; per pixel, weights
    alpha = softmax over the sources of <K, q> / sqrt(channels); x = sum alpha V; the output is
    SPADE(target, x) = IN(target) (1 + gamma(x)) + beta(x) (it replaces the target features).

    With mask_unseen_sources, a source whose grid is OUTSIDE at a pixel takes no part in that
    pixel's softmax, and a pixel no source sees gets x = 0 (no NaN, finite gradients). Without it
    (the original behaviour, for converted weights), such a source takes part with its warped
    features 0 (K = bias of fk, V = bias of fv).
    """

    def __init__(self, target_channels: int, source_channels: int, spade_hidden: int, mask_unseen_sources: bool) -> None:
        super().__init__()
        self.mask_unseen_sources = mask_unseen_sources
        self.fq = nn.Conv2d(target_channels, target_channels, 1)
        self.fk = nn.Conv2d(source_channels, target_channels, 1)
        self.fv = nn.Conv2d(source_channels, target_channels, 1)
        self.spade = SPADE(target_channels, target_channels, spade_hidden)

    def forward(self, target: torch.Tensor, sources: torch.Tensor, grids: torch.Tensor) -> torch.Tensor:
        """
        Args:
            target: (B, C, h, w) transfer-stream features.
            sources: (B, ns, Cs, hs, ws) source features.
            grids: (B, ns, h, w, 2) each source's flow at this resolution (NDC, OUTSIDE where none).
        Returns:
            (B, C, h, w).
        """
        batch, num_sources = sources.shape[:2]
        check_shape("grids", grids, (batch, num_sources, *target.shape[-2:], 2))
        warped = warp(sources.flatten(0, 1), grids.flatten(0, 1))
        keys = self.fk(warped).unflatten(0, (batch, num_sources))
        values = self.fv(warped).unflatten(0, (batch, num_sources))
        query = self.fq(target)
        logits = torch.einsum("bnchw,bchw->bnhw", keys, query) / math.sqrt(keys.shape[2])
        if self.mask_unseen_sources:
            seen = grid_valid(grids)
            # A finite fill keeps the softmax of a pixel no source sees finite (uniform), then zeroed.
            logits = logits.masked_fill(~seen, torch.finfo(logits.dtype).min)
            weights = torch.softmax(logits, dim=1) * seen.to(logits.dtype)
        else:
            weights = torch.softmax(logits, dim=1)
        attended = torch.einsum("bnhw,bnchw->bchw", weights, values)
        return self.spade(target, attended)


class AttentionalLiquidWarpingGenerator(ThreeStreamGenerator):
    """The TPAMI'21 multi-source generator (iPERCore `AttentionLWBGenerator`, config AttLWB-SPADE).

    - bg_net (ResNetInpaintor) inpaints the background from [image * background mask, background mask].
    - src_net (ResAutoEncoder) encodes each of the ns sources (image * body mask, condition map)
      and reconstructs it.
    - transfer stream: tsf_net_enc (stride-2 encoder without bias), after every encoder level an
      attentional LWB (enc_attlwbs.i) fusing that level's source maps; res_blocks, each followed by
      an attentional LWB (res_attlwbs.i) fusing that block's source outputs; tsf_net_dec
      (SkipDecoder on the fused encoder maps); tsf_img_reg (conv5 + tanh) and tsf_att_reg
      (conv5 + sigmoid, 1 = background).
    Composition: image = mask * background + (1 - mask) * colour. The attribute names are the
    original's, so that the "original" preset's state dict has the keys and shapes of the released
    `AttLWB-SPADE_id_G_2020-05-18.pth`.

    Differences from the original forward: one background (B, 4, H, W) per sample (the one the
    target is composited on, normally the primary source's) instead of one per source; flows
    resized with lwgan.flow.warp.resize_grid; no temporal keys from the previous frame.

    Args:
        background_channels, source_channels, transfer_channels: input channels of the three streams.
        source_filters, transfer_filters: widths of the encoder levels (same length n; images must
            be divisible by 2^n).
        res_blocks: residual blocks of the source and transfer streams (one attentional LWB each).
        background_filters: widths of the background stream's levels (first = full resolution).
        background_res_blocks: residual blocks of the background stream.
        spade_hidden: hidden width of each SPADE (128 in the original).
        mask_unseen_sources: exclude sources that do not see a pixel from its attention (see
            AttentionalLiquidWarpingBlock); False reproduces the original.
        keep_known_background, refine, inputs: as every generator takes them (ThreeStreamGenerator).
    """

    PRESETS = PRESETS

    def arguments_from(self, inputs: GeneratorInputs) -> tuple[torch.Tensor, ...]:
        """forward's arguments from GeneratorInputs: all S sources, the first source's background input and warped image."""
        return background_argument(inputs, self._config["refine"]), inputs.source_input, inputs.transfer_input[:, 0], inputs.grid

    def __init__(
        self,
        background_channels: int = 4,
        source_channels: int = 6,
        transfer_channels: int = 6,
        source_filters: Sequence[int] = (64, 128, 256),
        transfer_filters: Sequence[int] = (64, 128, 256),
        res_blocks: int = 6,
        background_filters: Sequence[int] = (64, 128, 128, 256),
        background_res_blocks: int = 6,
        spade_hidden: int = 128,
        mask_unseen_sources: bool = True,
        keep_known_background: bool = True,
        refine: bool = True,
        inputs: str = "warped",
    ) -> None:
        super().__init__()
        source_filters = _positive_ints("source_filters", source_filters, minimum_length=1)
        transfer_filters = _positive_ints("transfer_filters", transfer_filters, minimum_length=1)
        background_filters = _positive_ints("background_filters", background_filters, minimum_length=2)
        if len(source_filters) != len(transfer_filters):
            raise ValueError(f"source_filters {source_filters} and transfer_filters {transfer_filters} must have the same length")
        check_int_arguments(positive=True, background_channels=background_channels, source_channels=source_channels,
                            transfer_channels=transfer_channels, spade_hidden=spade_hidden)
        check_int_arguments(positive=False, res_blocks=res_blocks, background_res_blocks=background_res_blocks)
        self._config = {
            "background_channels": background_channels,
            "source_channels": source_channels,
            "transfer_channels": transfer_channels,
            "source_filters": source_filters,
            "transfer_filters": transfer_filters,
            "res_blocks": res_blocks,
            "background_filters": background_filters,
            "background_res_blocks": background_res_blocks,
            "spade_hidden": spade_hidden,
            "mask_unseen_sources": bool(mask_unseen_sources),
            "keep_known_background": bool(keep_known_background),
            "refine": bool(refine),
            "inputs": check_input_recipe(inputs),
        }
        self.bg_net = ResNetInpaintor(background_channels, background_filters, background_res_blocks)
        self.src_net = ResAutoEncoder(source_channels, source_filters, res_blocks)
        self.tsf_net_enc = Encoder(transfer_channels, transfer_filters, bias=False)
        self.tsf_net_dec = SkipDecoder(transfer_filters[-1], transfer_filters, list(reversed(transfer_filters)))
        self.enc_attlwbs = nn.ModuleList([
            AttentionalLiquidWarpingBlock(target, source, spade_hidden, bool(mask_unseen_sources))
            for target, source in zip(transfer_filters, source_filters)
        ])
        self.res_attlwbs = nn.ModuleList([
            AttentionalLiquidWarpingBlock(transfer_filters[-1], source_filters[-1], spade_hidden, bool(mask_unseen_sources))
            for _ in range(res_blocks)
        ])
        self.res_blocks = nn.Sequential(*[ResidualBlock(transfer_filters[-1], norm="none", bias=True) for _ in range(res_blocks)])
        self.tsf_img_reg = nn.Sequential(nn.Conv2d(transfer_filters[0], 3, 5, padding=2, bias=False), nn.Tanh())
        self.tsf_att_reg = nn.Sequential(nn.Conv2d(transfer_filters[0], 1, 5, padding=2, bias=False), nn.Sigmoid())
        initialize_weights(self)
        if refine:
            zero_initialize(self.tsf_img_reg[0], self.tsf_att_reg[0], self.bg_net.main[-2])

    @property
    def background_network(self) -> nn.Module:
        """bg_net (ResNetInpaintor)."""
        return self.bg_net

    @property
    def size_multiple(self) -> int:
        """Image heights and widths must be multiples of this."""
        levels = max(len(self._config["source_filters"]), len(self._config["background_filters"]) - 1)
        return 2**levels

    @property
    def source_feature_counts(self) -> tuple[int, int]:
        """len(source_filters) encoder maps and res_blocks residual maps."""
        return len(self._config["source_filters"]), self._config["res_blocks"]

    def encode_source(self, source_input: torch.Tensor) -> MultiSourceFeatures:
        """(B, ns, source_channels, H, W) [each source image * body mask, its condition] -> MultiSourceFeatures."""
        self._check_input("source", source_input, per_source=True)
        batch, num_sources = source_input.shape[:2]
        encoder = stage_outputs(self.src_net.encoders.layers, source_input.flatten(0, 1))
        residual = stage_outputs(self.src_net.res_blocks, encoder[-1])
        return MultiSourceFeatures(
            encoder=tuple(features.unflatten(0, (batch, num_sources)) for features in encoder),
            residual=tuple(features.unflatten(0, (batch, num_sources)) for features in residual),
        )

    def reconstruct_source(self, source_features: MultiSourceFeatures, background: torch.Tensor) -> StreamOutput:
        """Decode every source and composite it on `background` ((B or 1, 3, H, W)) -> StreamOutput (B, ns, ...)."""
        self._check_features(source_features)
        bottleneck = source_features.residual[-1] if source_features.residual else source_features.encoder[-1]
        batch, num_sources = bottleneck.shape[:2]
        size = [side * 2 ** len(source_features.encoder) for side in bottleneck.shape[-2:]]
        check_shape("background", background, (None, 3, *size))
        background = match_batch(background, batch, "background").unsqueeze(1)
        decoded = self.src_net.decoders.layers(bottleneck.flatten(0, 1))
        colour = self.src_net.img_reg(decoded).unflatten(0, (batch, num_sources))
        mask = self.src_net.att_reg(decoded).unflatten(0, (batch, num_sources))
        return composite(colour, mask, background)

    def transfer(
        self,
        source_features: MultiSourceFeatures,
        transfer_input: torch.Tensor,
        grids: torch.Tensor,
        background: torch.Tensor,
    ) -> StreamOutput:
        """Render targets from encoded sources.

        Args:
            source_features: from encode_source, batch B or 1 (one source set shared by all B targets).
            transfer_input: (B, transfer_channels, H, W) [warped source image, target condition].
            grids: (B, ns, H, W, 2) for each source the NDC position in it of each target pixel,
                OUTSIDE where none.
            background: (B or 1, 3, H, W) in [-1, 1].
        Returns:
            StreamOutput with (B, 3, H, W) image and colour and (B, 1, H, W) mask.
        """
        batch, height, width = self._check_transfer_arguments(source_features, transfer_input)
        num_sources = source_features.num_sources
        check_shape("grids", grids, (batch, num_sources, height, width, 2))
        check_shape("background", background, (None, 3, height, width))
        background = match_batch(background, batch, "background")
        pyramid = GridPyramid(grids.flatten(0, 1))

        def fuse(block: AttentionalLiquidWarpingBlock, features: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
            level_grids = pyramid.at(features.shape[-2:]).unflatten(0, (batch, num_sources))
            return block(features, match_batch(sources, batch, "source_features"), level_grids)

        features = transfer_input
        encoder = []
        for level, block, sources in zip(self.tsf_net_enc.layers, self.enc_attlwbs, source_features.encoder):
            features = fuse(block, level(features), sources)
            encoder.append(features)
        for residual_block, block, sources in zip(self.res_blocks, self.res_attlwbs, source_features.residual):
            features = fuse(block, residual_block(features), sources)
        decoded = self.tsf_net_dec(features, encoder)
        colour, mask = transfer_heads(self.tsf_img_reg, self.tsf_att_reg, decoded, transfer_input, self._config["refine"])
        return composite(colour, mask, background)


def _positive_ints(name: str, values: Sequence[int], minimum_length: int) -> tuple[int, ...]:
    """Normalise a list of widths to a tuple of positive ints (JSON gives lists back)."""
    result = tuple(values)
    if len(result) < minimum_length or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in result):
        raise ValueError(f"{name} must be at least {minimum_length} positive ints, got {values!r}")
    return result
