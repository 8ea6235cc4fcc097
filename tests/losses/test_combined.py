"""GeneratorLoss / DiscriminatorLoss: named terms, total = weighted sum, L1 + SSIM fallback, closed-form zeros."""

import logging

import pytest
import torch

from lwgan.losses import DiscriminatorLoss, GeneratorLoss, SphereFace20
from lwgan.losses.vgg import torchvision_feature_shapes

SIZE = 32


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    """(vgg_path, face_path): random weights in the torchvision and original SphereFace layouts.

    The layouts themselves are checked against written-out tables in test_vgg.py / test_sphereface.py.
    """
    folder = tmp_path_factory.mktemp("weights")
    generator = torch.Generator().manual_seed(0)
    vgg = {key: torch.randn(shape, generator=generator) * 0.05 for key, shape in torchvision_feature_shapes().items()}
    vgg["classifier.6.bias"] = torch.zeros(1000)
    torch.save(vgg, folder / "vgg19-dcbb9e9d.pth")
    face_shapes = {key: value.shape for key, value in SphereFace20().state_dict().items()}
    face = {key: torch.randn(shape, generator=generator) * 0.02 for key, shape in face_shapes.items()}
    face["fc6.weight"] = torch.zeros(512, 4)
    torch.save(face, folder / "sphere20a_20171020.pth")
    return folder / "vgg19-dcbb9e9d.pth", folder / "sphere20a_20171020.pth"


def random_batch(seed: int = 0, batch: int = 2) -> dict:
    generator = torch.Generator().manual_seed(seed)

    def image():
        return torch.rand(batch, 3, SIZE, SIZE, generator=generator) * 2 - 1

    return {
        "reconstruction": image(), "source": image(), "transfer": image(), "target": image(),
        "masks": torch.rand(2 * batch, 1, SIZE, SIZE, generator=generator),
        "background_masks": (torch.rand(2 * batch, 1, SIZE, SIZE, generator=generator) > 0.5).float(),
        "fake_logits": torch.randn(batch, 1, 2, 2, generator=generator),
        "head_boxes": torch.tensor([[-0.5, -0.8, 0.1, -0.1]] * batch),
    }


def perfect_batch(batch: int = 2) -> dict:
    """Generated = real, masks = their 0/1 targets and flat, logits 0: every term is 0 in closed form."""
    images = torch.rand(batch, 3, SIZE, SIZE) * 2 - 1
    background = torch.zeros(2 * batch, 1, SIZE, SIZE)
    return {
        "reconstruction": images.clone(), "source": images, "transfer": images.clone(), "target": images,
        "masks": background.clone(), "background_masks": background, "fake_logits": torch.zeros(batch, 1, 2, 2),
        "head_boxes": torch.tensor([[-0.5, -0.8, 0.1, -0.1]] * batch),
    }


def assert_total_is_weighted_sum(loss: GeneratorLoss | DiscriminatorLoss, terms: dict) -> None:
    assert set(terms) == set(loss.weights) | {"total"}
    expected = sum(loss.weights[name] * terms[name] for name in loss.weights)
    assert torch.allclose(terms["total"], expected, rtol=1e-6)


def test_fallback_terms_total_and_single_log(caplog):
    with caplog.at_level(logging.INFO, logger="lwgan.losses.combined"):
        loss = GeneratorLoss()
        outputs = [loss(**random_batch(seed)) for seed in range(3)]
    fallback = [record for record in caplog.records if "vgg_path" in record.getMessage()]
    assert len(fallback) == 1 and fallback[0].levelno == logging.WARNING
    assert "L1 + SSIM" in fallback[0].getMessage()
    assert any("face_path" in record.getMessage() for record in caplog.records)
    assert loss.weights == {"reconstruction": 10.0, "l1": 10.0, "ssim": 10.0, "mask": 1.0,
                            "mask_smooth": 1.0, "adversarial": 1.0}
    for terms in outputs:
        assert all(torch.isfinite(value) and value.ndim == 0 for value in terms.values())
        assert_total_is_weighted_sum(loss, terms)


def test_full_loss_with_weight_files(weight_files):
    vgg_path, face_path = weight_files
    loss = GeneratorLoss(vgg_path=vgg_path, face_path=face_path, mask_weight=5.0)
    assert list(loss.weights) == ["reconstruction", "perceptual", "face", "mask", "mask_smooth", "adversarial"]
    assert loss.weights["face"] == 5.0 and loss.weights["mask"] == 5.0
    batch = random_batch()
    batch["transfer"].requires_grad_(True)
    terms = loss(**batch)
    assert all(torch.isfinite(value) and value.item() > 0 for value in terms.values())
    assert_total_is_weighted_sum(loss, terms)
    terms["total"].backward()
    assert batch["transfer"].grad.abs().sum() > 0
    assert all(parameter.grad is None for parameter in loss.parameters())


def test_every_term_zero_in_closed_form(weight_files):
    vgg_path, face_path = weight_files
    batch = perfect_batch()
    for loss in (GeneratorLoss(), GeneratorLoss(vgg_path=vgg_path, face_path=face_path)):
        terms = loss(**batch)
        for name, value in terms.items():
            assert value.item() == pytest.approx(0.0, abs=1e-6), name


def test_zero_weight_terms_are_left_out():
    loss = GeneratorLoss(ssim_weight=0.0, adversarial_weight=0)
    terms = loss(**random_batch())
    assert "ssim" not in terms and "adversarial" not in terms and "l1" in terms
    assert_total_is_weighted_sum(loss, terms)


def test_face_term_needs_head_boxes(weight_files):
    loss = GeneratorLoss(face_path=weight_files[1])
    batch = random_batch()
    del batch["head_boxes"]
    with pytest.raises(ValueError, match="head_boxes"):
        loss(**batch)


def test_bad_weights_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match="'mask'"):
        GeneratorLoss(mask_weight=-1.0)
    with pytest.raises(ValueError, match="'face'"):
        GeneratorLoss(face_weight=float("nan"))
    with pytest.raises(FileNotFoundError, match="vgg_path="):
        GeneratorLoss(vgg_path=tmp_path / "vgg19-dcbb9e9d.pth")
    with pytest.raises(FileNotFoundError, match="face_path="):
        GeneratorLoss(face_path=tmp_path / "sphere20a_20171020.pth")


def test_discriminator_loss_closed_form():
    loss = DiscriminatorLoss(adversarial_weight=2.0)
    real = torch.tensor([[[[1.0, 0.0]]]])  # (0 + 1) / 2
    fake = torch.tensor([[[[-1.0, 1.0]]]])  # (0 + 4) / 2
    terms = loss(real_logits=real, fake_logits=fake)
    assert set(terms) == {"real", "fake", "total"}
    assert terms["real"].item() == pytest.approx(0.5) and terms["fake"].item() == pytest.approx(2.0)
    assert terms["total"].item() == pytest.approx(2.0 * 0.5 + 2.0 * 2.0)
    perfect = loss(real_logits=torch.ones(2, 1, 3, 3), fake_logits=[-torch.ones(2, 1, 3, 3)] * 2)
    assert perfect["total"].item() == 0.0
