"""Generators: the original state-dict layouts, output shapes and ranges, closed-form checks of the warping blocks."""

import math

import cv2
import numpy as np
import pytest
import torch
from original_layouts import attention_original_layout, iccv_original_layout

from lwgan.body.camera import OUTSIDE
from lwgan.flow.inputs import prefilled
from lwgan.models import (
    AttentionalLiquidWarpingGenerator,
    LiquidWarpingGenerator,
    SourceFeatures,
    check_frame_size,
    check_image_size,
)

SIZE = 32


def shapes_of(model):
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def meta_model(cls, preset):
    with torch.device("meta"):
        return cls.preset(preset)


# --- helpers ---

def pixel_centres(height, width):
    """(1, H, W, 2) identity grid: the NDC centre of every pixel."""
    y = (2 * torch.arange(height) + 1) / height - 1
    x = (2 * torch.arange(width) + 1) / width - 1
    return torch.stack(torch.meshgrid(x, y, indexing="xy"), dim=-1).unsqueeze(0)


def random_grid(*leading, size=SIZE, outside_fraction=0.3, seed=0):
    """(*leading, H, W, 2) random positions in the image, OUTSIDE at a random fraction of pixels."""
    generator = torch.Generator().manual_seed(seed)
    grid = torch.rand(*leading, size, size, 2, generator=generator) * 1.8 - 0.9
    outside = torch.rand(*leading, size, size, 1, generator=generator) < outside_fraction
    return torch.where(outside, torch.full_like(grid, OUTSIDE), grid)


