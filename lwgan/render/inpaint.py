"""Inpainting: a smooth fill of unknown pixels (fill_holes, for atlases and masked images), and the background behind the person (the hole that removes the person with its contact shadow, and its OpenCV inpainting).

Measured with tools/bench_inpaint.py (256 px high, person-shaped holes from background_hole over a
known background; PSNR and SSIM inside the hole; "old" is telea at radius 5, the fill lwgan used
before, which the refining generators still start from; 2 CPU cores). Real: 2 frames of each evaluation clip
(walk_turn, dance_akun, aerobics, taiji).

    method         radius   procedural (5)    real (8)          s / image (x old)
                            PSNR dB   SSIM    PSNR dB   SSIM
    telea          5        23.91     0.904   26.82     0.817   0.020 (1)
    telea          1        23.73     0.883   24.84     0.801   0.004 (0.2)
    navier_stokes  1        26.85     0.948   28.10     0.833   0.004 (0.2)
    navier_stokes  5        23.85     0.914   27.87     0.821   0.017 (0.8)
    fsr_fast                24.93     0.934   27.15     0.824   0.23 (11)
    fsr_best                27.83     0.943   27.60     0.831   9.5-13 (470-620)

The default is navier_stokes at radius 1: the best PSNR and SSIM on both sets among the methods
fast enough to use, at a fifth of the old cost. On 12 procedural images and 32 frames of 13 public
clips it gains 1.94 and 0.75 dB over the old default (SSIM x1.044, x1.049; better SSIM on 11/12
and 21/32 images). At radius 1 it carries the edges that meet the hole straight across it: floor
lines and wall corners continue where Telea leaves a blurred column, but a diagonal edge ends in a
blocky streak, and on busy texture it trails Telea (18 of the 32 real frames, by 0.2-1.7 dB).
fsr_best is too slow for use (10-20 s for one 256 px image, more for larger holes) and no better
than navier_stokes on real frames; fsr_fast is not better than navier_stokes either.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from lwgan.checks import check_shape
from lwgan.image_ranges import signed_to_unit_range

logger = logging.getLogger(__name__)

HOLE_GROWTH = 0.03
"""The hole grows around the person by this fraction of the person's height (6 px for a 200 px person):
segmentation and the fitted mesh both miss the silhouette by a few pixels (hair, loose clothing,
motion blur), and every missed pixel of the person is smeared into the hole as a ghost. Each
pixel more is inpainted, not real: on the four evaluation clips (lwgan evaluate, the classical
frames) 0.05 scored whole-image SSIM 0.0002-0.0016 lower than 0.03."""
FEET_HEIGHT = 0.05
"""The feet are the lowest rows of the person, this fraction of its height: the ground band starts at their top."""
SHADOW_DEPTH = 0.05
"""The ground band reaches this fraction of the person's height below the lowest row (the soles), where
the contact shadow and the floor's reflection lie in a view from about the person's height."""
SHADOW_WIDTH = 0.05
"""The ground band reaches this fraction of the person's height beyond the feet on either side.

The band's three sizes are judged by eye (no ground truth for ghosts): they take the contact
shadow under the soles of the evaluation clips. About twice as large (0.1, 0.06, 0.1) cost the tai chi
clip's textured wooden floor 0.3 dB and 0.003 SSIM over the whole image (lwgan evaluate)."""

METHODS = ("telea", "navier_stokes", "fsr_fast", "fsr_best")
"""Inpainting methods: cv2.inpaint's INPAINT_TELEA and INPAINT_NS, cv2.xphoto.inpaint's INPAINT_FSR_FAST and INPAINT_FSR_BEST."""
DEFAULT_METHOD = "navier_stokes"
DEFAULT_RADII = {"telea": 5.0, "navier_stokes": 1.0}
"""cv2.inpaint's inpaintRadius in pixels per method, the best of 1, 2, 3, 5 and 10 measured (telea's 10
is 0.1 dB better on real frames and 0.2 dB worse on procedural ones); the FSR methods take none."""


