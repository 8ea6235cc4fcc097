"""HMR: original state-dict layout round trip, the missing-file help, forward closed forms, crop camera -> frame camera (key, shape and unsafe-file errors: tests/test_state_dicts.py)."""

import logging
import math

import numpy as np
import pytest
import torch
from torch import nn

from lwgan.body.camera import project
from lwgan.recovery.hmr import HMR, HmrOutput
from lwgan.recovery.hmr_loader import (
    CROP_SCALE,
    HMR_CONFIG_KEY,
    crop_camera_to_frame,
    hmr_initial_fit,
    load_hmr,
    person_square,
)
from lwgan.recovery.observation import PersonObservation, SquareFrame


def original_layout() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the released hmr_tf2pt.pth without its smpl.* entries, written out from the architecture."""
    shapes: dict[str, tuple[int, ...]] = {"resnet.conv1.weight": (64, 3, 7, 7), "resnet.conv1.bias": (64,)}

    def batch_norm(prefix: str, channels: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (channels,)

    in_channels = 64
    for layer, (width, units) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)], start=1):
        for unit in range(units):
            prefix = f"resnet.layer{layer}.{unit}"
            batch_norm(f"{prefix}.bn1", in_channels)
            shapes[f"{prefix}.conv1.weight"] = (width, in_channels, 1, 1)
            batch_norm(f"{prefix}.bn2", width)
            shapes[f"{prefix}.conv2.weight"] = (width, width, 3, 3)
            batch_norm(f"{prefix}.bn3", width)
            shapes[f"{prefix}.conv3.weight"] = (4 * width, width, 1, 1)
            shapes[f"{prefix}.conv3.bias"] = (4 * width,)
            if unit == 0:
                shapes[f"{prefix}.shortcut.0.weight"] = (4 * width, in_channels, 1, 1)
                shapes[f"{prefix}.shortcut.0.bias"] = (4 * width,)
            in_channels = 4 * width
    batch_norm("resnet.post_bn", 2048)
    shapes["regressor.mean_theta"] = (85,)
    shapes["regressor.fc_blocks.fc1.weight"] = (1024, 2048 + 85)
    shapes["regressor.fc_blocks.fc1.bias"] = (1024,)
    shapes["regressor.fc_blocks.fc2.weight"] = (1024, 1024)
    shapes["regressor.fc_blocks.fc2.bias"] = (1024,)
    shapes["regressor.fc_blocks.fc3.weight"] = (85, 1024)
    shapes["regressor.fc_blocks.fc3.bias"] = (85,)
    return shapes


SMPL_EXTRAS = {  # the original file's SMPL buffers (small stand-ins: they are ignored whatever their shape)
    "smpl.v_template": (6890, 3), "smpl.shapedirs": (10, 30), "smpl.J_regressor": (6890, 24),
    "smpl.posedirs": (207, 30), "smpl.weights": (6890, 24), "smpl.joint_regressor": (6890, 19),
}


def random_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in original_layout().items():
        value = torch.randn(shape, generator=generator) * 0.05
        if key.endswith("running_var"):
            value = value.abs() + 0.5
        state[key] = value
    return state


@pytest.fixture(scope="module")
def original_file(tmp_path_factory):
    """(path, state dict) of a random checkpoint in the original layout (no num_batches_tracked, no smpl)."""
    state = random_state_dict()
    path = tmp_path_factory.mktemp("hmr") / "hmr_tf2pt.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture(scope="module")
def loaded_model(original_file):
    return load_hmr(original_file[0])


def test_model_keys_are_the_original_keys():
    model_keys = {key for key in HMR().state_dict() if not key.endswith(".num_batches_tracked")}
    layout = original_layout()
    assert model_keys == set(layout)
    for key, value in HMR().state_dict().items():
        if key in layout:
            assert tuple(value.shape) == layout[key], key


def test_load_original_layout(original_file, loaded_model):
    _, state = original_file
    loaded = loaded_model.state_dict()
    assert not loaded_model.training
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    assert all(int(value) == 0 for key, value in loaded.items() if key.endswith("num_batches_tracked"))


def test_load_with_data_parallel_prefix_smpl_keys_and_counters(tmp_path, original_file, caplog):
    _, state = original_file
    wrapped = {f"module.{key}": value for key, value in state.items()}
    for key, shape in SMPL_EXTRAS.items():
        wrapped[f"module.{key}"] = torch.zeros(shape)
    counter_keys = [f"resnet.layer{layer}.0.bn1.num_batches_tracked" for layer in range(1, 5)]
    for key in counter_keys:
        wrapped[f"module.{key}"] = torch.tensor(7)
    path = tmp_path / "wrapped.pth"
    torch.save(wrapped, path)
    with caplog.at_level(logging.INFO, logger="lwgan.recovery.hmr_loader"):
        model = load_hmr(path)
    loaded = model.state_dict()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    assert all(int(loaded[key]) == 7 for key in counter_keys)
    assert "smpl.v_template" in caplog.text and "smpl.joint_regressor" in caplog.text


def test_missing_file_says_where_to_get_it(tmp_path):
    path = tmp_path / "nowhere" / "hmr_tf2pt.pth"
    with pytest.raises(FileNotFoundError) as error:
        load_hmr(path)
    message = str(error.value)
    assert str(path) in message and "pretrains.zip" in message and "impersonator" in message
    assert f"{HMR_CONFIG_KEY}=" in message and "non-commercial" in message


def test_forward_shapes(loaded_model):
    output = loaded_model(torch.rand(2, 3, 224, 224) * 2 - 1)
    assert isinstance(output, HmrOutput)
    assert output.theta.shape == (2, 85) and output.camera.shape == (2, 3)
    assert output.pose.shape == (2, 24, 3) and output.shape.shape == (2, 10)
    assert torch.equal(output.camera, output.theta[:, 0:3])
    assert torch.equal(output.pose.reshape(2, 72), output.theta[:, 3:75])
    assert torch.equal(output.shape, output.theta[:, 75:85])
    with pytest.raises(ValueError, match=r"got \(2, 3, 256, 256\)"):
        loaded_model(torch.zeros(2, 3, 256, 256))


def test_zero_updates_return_mean_theta():
    model = HMR().eval()
    for name in ("fc1", "fc2", "fc3"):
        layer = getattr(model.regressor.fc_blocks, name)
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
    mean_theta = torch.randn(85, generator=torch.Generator().manual_seed(3))
    model.regressor.mean_theta.copy_(mean_theta)
    with torch.inference_mode():
        output = model(torch.rand(2, 3, 224, 224) * 2 - 1)
    assert torch.equal(output.theta, mean_theta.expand(2, 85))


def test_fresh_mean_theta_is_upright():
    mean_theta = HMR().regressor.mean_theta
    assert mean_theta[0] == pytest.approx(0.9)
    assert torch.allclose(mean_theta[3:6], torch.tensor([math.pi, 0.0, 0.0]))


def test_feature_resolution(loaded_model):
    sizes = {}
    def record(name):
        return lambda module, inputs, output: sizes.__setitem__(name, tuple(output.shape))

    handles = [
        getattr(loaded_model.resnet, name).register_forward_hook(record(name))
        for name in ("layer1", "layer2", "layer3", "layer4", "post_bn")
    ]
    with torch.inference_mode():
        loaded_model(torch.zeros(1, 3, 224, 224))
    for handle in handles:
        handle.remove()
    assert sizes == {
        "layer1": (1, 256, 28, 28), "layer2": (1, 512, 14, 14), "layer3": (1, 1024, 7, 7),
        "layer4": (1, 2048, 7, 7), "post_bn": (1, 2048, 7, 7),
    }


def test_parameter_counts():
    model = HMR()
    layout = original_layout()
    expected_backbone = sum(
        math.prod(shape) for key, shape in layout.items()
        if key.startswith("resnet.") and not key.endswith(("running_mean", "running_var"))
    )
    backbone = sum(parameter.numel() for parameter in model.resnet.parameters())
    regressor = sum(parameter.numel() for parameter in model.regressor.parameters())
    assert backbone == expected_backbone == 23_519_360  # ~23.5M, the ResNet-50 v2 backbone
    assert regressor == 2133 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 85 + 85 == 3_321_941


def test_crop_camera_to_frame_lands_on_image_pixels():
    generator = np.random.default_rng(0)
    frame = SquareFrame.around((300, 200))  # (H, W): the frame pads 50 pixels left and right
    center, side = np.array([120.3, 140.7]), 180.0
    crop_camera = np.array([0.8, 0.1, -0.2])
    points = generator.normal(scale=0.5, size=(50, 3))
    crop_ndc = crop_camera[0] * (points[:, :2] + crop_camera[1:])
    expected_pixels = center + crop_ndc * side / 2.0  # crop NDC -> image pixels, the crop's definition
    frame_camera = crop_camera_to_frame(crop_camera, center, side, frame)
    frame_ndc = project(torch.from_numpy(points)[None], torch.from_numpy(frame_camera)[None])[0, :, :2].numpy()
    np.testing.assert_allclose(frame.ndc_to_pixels(frame_ndc), expected_pixels, atol=1e-9)
    batched = crop_camera_to_frame(np.stack([crop_camera, crop_camera * 2]), center, side, frame)
    np.testing.assert_allclose(batched[0], frame_camera)


class RecordingModel(nn.Module):
    """Stands in for HMR: records its input crop and returns a fixed θ."""

    def __init__(self, theta: torch.Tensor) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))
        self.theta = theta
        self.crops = []

    def forward(self, images: torch.Tensor) -> HmrOutput:
        self.crops.append(images.clone())
        return HmrOutput.from_theta(self.theta.expand(images.shape[0], -1))


def observation_with_box(image_size, box) -> PersonObservation:
    return PersonObservation(
        image_size=image_size, keypoints=np.zeros((23, 3), np.float32), world_landmarks=None, mask=None,
        box=np.asarray(box, np.float32),
    )


def fixed_theta() -> torch.Tensor:
    theta = torch.zeros(1, 85)
    theta[0, :3] = torch.tensor([0.7, 0.05, 0.2])
    theta[0, 3] = math.pi
    theta[0, 75:] = torch.linspace(-1, 1, 10)
    return theta


def test_initial_fit_crops_around_the_box_and_converts_the_camera():
    height, width = 120, 160
    columns, rows = np.meshgrid(np.arange(width), np.arange(height))
    image = np.stack([columns, rows, np.full_like(columns, 77)], axis=-1).astype(np.uint8)
    observation = observation_with_box((height, width), [40, 30, 100, 90])
    theta = fixed_theta()
    model = RecordingModel(theta).train()
    fit = hmr_initial_fit(model, image, observation)
    assert model.training  # mode restored

    center, side = person_square(observation, (height, width))
    np.testing.assert_allclose(center, [70.0, 60.0])
    assert side == pytest.approx(60.0 * CROP_SCALE)
    crop = model.crops[0][0].double().numpy()
    crop_ndc = (2 * np.arange(224) + 1) / 224 - 1
    u = center[0] + crop_ndc * side / 2  # image x of each crop column
    v = center[1] + crop_ndc * side / 2
    # pixel j has value j at its centre j + 0.5: bilinear sampling of this ramp is exact, the border repeats
    expected_red = np.clip(u - 0.5, 0, width - 1)[None, :] / 127.5 - 1
    expected_green = np.clip(v - 0.5, 0, height - 1)[:, None] / 127.5 - 1
    np.testing.assert_allclose(crop[0], np.broadcast_to(expected_red, (224, 224)), atol=1e-5)
    np.testing.assert_allclose(crop[1], np.broadcast_to(expected_green, (224, 224)), atol=1e-5)
    np.testing.assert_allclose(crop[2], 77 / 127.5 - 1, atol=1e-6)

    assert fit.pose.shape == (24, 3) and fit.shape.shape == (10,) and fit.camera.shape == (3,)
    assert fit.pose.dtype == fit.shape.dtype == fit.camera.dtype == np.float32
    np.testing.assert_allclose(fit.pose, theta[0, 3:75].reshape(24, 3).numpy())
    np.testing.assert_allclose(fit.shape, theta[0, 75:].numpy())
    # a body point seen by the crop camera lands on the same image pixel through the frame camera
    point = np.array([[0.3, -0.4, 0.1]])
    crop_camera = theta[0, :3].double().numpy()
    crop_position = crop_camera[0] * (point[:, :2] + crop_camera[1:])
    frame = observation.square_frame
    frame_ndc = fit.camera[0] * (point[:, :2] + fit.camera[1:])
    np.testing.assert_allclose(frame.ndc_to_pixels(frame_ndc), center + crop_position * side / 2, atol=1e-4)


def test_initial_fit_without_observation_uses_the_square_frame():
    height, width = 300, 600
    columns = np.broadcast_to(np.arange(width) // 3, (height, width))
    image = np.stack([columns, np.zeros_like(columns), np.zeros_like(columns)], axis=-1).astype(np.uint8)
    theta = fixed_theta()
    model = RecordingModel(theta)
    fit = hmr_initial_fit(model, image)
    np.testing.assert_allclose(fit.camera, theta[0, :3].numpy(), atol=1e-6)  # crop = frame: a = 1, b = 0
    crop = model.crops[0][0, 0].double().numpy()
    # the whole 600-wide image shrinks to 224 (antialiased); its rows 300 tall fill the middle 112 crop rows
    crop_ndc = (2 * np.arange(224) + 1) / 224 - 1
    u = width / 2 + crop_ndc * width / 2
    expected = (u / 3 - 0.5) / 127.5 - 1
    interior = slice(10, 214)
    expected_block = np.broadcast_to(expected[interior], (112, 204))
    np.testing.assert_allclose(crop[56:168, interior], expected_block, atol=1.0 / 127.5)
    np.testing.assert_allclose(crop[:56], np.broadcast_to(crop[56], (56, 224)), atol=1e-6)  # border rows repeat


def test_initial_fit_with_hmr(loaded_model):
    image = np.random.default_rng(1).integers(0, 256, size=(90, 70, 3), dtype=np.uint8)
    fit = hmr_initial_fit(loaded_model, image, observation_with_box((90, 70), [10, 5, 50, 85]))
    assert fit.pose.shape == (24, 3) and fit.shape.shape == (10,) and fit.camera.shape == (3,)
    assert np.all(np.isfinite(fit.camera))
    with pytest.raises(ValueError, match="uint8"):
        hmr_initial_fit(loaded_model, image.astype(np.float32))
    with pytest.raises(ValueError, match="size"):
        hmr_initial_fit(loaded_model, image, observation_with_box((91, 70), [10, 5, 50, 85]))
