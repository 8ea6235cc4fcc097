"""SphereFace-20 face features (the original's `Sphere20a`) for the face identity loss, and head crops.

The network follows the PyTorch port of SphereFace that the original Liquid Warping GAN uses
(clcarwin/sphereface_pytorch `net_sphere.sphere20a`, copied as `Sphere20a` into impersonator's
networks and iPERCore's criterions/faceloss.py): 112 x 96 RGB input, four stages of a stride-2 3x3
conv + PReLU followed by 1, 2, 4, 1 residual units (two 3x3 conv + PReLU, added to the input),
then fc5 to a 512-d feature. The released `sphere20a_20171020.pth` also holds `fc6`, the A-Softmax
classifier over CASIA-WebFace's 10,574 identities, which a feature loss never uses; it is dropped.

Attribute names (conv1_1, relu1_1, ..., conv4_3, relu4_3, fc5) are the file's key names and must
stay as they are for loading.

Input range: the port's LFW evaluation fed BGR images scaled by (x - 127.5) / 128; the original
Liquid Warping GAN feeds its RGB [-1, 1] images unchanged, and so do we (that is what the
original's loss weight 5 was tuned on).
"""

from __future__ import annotations

import logging
import os

import torch
import torch.nn.functional as F
from torch import nn

from lwgan.body.camera import pixels_to_ndc
from lwgan.checks import check_image_size, check_shape
from lwgan.io.state_dicts import check_state_dict, read_state_dict_file

logger = logging.getLogger(__name__)

FACE_FILE_NAME = "sphere20a_20171020.pth"
FACE_CONFIG_KEY = "face_path"
"""Config key (a GeneratorLoss argument) that points to the SphereFace-20 weights file."""
FACE_SOURCE = (
    f"It ships with the original Liquid Warping GAN: pretrains/{FACE_FILE_NAME} in impersonator's "
    "assets/pretrains.zip (https://github.com/svip-lab/impersonator) or losses/"
    f"{FACE_FILE_NAME} in iPERCore's assets/checkpoints.zip (https://github.com/iPERDance/iPERCore); "
    "it was trained by https://github.com/clcarwin/sphereface_pytorch (model/sphere20a_20171020.7z). "
    "lwgan never downloads it."
)
IGNORED_PREFIXES = ("fc6.",)
"""The released file's A-Softmax classifier (fc6.weight, (512, 10574)); unused by the feature loss."""

FACE_INPUT_SIZE = (112, 96)
"""(height, width) of SphereFace-20's input."""
STAGES = ((64, 1), (128, 2), (256, 4), (512, 1))
"""(channels, residual units) of the four stages; stage s holds conv{s}_1 (stride 2) and the units'
convs conv{s}_2 .. conv{s}_{2 units + 1}, each followed by its PReLU relu{s}_k."""
FEATURE_SIZE = 512
FACE_STAGE_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
"""L1 weight of each of the five features in the face identity loss (iPERCore's FaceLoss)."""


