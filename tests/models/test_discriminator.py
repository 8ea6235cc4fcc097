"""PatchGAN discriminator: the original layout, logit-map sizes, gradients."""

import pytest
import torch

from lwgan.models import PatchDiscriminator


def original_layout(input_channels=6, ndf=64):
    """Key -> shape of the original PatchDiscriminator(input_nc=6, ndf=64, n_layers=4) of the released code."""
    convs = {0: (input_channels, ndf), 2: (ndf, 2 * ndf), 5: (2 * ndf, 4 * ndf), 8: (4 * ndf, 8 * ndf), 11: (8 * ndf, 8 * ndf), 14: (8 * ndf, 1)}
    layout = {}
    for index, (cin, cout) in convs.items():
        layout[f"model.{index}.weight"] = (cout, cin, 4, 4)
        layout[f"model.{index}.bias"] = (cout,)
    return layout


def test_original_state_dict_has_the_reference_keys_and_shapes():
    with torch.device("meta"):
        model = PatchDiscriminator()
    assert {key: tuple(value.shape) for key, value in model.state_dict().items()} == original_layout()


def test_256_input_gives_14x14_logits_without_sigmoid():
    torch.manual_seed(0)
    model = PatchDiscriminator()
    with torch.no_grad():
        logits = model(torch.rand(1, 6, 256, 256) * 2 - 1)
    assert logits.shape == (1, 1, 14, 14)
    assert isinstance(model.model[-1], torch.nn.Conv2d)  # raw logits (least-squares GAN)
    assert model.output_size(256) == 14


@pytest.mark.parametrize("size", [48, 64, 96, 100])
def test_output_size_matches_the_forward(size):
    model = PatchDiscriminator.preset("small")
    with torch.no_grad():
        logits = model(torch.zeros(2, 6, size, size + 16))
    assert logits.shape == (2, 1, model.output_size(size), model.output_size(size + 16))


def test_too_small_or_wrong_channels_raise_with_the_shape():
    model = PatchDiscriminator.preset("small")
    with pytest.raises(ValueError, match=r"at least 48 x 48.*\(1, 6, 32, 32\)"):
        model(torch.zeros(1, 6, 32, 32))
    with pytest.raises(ValueError, match=r"inputs must have shape \(\*, 6, \*, \*\), got \(1, 3, 64, 64\)"):
        model(torch.zeros(1, 3, 64, 64))


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = PatchDiscriminator.preset("small")
    model(torch.rand(2, 6, 64, 64) * 2 - 1).square().mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_parameter_counts_are_those_of_the_original_layout():
    # Six 4x4 convolutions with biases, widths 1, 2, 4, 8, 8 ndf, then one logit (the original's NLayerDiscriminator, n_layers=4).
    def expected(ndf):
        widths = [6, ndf, 2 * ndf, 4 * ndf, 8 * ndf, 8 * ndf, 1]
        return sum(16 * inputs * outputs + outputs for inputs, outputs in zip(widths, widths[1:]))

    assert expected(64) == 6_962_625
    for preset, ndf in (("small", 16), ("original", 64)):
        with torch.device("meta"):
            count = sum(parameter.numel() for parameter in PatchDiscriminator.preset(preset).parameters())
        assert count == expected(ndf), preset