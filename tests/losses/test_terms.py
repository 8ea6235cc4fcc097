"""Loss terms against hand-computed values on small tensors."""

import math

import pytest
import torch

from lwgan.losses.terms import (
    lsgan_discriminator_fake,
    lsgan_discriminator_real,
    lsgan_generator,
    mask_bce,
    masked_l1,
    reconstruction_l1,
    ssim_loss,
    total_variation,
    weighted_feature_l1,
)


def test_reconstruction_l1():
    generated = torch.tensor([[[[0.5, -1.0], [0.0, 1.0]]]])
    target = torch.tensor([[[[0.0, -1.0], [1.0, 0.5]]]])
    # |0.5| + 0 + |-1| + |0.5| = 2 over 4 elements
    assert reconstruction_l1(generated, target).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"\(1, 1, 2, 2\) and \(1, 1, 2, 1\)"):
        reconstruction_l1(generated, target[..., :1])


def test_weighted_feature_l1():
    features = [torch.tensor([1.0, 2.0]), torch.tensor([[0.0, 0.0, 3.0]])]
    targets = [torch.tensor([0.0, 0.0]), torch.tensor([[1.0, 0.0, 0.0]])]
    # 0.5 * mean(1, 2) + 2 * mean(1, 0, 3) = 0.75 + 8 / 3
    value = weighted_feature_l1(features, targets, [0.5, 2.0])
    assert value.item() == pytest.approx(0.75 + 8.0 / 3.0)
    with pytest.raises(ValueError, match="as many"):
        weighted_feature_l1(features, targets, [1.0])


def test_lsgan_targets():
    fake = torch.tensor([[[[0.5, -1.0]]]])
    real = torch.tensor([[[[1.0, 0.0]]]])
    assert lsgan_generator(fake).item() == pytest.approx((0.25 + 1.0) / 2)  # target 0
    assert lsgan_discriminator_real(real).item() == pytest.approx((0.0 + 1.0) / 2)  # target +1
    assert lsgan_discriminator_fake(fake).item() == pytest.approx((2.25 + 0.0) / 2)  # target -1


def test_lsgan_heads_are_averaged():
    heads = [torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 1, 1)]
    # real target 1: head means 1 and 0 -> 0.5; generator target 0: 0 and 1 -> 0.5; fake target -1: 1 and 4
    assert lsgan_discriminator_real(heads).item() == pytest.approx(0.5)
    assert lsgan_generator(heads).item() == pytest.approx(0.5)
    assert lsgan_discriminator_fake(heads).item() == pytest.approx(2.5)
    with pytest.raises(ValueError, match="non-empty"):
        lsgan_generator([])


def test_mask_bce():
    mask = torch.tensor([[[[0.9, 0.2]]]])
    background = torch.tensor([[[[1.0, 0.0]]]])
    expected = -(math.log(0.9) + math.log(0.8)) / 2
    assert mask_bce(mask, background).item() == pytest.approx(expected, rel=1e-6)
    assert mask_bce(torch.full((2, 1, 3, 3), 0.5), torch.rand(2, 1, 3, 3).round()).item() == pytest.approx(math.log(2))
    assert mask_bce(background, background).item() == 0.0
    with pytest.raises(ValueError, match=r"got \(1, 3, 1, 2\)"):
        mask_bce(mask.expand(1, 3, 1, 2), background.expand(1, 3, 1, 2))


def test_total_variation():
    mask = torch.tensor([[[[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]]]])
    horizontal = (1 + 2 + 0 + 0) / 4
    vertical = (2 + 1 + 1) / 3
    assert total_variation(mask).item() == pytest.approx(horizontal + vertical)
    assert total_variation(torch.full((2, 1, 5, 4), 0.3)).item() == 0.0
    with pytest.raises(ValueError, match="at least 2 x 2"):
        total_variation(torch.zeros(1, 1, 1, 4))


def test_ssim_loss_of_flat_images():
    # flat images a, b in [0, 1]: mu = a, b and sigma = 0 everywhere (reflect padding), so
    # SSIM = (2ab + c1) c2 / ((a^2 + b^2 + c1) c2 + eps), c1 = 0.01^2, c2 = 0.03^2, eps = 1e-12
    generated = torch.full((1, 3, 16, 16), -0.2, dtype=torch.float64)  # a = 0.4
    target = torch.full((1, 3, 16, 16), 0.6, dtype=torch.float64)  # b = 0.8
    a, b, c1, c2 = 0.4, 0.8, 1e-4, 9e-4
    ssim = (2 * a * b + c1) * c2 / ((a * a + b * b + c1) * c2 + 1e-12)
    assert ssim_loss(generated, target).item() == pytest.approx((1 - ssim) / 2, rel=1e-9)


def test_ssim_loss_identical_and_gradient():
    target = torch.rand(2, 3, 24, 24) * 2 - 1
    assert ssim_loss(target.clone(), target).item() == pytest.approx(0.0, abs=1e-6)
    generated = (target + 0.5 * torch.randn_like(target)).clamp(-1, 1).requires_grad_(True)
    loss = ssim_loss(generated, target)
    assert 0 < loss.item() <= 1
    loss.backward()
    assert generated.grad.abs().sum() > 0


def test_masked_l1_averages_over_the_masked_pixels_only():
    generated = torch.zeros(1, 3, 2, 2)
    target = torch.zeros(1, 3, 2, 2)
    target[0, :, 0, 0] = 1.0  # differs by 1 at one pixel
    target[0, :, 1, 1] = 4.0  # and by 4 at another, outside the mask
    mask = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    assert masked_l1(generated, target, mask).item() == pytest.approx(0.5)  # (1 + 0) / 2 pixels
    assert masked_l1(generated, target, torch.zeros_like(mask)).item() == 0.0
