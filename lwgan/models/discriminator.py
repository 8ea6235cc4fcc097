"""The conditional PatchGAN discriminator of both original codes (pix2pix `NLayerDiscriminator` layout)."""

from __future__ import annotations

import torch
from torch import nn

from lwgan.checks import check_shape
from lwgan.models.blocks import (
    ConfigurableModule,
    check_int_arguments,
    initialize_weights,
)

PRESETS: dict[str, dict[str, int]] = {
    "original": {"input_channels": 6, "ndf": 64, "n_layers": 4},
    "small": {"input_channels": 6, "ndf": 16, "n_layers": 4},
}
"""Width presets: "original" is the released models' D, "small" trains on a CPU."""


class PatchDiscriminator(ConfigurableModule):
    """PatchGAN: (B, input_channels, H, W) [image, condition map] -> (B, 1, h, w) real/fake logits (no sigmoid).

    One nn.Sequential `model` (convolutions at model.{0, 2, 5, 8, ...}): conv4 stride 2 (ndf) +
    LeakyReLU(0.2); n_layers - 1 conv4 stride 2 doubling the width (at most 8 ndf) + InstanceNorm
    (no parameters) + LeakyReLU; conv4 stride 1 + InstanceNorm + LeakyReLU; conv4 stride 1 to one
    channel. Every convolution has a bias. With n_layers 4, a 256 x 256 input gives 14 x 14 logits,
    each seeing a 142-pixel patch. The original trains it with least squares (real 1, fake -1).
    """

    PRESETS = PRESETS

    def __init__(self, input_channels: int = 6, ndf: int = 64, n_layers: int = 4) -> None:
        super().__init__()
        check_int_arguments(positive=True, input_channels=input_channels, ndf=ndf, n_layers=n_layers)
        self._config = {"input_channels": input_channels, "ndf": ndf, "n_layers": n_layers}
        layers: list[nn.Module] = [nn.Conv2d(input_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        channels = ndf
        for layer in range(1, n_layers + 1):
            out_channels = ndf * min(2**layer, 8)
            stride = 2 if layer < n_layers else 1
            layers += [
                nn.Conv2d(channels, out_channels, 4, stride=stride, padding=1),
                nn.InstanceNorm2d(out_channels, affine=False),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            channels = out_channels
        layers.append(nn.Conv2d(channels, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        initialize_weights(self)

    def output_size(self, size: int) -> int:
        """Logit-map side for an input side `size` (14 for 256 with n_layers 4)."""
        for _ in range(self._config["n_layers"]):
            size = (size + 2 - 4) // 2 + 1
        return size - 2

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, input_channels, H, W) image (and condition) in [-1, 1] -> (B, 1, h, w) logits."""
        check_shape("inputs", inputs, (None, self._config["input_channels"], None, None))
        if min(self.output_size(inputs.shape[-2]), self.output_size(inputs.shape[-1])) < 1:
            smallest = 3 * 2 ** self._config["n_layers"]
            raise ValueError(f"inputs are too small for {self._config['n_layers']} layers (at least {smallest} x {smallest}), "
                             f"got shape {tuple(inputs.shape)}")
        return self.model(inputs)