class SphereFace20(nn.Module):
    """Frozen SphereFace-20 (`Sphere20a`) without its classifier; forward returns the five feature stages.

    The module is frozen: no parameter requires grad and it stays in eval mode whatever train() is
    asked (gradients still flow to the input).
    """

    def __init__(self) -> None:
        super().__init__()
        in_channels = 3
        for stage, (channels, units) in enumerate(STAGES, start=1):
            for conv in range(1, 2 * units + 2):
                stride = 2 if conv == 1 else 1
                self.add_module(f"conv{stage}_{conv}", nn.Conv2d(in_channels, channels, 3, stride, 1))
                self.add_module(f"relu{stage}_{conv}", nn.PReLU(channels))
                in_channels = channels
        height, width = FACE_INPUT_SIZE
        self.fc5 = nn.Linear(STAGES[-1][0] * (height // 16) * (width // 16), FEATURE_SIZE)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> SphereFace20:
        """Stay in eval mode: the network is a fixed feature extractor."""
        return super().train(False)

    def _conv(self, stage: int, index: int, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, f"relu{stage}_{index}")(getattr(self, f"conv{stage}_{index}")(x))

    def forward(self, faces: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Feature stages of a batch of face crops.

        Args:
            faces: (B, 3, 112, 96) float RGB in [-1, 1] (see face_crop).
        Returns:
            5 tensors: stage outputs (B, 64, 56, 48), (B, 128, 28, 24), (B, 256, 14, 12),
            (B, 512, 7, 6) and the fc5 feature (B, 512).
        """
        check_shape("faces", faces, (None, 3, *FACE_INPUT_SIZE))
        outputs = []
        x = faces
        for stage, (_, units) in enumerate(STAGES, start=1):
            x = self._conv(stage, 1, x)
            for unit in range(units):
                x = x + self._conv(stage, 2 * unit + 3, self._conv(stage, 2 * unit + 2, x))
            outputs.append(x)
        outputs.append(self.fc5(x.flatten(1)))
        return tuple(outputs)


def load_sphereface(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> SphereFace20:
    """SphereFace20 with the weights of the released `sphere20a_20171020.pth` (or a file in its layout).

    Every key and shape except the dropped `fc6.*` is checked.

    Raises:
        FileNotFoundError: no file at `path`; the message says where to get it and which key to set.
        ValueError: unreadable file, or keys/shapes that do not match (every problem listed).
    """
    not_found_help = f"{FACE_SOURCE} Set the config key {FACE_CONFIG_KEY}=/path/to/{FACE_FILE_NAME}."
    state_dict = read_state_dict_file(path, "SphereFace-20 weights", not_found_help)
    model = SphereFace20()
    shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    checked = check_state_dict(state_dict, shapes, str(path), "SphereFace-20", ignored_prefixes=IGNORED_PREFIXES)
    model.load_state_dict(checked, strict=True)
    logger.info("loaded SphereFace-20 from %s", path)
    return model.to(device)


def face_crop(
    images: torch.Tensor,
    head_boxes: torch.Tensor,
    *,
    box_units: str = "ndc",
    size: tuple[int, int] = FACE_INPUT_SIZE,
) -> torch.Tensor:
    """Resample the head box of every image to the face network's input size (bilinear, differentiable).

    Crop pixel (i, j) samples the box point (x0 + (j + 0.5) / w (x1 - x0), y0 + (i + 0.5) / h (y1 - y0))
    for an output of size (h, w), with grid_sample (align_corners=False, border padding). So a box
    of exactly w x h image pixels on the pixel grid returns those pixels unchanged. The box is
    stretched to the output's aspect ratio; head_boxes_from_keypoints gives boxes of the right one.

    Args:
        images: (B, C, H, W) float.
        head_boxes: (B, 4) (x0, y0, x1, y1), x0 < x1 and y0 < y1: NDC (x right, y down, [-1, 1] spans
            the image; box_units="ndc") or continuous pixel coordinates (pixel (i, j) covers
            [j, j + 1) x [i, i + 1); box_units="pixels").
        box_units: "ndc" or "pixels".
        size: (h, w) of the crops; SphereFace-20's (112, 96) by default.
    Returns:
        (B, C, h, w) crops, same dtype as images.
    """
    check_shape("images", images, (None, None, None, None))
    check_shape("head_boxes", head_boxes, (images.shape[0], 4))
    height, width = check_image_size("size", size)
    boxes = head_boxes.to(images.dtype)
    if box_units == "pixels":
        boxes = pixels_to_ndc(boxes.reshape(-1, 2, 2), (images.shape[2], images.shape[3])).reshape(-1, 4)
    elif box_units != "ndc":
        raise ValueError(f"box_units must be 'ndc' or 'pixels', got {box_units!r}")
    x0, y0, x1, y1 = boxes.unbind(dim=1)
    steps_x = (torch.arange(width, device=images.device, dtype=images.dtype) + 0.5) / width
    steps_y = (torch.arange(height, device=images.device, dtype=images.dtype) + 0.5) / height
    grid_x = x0[:, None] + (x1 - x0)[:, None] * steps_x  # (B, w)
    grid_y = y0[:, None] + (y1 - y0)[:, None] * steps_y  # (B, h)
    batch = images.shape[0]
    grid = torch.stack(
        [grid_x[:, None, :].expand(batch, height, width), grid_y[:, :, None].expand(batch, height, width)], dim=-1
    )
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR, LEFT_SHOULDER, RIGHT_SHOULDER = range(7)
"""Indices in the COCO-17 keypoint order (lwgan.body.skeleton.COCO17_NAMES)."""


def head_boxes_from_keypoints(
    keypoints: torch.Tensor,
    image_size: tuple[int, int],
    *,
    margin: float = 0.1,
    crown_ratio: float = 0.5,
    size: tuple[int, int] = FACE_INPUT_SIZE,
) -> torch.Tensor:
    """Head boxes (x0, y0, x1, y1) in NDC from COCO-17 keypoints, with the face crop's aspect ratio.

    The original (impersonator's cal_head_bbox) takes COCOplus joints 12..18 (neck, head top, nose,
    eyes, ears) in [0, 1] image coordinates: x from min - 0.05 to max + 0.05, y from min - 0.05 down
    to the lowest point (the neck) with no margin. COCO-17 has neither neck nor head top, so here:
        neck = midpoint of the shoulders;
        x0, x1 = min, max of x over nose, eyes, ears and neck, -/+ margin;
        y1 = the lowest of those points (normally the neck);
        y0 = the highest of them minus crown_ratio x (y1 - that height) minus margin, which stands in
             for the head top (the crown is about half the eye-to-neck distance above the eyes).
    Then the shorter side grows about the box centre until the box has the crop's aspect ratio in
    pixels, so face_crop does not stretch the face. Boxes may reach outside the image (face_crop
    repeats the border there).

    Args:
        keypoints: (B, K, 2) NDC x, y with K >= 7, COCO-17 order first (BodyOutput.keypoints projected).
        image_size: (H, W) of the image the keypoints live in.
        margin: in NDC units (0.1 = the original's 0.05 of the image side).
        crown_ratio: see above.
        size: (h, w) of the crops whose aspect ratio the boxes take.
    Returns:
        (B, 4) float boxes in NDC.
    """
    check_shape("keypoints", keypoints, (None, None, 2))
    if keypoints.shape[1] <= RIGHT_SHOULDER:
        raise ValueError(f"keypoints must hold COCO-17 first (K >= 7), got {tuple(keypoints.shape)}")
    image_height, image_width = check_image_size("image_size", image_size)
    crop_height, crop_width = check_image_size("size", size)
    neck = (keypoints[:, LEFT_SHOULDER] + keypoints[:, RIGHT_SHOULDER]) / 2.0
    points = torch.cat([keypoints[:, NOSE:RIGHT_EAR + 1], neck[:, None]], dim=1)  # (B, 6, 2)
    low, high = points.amin(dim=1), points.amax(dim=1)
    x0, x1 = low[:, 0] - margin, high[:, 0] + margin
    y1 = high[:, 1]
    y0 = low[:, 1] - crown_ratio * (y1 - low[:, 1]) - margin
    # sides in pixels: NDC spans W (x) and H (y) pixels over 2 units
    width_pixels = (x1 - x0) * image_width / 2.0
    height_pixels = (y1 - y0) * image_height / 2.0
    aspect = crop_height / crop_width
    new_width = torch.maximum(width_pixels, height_pixels / aspect)
    new_height = new_width * aspect
    center_x, center_y = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    half_x = new_width / image_width  # half side in NDC = pixels / W * 2 / 2
    half_y = new_height / image_height
    return torch.stack([center_x - half_x, center_y - half_y, center_x + half_x, center_y + half_y], dim=1)
