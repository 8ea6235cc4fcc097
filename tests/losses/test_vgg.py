"""VGG19 features: torchvision-format file round trip, loader errors, closed-form slice outputs, perceptual loss."""

import logging

import pytest
import torch

from lwgan.losses.terms import perceptual_loss
from lwgan.losses.vgg import (
    VGG19_CONFIG_KEY,
    VGG19_URL,
    VGG19Features,
    load_vgg19_features,
)

# torchvision's vgg19 `features` convs: (index, out channels, in channels), written out from the
# architecture (configuration "E": 2x64, M, 2x128, M, 4x256, M, 4x512, M, 4x512, M).
TORCHVISION_CONVS = (
    (0, 64, 3), (2, 64, 64), (5, 128, 64), (7, 128, 128),
    (10, 256, 128), (12, 256, 256), (14, 256, 256), (16, 256, 256),
    (19, 512, 256), (21, 512, 512), (23, 512, 512), (25, 512, 512),
    (28, 512, 512), (30, 512, 512), (32, 512, 512), (34, 512, 512),
)
# The classifier is ignored by the loader whatever it holds: small stand-ins keep the file small
# (the real shapes are (4096, 25088), (4096, 4096), (1000, 4096)).
CLASSIFIER_STAND_INS = {
    "classifier.0.weight": (8, 16), "classifier.0.bias": (8,), "classifier.3.weight": (8, 8),
    "classifier.3.bias": (8,), "classifier.6.weight": (4, 8), "classifier.6.bias": (4,),
}


def torchvision_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for index, out_channels, in_channels in TORCHVISION_CONVS:
        state[f"features.{index}.weight"] = torch.randn(out_channels, in_channels, 3, 3, generator=generator) * 0.05
        state[f"features.{index}.bias"] = torch.randn(out_channels, generator=generator) * 0.05
    for key, shape in CLASSIFIER_STAND_INS.items():
        state[key] = torch.randn(shape, generator=generator)
    return state


@pytest.fixture(scope="module")
def torchvision_file(tmp_path_factory):
    state = torchvision_state_dict()
    path = tmp_path_factory.mktemp("vgg") / "vgg19-dcbb9e9d.pth"
    torch.save(state, path)
    return path, state


def test_loads_torchvision_layout(torchvision_file, caplog):
    path, state = torchvision_file
    with caplog.at_level(logging.INFO, logger="lwgan.losses.vgg"):
        model = load_vgg19_features(path)
    loaded = model.state_dict()
    used = {key for key in state if key.startswith("features.") and int(key.split(".")[1]) < 30}
    assert set(loaded) == used  # nothing missing, nothing unexpected
    for key in used:
        assert torch.equal(loaded[key], state[key]), key
    assert "features.34.weight" in caplog.text  # the convs after relu5_1 are reported as unused


def test_frozen_and_always_eval(torchvision_file):
    model = load_vgg19_features(torchvision_file[0])
    assert not any(parameter.requires_grad for parameter in model.parameters())
    model.train()
    assert not model.training and not model.features[0].training


def test_wrong_shape_names_file_key_and_shapes(tmp_path, torchvision_file):
    broken = dict(torchvision_file[1])
    broken["features.21.weight"] = torch.zeros(512, 512, 1, 1)
    path = tmp_path / "wrong.pth"
    torch.save(broken, path)
    with pytest.raises(ValueError) as error:
        load_vgg19_features(path)
    message = str(error.value)
    assert str(path) in message and "features.21.weight" in message
    assert "(512, 512, 1, 1)" in message and "(512, 512, 3, 3)" in message


def test_wrong_shape_after_relu5_1_is_still_an_error(tmp_path, torchvision_file):
    broken = dict(torchvision_file[1])
    broken["features.34.bias"] = torch.zeros(3)
    path = tmp_path / "wrong_tail.pth"
    torch.save(broken, path)
    with pytest.raises(ValueError, match="features.34.bias"):
        load_vgg19_features(path)


def test_missing_and_unexpected_keys_are_named(tmp_path, torchvision_file):
    broken = {key: value for key, value in torchvision_file[1].items() if key != "features.5.bias"}
    broken["features.36.weight"] = torch.zeros(1)
    path = tmp_path / "missing.pth"
    torch.save(broken, path)
    with pytest.raises(ValueError) as error:
        load_vgg19_features(path)
    message = str(error.value)
    assert "missing keys (1): features.5.bias" in message and "unexpected keys (1): features.36.weight" in message


def test_missing_file_says_where_to_get_it(tmp_path):
    path = tmp_path / "nowhere" / "vgg19-dcbb9e9d.pth"
    with pytest.raises(FileNotFoundError) as error:
        load_vgg19_features(path)
    message = str(error.value)
    assert str(path) in message and VGG19_URL in message and "iPERCore" in message
    assert f"{VGG19_CONFIG_KEY}=" in message


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError, match="expected a state dict"):
        load_vgg19_features(path)


def pass_through_channel_zero(model: VGG19Features) -> VGG19Features:
    """First conv: output channel 0 = input channel 0 (centre tap 1), every other output 0."""
    first = model.features[0]
    first.weight.zero_()
    first.weight[0, 0, 1, 1] = 1.0
    first.bias.zero_()
    return model


def test_first_slice_is_relu_of_the_input_channel():
    model = pass_through_channel_zero(VGG19Features())
    images = torch.randn(2, 3, 20, 24)
    relu1_1 = model(images)[0]
    assert relu1_1.shape == (2, 64, 20, 24)
    assert torch.equal(relu1_1[:, 0], images[:, 0].clamp(min=0))
    assert torch.count_nonzero(relu1_1[:, 1:]) == 0


def test_imagenet_normalization_closed_form():
    model = pass_through_channel_zero(VGG19Features(imagenet_normalization=True))
    images = torch.rand(1, 3, 16, 16) * 2 - 1
    expected = (((images[:, 0] + 1) / 2 - 0.485) / 0.229).clamp(min=0)
    assert torch.allclose(model(images)[0][:, 0], expected, atol=1e-6)


def test_slice_shapes_and_size_check():
    outputs = VGG19Features()(torch.zeros(1, 3, 32, 48))
    assert [tuple(output.shape) for output in outputs] == [
        (1, 64, 32, 48), (1, 128, 16, 24), (1, 256, 8, 12), (1, 512, 4, 6), (1, 512, 2, 3)
    ]
    with pytest.raises(ValueError, match=r"got \(1, 3, 8, 32\)"):
        VGG19Features()(torch.zeros(1, 3, 8, 32))
    with pytest.raises(ValueError, match=r"got \(1, 1, 32, 32\)"):
        VGG19Features()(torch.zeros(1, 1, 32, 32))


def test_perceptual_loss_zero_positive_and_differentiable(torchvision_file):
    model = load_vgg19_features(torchvision_file[0])
    target = torch.rand(2, 3, 32, 32) * 2 - 1
    assert perceptual_loss(model, target.clone(), target).item() == 0.0
    generated = (target + 0.3 * torch.randn_like(target)).requires_grad_(True)
    loss = perceptual_loss(model, generated, target)
    assert loss.item() > 0
    loss.backward()
    assert generated.grad is not None and generated.grad.abs().sum() > 0
    assert all(parameter.grad is None for parameter in model.parameters())
