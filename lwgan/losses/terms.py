"""Loss terms of Liquid Warping GAN training as pure functions; each returns a scalar, the batch mean.

Images are (B, 3, H, W) float RGB in [-1, 1]; masks are (N, 1, H, W) in [0, 1]. The terms and their
forms follow the original code (impersonator models/impersonator_trainer.py, iPERCore
criterions/): L1 reconstruction, VGG19 perceptual L1, SphereFace face-feature L1, least-squares
GAN, BCE of the attention mask against the background mask, TV-L1 smoothness of the mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import kornia
import torch
import torch.nn.functional as F

from lwgan.checks import check_shape
from lwgan.image_ranges import signed_to_unit_range
from lwgan.losses.sphereface import FACE_STAGE_WEIGHTS, SphereFace20
from lwgan.losses.vgg import SLICE_WEIGHTS, VGG19Features

Logits = torch.Tensor | Sequence[torch.Tensor]
"""Discriminator output: one (B, 1, h, w) tensor of patch logits, or one per head (averaged over heads)."""


def _check_pair(name: str, generated: torch.Tensor, target: torch.Tensor, channels: int | None) -> None:
    check_shape(name, generated, (None, channels, None, None))
    if generated.shape != target.shape:
        raise ValueError(f"{name} and its target must have the same shape, got {tuple(generated.shape)} "
                         f"and {tuple(target.shape)}")


def reconstruction_l1(generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean |generated - target| over all elements (the original's L1 reconstruction term).

    Args:
        generated, target: (B, C, H, W) float images of the same shape.
    """
    _check_pair("generated", generated, target, None)
    return (generated - target).abs().mean()


