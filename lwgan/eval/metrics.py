"""Image metrics for evaluation: PSNR and SSIM (whole image or a body region), mask IoU, LPIPS from weight files.

Images are (B, 3, H, W) float in [-1, 1] (the models' range) and are mapped to [0, 1] first, so
the data range is 1. Each metric returns one value per image, (B,) float.

SSIM is kornia's (Gaussian window sigma 1.5, 11 taps, reflect padding, constants for data range
1), averaged over channels and pixels. The original's evaluator used skimage's default (a 7 x 7
uniform window, borders cropped), so values differ slightly from its tables.
"""

from __future__ import annotations

import logging
import os

import kornia
import torch
from torch import nn

from lwgan.checks import check_shape
from lwgan.image_ranges import signed_to_unit_range
from lwgan.io.state_dicts import check_state_dict, read_state_dict_file

logger = logging.getLogger(__name__)


def _check_pair(image: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
    """Check (B, 3, H, W) images and an optional (B, H, W) mask; returns the mask as (B, 1, H, W) float."""
    check_shape("image", image, (None, 3, None, None))
    check_shape("target", target, tuple(image.shape))
    if mask is None:
        return None
    check_shape("mask", mask, (image.shape[0], image.shape[2], image.shape[3]))
    return mask.unsqueeze(1).to(image.dtype)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(B, C, H, W) values -> (B,) mean over all elements, or over the masked pixels (all channels); NaN for an empty mask."""
    if mask is None:
        return values.flatten(1).mean(dim=1)
    weights = mask.expand_as(values)
    return (values * weights).flatten(1).sum(dim=1) / weights.flatten(1).sum(dim=1)


def psnr(image: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, 10 log10(1 / MSE) with images in [0, 1].

    Args:
        image, target: (B, 3, H, W) in [-1, 1].
        mask: (B, H, W) bool or {0, 1}: the MSE is taken over these pixels (all channels) only.
    Returns:
        (B,) float; +inf for identical images, NaN where the mask is empty.
    """
    weights = _check_pair(image, target, mask)
    squared_error = ((image.float() - target.float()) / 2.0) ** 2
    mse = _masked_mean(squared_error, None if weights is None else weights.float())
    return 10.0 * torch.log10(1.0 / mse)


def ssim(image: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, window_size: int = 11) -> torch.Tensor:
    """Structural similarity, the mean of kornia's SSIM map (channels and pixels, or the masked pixels only).

    Args:
        image, target: (B, 3, H, W) in [-1, 1], H and W larger than window_size // 2.
        mask: (B, H, W) bool or {0, 1}: average the SSIM map over these pixels only (the map
            itself still sees each pixel's whole window).
    Returns:
        (B,) float in [-1, 1]; 1 for identical images, NaN where the mask is empty.
    """
    weights = _check_pair(image, target, mask)
    similarity = kornia.metrics.ssim(signed_to_unit_range(image.float()), signed_to_unit_range(target.float()), window_size, max_val=1.0)
    return _masked_mean(similarity, None if weights is None else weights.float())


def mask_iou(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Intersection over union of two (B, H, W) bool masks -> (B,) float; 1 where both are empty."""
    check_shape("predicted", predicted, (None, None, None))
    check_shape("truth", truth, tuple(predicted.shape))
    predicted, truth = predicted.bool(), truth.bool()
    intersection = (predicted & truth).flatten(1).sum(dim=1).float()
    union = (predicted | truth).flatten(1).sum(dim=1).float()
    return torch.where(union > 0, intersection / union.clamp_min(1.0), torch.ones_like(union))


# LPIPS v0.1 "net-lin" AlexNet (Zhang et al. 2018, the PerceptualSimilarity package the original's evaluator used).
# Written here because torchvision (which holds AlexNet) cannot sit beside this CPU torch build and the
# `lpips` package needs torchvision; the layer indices are torchvision's, so its weight file loads unchanged.
ALEXNET_LAYERS = ((0, 3, 64, 11, 4, 2), (3, 64, 192, 5, 1, 2), (6, 192, 384, 3, 1, 1), (8, 384, 256, 3, 1, 1), (10, 256, 256, 3, 1, 1))
"""(index in torchvision's alexnet.features, in, out, kernel, stride, padding) of the five convolutions."""
LPIPS_CHANNELS = (64, 192, 384, 256, 256)
"""Channels of the compared activations relu1 .. relu5 (after features.1, 4, 7, 9, 11)."""
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
"""LPIPS's ScalingLayer: inputs in [-1, 1] become (x - shift) / scale."""
ALEXNET_HELP = ("It is torchvision's ImageNet AlexNet (alexnet-owt-7be5be79.pth, from "
                "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth). Set lpips_alexnet_path=/path/to/it.")
LPIPS_LINEAR_HELP = ("It is the LPIPS v0.1 linear-layer file for AlexNet (lpips/weights/v0.1/alex.pth in "
                     "https://github.com/richzhang/PerceptualSimilarity). Set lpips_linear_path=/path/to/it.")


class LearnedPerceptualSimilarity(nn.Module):
    """LPIPS v0.1 with AlexNet: (B, 3, H, W) pairs in [-1, 1] -> (B,) distances (0 = identical).

    d(x, y) = sum_l mean_hw( w_l . (f_l(x) / |f_l(x)| - f_l(y) / |f_l(y)|)^2 ), where f_l are the
    activations after AlexNet's five ReLUs (channel-normalised, eps 1e-10) and w_l the learned
    non-negative 1 x 1 linear layers. `features` has torchvision's `alexnet.features` indices;
    `linear.{l}` holds LPIPS's `lin{l}.model.1.weight`. Frozen, in eval mode.
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for index, in_channels, out_channels, kernel, stride, padding in ALEXNET_LAYERS:
            while len(layers) < index:  # the max-pools between torchvision's convolution indices
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
            layers += [nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding), nn.ReLU(inplace=False)]
        self.features = nn.Sequential(*layers)  # indices 0 .. 11
        self.linear = nn.ModuleList(nn.Conv2d(channels, 1, 1, bias=False) for channels in LPIPS_CHANNELS)
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def activations(self, images: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) in [-1, 1] -> the five channel-normalised ReLU activations."""
        features = (images - self.shift) / self.scale
        outputs = []
        for index, layer in enumerate(self.features):
            features = layer(features)
            if index in (1, 4, 7, 9, 11):
                outputs.append(features / (features.square().sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return outputs

    def forward(self, image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair(image, target, None)
        if min(image.shape[-2:]) < 32:
            raise ValueError(f"LPIPS (AlexNet) needs images of at least 32 x 32, got {tuple(image.shape)}")
        distance = image.new_zeros(image.shape[0], dtype=torch.float32)
        for linear, first, second in zip(self.linear, self.activations(image.float()), self.activations(target.float())):
            distance = distance + linear((first - second).square()).mean(dim=(1, 2, 3))
        return distance


def load_lpips(alexnet_path: str | os.PathLike, linear_path: str | os.PathLike, device: str | torch.device = "cpu") -> LearnedPerceptualSimilarity:
    """LPIPS from a torchvision AlexNet weight file and the LPIPS v0.1 linear-layer file; every key and shape checked.

    Raises FileNotFoundError (naming the file and where to get it) or ValueError (unreadable file,
    missing/unexpected keys, wrong shapes).
    """
    model = LearnedPerceptualSimilarity()
    alexnet = read_state_dict_file(alexnet_path, "AlexNet weights", ALEXNET_HELP)
    expected = {f"features.{key}": value for key, value in model.features.state_dict().items()}
    features = check_state_dict(alexnet, expected, str(alexnet_path), "torchvision AlexNet", ignored_prefixes=("classifier.",))
    linear = read_state_dict_file(linear_path, "LPIPS linear weights", LPIPS_LINEAR_HELP)
    expected = {f"lin{index}.model.1.weight": layer.weight for index, layer in enumerate(model.linear)}
    weights = check_state_dict(linear, expected, str(linear_path), "LPIPS v0.1 AlexNet linear layers")
    model.features.load_state_dict({key.removeprefix("features."): value for key, value in features.items()}, strict=True)
    for index, layer in enumerate(model.linear):
        layer.weight.copy_(weights[f"lin{index}.model.1.weight"])
    logger.info("loaded LPIPS (AlexNet) from %s and %s", alexnet_path, linear_path)
    return model.to(device)
