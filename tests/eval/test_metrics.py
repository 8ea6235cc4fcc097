"""Evaluation metrics against closed forms, and LPIPS against a functional re-implementation from the weight files."""

import math

import kornia
import pytest
import torch
import torch.nn.functional as F

from lwgan.eval.metrics import (
    ALEXNET_LAYERS,
    LPIPS_CHANNELS,
    load_lpips,
    mask_iou,
    psnr,
    ssim,
)


def test_psnr_of_a_known_mean_squared_error():
    target = torch.zeros(2, 3, 16, 16)
    image = torch.full((2, 3, 16, 16), 0.2)  # 0.1 in [0, 1] units: MSE 0.01 -> 20 dB
    image[1] = -0.02  # 0.01 -> MSE 1e-4 -> 40 dB
    torch.testing.assert_close(psnr(image, target), torch.tensor([20.0, 40.0]))
    assert psnr(target, target).isinf().all()


def test_ssim_of_identical_images_is_one_and_drops_for_noise():
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 32, 32, generator=generator) * 2 - 1
    torch.testing.assert_close(ssim(image, image), torch.ones(2))
    mask = torch.zeros(2, 32, 32, dtype=torch.bool)
    mask[:, 8:20, 4:30] = True
    torch.testing.assert_close(ssim(image, image, mask=mask), torch.ones(2))
    noisy = (image + 0.3 * torch.randn(image.shape, generator=generator)).clamp(-1, 1)
    assert (ssim(noisy, image) < 0.9).all()


def test_masked_metrics_use_only_the_masked_pixels():
    generator = torch.Generator().manual_seed(1)
    target = torch.rand(1, 3, 40, 40, generator=generator) * 2 - 1
    image = target.clone()
    image[..., 10:20, 10:20] += 0.1  # an error inside the region: 10 x 10 pixels, 0.05 in [0, 1] units
    mask = torch.zeros(1, 40, 40, dtype=torch.bool)
    mask[:, 10:30, 10:30] = True  # 400 pixels, a quarter of them wrong: MSE = 0.05^2 / 4
    changed = image.clone()
    changed[..., :, :5] = -1.0  # outside pixels beyond the reach of the SSIM window (5 px) from the region
    changed[..., 35:, :] = 1.0
    expected = 10 * math.log10(1 / (0.05**2 / 4))
    torch.testing.assert_close(psnr(image, target, mask=mask), torch.tensor([expected]), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(psnr(changed, target, mask=mask), psnr(image, target, mask=mask))
    torch.testing.assert_close(ssim(changed, target, mask=mask), ssim(image, target, mask=mask))
    # Masked SSIM is the mean of kornia's SSIM map over the masked pixels.
    similarity = kornia.metrics.ssim((image + 1) / 2, (target + 1) / 2, 11, max_val=1.0)
    torch.testing.assert_close(ssim(image, target, mask=mask), similarity[..., 10:30, 10:30].mean().reshape(1))
    assert psnr(image, target, mask=torch.zeros_like(mask)).isnan().all()


def test_mask_iou_closed_form():
    predicted = torch.zeros(3, 10, 10, dtype=torch.bool)
    truth = torch.zeros(3, 10, 10, dtype=torch.bool)
    predicted[0, 0:4, 0:5] = True  # 20 pixels
    truth[0, 2:6, 0:5] = True  # 20 pixels, 10 shared -> 10 / 30
    predicted[1, :5] = True  # disjoint -> 0
    truth[1, 5:] = True
    torch.testing.assert_close(mask_iou(predicted, truth), torch.tensor([1 / 3, 0.0, 1.0]))  # both empty -> 1


def random_lpips_files(folder, generator):
    """A torchvision-format AlexNet state dict (with its classifier) and an LPIPS v0.1 linear-layer file, random."""
    alexnet = {}
    for index, in_channels, out_channels, kernel, _, _ in ALEXNET_LAYERS:
        alexnet[f"features.{index}.weight"] = torch.randn(out_channels, in_channels, kernel, kernel, generator=generator) * 0.05
        alexnet[f"features.{index}.bias"] = torch.randn(out_channels, generator=generator) * 0.01
    alexnet["classifier.1.weight"] = torch.randn(4, 9216, generator=generator)  # ignored by the loader
    linear = {f"lin{index}.model.1.weight": torch.rand(1, channels, 1, 1, generator=generator) for index, channels in enumerate(LPIPS_CHANNELS)}
    torch.save(alexnet, folder / "alexnet.pth")
    torch.save(linear, folder / "alex.pth")
    return alexnet, linear


def reference_lpips(alexnet, linear, first, second):
    """LPIPS v0.1 written out functionally from the two state dicts (lpips.LPIPS(net='alex') forward)."""
    def activations(images):
        shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
        scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
        x = (images - shift) / scale
        outputs = []
        for index, _, _, _, stride, padding in ALEXNET_LAYERS:
            if index in (3, 6):
                x = F.max_pool2d(x, 3, 2)
            x = F.relu(F.conv2d(x, alexnet[f"features.{index}.weight"], alexnet[f"features.{index}.bias"], stride=stride, padding=padding))
            outputs.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return outputs
    total = 0
    for index, (a, b) in enumerate(zip(activations(first), activations(second))):
        total = total + F.conv2d((a - b) ** 2, linear[f"lin{index}.model.1.weight"]).mean(dim=(1, 2, 3))
    return total


def test_lpips_loads_weight_files_and_matches_the_reference(tmp_path):
    generator = torch.Generator().manual_seed(2)
    alexnet, linear = random_lpips_files(tmp_path, generator)
    lpips = load_lpips(tmp_path / "alexnet.pth", tmp_path / "alex.pth")
    first = torch.rand(2, 3, 64, 64, generator=generator) * 2 - 1
    second = torch.rand(2, 3, 64, 64, generator=generator) * 2 - 1
    with torch.no_grad():
        distance = lpips(first, second)
        torch.testing.assert_close(distance, reference_lpips(alexnet, linear, first, second))
        torch.testing.assert_close(lpips(first, first), torch.zeros(2))
        torch.testing.assert_close(lpips(second, first), distance)
    assert (distance > 0).all()


def test_lpips_weight_file_problems_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="alexnet-owt-7be5be79.pth"):
        load_lpips(tmp_path / "missing.pth", tmp_path / "alex.pth")
    _, linear = random_lpips_files(tmp_path, torch.Generator().manual_seed(3))
    linear["lin2.model.1.weight"] = torch.rand(1, 7, 1, 1)
    torch.save(linear, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"lin2.model.1.weight.*\(1, 7, 1, 1\)"):
        load_lpips(tmp_path / "alexnet.pth", tmp_path / "bad.pth")