def masked_l1(generated: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """mean |generated - target| over the pixels where mask is 1 (0 when the mask is empty).

    Args:
        generated, target: (B, C, H, W) float images of the same shape; mask: (B, 1, H, W) in [0, 1].
    """
    _check_pair("generated", generated, target, None)
    check_shape("mask", mask, (generated.shape[0], 1, *generated.shape[-2:]))
    weight = mask.to(generated.dtype)
    return ((generated - target).abs() * weight).sum() / (weight.sum() * generated.shape[1]).clamp_min(1.0)


def weighted_feature_l1(
    features: Sequence[torch.Tensor], target_features: Sequence[torch.Tensor], weights: Sequence[float]
) -> torch.Tensor:
    """sum_k weights[k] * mean |features[k] - target_features[k]| (the target side carries no gradient).

    Args:
        features, target_features: K tensors each, pairwise of the same shape.
        weights: K floats.
    """
    if not len(features) == len(target_features) == len(weights):
        raise ValueError(f"need as many features, target features and weights, got {len(features)}, "
                         f"{len(target_features)} and {len(weights)}")
    total = features[0].new_zeros(())
    for feature, target, weight in zip(features, target_features, weights):
        if feature.shape != target.shape:
            raise ValueError(f"feature shapes differ: {tuple(feature.shape)} and {tuple(target.shape)}")
        total = total + weight * (feature - target.detach()).abs().mean()
    return total


def perceptual_loss(
    network: VGG19Features,
    generated: torch.Tensor,
    target: torch.Tensor,
    weights: Sequence[float] = SLICE_WEIGHTS,
) -> torch.Tensor:
    """VGG19 perceptual loss: weighted L1 between the relu1_1 .. relu5_1 activations (original VGGLoss).

    Args:
        network: VGG19Features (frozen).
        generated: (B, 3, H, W) in [-1, 1], H, W >= 16; gradients flow back to it.
        target: (B, 3, H, W) in [-1, 1] (no gradient).
        weights: per-slice weights, 1/32, 1/16, 1/8, 1/4, 1 by default.
    """
    _check_pair("generated", generated, target, 3)
    with torch.no_grad():
        target_features = network(target)
    return weighted_feature_l1(network(generated), target_features, weights)


def face_identity_loss(
    network: SphereFace20,
    generated_faces: torch.Tensor,
    target_faces: torch.Tensor,
    weights: Sequence[float] = FACE_STAGE_WEIGHTS,
) -> torch.Tensor:
    """Face identity loss: weighted L1 between SphereFace-20's five feature stages of two face crops.

    Args:
        network: SphereFace20 (frozen).
        generated_faces: (B, 3, 112, 96) in [-1, 1] (face_crop of the generated image).
        target_faces: (B, 3, 112, 96) in [-1, 1] (face_crop of the real image; no gradient).
        weights: per-stage weights, 1/32, 1/16, 1/8, 1/4, 1 by default (iPERCore; impersonator
            summed the five stages unweighted).
    """
    _check_pair("generated_faces", generated_faces, target_faces, 3)
    with torch.no_grad():
        target_features = network(target_faces)
    return weighted_feature_l1(network(generated_faces), target_features, weights)


def _least_squares(logits: Logits, target: float) -> torch.Tensor:
    """mean((logits - target)^2), averaged over heads when logits is a sequence (iPERCore's LSGANLoss)."""
    heads = [logits] if isinstance(logits, torch.Tensor) else list(logits)
    if not heads or not all(isinstance(head, torch.Tensor) for head in heads):
        raise ValueError("logits must be a tensor or a non-empty sequence of tensors")
    return torch.stack([((head - target) ** 2).mean() for head in heads]).mean()


# LSGAN targets of the original (impersonator `_compute_loss_D(x, y) = mean((x - y)^2)` with y = 1 for
# real and -1 for fake in the D step, y = 0 for fake in the G step): the generator pulls its logits to
# the midpoint 0 between the two classes (the a = -1, b = 1, c = 0 coding of Mao et al.'s LSGAN objective).
REAL_TARGET, FAKE_TARGET, GENERATOR_TARGET = 1.0, -1.0, 0.0


def lsgan_generator(fake_logits: Logits) -> torch.Tensor:
    """Generator's least-squares GAN loss: mean((D(fake) - 0)^2)."""
    return _least_squares(fake_logits, GENERATOR_TARGET)


def lsgan_discriminator_real(real_logits: Logits) -> torch.Tensor:
    """Discriminator's least-squares loss on real images: mean((D(real) - 1)^2)."""
    return _least_squares(real_logits, REAL_TARGET)


def lsgan_discriminator_fake(fake_logits: Logits) -> torch.Tensor:
    """Discriminator's least-squares loss on generated images: mean((D(fake) + 1)^2)."""
    return _least_squares(fake_logits, FAKE_TARGET)


def mask_bce(mask: torch.Tensor, background_mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the predicted attention mask against the background mask (mean).

    Args:
        mask: (N, 1, H, W) predicted mask in [0, 1] (1 = take the background), e.g. a sigmoid output.
        background_mask: (N, 1, H, W) target in [0, 1], 1 on the background (the body mask's complement).
    Returns:
        -mean(b log m + (1 - b) log(1 - m)), with each log clamped at -100 (torch's BCE).
    """
    _check_pair("mask", mask, background_mask, 1)
    # binary_cross_entropy refuses to run under CUDA autocast: compute it in float32 with autocast off
    with torch.autocast(device_type=mask.device.type, enabled=False):
        return F.binary_cross_entropy(mask.float(), background_mask.float())


def total_variation(mask: torch.Tensor) -> torch.Tensor:
    """TV-L1 smoothness: mean |horizontal neighbour difference| + mean |vertical neighbour difference|.

    The original's `_compute_loss_smooth` (a mean per direction; kornia's total_variation sums, so it
    does not fit).

    Args:
        mask: (N, C, H, W) with H, W >= 2.
    """
    check_shape("mask", mask, (None, None, None, None))
    if min(mask.shape[2:]) < 2:
        raise ValueError(f"mask must be at least 2 x 2, got {tuple(mask.shape)}")
    horizontal = (mask[:, :, :, 1:] - mask[:, :, :, :-1]).abs().mean()
    vertical = (mask[:, :, 1:, :] - mask[:, :, :-1, :]).abs().mean()
    return horizontal + vertical


def ssim_loss(generated: torch.Tensor, target: torch.Tensor, window_size: int = 11) -> torch.Tensor:
    """Structural dissimilarity mean(clamp((1 - SSIM) / 2, 0, 1)) of two [-1, 1] images (kornia).

    Both images are mapped to [0, 1] first (SSIM's constants assume the data range max_val = 1).

    Args:
        generated, target: (B, C, H, W) in [-1, 1], H and W > window_size // 2.
        window_size: odd size of the Gaussian window (sigma 1.5).
    Returns:
        scalar in [0, 1]; 0 for identical images.
    """
    _check_pair("generated", generated, target, None)
    return kornia.losses.ssim_loss(signed_to_unit_range(generated), signed_to_unit_range(target), window_size, max_val=1.0)
