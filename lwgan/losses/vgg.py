"""VGG19 convolutional features in torchvision's layout, loaded from a user's weights file, for the perceptual loss.

The original Liquid Warping GAN (impersonator, iPERCore) takes torchvision's ImageNet VGG19
(`vgg19-dcbb9e9d.pth`) and compares the activations after relu1_1, relu2_1, relu3_1, relu4_1 and
relu5_1 (torchvision `features` slice ends 2, 7, 12, 21, 30) with L1 weights 1/32, 1/16, 1/8, 1/4, 1.
torchvision cannot be installed next to CPU torch here, so the network is written out below with
torchvision's parameter names (`features.{i}.weight/bias`), so that the same file loads unchanged.

lwgan.io.state_dicts' read_state_dict_file() and check_state_dict() load this and the face network
(lwgan.losses.sphereface).
"""

from __future__ import annotations

import logging
import os

import torch
from torch import nn

from lwgan.checks import check_shape
from lwgan.image_ranges import signed_to_unit_range
from lwgan.io.state_dicts import check_state_dict, read_state_dict_file

logger = logging.getLogger(__name__)

VGG19_FILE_NAME = "vgg19-dcbb9e9d.pth"
VGG19_CONFIG_KEY = "vgg_path"
"""Config key (a GeneratorLoss argument) that points to the VGG19 weights file."""
VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
VGG19_SOURCE = (
    f"It is torchvision's ImageNet VGG19, a plain state dict: download {VGG19_URL} "
    f"(the file torchvision.models.vgg19 fetches), or take losses/{VGG19_FILE_NAME} from iPERCore's "
    "assets/checkpoints.zip (https://github.com/iPERDance/iPERCore). lwgan never downloads it."
)

VGG19_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
"""torchvision's VGG19 `features` (configuration "E"): a number is a 3x3 conv (padding 1) + ReLU
(two indices), "M" a 2x2 max-pool (one index)."""
SLICE_ENDS = (2, 7, 12, 21, 30)
"""End indices (exclusive) into `features` of the five compared activations (relu1_1 ... relu5_1), as in the original."""
SLICE_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
"""L1 weight of each slice in the perceptual loss (original VGGLoss)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MINIMUM_SIZE = 16
"""Four 2x2 max-pools come before relu5_1: the input must be at least 16 pixels on each side."""


def torchvision_feature_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of every `features.*` tensor in a torchvision VGG19 state dict (16 convs, indices 0..34)."""
    shapes: dict[str, tuple[int, ...]] = {}
    index, in_channels = 0, 3
    for item in VGG19_LAYERS:
        if item == "M":
            index += 1
            continue
        shapes[f"features.{index}.weight"] = (item, in_channels, 3, 3)
        shapes[f"features.{index}.bias"] = (item,)
        index, in_channels = index + 2, item
    return shapes


def _feature_layers(end: int) -> list[nn.Module]:
    """torchvision's `features` modules with indices 0 .. end - 1."""
    layers: list[nn.Module] = []
    in_channels = 3
    for item in VGG19_LAYERS:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            # not in-place: the activations at slice ends are returned and must stay unchanged
            layers += [nn.Conv2d(in_channels, item, kernel_size=3, padding=1), nn.ReLU()]
            in_channels = item
    return layers[:end]


class VGG19Features(nn.Module):
    """Frozen VGG19 up to relu5_1; forward returns the five slice activations of the perceptual loss.

    Parameters are named as torchvision's (`features.{i}.weight/bias`, i in 0, 2, 5, 7, 10, 12, 14,
    16, 19, 21, 23, 25, 28). The convs after relu5_1 (indices 30, 32, 34) never reach an output, so
    they are not held; load_vgg19_features() checks and drops them. The module is frozen: no
    parameter requires grad and it stays in eval mode whatever train() is asked (gradients still
    flow to the input).

    Args:
        imagenet_normalization: False (default, the original's behaviour): the [-1, 1] image goes into
            the network as it is, although the torchvision weights were trained on inputs normalised
            by ImageNet's mean and std; the original loss weights (10 x these five L1 terms) were tuned
            on that. True: map x -> ((x + 1) / 2 - mean) / std first, the input statistics the weights
            expect (changes the loss scale; re-tune the weight).
    """

    def __init__(self, imagenet_normalization: bool = False) -> None:
        super().__init__()
        self.imagenet_normalization = imagenet_normalization
        self.features = nn.Sequential(*_feature_layers(SLICE_ENDS[-1]))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:
        """Stay in eval mode: the network is a fixed feature extractor."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Slice activations of a batch of images.

        Args:
            images: (B, 3, H, W) float RGB in [-1, 1], H and W >= 16.
        Returns:
            5 tensors (relu1_1, relu2_1, relu3_1, relu4_1, relu5_1) of shapes (B, 64, H, W),
            (B, 128, H/2, W/2), (B, 256, H/4, W/4), (B, 512, H/8, W/8), (B, 512, H/16, W/16)
            (sizes rounded down at each pooling).
        """
        check_shape("images", images, (None, 3, None, None))
        if min(images.shape[2:]) < MINIMUM_SIZE:
            raise ValueError(f"images must be at least {MINIMUM_SIZE} x {MINIMUM_SIZE}, got {tuple(images.shape)}")
        x = (signed_to_unit_range(images) - self.mean) / self.std if self.imagenet_normalization else images
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index + 1 in SLICE_ENDS:
                outputs.append(x)
        return tuple(outputs)


def load_vgg19_features(
    path: str | os.PathLike, *, imagenet_normalization: bool = False, device: str | torch.device = "cpu"
) -> VGG19Features:
    """VGG19Features with the weights of a torchvision-format VGG19 file (`vgg19-dcbb9e9d.pth`).

    Every `features.*` key and shape is checked against torchvision's layout; `classifier.*` is
    ignored; the convs after relu5_1 (features.30/32/34) are checked, then dropped.

    Args:
        path: the weights file (config key VGG19_CONFIG_KEY).
        imagenet_normalization: see VGG19Features.
        device: where the network lives.
    Raises:
        FileNotFoundError: no file at `path`; the message says where to get it and which key to set.
        ValueError: unreadable file, or keys/shapes that do not match (every problem listed).
    """
    not_found_help = f"{VGG19_SOURCE} Set the config key {VGG19_CONFIG_KEY}=/path/to/{VGG19_FILE_NAME}."
    state_dict = read_state_dict_file(path, "VGG19 weights", not_found_help)
    checked = check_state_dict(state_dict, torchvision_feature_shapes(), str(path), "VGG19", ignored_prefixes=("classifier.",))
    model = VGG19Features(imagenet_normalization=imagenet_normalization)
    used = model.state_dict()
    dropped = sorted(key for key in checked if key not in used)
    model.load_state_dict({key: checked[key] for key in used}, strict=True)
    logger.info("loaded VGG19 features from %s (unused after relu5_1: %s)", path, ", ".join(dropped))
    return model.to(device)
