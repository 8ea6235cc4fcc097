"""SphereFace-20: original `Sphere20a` key layout round trip, loader errors, exact head crops, face loss."""

import pytest
import torch
import torch.nn.functional as F

from lwgan.losses.sphereface import (
    FACE_CONFIG_KEY,
    face_crop,
    head_boxes_from_keypoints,
    load_sphereface,
)
from lwgan.losses.terms import face_identity_loss


def original_layout() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the released sphere20a_20171020.pth without fc6, written out from `Sphere20a`.

    Stage s: conv{s}_1 (3x3, stride 2) then conv{s}_2 .. conv{s}_n (3x3), each conv with a bias and
    followed by PReLU relu{s}_k (one slope per channel).
    """
    convs = [("1_1", 64, 3), ("1_2", 64, 64), ("1_3", 64, 64)]
    convs += [("2_1", 128, 64)] + [(f"2_{k}", 128, 128) for k in range(2, 6)]
    convs += [("3_1", 256, 128)] + [(f"3_{k}", 256, 256) for k in range(2, 10)]
    convs += [("4_1", 512, 256)] + [(f"4_{k}", 512, 512) for k in range(2, 4)]
    shapes = {}
    for name, out_channels, in_channels in convs:
        shapes[f"conv{name}.weight"] = (out_channels, in_channels, 3, 3)
        shapes[f"conv{name}.bias"] = (out_channels,)
        shapes[f"relu{name}.weight"] = (out_channels,)
    shapes["fc5.weight"] = (512, 512 * 7 * 6)
    shapes["fc5.bias"] = (512,)
    return shapes


FC6_STAND_IN = (512, 10)  # the released fc6.weight is (512, 10574); it is dropped whatever its shape


@pytest.fixture(scope="module")
def original_file(tmp_path_factory):
    generator = torch.Generator().manual_seed(0)
    state = {key: torch.randn(shape, generator=generator) * 0.02 for key, shape in original_layout().items()}
    state["fc6.weight"] = torch.randn(FC6_STAND_IN, generator=generator)
    path = tmp_path_factory.mktemp("face") / "sphere20a_20171020.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture(scope="module")
def loaded(original_file):
    return load_sphereface(original_file[0])


def test_layout_has_twenty_conv_layers():
    layout = original_layout()
    assert len([key for key in layout if key.startswith("conv") and key.endswith(".weight")]) == 20


def test_loads_original_layout(original_file, loaded):
    _, state = original_file
    weights = loaded.state_dict()
    assert set(weights) == set(original_layout())
    for key in weights:
        assert torch.equal(weights[key], state[key]), key
    assert not loaded.training and not any(parameter.requires_grad for parameter in loaded.parameters())
    loaded.train()
    assert not loaded.training


def test_forward_shapes(loaded):
    outputs = loaded(torch.rand(2, 3, 112, 96) * 2 - 1)
    assert [tuple(output.shape) for output in outputs] == [
        (2, 64, 56, 48), (2, 128, 28, 24), (2, 256, 14, 12), (2, 512, 7, 6), (2, 512)
    ]
    with pytest.raises(ValueError, match=r"got \(2, 3, 128, 128\)"):
        loaded(torch.zeros(2, 3, 128, 128))


def test_wrong_shape_and_missing_key(tmp_path, original_file):
    broken = dict(original_file[1])
    broken["relu3_4.weight"] = torch.zeros(1)
    del broken["conv4_3.bias"]
    path = tmp_path / "broken.pth"
    torch.save(broken, path)
    with pytest.raises(ValueError) as error:
        load_sphereface(path)
    message = str(error.value)
    assert str(path) in message and "'relu3_4.weight' has shape (1,)" in message and "(256,)" in message
    assert "missing keys (1): conv4_3.bias" in message


def test_missing_file_says_where_to_get_it(tmp_path):
    path = tmp_path / "sphere20a_20171020.pth"
    with pytest.raises(FileNotFoundError) as error:
        load_sphereface(path)
    message = str(error.value)
    assert str(path) in message and "pretrains.zip" in message and f"{FACE_CONFIG_KEY}=" in message


def test_crop_of_a_box_on_the_pixel_grid_is_exact():
    # a 96 x 112 pixel box: every crop pixel centre lands on an image pixel centre
    images = torch.rand(2, 3, 200, 160, dtype=torch.float64)
    pixel_boxes = torch.tensor([[30.0, 40.0, 126.0, 152.0], [0.0, 88.0, 96.0, 200.0]], dtype=torch.float64)
    crops = face_crop(images, pixel_boxes, box_units="pixels")
    assert crops.shape == (2, 3, 112, 96)
    assert torch.allclose(crops[0], images[0, :, 40:152, 30:126], atol=1e-12)
    assert torch.allclose(crops[1], images[1, :, 88:200, 0:96], atol=1e-12)
    # the same boxes in NDC: x = 2u / W - 1, y = 2v / H - 1
    ndc_boxes = pixel_boxes / torch.tensor([160.0, 200.0, 160.0, 200.0], dtype=torch.float64) * 2 - 1
    assert torch.allclose(face_crop(images, ndc_boxes), crops, atol=1e-12)


def test_crop_of_a_known_square():
    images = torch.full((1, 3, 256, 256), -1.0)
    images[:, :, 100:212, 60:156] = 0.5  # a 96 x 112 patch of known value
    crops = face_crop(images, torch.tensor([[60.0, 100.0, 156.0, 212.0]]), box_units="pixels")
    assert torch.allclose(crops, torch.full_like(crops, 0.5))


def test_crop_at_half_resolution_averages_pixel_pairs():
    # a 192 x 224 box: crop pixel centres fall on image pixel corners -> bilinear = 2 x 2 mean
    images = torch.rand(1, 3, 260, 220, dtype=torch.float64)
    crops = face_crop(images, torch.tensor([[10.0, 20.0, 202.0, 244.0]]), box_units="pixels")
    assert crops.dtype == torch.float64
    assert torch.allclose(crops, F.avg_pool2d(images[:, :, 20:244, 10:202], 2), atol=1e-12)


def test_crop_checks():
    with pytest.raises(ValueError, match=r"got \(2, 3\)"):
        face_crop(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="box_units"):
        face_crop(torch.zeros(1, 3, 8, 8), torch.zeros(1, 4), box_units="mm")


def test_head_boxes_from_keypoints_closed_form():
    keypoints = torch.zeros(1, 17, 2)
    keypoints[0, 0] = torch.tensor([0.0, -0.5])    # nose
    keypoints[0, 1] = torch.tensor([0.05, -0.55])  # left eye
    keypoints[0, 2] = torch.tensor([-0.05, -0.55])  # right eye
    keypoints[0, 3] = torch.tensor([0.1, -0.5])    # left ear
    keypoints[0, 4] = torch.tensor([-0.1, -0.5])   # right ear
    keypoints[0, 5] = torch.tensor([0.2, -0.35])   # left shoulder
    keypoints[0, 6] = torch.tensor([-0.2, -0.35])  # right shoulder -> neck (0, -0.35)
    box = head_boxes_from_keypoints(keypoints, (256, 256), margin=0.1, crown_ratio=0.5)[0]
    # extent: x in [-0.1 - 0.1, 0.1 + 0.1] = [-0.2, 0.2]; y1 = -0.35; y0 = -0.55 - 0.5 * 0.2 - 0.1 = -0.75
    # both sides 0.4 NDC = 51.2 px; the crop is taller (112 : 96), so the width stays and the height
    # grows about the centre to 0.4 * 112 / 96 NDC
    center_y = (-0.75 - 0.35) / 2
    half_height = 0.2 * 112 / 96
    assert torch.allclose(box, torch.tensor([-0.2, center_y - half_height, 0.2, center_y + half_height]), atol=1e-6)
    # non-square image: the box has the crop's aspect ratio in pixels
    box = head_boxes_from_keypoints(keypoints, (300, 200))[0]
    width_pixels, height_pixels = (box[2] - box[0]) * 200 / 2, (box[3] - box[1]) * 300 / 2
    assert torch.allclose(height_pixels / width_pixels, torch.tensor(112 / 96))


def test_face_loss_zero_for_identical_crops(loaded):
    images = torch.rand(2, 3, 128, 128) * 2 - 1
    boxes = torch.tensor([[-0.5, -0.6, 0.3, 0.4], [-0.2, -0.2, 0.6, 0.7]])
    faces = face_crop(images, boxes)
    assert face_identity_loss(loaded, faces, faces.clone()).item() == 0.0
    generated = (images + 0.2 * torch.randn_like(images)).requires_grad_(True)
    loss = face_identity_loss(loaded, face_crop(generated, boxes), faces)
    assert loss.item() > 0
    loss.backward()
    assert generated.grad.abs().sum() > 0