def background_input(batch, size, generator):
    """(B, 4, H, W) [image * known, known]: an image in [-1, 1] with a rectangular hole (known = 0)."""
    known = torch.ones(batch, 1, size, size)
    known[..., size // 4 : 3 * size // 4, size // 3 : 2 * size // 3] = 0
    image = torch.rand(batch, 3, size, size, generator=generator) * 2 - 1
    return torch.cat([image * known, known], dim=1)


def iccv_inputs(batch=2, size=SIZE, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (
        background_input(batch, size, generator),
        torch.rand(batch, 6, size, size, generator=generator) * 2 - 1,
        torch.rand(batch, 6, size, size, generator=generator) * 2 - 1,
        random_grid(batch, size=size, seed=seed),
    )


def attention_inputs(batch=2, num_sources=2, size=SIZE, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (
        background_input(batch, size, generator),
        torch.rand(batch, num_sources, 6, size, size, generator=generator) * 2 - 1,
        torch.rand(batch, 6, size, size, generator=generator) * 2 - 1,
        random_grid(batch, num_sources, size=size, seed=seed),
    )


@pytest.fixture(scope="module")
def iccv_model():
    """The original's painting streams (refine=False): these tests check the fusion itself."""
    torch.manual_seed(0)
    return LiquidWarpingGenerator.preset("small", refine=False).eval()


@pytest.fixture(scope="module")
def attention_model():
    torch.manual_seed(0)
    return AttentionalLiquidWarpingGenerator.preset("small").eval()


def check_outputs(output, batch, size, source_shape):
    assert output.image.shape == output.colour.shape == output.background.shape == (batch, 3, size, size)
    assert output.background_mask.shape == (batch, 1, size, size)
    assert output.source_reconstruction.shape == output.source_colour.shape == (*source_shape, 3, size, size)
    assert output.source_background_mask.shape == (*source_shape, 1, size, size)
    for name in ("image", "colour", "background", "source_reconstruction", "source_colour"):
        value = getattr(output, name)
        assert torch.isfinite(value).all() and value.min() >= -1 and value.max() <= 1, name
    for name in ("background_mask", "source_background_mask"):
        value = getattr(output, name)
        assert value.min() >= 0 and value.max() <= 1, name
    # Composition: M = 1 is background.
    assert torch.equal(output.image, output.background_mask * output.background + (1 - output.background_mask) * output.colour)
    background = output.background if output.source_colour.dim() == 4 else output.background.unsqueeze(1)
    expected_source = output.source_background_mask * background + (1 - output.source_background_mask) * output.source_colour
    assert torch.equal(output.source_reconstruction, expected_source)


# --- ICCV'19 generator ---

def test_iccv_original_state_dict_has_the_reference_keys_and_shapes():
    model = meta_model(LiquidWarpingGenerator, "original")
    assert shapes_of(model) == iccv_original_layout()
    assert "tsf_model.attetion_reg.0.weight" in model.state_dict()


def test_iccv_layout_follows_width_and_depth():
    with torch.device("meta"):
        model = LiquidWarpingGenerator(conv_dim=8, repeat_num=3, source_channels=5)
    assert shapes_of(model) == iccv_original_layout(conv_dim=8, repeat_num=3, source_channels=5)


def test_iccv_outputs_shapes_ranges_and_composition(iccv_model):
    with torch.no_grad():
        output = iccv_model(*iccv_inputs())
    check_outputs(output, batch=2, size=SIZE, source_shape=(2,))


def test_iccv_initialisation_is_normal_002():
    torch.manual_seed(0)
    weight = LiquidWarpingGenerator.preset("small").src_model.resnets[0].main[0].weight
    assert abs(weight.std().item() - 0.02) < 0.002 and abs(weight.mean().item()) < 0.002


def test_iccv_all_outside_flow_adds_nothing(iccv_model):
    background_input, source_input, transfer_input, grid = iccv_inputs()
    with torch.no_grad():
        background = iccv_model.inpaint_background(background_input)
        features = iccv_model.encode_source(source_input)
        zeros = SourceFeatures(tuple(map(torch.zeros_like, features.encoder)), tuple(map(torch.zeros_like, features.residual)))
        outside = torch.full_like(grid, OUTSIDE)
        warped_nothing = iccv_model.transfer(features, transfer_input, outside, background)
        no_source = iccv_model.transfer(zeros, transfer_input, outside, background)
        with_flow = iccv_model.transfer(features, transfer_input, grid, background)
    assert torch.equal(warped_nothing.image, no_source.image)
    assert (with_flow.image - no_source.image).abs().max() > 1e-3  # the check can fail: a real flow does add


def direct_fusion(model, features, transfer_input, transform):
    """The transfer stream with X_t + transform(X_s) at levels 1..3 and after every residual block (no warp)."""
    stream = model.tsf_model
    x = stream.encoders[0](transfer_input)
    encoder = [x]
    for level in range(1, 4):
        x = stream.encoders[level](x) + transform(features.encoder[level])
        encoder.append(x)
    for block, source in zip(stream.resnets, features.residual):
        x = block(x) + transform(source)
    return stream.regress(stream.decode(x, encoder))


@pytest.mark.parametrize("flow", ["identity", "mirror"])
def test_iccv_identity_and_mirror_flows_fuse_source_features_in_place(iccv_model, flow):
    """Identity flow: warp is the identity at every level; mirrored flow (x -> -x): warp flips the features."""
    _, source_input, transfer_input, _ = iccv_inputs()
    grid = pixel_centres(SIZE, SIZE).expand(2, -1, -1, -1).clone()
    transform = (lambda f: f) if flow == "identity" else (lambda f: torch.flip(f, dims=[-1]))
    if flow == "mirror":
        grid[..., 0] = -grid[..., 0]
    background = torch.zeros(2, 3, SIZE, SIZE)
    with torch.no_grad():
        features = iccv_model.encode_source(source_input)
        result = iccv_model.transfer(features, transfer_input, grid, background)
        colour, mask = direct_fusion(iccv_model, features, transfer_input, transform)
        wrong_colour, _ = direct_fusion(iccv_model, features, transfer_input, lambda f: torch.flip(transform(f), dims=[-2]))
    assert torch.allclose(result.colour, colour, atol=1e-5)
    assert torch.allclose(result.background_mask, mask, atol=1e-5)
    assert (result.colour - wrong_colour).abs().max() > 1e-3


def test_iccv_identical_inputs_reconstruct_like_the_source_stream():
    """With the transfer stream a copy of the source stream, zero source features and identical inputs,
    the transfer output equals the source reconstruction (same network, same input, no fusion)."""
    torch.manual_seed(1)
    model = LiquidWarpingGenerator.preset("small", refine=False).eval()
    model.tsf_model.load_state_dict(model.src_model.state_dict())
    _, source_input, _, grid = iccv_inputs()
    background = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    with torch.no_grad():
        features = model.encode_source(source_input)
        source = model.reconstruct_source(features, background)
        zeros = SourceFeatures(tuple(map(torch.zeros_like, features.encoder)), tuple(map(torch.zeros_like, features.residual)))
        target = model.transfer(zeros, source_input, grid, background)
    assert torch.allclose(target.image, source.image, atol=1e-6)


def test_iccv_one_encoded_source_serves_several_targets(iccv_model):
    background_input, source_input, transfer_input, grid = iccv_inputs(batch=3, seed=2)
    with torch.no_grad():
        background = iccv_model.inpaint_background(background_input[:1])
        features = iccv_model.encode_source(source_input[:1])
        together = iccv_model.transfer(features, transfer_input, grid, background)
        for target in range(3):
            alone = iccv_model.transfer(features, transfer_input[target:target + 1], grid[target:target + 1], background)
            assert torch.allclose(together.image[target:target + 1], alone.image, atol=1e-6)


@pytest.mark.parametrize("refine", [False, True])
@pytest.mark.parametrize("model_class", [LiquidWarpingGenerator, AttentionalLiquidWarpingGenerator])
def test_gradients_reach_every_parameter(model_class, refine):
    """With refine the zeroed heads pass no gradient back before their first update: one SGD step is taken first."""
    torch.manual_seed(0)
    model = model_class.preset("small", refine=refine)
    inputs = iccv_inputs() if model_class is LiquidWarpingGenerator else attention_inputs(num_sources=2)
    for _ in range(2 if refine else 1):
        model.zero_grad()
        output = model(*inputs)
        loss = sum(value.square().mean() for value in vars(output).values())
        loss.backward()
        with torch.no_grad():
            for parameter in model.parameters():
                parameter -= 0.1 * parameter.grad
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_iccv_rejects_bad_inputs(iccv_model):
    background_input, source_input, transfer_input, grid = iccv_inputs()
    with pytest.raises(ValueError, match=r"source_input must have shape \(\*, 6, \*, \*\), got \(2, 5, 32, 32\)"):
        iccv_model(background_input, source_input[:, :5], transfer_input, grid)
    with pytest.raises(ValueError, match="divisible by 8"):
        iccv_model(background_input[..., :28], source_input, transfer_input, grid)
    with pytest.raises(ValueError, match=r"grid must have shape \(2, 32, 32, 2\)"):
        iccv_model(background_input, source_input, transfer_input, grid[:, :16])


# --- TPAMI'21 multi-source generator ---

def test_attention_original_state_dict_has_the_reference_keys_and_shapes():
    model = meta_model(AttentionalLiquidWarpingGenerator, "original")
    assert shapes_of(model) == attention_original_layout()


def test_attention_layout_follows_width_and_depth():
    with torch.device("meta"):
        model = AttentionalLiquidWarpingGenerator(source_filters=(8, 16, 24, 32), transfer_filters=(8, 16, 24, 32), res_blocks=2,
                                                  background_filters=(8, 16, 32), background_res_blocks=1, spade_hidden=12)
    assert shapes_of(model) == attention_original_layout(filters=(8, 16, 24, 32), res_blocks=2, background_filters=(8, 16, 32),
                                                         background_res_blocks=1, spade_hidden=12)


def test_attention_outputs_shapes_ranges_and_composition(attention_model):
    with torch.no_grad():
        output = attention_model(*attention_inputs(batch=2, num_sources=3))
    check_outputs(output, batch=2, size=SIZE, source_shape=(2, 3))


@pytest.mark.parametrize("mask_unseen_sources", [True, False])
def test_attention_two_identical_sources_equal_one(mask_unseen_sources):
    """Equal keys give equal weights 1/2, and averaging two equal values gives the value: ns = 2 copies == ns = 1."""
    torch.manual_seed(0)
    model = AttentionalLiquidWarpingGenerator.preset("small", mask_unseen_sources=mask_unseen_sources).eval()
    background_input, source_input, transfer_input, grids = attention_inputs(num_sources=1)
    with torch.no_grad():
        one = model(background_input, source_input, transfer_input, grids)
        two = model(background_input, source_input.repeat(1, 2, 1, 1, 1), transfer_input, grids.repeat(1, 2, 1, 1, 1))
    assert torch.allclose(one.image, two.image, atol=1e-6)
    assert torch.allclose(one.background_mask, two.background_mask, atol=1e-6)


def test_attention_source_order_does_not_matter(attention_model):
    background_input, source_input, transfer_input, grids = attention_inputs(num_sources=3, seed=3)
    order = torch.tensor([2, 0, 1])
    with torch.no_grad():
        output = attention_model(background_input, source_input, transfer_input, grids)
        permuted = attention_model(background_input, source_input[:, order], transfer_input, grids[:, order])
    assert torch.allclose(output.image, permuted.image, atol=1e-6)
    assert torch.allclose(permuted.source_colour, output.source_colour[:, order], atol=1e-6)


def test_attention_ignores_a_source_that_sees_nothing_when_masked(attention_model):
    background_input, source_input, transfer_input, grids = attention_inputs(num_sources=2, seed=4)
    grids[:, 1] = OUTSIDE
    with torch.no_grad():
        alone = attention_model(background_input, source_input[:, :1], transfer_input, grids[:, :1])
        with_blind = attention_model(background_input, source_input, transfer_input, grids)
    assert torch.allclose(alone.image, with_blind.image, atol=1e-6)


def test_attention_block_without_mask_attends_to_unseen_sources_like_the_original():
    """Unmasked (the original), a source that sees nothing still takes part with warped features 0."""
    torch.manual_seed(0)
    block = AttentionalLiquidWarpingGenerator.preset("small", mask_unseen_sources=False).enc_attlwbs[0]
    for layer in block.modules():  # PyTorch's default init, with non-zero biases
        if isinstance(layer, torch.nn.Conv2d):
            layer.reset_parameters()
    target, sources = torch.randn(1, 16, 8, 8), torch.randn(1, 2, 16, 8, 8)
    grids = pixel_centres(8, 8).unsqueeze(1).repeat(1, 2, 1, 1, 1)
    grids[:, 1] = OUTSIDE
    with torch.no_grad():
        unmasked = block(target, sources, grids)
        block.mask_unseen_sources = True
        masked = block(target, sources, grids)
        alone = block(target, sources[:, :1], grids[:, :1])
        zero_source = torch.cat([sources[:, :1], torch.zeros_like(sources[:, 1:])], dim=1)
        identity = pixel_centres(8, 8).unsqueeze(1).repeat(1, 2, 1, 1, 1)
        block.mask_unseen_sources = False
        attends_to_zeros = block(target, zero_source, identity)
    assert torch.allclose(masked, alone, atol=1e-6)
    assert torch.allclose(unmasked, attends_to_zeros, atol=1e-6)
    assert (unmasked - masked).abs().max() > 0.1


@pytest.mark.parametrize("mask_unseen_sources", [True, False])
def test_attention_pixels_no_source_sees_stay_finite(mask_unseen_sources):
    torch.manual_seed(0)
    model = AttentionalLiquidWarpingGenerator.preset("small", mask_unseen_sources=mask_unseen_sources)
    background_input, source_input, transfer_input, grids = attention_inputs(num_sources=2)
    grids[:, :, : SIZE // 2] = OUTSIDE  # the upper half is seen by no source
    output = model(background_input, source_input, transfer_input, grids)
    assert torch.isfinite(output.image).all()
    output.image.mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is None or torch.isfinite(parameter.grad).all(), name


def test_attention_block_weights_match_a_direct_softmax():
    """One block against the formula: x = sum_n softmax_n(<fk(w_n), fq(t)> / sqrt(C)) fv(w_n), out = SPADE(t, x)."""
    torch.manual_seed(0)
    block = AttentionalLiquidWarpingGenerator.preset("small", mask_unseen_sources=False).enc_attlwbs[0]
    target = torch.randn(1, 16, 8, 8)
    sources = torch.randn(1, 3, 16, 8, 8)
    grids = pixel_centres(8, 8).unsqueeze(1).repeat(1, 3, 1, 1, 1)  # identity: the warp keeps each source
    with torch.no_grad():
        result = block(target, sources, grids)
        query = block.fq(target)[0]
        keys = torch.stack([block.fk(sources[:, n])[0] for n in range(3)])
        values = torch.stack([block.fv(sources[:, n])[0] for n in range(3)])
        weights = torch.softmax((keys * query).sum(1) / math.sqrt(16), dim=0)
        attended = (weights.unsqueeze(1) * values).sum(0, keepdim=True)
        expected = block.spade(target, attended)
    assert torch.allclose(result, expected, atol=1e-5)


def test_attention_one_encoded_source_set_serves_several_targets(attention_model):
    background_input, source_input, transfer_input, grids = attention_inputs(batch=3, num_sources=2, seed=5)
    grids = grids[:1].expand(3, -1, -1, -1, -1).clone()
    grids[1:, 0] = torch.flip(grids[1:, 0], dims=[-2])
    with torch.no_grad():
        background = attention_model.inpaint_background(background_input[:1])
        features = attention_model.encode_source(source_input[:1])
        together = attention_model.transfer(features, transfer_input, grids, background)
        for target in range(3):
            alone = attention_model.transfer(features, transfer_input[target:target + 1], grids[target:target + 1], background)
            assert torch.allclose(together.image[target:target + 1], alone.image, atol=1e-6)


def test_attention_rejects_bad_inputs(attention_model):
    background_input, source_input, transfer_input, grids = attention_inputs(num_sources=2)
    with pytest.raises(ValueError, match=r"grids must have shape \(2, 2, 32, 32, 2\), got \(2, 3, 32, 32, 2\)"):
        attention_model(background_input, source_input, transfer_input, grids[:, [0, 1, 1]])
    with pytest.raises(ValueError, match=r"source_input must have shape"):
        attention_model(background_input, source_input[:, 0], transfer_input, grids)


def test_parameter_counts_of_the_presets(capsys):
    counts = {}
    for cls in (LiquidWarpingGenerator, AttentionalLiquidWarpingGenerator):
        for preset in ("small", "original"):
            counts[f"{cls.__name__}/{preset}"] = sum(p.numel() for p in meta_model(cls, preset).parameters())
    assert counts["LiquidWarpingGenerator/original"] == sum(math.prod(s) for s in iccv_original_layout().values())
    assert counts["AttentionalLiquidWarpingGenerator/original"] == sum(math.prod(s) for s in attention_original_layout().values())
    with capsys.disabled():
        print("\n" + "\n".join(f"{name}: {count:,} parameters" for name, count in counts.items()))


@pytest.mark.parametrize("model_class", [LiquidWarpingGenerator, AttentionalLiquidWarpingGenerator])
def test_the_background_stream_fills_only_the_hole(model_class):
    torch.manual_seed(0)
    # Painting networks (refine=False): an untrained refining one adds no correction, so both would agree.
    keeping, repainting = model_class.preset("small", refine=False), model_class.preset("small", refine=False, keep_known_background=False)
    repainting.load_state_dict(keeping.state_dict())
    inputs = background_input(2, SIZE, torch.Generator().manual_seed(7))
    with torch.no_grad():
        kept, repainted = keeping.inpaint_background(inputs), repainting.inpaint_background(inputs)
    known = inputs[:, 3:4].bool().expand(-1, 3, -1, -1)
    assert torch.equal(kept[known], inputs[:, :3][known])  # known pixels pass through exactly
    assert torch.equal(kept[~known], repainted[~known])  # the hole is the network's
    assert not torch.equal(kept, repainted)


def telea_fill(images, known):
    """OpenCV's Telea inpainting (radius 5) of the unknown pixels, image by image: (B, 3, H, W) in [-1, 1], 8-bit as OpenCV works."""
    filled = []
    for image, mask in zip(images, known):
        pixels = ((image.permute(1, 2, 0).numpy() + 1.0) * 127.5 + 0.5).astype(np.uint8)
        hole = (~mask).numpy().astype(np.uint8) * 255
        filled.append(torch.from_numpy(cv2.inpaint(pixels, hole, 5.0, cv2.INPAINT_TELEA)).permute(2, 0, 1).float() / 127.5 - 1.0)
    return torch.stack(filled)


@pytest.mark.parametrize("model_class", [LiquidWarpingGenerator, AttentionalLiquidWarpingGenerator])
def test_untrained_refining_streams_render_the_warped_image_over_the_inpainted_hole(model_class):
    """An untrained refining generator is texture warping: its zeroed heads add no correction (tanh(0) = 0), so
    the colour is the warped image, the attention mask is the target mesh's background mask (the condition's
    channel 2), and the background is the Telea inpainting of the hole."""
    torch.manual_seed(3)
    model = model_class.preset("small").eval()
    hole_input = background_input(2, SIZE, torch.Generator().manual_seed(4))
    known = hole_input[:, 3] > 0.5
    with torch.no_grad():
        background = model.inpaint_background(prefilled(hole_input))  # the hole inpainted while the inputs are built
        torch.testing.assert_close(background, torch.where(known[:, None], hole_input[:, :3], telea_fill(hole_input[:, :3], known)),
                                   atol=1e-6, rtol=0)
        warped = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
        off_mesh = (torch.rand(2, 1, SIZE, SIZE) > 0.5).float()
        transfer_input = torch.cat([warped, torch.rand(2, 2, SIZE, SIZE) * (1 - off_mesh), off_mesh], dim=1)
        if model_class is LiquidWarpingGenerator:
            _, source_input, _, grid = iccv_inputs()
            target = model.transfer(model.encode_source(source_input), transfer_input, grid, background)
        else:
            source_input = torch.rand(2, 2, 6, SIZE, SIZE) * 2 - 1
            grids = torch.rand(2, 2, SIZE, SIZE, 2) * 2 - 1
            target = model.transfer(model.encode_source(source_input), transfer_input, grids, background)
    torch.testing.assert_close(target.colour, warped, atol=1e-6, rtol=0)
    assert (target.background_mask[off_mesh.bool()] > 0.999).all() and (target.background_mask[~off_mesh.bool()] < 0.001).all()


def test_image_size_is_checked_against_the_generators_stride_levels():
    with torch.device("meta"):
        generator = LiquidWarpingGenerator.preset("small")  # 3 stride-2 levels: multiples of 8
    check_image_size(generator, 64, "g")
    with pytest.raises(ValueError, match=r"image_size=60 is not a multiple of 8, which g needs \(its 3 stride-2 levels\): try image_size=56 or 64"):
        check_image_size(generator, 60, "g")


def test_frame_sizes_of_the_synthesis_commands_are_checked():
    check_frame_size(64)
    check_frame_size(272)
    with pytest.raises(ValueError, match=r"image_size=72 is not a multiple of 16, which the frames of imitate, swap and view need: try image_size=64 or 80"):
        check_frame_size(72)
    with pytest.raises(ValueError, match=r"image_size=48 is below 64"):
        check_frame_size(48)
