"""Loading of the original HMR weights (`hmr_tf2pt.pth`) and HMR's initial fit of a person in an image.

Crop and camera (lwgan.body.camera conventions): HMR sees a square crop of side L image pixels centred at
(cx, cy), resized to 224 x 224. Its camera maps body points to the crop's NDC, x_c = s_c (X + tx_c).
Crop NDC and the NDC of the image's SquareFrame (offset (ox, oy), side S) are related by the affine map

    u = cx + x_c L / 2                          (crop NDC -> image pixels)
    x_f = (u + ox) 2 / S - 1 = a x_c + b_x,     a = L / S,  b_x = (cx + ox) 2 / S - 1   (same for y)

so x_f = a s_c (X + tx_c) + b_x = s_f (X + tx_f) with the closed form

    s_f = a s_c,   tx_f = tx_c + b_x / s_f,   ty_f = ty_c + b_y / s_f.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from lwgan.io.state_dicts import check_state_dict, read_state_dict_file
from lwgan.recovery.hmr import HMR, INPUT_SIZE
from lwgan.recovery.observation import PersonObservation, SquareFrame, box_side

logger = logging.getLogger(__name__)

HMR_FILE_NAME = "hmr_tf2pt.pth"
HMR_CONFIG_KEY = "hmr_path"
"""Config key that points to the HMR checkpoint (e.g. `lwgan fit hmr_path=/data/hmr_tf2pt.pth`)."""
DEFAULT_HMR_PATH = Path(__file__).resolve().parents[2] / "assets" / "pretrains" / HMR_FILE_NAME
"""Where load_hmr looks when no path is given (assets/pretrains/ of the repository, as in the original zip)."""

HMR_SOURCE = (
    "It ships in assets/pretrains.zip of the original Liquid Warping GAN code "
    "(https://github.com/svip-lab/impersonator, see its README for the download; unzip and take "
    f"pretrains/{HMR_FILE_NAME}). It is HMR (https://github.com/akanazawa/hmr, MIT) converted to PyTorch by "
    "the impersonator authors and distributed under the impersonator licence (ShanghaiTech, non-commercial "
    "research use only); it is not shipped with lwgan."
)

DATA_PARALLEL_PREFIX = "module."
IGNORED_PREFIXES = ("smpl.",)
"""Keys of the original file that this model does not hold: the SMPL buffers of HMR's own SMPL layer
(v_template, shapedirs, J_regressor, posedirs, weights, joint_regressor); SmplBody provides SMPL."""
OPTIONAL_SUFFIX = ".num_batches_tracked"
"""BatchNorm counters: checkpoints converted from TF-slim may lack them; missing ones start at 0."""

CROP_SCALE = 224.0 / 150.0
"""Crop side / larger side of the person box: HMR was trained with people about 150 pixels tall in its 224 crops."""


class HmrFit(NamedTuple):
    """HMR's initial fit of one person (numpy float32).

    pose: (24, 3) SMPL axis-angle in the image orientation (upright ≈ global rotation (π, 0, 0)).
    shape: (10,) SMPL betas.
    camera: (3,) weak perspective (s, tx, ty) in the NDC of the image's SquareFrame.
    """

    pose: np.ndarray
    shape: np.ndarray
    camera: np.ndarray


def hmr_state_dict_from_original(
    state_dict: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], source: str
) -> dict[str, torch.Tensor]:
    """Check an original HMR state dict against `expected` (an HMR().state_dict()) and return it ready to load.

    Strips a DataParallel `module.` prefix, drops the `smpl.*` keys (with a log line) and fills
    missing `num_batches_tracked` counters with 0. Raises ValueError naming `source` and listing
    every missing key, unexpected key and shape mismatch (with the file's and the model's shapes).
    """
    cleaned: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise ValueError(f"{source}: not an HMR state dict: key {key!r} is not a string")
        name = key.removeprefix(DATA_PARALLEL_PREFIX)
        if name.startswith(IGNORED_PREFIXES):
            ignored.append(name)
            continue
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{source}: value of key {key!r} is a {type(value).__name__}, not a tensor")
        cleaned[name] = value
    if ignored:
        logger.info("%s: ignoring %d SMPL entries of the original file (%s); SMPL comes from SmplBody",
                    source, len(ignored), ", ".join(ignored))

    check_state_dict(cleaned, expected, source, "HMR", optional_suffixes=(OPTIONAL_SUFFIX,))
    for key, value in expected.items():
        if key not in cleaned:  # only num_batches_tracked can get here
            cleaned[key] = torch.zeros_like(value)
    return cleaned


def load_hmr(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> HMR:
    """HMR with the original released weights (`hmr_tf2pt.pth`), in eval mode on `device`.

    Args:
        path: the checkpoint; DEFAULT_HMR_PATH when None (config key HMR_CONFIG_KEY).
        device: where the model lives.
    Raises:
        FileNotFoundError: no file at `path`; the message says where to get it.
        ValueError: the file is not a plain state dict (read with torch.load(weights_only=True)) or its
            keys/shapes do not match (see hmr_state_dict_from_original).
    """
    path = Path(DEFAULT_HMR_PATH if path is None else path)
    state_dict = read_state_dict_file(path, "HMR checkpoint", f"{HMR_SOURCE} Put it there or set the config key "
                                      f"{HMR_CONFIG_KEY}=/path/to/{HMR_FILE_NAME}.")
    model = HMR()
    model.load_state_dict(hmr_state_dict_from_original(state_dict, model.state_dict(), str(path)), strict=True)
    logger.info("loaded HMR weights from %s", path)
    return model.to(device).eval()


def person_square(
    observation: PersonObservation | None, image_size: tuple[int, int], crop_scale: float = CROP_SCALE
) -> tuple[np.ndarray, float]:
    """The square HMR crop around a person: centre (2,) (x, y) in continuous image pixels and side in pixels.

    The square is centred on observation.box and its side is crop_scale x the box's larger side;
    without an observation it is the image's own SquareFrame (the whole image, centred).
    """
    height, width = image_size
    if observation is None:
        return np.array([width / 2.0, height / 2.0]), float(max(height, width))
    box = np.asarray(observation.box, dtype=np.float64)
    if box.shape != (4,) or not np.all(np.isfinite(box)) or box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"observation.box must be finite (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {box}")
    center = (box[:2] + box[2:]) / 2.0
    side = float(box_side(box) * crop_scale)
    return center, side


def crop_square(images: torch.Tensor, center: np.ndarray, side: float, size: int = INPUT_SIZE) -> torch.Tensor:
    """Resample a square of `side` pixels centred at `center` (x, y) to (B, C, size, size).

    images: (B, C, H, W) float. Crop pixel (i, j) has crop NDC ((2j + 1)/size - 1, (2i + 1)/size - 1)
    and samples image pixel position center + crop_ndc * side / 2 (bilinear, align_corners=False);
    outside the image the border pixels repeat (HMR pads crops by edge replication). A shrinking
    crop is first low-passed by an antialiased resize of the whole image, which keeps image NDC.
    """
    _, _, height, width = images.shape
    if side > size:
        factor = size / side
        resized = (max(1, round(height * factor)), max(1, round(width * factor)))
        images = F.interpolate(images, size=resized, mode="bilinear", antialias=True, align_corners=False)
    crop_ndc = (2.0 * torch.arange(size, dtype=torch.float64) + 1.0) / size - 1.0
    center_x, center_y = float(center[0]), float(center[1])
    grid_x = (2.0 * (center_x + crop_ndc * side / 2.0) / width - 1.0).to(images)
    grid_y = (2.0 * (center_y + crop_ndc * side / 2.0) / height - 1.0).to(images)
    grid = torch.stack(torch.meshgrid(grid_y, grid_x, indexing="ij")[::-1], dim=-1)
    grid = grid.expand(images.shape[0], size, size, 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def crop_camera_to_frame(camera: np.ndarray, center: np.ndarray, side: float, frame: SquareFrame) -> np.ndarray:
    """(..., 3) crop camera (s, tx, ty) -> (..., 3) the same projection in the NDC of `frame`.

    center (2,) and side: the crop square in image pixels (person_square). Closed form of the module
    docstring: s_f = (side / S) s_c, t_f = t_c + b / s_f with b = frame NDC of the crop centre.
    """
    camera = np.asarray(camera, dtype=np.float64)
    if camera.shape[-1] != 3:
        raise ValueError(f"camera must have shape (..., 3), got {camera.shape}")
    if np.any(camera[..., 0] == 0):
        raise ValueError("camera scale s is 0: the projection cannot be moved to another frame")
    scale = camera[..., 0:1] * (side / frame.side)
    offset = frame.pixels_to_ndc(np.asarray(center, dtype=np.float64))
    return np.concatenate([scale, camera[..., 1:3] + offset / scale], axis=-1)


def hmr_initial_fit(
    model: HMR, image: np.ndarray, observation: PersonObservation | None = None, *, crop_scale: float = CROP_SCALE
) -> HmrFit:
    """HMR's SMPL pose, shape and camera for the person in `image`: the initial guess for fitting.

    HMR predicts SMPL parameters: use them with lwgan.body.smpl_body.SmplBody.

    Args:
        model: an HMR (load_hmr); run in eval mode under inference_mode, its mode restored afterwards.
        image: (H, W, 3) uint8 RGB.
        observation: the person (its box picks the crop); None = the whole image, centred in its square.
        crop_scale: crop side / larger side of the person box.
    Returns:
        HmrFit: pose (24, 3), shape (10,), camera (3,) in observation.square_frame (= SquareFrame.around((H, W))).
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        description = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image must be a uint8 (H, W, 3) RGB array, got {description}")
    image_size = (image.shape[0], image.shape[1])
    if observation is not None and tuple(observation.image_size) != image_size:
        raise ValueError(
            f"observation is of an image of size {tuple(observation.image_size)}, the image has {image_size}"
        )
    frame = SquareFrame.around(image_size)
    center, side = person_square(observation, image_size, crop_scale)
    device = next(model.parameters()).device
    pixels = torch.from_numpy(np.array(image)).to(device).permute(2, 0, 1)[None].float()
    crop = crop_square(pixels / 127.5 - 1.0, center, side, INPUT_SIZE)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            output = model(crop)
    finally:
        model.train(was_training)
    camera = crop_camera_to_frame(output.camera[0].double().cpu().numpy(), center, side, frame)
    return HmrFit(
        pose=output.pose[0].cpu().numpy().astype(np.float32),
        shape=output.shape[0].cpu().numpy().astype(np.float32),
        camera=camera.astype(np.float32),
    )