def background_hole(
    person_mask: torch.Tensor | None,
    body_mask: torch.Tensor | None,
    growth: float = HOLE_GROWTH,
    feet_height: float = FEET_HEIGHT,
    shadow_depth: float = SHADOW_DEPTH,
    shadow_width: float = SHADOW_WIDTH,
) -> torch.Tensor:
    """The pixels to remove from a photo before inpainting its background.

    The person is the union of both masks; its height is the row span of that union. The hole is
    the person grown by r = `growth` x height pixels (by the octagon of offsets with
    max(|dy|, |dx|) <= r and |dy| + |dx| <= r + ceil(r / 2), close to a disc: alternating 3 x 3
    square and cross dilations), together with a ground band: a box over the rows from the top of
    the feet (`feet_height` x height above the lowest row) to `shadow_depth` x height below the
    lowest row, and over the feet's columns widened by `shadow_width` x height on either side.
    Lengths are rounded to whole pixels; an image with an empty person gets an empty hole.

    Args:
        person_mask: (B, H, W) bool, the segmented person, or None.
        body_mask: (B, H, W) bool, the rasterized clothed source mesh, or None.
        growth, feet_height, shadow_depth, shadow_width: fractions of the person's height (see
            the module's constants for the defaults and why).
    Returns:
        (B, H, W) bool, True where the background is to be inpainted, on the masks' device.
    """
    person = _union("person_mask", person_mask, "body_mask", body_mask)
    for name, value in (("growth", growth), ("feet_height", feet_height), ("shadow_depth", shadow_depth), ("shadow_width", shadow_width)):
        if not value >= 0:
            raise ValueError(f"{name} must be a non-negative fraction of the person's height, got {value!r}")
    bottom, height = _extent(person)
    grown = _grow(person, torch.round(growth * height).long())
    return grown | _ground_band(person, bottom, height, feet_height, shadow_depth, shadow_width)


def ground_rows(person_mask: torch.Tensor | None, body_mask: torch.Tensor | None, feet_height: float = FEET_HEIGHT) -> torch.Tensor:
    """(B, H) bool: the rows from the top of the person's feet (background_hole's ground band) down to the image's bottom; none for an empty person."""
    person = _union("person_mask", person_mask, "body_mask", body_mask)
    bottom, height = _extent(person)
    feet_top = torch.where(height > 0, bottom - torch.round(feet_height * height).long(), person.shape[1])
    return torch.arange(person.shape[1], device=person.device)[None] >= feet_top[:, None]


