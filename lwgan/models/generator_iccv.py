"""The ICCV'19 Liquid Warping GAN generator: background, source and transfer streams fused by additive LWBs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from lwgan.checks import check_shape
from lwgan.models.blocks import (
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

PRESETS: dict[str, dict[str, int]] = {
    "original": {"conv_dim": 64, "repeat_num": 6, "n_down": 3},
    "small": {"conv_dim": 16, "repeat_num": 2, "n_down": 3},
}
"""Width and depth presets: "original" is the released model's (and its state-dict layout), "small" trains on a CPU."""

if TYPE_CHECKING:
    from lwgan.flow.inputs import GeneratorInputs


@dataclass(frozen=True)
class SourceFeatures:
    """The source stream's features, computed once and reused for any number of targets.

    encoder: n_down + 1 maps, level l of shape (B, conv_dim * 2^l, H / 2^l, W / 2^l).
    residual: repeat_num maps (B, conv_dim * 2^n_down, H / 2^n_down, W / 2^n_down), the output of
        each residual block.
    """

    encoder: tuple[torch.Tensor, ...]
    residual: tuple[torch.Tensor, ...]


class ResNetGenerator(nn.Module):
    """The background stream (original `ResNetGenerator`): (B, in_channels, H, W) -> (B, 3, H, W) tanh image.

    All children sit in one nn.Sequential `model` (keys model.{i}): conv7 + IN + ReLU; n_down
    stride-2 conv3 + IN + ReLU doubling the width; repeat_num residual blocks; n_down transposed
    conv3 (stride 2, output_padding 1) + IN + ReLU halving it; conv7 to 3 channels; tanh. Convolutions
    have no bias; instance norms are affine. H and W must be divisible by 2^n_down.
    """

    def __init__(self, in_channels: int, conv_dim: int, repeat_num: int, n_down: int) -> None:
        super().__init__()
        layers: list[nn.Module] = list(conv_block(in_channels, conv_dim, 7, norm="affine", bias=False))
        channels = conv_dim
        for _ in range(n_down):
            layers += list(conv_block(channels, channels * 2, 3, stride=2, norm="affine", bias=False))
            channels *= 2
        layers += [ResidualBlock(channels, norm="affine", bias=False) for _ in range(repeat_num)]
        for _ in range(n_down):
            layers += list(conv_block(channels, channels // 2, 3, norm="affine", bias=False, transposed=True))
            channels //= 2
        layers += [nn.Conv2d(channels, 3, 7, padding=3, bias=False), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs)


class ResUNetGenerator(nn.Module):
    """The source and transfer streams (original `ResUnetGenerator`): a residual U-Net with colour and mask heads.

    encoders.0: conv7 (in_channels -> conv_dim) + IN + ReLU at full resolution; encoders.1..n_down:
    stride-2 conv3 doubling the width. resnets: repeat_num residual blocks at the bottleneck.
    decoders.i: transposed conv3 (stride 2) halving the width; skippers.i: conv3 on
    cat[encoder skip, decoder output] halving the width again. img_reg: conv7 + tanh (colour);
    attetion_reg (sic, the original key name): conv7 + sigmoid (mask, 1 = background).
    Convolutions have no bias; instance norms are affine.
    """

    def __init__(self, in_channels: int, conv_dim: int, repeat_num: int, n_down: int) -> None:
        super().__init__()
        self.n_down = n_down
        encoders = [conv_block(in_channels, conv_dim, 7, norm="affine", bias=False)]
        channels = conv_dim
        for _ in range(n_down):
            encoders.append(conv_block(channels, channels * 2, 3, stride=2, norm="affine", bias=False))
            channels *= 2
        self.encoders = nn.Sequential(*encoders)
        self.resnets = nn.Sequential(*[ResidualBlock(channels, norm="affine", bias=False) for _ in range(repeat_num)])
        decoders, skippers = [], []
        for _ in range(n_down):
            decoders.append(conv_block(channels, channels // 2, 3, norm="affine", bias=False, transposed=True))
            skippers.append(conv_block(channels, channels // 2, 3, norm="affine", bias=False))
            channels //= 2
        self.decoders = nn.Sequential(*decoders)
        self.skippers = nn.Sequential(*skippers)
        self.img_reg = nn.Sequential(nn.Conv2d(channels, 3, 7, padding=3, bias=False), nn.Tanh())
        self.attetion_reg = nn.Sequential(nn.Conv2d(channels, 1, 7, padding=3, bias=False), nn.Sigmoid())

    def decode(self, bottleneck: torch.Tensor, encoder_features: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> torch.Tensor:
        """(B, C, H / 2^n, W / 2^n) bottleneck + the n + 1 encoder maps -> (B, conv_dim, H, W)."""
        features = bottleneck
        for index, (decoder, skipper) in enumerate(zip(self.decoders, self.skippers)):
            features = decoder(features)
            features = skipper(torch.cat([encoder_features[self.n_down - 1 - index], features], dim=1))
        return features

    def regress(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, conv_dim, H, W) -> colour (B, 3, H, W) in [-1, 1], mask (B, 1, H, W) in [0, 1] (1 = background)."""
        return self.img_reg(features), self.attetion_reg(features)


class LiquidWarpingGenerator(ThreeStreamGenerator):
    """The ICCV'19 generator (original `ImpersonatorGenerator`): three streams and additive Liquid Warping Blocks.

    - bg_model (ResNetGenerator) inpaints the background from image * background_mask and the
      background mask (1 = background).
    - src_model (ResUNetGenerator) encodes the source (image * body mask, source condition map)
      and reconstructs it (colour + mask), which trains it to keep the source's identity.
    - tsf_model (ResUNetGenerator) renders the target from the warped source image and the target
      condition map. Liquid Warping Block (additive): after encoder levels 1..n_down and after
      every residual block, the transfer features get + warp(source features of that stage,
      flow resized to the stage's size); level 0 (full resolution) is not fused; the decoder's
      skips use the fused encoder maps.
    Each stream's output is composited: image = mask * background + (1 - mask) * colour.

    The attribute names (bg_model, src_model, tsf_model, attetion_reg, ...) are the original's, so
    that with the "original" preset the state dict has the keys and shapes of the released
    `net_epoch_30_id_G.pth` (tools/convert_original_checkpoint.py converts it).

    Args:
        background_channels, source_channels, transfer_channels: input channels of the three streams.
        conv_dim: width of the first level (64 in the original); level l has conv_dim * 2^l channels.
        repeat_num: residual blocks of each stream (6 in the original).
        n_down: stride-2 levels; image sizes must be divisible by 2^n_down (3 in the original).
        keep_known_background, refine, inputs: as every generator takes them (ThreeStreamGenerator).
    """

    PRESETS = PRESETS
    source_limit = 1

    def arguments_from(self, inputs: GeneratorInputs) -> tuple[torch.Tensor, ...]:
        """forward's arguments from GeneratorInputs of one source per target (S = 1)."""
        if inputs.source_input.shape[1] != 1:
            raise ValueError(f"the ICCV generator takes one source per target, got {inputs.source_input.shape[1]} (use generator=attention)")
        return background_argument(inputs, self._config["refine"]), inputs.source_input[:, 0], inputs.transfer_input[:, 0], inputs.grid[:, 0]

    def __init__(
        self,
        background_channels: int = 4,
        source_channels: int = 6,
        transfer_channels: int = 6,
        conv_dim: int = 64,
        repeat_num: int = 6,
        n_down: int = 3,
        keep_known_background: bool = True,
        refine: bool = True,
        inputs: str = "warped",
    ) -> None:
        super().__init__()
        check_int_arguments(positive=True, background_channels=background_channels, source_channels=source_channels,
                            transfer_channels=transfer_channels, conv_dim=conv_dim, n_down=n_down)
        check_int_arguments(positive=False, repeat_num=repeat_num)
        self._config = {
            "background_channels": background_channels,
            "source_channels": source_channels,
            "transfer_channels": transfer_channels,
            "conv_dim": conv_dim,
            "repeat_num": repeat_num,
            "n_down": n_down,
            "keep_known_background": bool(keep_known_background),
            "refine": bool(refine),
            "inputs": check_input_recipe(inputs),
        }
        self.n_down = n_down
        self.repeat_num = repeat_num
        self.bg_model = ResNetGenerator(background_channels, conv_dim, repeat_num, n_down)
        self.src_model = ResUNetGenerator(source_channels, conv_dim, repeat_num, n_down)
        self.tsf_model = ResUNetGenerator(transfer_channels, conv_dim, repeat_num, n_down)
        initialize_weights(self)
        if refine:
            zero_initialize(self.tsf_model.img_reg[0], self.tsf_model.attetion_reg[0], self.bg_model.model[-2])

    @property
    def background_network(self) -> nn.Module:
        """bg_model (ResNetGenerator)."""
        return self.bg_model

    @property
    def size_multiple(self) -> int:
        """Image heights and widths must be multiples of this."""
        return 2**self.n_down

    @property
    def source_feature_counts(self) -> tuple[int, int]:
        """n_down + 1 encoder maps (full resolution first) and repeat_num residual maps."""
        return self.n_down + 1, self.repeat_num

    def encode_source(self, source_input: torch.Tensor) -> SourceFeatures:
        """(B, source_channels, H, W) [source image * body mask, source condition] -> SourceFeatures."""
        self._check_input("source", source_input)
        encoder = stage_outputs(self.src_model.encoders, source_input)
        residual = stage_outputs(self.src_model.resnets, encoder[-1])
        return SourceFeatures(encoder=tuple(encoder), residual=tuple(residual))

    def reconstruct_source(self, source_features: SourceFeatures, background: torch.Tensor) -> StreamOutput:
        """Decode the source stream and composite it on `background` ((B or 1, 3, H, W)) -> StreamOutput (B, ...)."""
        self._check_features(source_features)
        batch, _, height, width = source_features.encoder[0].shape
        background = _checked_background(background, batch, height, width)
        bottleneck = source_features.residual[-1] if source_features.residual else source_features.encoder[-1]
        colour, mask = self.src_model.regress(self.src_model.decode(bottleneck, source_features.encoder))
        return composite(colour, mask, background)

    def transfer(
        self,
        source_features: SourceFeatures,
        transfer_input: torch.Tensor,
        grid: torch.Tensor,
        background: torch.Tensor,
    ) -> StreamOutput:
        """Render targets from encoded source features.

        Args:
            source_features: from encode_source, batch B or 1 (one source shared by all B targets).
            transfer_input: (B, transfer_channels, H, W) [warped source image, target condition].
            grid: (B, H, W, 2) NDC position in the source of each target pixel, OUTSIDE where none
                (lwgan.flow.TransferFlow.grid).
            background: (B or 1, 3, H, W) in [-1, 1].
        Returns:
            StreamOutput with (B, 3, H, W) image and colour and (B, 1, H, W) mask.
        """
        batch, height, width = self._check_transfer_arguments(source_features, transfer_input)
        check_shape("grid", grid, (batch, height, width, 2))
        background = _checked_background(background, batch, height, width)
        pyramid = GridPyramid(grid)

        def fuse(features: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
            # Additive Liquid Warping Block: X_t + warp(X_s, T) at this stage's resolution.
            return features + pyramid.warp(match_batch(source, batch, "source_features"), features.shape[-2:])

        features = self.tsf_model.encoders[0](transfer_input)
        encoder = [features]
        for level, source in zip(self.tsf_model.encoders[1:], source_features.encoder[1:]):
            features = fuse(level(features), source)
            encoder.append(features)
        for block, source in zip(self.tsf_model.resnets, source_features.residual):
            features = fuse(block(features), source)
        decoded = self.tsf_model.decode(features, encoder)
        colour, mask = transfer_heads(self.tsf_model.img_reg, self.tsf_model.attetion_reg, decoded, transfer_input, self._config["refine"])
        return composite(colour, mask, background)


def _checked_background(background: torch.Tensor, batch: int, height: int, width: int) -> torch.Tensor:
    """Check a (batch or 1, 3, height, width) background; return it expanded to `batch`."""
    check_shape("background", background, (None, 3, height, width))
    return match_batch(background, batch, "background")