def _extent(person: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,) the lowest row of each (B, H, W) bool person (-1 when empty) and its height in rows (0 when empty)."""
    has_rows = person.any(dim=2)  # (B, H)
    rows = torch.arange(person.shape[1], device=person.device)
    top = torch.where(has_rows, rows, person.shape[1]).amin(dim=1)
    bottom = torch.where(has_rows, rows, -1).amax(dim=1)
    return bottom, torch.where(has_rows.any(dim=1), bottom - top + 1, 0).float()


def _union(first_name: str, first: torch.Tensor | None, second_name: str, second: torch.Tensor | None) -> torch.Tensor:
    """(B, H, W) bool: the union of two optional (B, H, W) bool masks, at least one given."""
    masks = [(name, mask) for name, mask in ((first_name, first), (second_name, second)) if mask is not None]
    if not masks:
        raise ValueError(f"{first_name} and {second_name} are both None: the hole needs at least one mask")
    for name, mask in masks:
        check_shape(name, mask, (None, None, None))
        if mask.dtype != torch.bool:
            raise ValueError(f"{name} must be a bool tensor, got {mask.dtype}")
    if len(masks) == 2 and first.shape != second.shape:
        raise ValueError(f"{first_name} and {second_name} must have the same shape, got {tuple(first.shape)} and {tuple(second.shape)}")
    if min(masks[0][1].shape[1:]) == 0:
        raise ValueError(f"{masks[0][0]} must have at least one row and one column, got shape {tuple(masks[0][1].shape)}")
    return masks[0][1] | masks[-1][1]


def _grow(mask: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """(B, H, W) bool mask dilated by the octagon of (B,) int radius r (see background_hole), one radius per image.

    Step k grows every image whose radius exceeds k, by a 3 x 3 square on even steps and a cross on
    odd ones (bool shifts, 1-2 ms per step for a 1080p photo: a 900 px person's 45 steps take 0.05 s).
    """
    grown = mask
    for step in range(int(radius.max()) if radius.numel() else 0):
        rows_grown = _grow_along(grown, 1)
        dilated = _grow_along(rows_grown, 2) if step % 2 == 0 else rows_grown | _grow_along(grown, 2)
        growing = step < radius
        grown = dilated if bool(growing.all()) else torch.where(growing.view(-1, 1, 1), dilated, grown)
    return grown


def _grow_along(mask: torch.Tensor, dim: int) -> torch.Tensor:
    """(B, H, W) bool mask grown by one pixel both ways along `dim` (1: rows, 2: columns)."""
    length = mask.shape[dim]
    grown = mask.clone()
    grown.narrow(dim, 1, length - 1).logical_or_(mask.narrow(dim, 0, length - 1))
    grown.narrow(dim, 0, length - 1).logical_or_(mask.narrow(dim, 1, length - 1))
    return grown


def _ground_band(person: torch.Tensor, bottom: torch.Tensor, height: torch.Tensor, feet_height: float, shadow_depth: float,
                 shadow_width: float) -> torch.Tensor:
    """(B, H, W) bool: the box around and below the feet (see background_hole); bottom, height: (B,) lowest row and height."""
    rows = torch.arange(person.shape[1], device=person.device).view(1, -1)
    columns = torch.arange(person.shape[2], device=person.device).view(1, -1)
    feet_top = bottom - torch.round(feet_height * height).long()
    band_rows = (rows >= feet_top[:, None]) & (rows <= (bottom + torch.round(shadow_depth * height).long())[:, None])  # (B, H)
    feet_columns = (person & (rows >= feet_top[:, None]).unsqueeze(2)).any(dim=1)  # (B, W); empty for an empty person
    left = torch.where(feet_columns, columns, person.shape[2]).amin(dim=1)
    right = torch.where(feet_columns, columns, -1).amax(dim=1)
    side = torch.round(shadow_width * height).long()
    band_columns = (columns >= (left - side)[:, None]) & (columns <= (right + side)[:, None])  # (B, W)
    return band_rows.unsqueeze(2) & band_columns.unsqueeze(1)


DARK_BORDER_LEVEL = 12 / 255
"""Border rows and columns no brighter than this (in [0, 1]) count as a crop's padding (lwgan.recovery.video.CROP_PADDING)."""


def dark_border(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W) bool: the whole rows and columns at the edges that are dark throughout.

    Crops that reach past the frame are padded black; as known pixels next to a hole (a person
    standing at the bottom of the crop) the padding would be carried into the floor.
    """
    check_shape("images", images, (None, 3, None, None))
    dark = signed_to_unit_range(images.amax(dim=1)) <= DARK_BORDER_LEVEL  # (B, H, W)
    return _from_the_edges(dark.all(dim=2)).unsqueeze(2) | _from_the_edges(dark.all(dim=1)).unsqueeze(1)


def _from_the_edges(flags: torch.Tensor) -> torch.Tensor:
    """(B, N) bool -> (B, N) bool: the runs of True that start at either end."""
    from_start = torch.cumprod(flags.int(), dim=1).bool()
    from_end = torch.cumprod(flags.flip(1).int(), dim=1).bool().flip(1)
    return from_start | from_end


PADDING_SEAM = 2
"""Pixels next to a crop's padding that resizing and JPEG blend with it (grey, not the scene): filled with the hole."""


def inpaint_background(images: torch.Tensor, holes: torch.Tensor, ground: torch.Tensor | None = None, method: str = DEFAULT_METHOD) -> torch.Tensor:
    """inpaint() with the crops' dark padding (dark_border) and its seam kept out of the fill, the ground first.

    `ground` (B, H) bool (ground_rows, or None): the hole's pixels in these rows are filled first,
    from these rows of the image only, so the floor under the feet takes the floor on either side
    of them; filled with the rest of the hole, it took what stood behind the legs (a dark cabinet)
    carried down to the bottom of the picture as a dark column. Then the rest of the hole.

    The padding and the PADDING_SEAM pixels beside it (blends of padding and scene) are filled with
    the hole, so the scene in the hole takes no colour from them; the seam where it crosses the hole
    is filled along the seam (a second fill in which the seam is known), as the crop would show it;
    every pixel outside the hole is put back as it was.
    """
    border = dark_border(images)  # of the whole picture (a few rows of dark floor are not padding)
    seam = F.max_pool2d(border[:, None].float(), 2 * PADDING_SEAM + 1, stride=1, padding=PADDING_SEAM)[:, 0].bool() & ~border
    if ground is not None:
        check_shape("ground", ground, (images.shape[0], images.shape[2]))
        images = images.clone()
        for index in range(images.shape[0]):
            rows = torch.nonzero(ground[index] & holes[index].any(dim=1))[:, 0]
            if len(rows):
                band = (slice(index, index + 1), slice(int(rows[0]), int(rows[-1]) + 1))
                images[band[0], :, band[1]] = _inpaint_scene(images[band[0], :, band[1]], holes[band], border[band], seam[band], method)
        holes = holes & ~ground.unsqueeze(2)
    return _inpaint_scene(images, holes, border, seam, method)


def _inpaint_scene(images: torch.Tensor, holes: torch.Tensor, border: torch.Tensor, seam: torch.Tensor, method: str) -> torch.Tensor:
    """inpaint() with the (B, H, W) bool padding `border` (dark_border) and its `seam` kept out of the fill (see inpaint_background)."""
    filled = inpaint(images, holes | seam | border, method)
    crossing = seam & holes
    if crossing.any():  # most crops have no padding, or a hole clear of it: one fill is enough
        filled = torch.where(crossing.unsqueeze(1), inpaint(images, holes | border, method), filled)
    return torch.where((holes & ~border).unsqueeze(1), filled, images)


def inpaint(images: torch.Tensor, holes: torch.Tensor, method: str = DEFAULT_METHOD, radius: float | None = None) -> torch.Tensor:
    """Fill the hole of every image from the pixels around it (one OpenCV call per image, on the CPU).

    Args:
        images: (B, 3, H, W) float in [-1, 1], RGB.
        holes: (B, H, W) bool, True where the pixels are to be filled.
        method: one of METHODS.
        radius: cv2.inpaint's inpaintRadius in pixels for telea and navier_stokes; None: the
            method's DEFAULT_RADII. The FSR methods take none.
    Returns:
        (B, 3, H, W) on the images' device and dtype: pixels outside the hole unchanged, pixels in
        it quantised to 8 bits (OpenCV inpaints uint8 images). An image whose hole covers every
        pixel has nothing to fill from and becomes mid grey (128 of 255), with a warning.
    """
    check_shape("images", images, (None, 3, None, None))
    if not images.is_floating_point():
        raise ValueError(f"images must be a float tensor in [-1, 1], got {images.dtype}")
    check_shape("holes", holes, (images.shape[0], images.shape[2], images.shape[3]))
    if holes.dtype != torch.bool:
        raise ValueError(f"holes must be a bool tensor, got {holes.dtype}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if radius is None:
        radius = DEFAULT_RADII.get(method)
    elif method not in DEFAULT_RADII:
        raise ValueError(f"method {method!r} takes no radius, got radius={radius!r}")
    elif not radius > 0:
        raise ValueError(f"radius must be positive, got {radius!r}")
    pixels = ((images.detach().float().clamp(-1, 1) + 1.0) * 127.5 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    masks = holes.cpu().numpy()
    filled = np.stack([_inpaint_image(np.ascontiguousarray(pixel), mask, method, radius, index) for index, (pixel, mask) in enumerate(zip(pixels, masks))])
    filled = torch.from_numpy(filled).to(images.device).permute(0, 3, 1, 2).to(images.dtype) / 127.5 - 1.0
    return torch.where(holes.unsqueeze(1), filled, images)


def _inpaint_image(pixels: np.ndarray, hole: np.ndarray, method: str, radius: float | None, index: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB with its (H, W) bool hole filled by `method`."""
    if not hole.any():
        return pixels
    if hole.all():
        logger.warning("holes[%d] covers the whole image: nothing to inpaint from, the image becomes mid grey", index)
        return np.full_like(pixels, 128)
    if method in ("telea", "navier_stokes"):
        flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
        return cv2.inpaint(pixels, hole.astype(np.uint8) * 255, radius, flag)
    # cv2.xphoto.inpaint: the mask is non-zero on the KNOWN pixels, the image BGR, and the result is
    # written into a preallocated C-contiguous dst (a non-contiguous one is silently replaced).
    algorithm = cv2.xphoto.INPAINT_FSR_FAST if method == "fsr_fast" else cv2.xphoto.INPAINT_FSR_BEST
    result = np.empty_like(pixels, order="C")
    cv2.xphoto.inpaint(cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), (~hole).astype(np.uint8) * 255, result, algorithm)
    return cv2.cvtColor(result, cv2.COLOR_BGR2RGB)


def fill_holes(image: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Fill unknown pixels smoothly from known ones by push-pull (a masked image pyramid).

    Each level halves the image, averaging known pixels only; unknown pixels take the upsampled
    coarser level. Vectorized, linear in the pixel count.

    Args:
        image: (B, C, H, W) float; known: (B, H, W) bool.
    Returns:
        (B, C, H, W): known pixels unchanged, others filled (zeros if nothing is known).
    """
    weight = known.unsqueeze(1).to(image.dtype)
    if bool(weight.all()) or min(image.shape[-2:]) <= 1:
        return image * weight if not bool(weight.all()) else image
    coarse_sum = F.avg_pool2d(image * weight, 2, ceil_mode=True)
    coarse_weight = F.avg_pool2d(weight, 2, ceil_mode=True)
    coarse = fill_holes(coarse_sum / coarse_weight.clamp_min(1e-8), coarse_weight[:, 0] > 0)
    upsampled = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)[..., : image.shape[-2], : image.shape[-1]]
    return torch.where(weight > 0, image, upsampled)
