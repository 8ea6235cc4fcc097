"""Background hole geometry against hand-built masks; inpainting against a smooth image with a known truth; the push-pull fill."""

import logging

import pytest
import torch
import torch.nn.functional as F

from lwgan.render.inpaint import (
    DEFAULT_RADII,
    FEET_HEIGHT,
    HOLE_GROWTH,
    METHODS,
    SHADOW_DEPTH,
    SHADOW_WIDTH,
    background_hole,
    dark_border,
    fill_holes,
    ground_rows,
    inpaint,
    inpaint_background,
)


def rectangle(size: int, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """(size, size) bool, True on rows top..bottom and columns left..right (inclusive)."""
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[top : bottom + 1, left : right + 1] = True
    return mask


def octagon_dilation(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """(H, W) bool grown by the offsets (dy, dx) with max(|dy|, |dx|) <= radius and |dy| + |dx| <= radius + ceil(radius / 2), one shift at a time."""
    height, width = mask.shape
    padded = F.pad(mask, (radius, radius, radius, radius))
    grown = torch.zeros_like(mask)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if abs(dy) + abs(dx) <= radius + (radius + 1) // 2:
                grown |= padded[radius - dy : radius - dy + height, radius - dx : radius - dx + width]
    return grown


def person_with_arm(scale: int) -> torch.Tensor:
    """(128 scale, 128 scale) bool: a torso/legs block 60 scale rows high with an arm held out to the right near the top."""
    return rectangle(128 * scale, 20 * scale, 80 * scale - 1, 40 * scale, 60 * scale - 1) | rectangle(128 * scale, 25 * scale, 31 * scale - 1, 60 * scale, 90 * scale - 1)


@pytest.mark.parametrize("scale", [1, 2])
def test_hole_is_the_grown_person_and_a_band_under_the_feet(scale):
    person = person_with_arm(scale)
    height = 60 * scale  # rows 20 scale .. 80 scale - 1
    growth, depth, side, feet = (round(fraction * height) for fraction in (HOLE_GROWTH, SHADOW_DEPTH, SHADOW_WIDTH, FEET_HEIGHT))
    bottom = 80 * scale - 1
    band = rectangle(128 * scale, bottom - feet, bottom + depth, 40 * scale - side, 60 * scale - 1 + side)  # under the legs' columns only
    expected = octagon_dilation(person, growth) | band

    hole = background_hole(person[None], None)[0]
    assert torch.equal(hole, expected)
    rows = torch.nonzero(hole.any(dim=1))[:, 0]
    assert int(rows.min()) == 20 * scale - growth  # not above the head by more than the growth
    assert int(rows.max()) == bottom + depth  # the band reaches shadow_depth below the soles, past the growth
    assert depth > growth


def test_hole_parameters_and_masks_combine():
    person = rectangle(64, 10, 49, 20, 29)  # 40 rows high
    body = rectangle(64, 12, 49, 30, 33)  # the clothed mesh sticks out beside the segmentation
    hole = background_hole(person[None], body[None], growth=0.1, feet_height=0.0, shadow_depth=0.25, shadow_width=0.0)[0]
    union = person | body
    expected = octagon_dilation(union, 4) | rectangle(64, 49, 59, 20, 33)
    assert torch.equal(hole, expected)
    assert torch.equal(background_hole(None, union[None], growth=0.0, shadow_depth=0.0, feet_height=0.0, shadow_width=0.0)[0], union)


def test_empty_person_gives_an_empty_hole_and_images_are_independent():
    person, smaller = person_with_arm(1), rectangle(128, 70, 99, 10, 19)  # 60 and 30 rows high
    hole = background_hole(torch.stack([torch.zeros_like(person), person, smaller]), None)
    assert not hole[0].any()
    assert torch.equal(hole[1], background_hole(person[None], None)[0])
    assert torch.equal(hole[2], background_hole(smaller[None], None)[0])
    assert int(torch.nonzero(hole[2].any(dim=1))[:, 0].min()) == 70 - round(HOLE_GROWTH * 30)


def test_hole_rejects_bad_masks():
    person = torch.zeros(1, 8, 8, dtype=torch.bool)
    with pytest.raises(ValueError, match="both None"):
        background_hole(None, None)
    with pytest.raises(ValueError, match=r"body_mask.*same shape.*\(1, 8, 9\)"):
        background_hole(person, torch.zeros(1, 8, 9, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"person_mask must have shape .*\(8, 8\)"):
        background_hole(person[0], None)
    with pytest.raises(ValueError, match="person_mask must be a bool tensor"):
        background_hole(person.float(), None)
    with pytest.raises(ValueError, match=r"at least one row.*\(1, 0, 8\)"):
        background_hole(None, torch.zeros(1, 0, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="growth"):
        background_hole(person, None, growth=-0.1)


def gradient_image(size: int) -> torch.Tensor:
    """(1, 3, size, size) float64: each channel a different linear ramp inside [-1, 1], off the 8-bit grid."""
    rows = torch.linspace(-1, 1, size, dtype=torch.float64).view(size, 1)
    columns = torch.linspace(-1, 1, size, dtype=torch.float64).view(1, size)
    return torch.stack(torch.broadcast_tensors(0.6 * columns + 0.001, 0.5 * rows, 0.3 * columns - 0.4 * rows))[None]


def disc(size: int, radius: int) -> torch.Tensor:
    """(1, size, size) bool disc around the image's centre."""
    rows, columns = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return ((rows - size // 2) ** 2 + (columns - size // 2) ** 2 <= radius**2)[None]


@pytest.mark.parametrize("method", METHODS)
def test_smooth_image_is_filled_close_to_the_truth(method):
    truth, hole = gradient_image(24), disc(24, 4)
    filled = inpaint(truth * ~hole, hole, method)
    assert filled.dtype == truth.dtype and filled.shape == truth.shape
    error = (filled - truth).abs().permute(0, 2, 3, 1)[hole]
    # The channels change by 0.035-0.052 per pixel: filling with the hole rim's mean colour would be
    # off by 0.076 on average and 0.21 at worst; a fill along the ramps does much better.
    assert float(error.mean()) < 0.04 and float(error.max()) < 0.15, (method, float(error.mean()), float(error.max()))
    assert torch.equal(torch.where(hole[:, None], truth, filled), truth)  # known pixels unchanged, not even quantised


def test_radius_reaches_cv2_and_default_radii():
    truth, hole = gradient_image(24), disc(24, 4)
    small = inpaint(truth * ~hole, hole, "telea", radius=1.0)
    assert torch.equal(inpaint(truth * ~hole, hole, "telea"), inpaint(truth * ~hole, hole, "telea", radius=DEFAULT_RADII["telea"]))
    assert not torch.equal(small, inpaint(truth * ~hole, hole, "telea", radius=5.0))


def test_empty_and_full_holes(caplog):
    images = gradient_image(16).float().repeat(2, 1, 1, 1)
    holes = torch.zeros(2, 16, 16, dtype=torch.bool)
    holes[1] = True
    with caplog.at_level(logging.WARNING):
        filled = inpaint(images, holes)
    assert torch.equal(filled[0], images[0])
    assert torch.allclose(filled[1], torch.full_like(images[1], 128 / 127.5 - 1), atol=1e-6)  # 128 of 255
    assert "holes[1] covers the whole image" in caplog.text


def test_inpaint_rejects_bad_inputs():
    images = torch.zeros(1, 3, 8, 8)
    holes = torch.zeros(1, 8, 8, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"images must have shape \(\*, 3, \*, \*\), got \(3, 8, 8\)"):
        inpaint(images[0], holes)
    with pytest.raises(ValueError, match=r"holes must have shape \(1, 8, 8\), got \(1, 8, 9\)"):
        inpaint(images, torch.zeros(1, 8, 9, dtype=torch.bool))
    with pytest.raises(ValueError, match="holes must be a bool tensor"):
        inpaint(images, holes.float())
    with pytest.raises(ValueError, match="images must be a float tensor"):
        inpaint(images.to(torch.uint8), holes)
    with pytest.raises(ValueError, match=r"method must be one of .*'telea'.*got 'patchmatch'"):
        inpaint(images, holes, method="patchmatch")
    with pytest.raises(ValueError, match="takes no radius"):
        inpaint(images, holes, method="fsr_fast", radius=3.0)
    with pytest.raises(ValueError, match="radius must be positive"):
        inpaint(images, holes, method="telea", radius=0.0)


def test_the_crops_dark_padding_is_kept_out_of_the_fill():
    # A bright floor whose bottom rows are the black padding of a crop; the hole reaches into the padding.
    image = torch.full((1, 3, 40, 32), 0.6)
    image[:, :, 32:] = -1.0  # padding: black rows at the bottom
    image[:, :, :, :2] = -1.0  # and black columns on the left
    hole = torch.zeros(1, 40, 32, dtype=torch.bool)
    hole[:, 20:36, 10:20] = True
    border = dark_border(image)
    assert border[0, 32:].all() and border[0, :, :2].all() and not border[0, :32, 2:].any()
    filled = inpaint_background(image, hole)
    floor = hole[0, :32]  # the hole above the padding: the floor's colour, no black carried up
    assert (filled[0, :, :32][:, floor] - 0.6).abs().max() < 0.02
    assert torch.equal(filled[0, :, 32:], image[0, :, 32:])  # the padding stays as it was, in the hole too


def test_the_grey_seam_between_scene_and_padding_is_not_carried_into_the_hole():
    # Resizing blends the last scene row with the padding: a grey row that is neither.
    image = torch.full((1, 3, 40, 32), 0.6)
    image[:, :, 32:] = -1.0
    image[:, :, 31] = -0.3  # the seam
    hole = torch.zeros(1, 40, 32, dtype=torch.bool)
    hole[:, 20:36, 10:20] = True  # a hole (feet and their shadow) that reaches through the seam into the padding
    filled = inpaint_background(image, hole)
    assert (filled[0, :, 20:30, 10:20] - 0.6).abs().max() < 0.02  # the floor's colour, no grey carried in from the seam beside it
    assert (filled[0, :, 31, 10:20] + 0.3).abs().max() < 0.02  # the seam goes on across the hole, as the crop would show it
    assert torch.equal(filled[0, :, 31, :10], image[0, :, 31, :10])  # the seam outside the hole stays as it was
    assert torch.equal(filled[0, :, 32:], image[0, :, 32:])  # and so does the padding


def test_ground_rows_start_at_the_top_of_the_feet():
    person = rectangle(64, 10, 49, 20, 30)  # 40 rows tall: the feet are its lowest FEET_HEIGHT x 40 = 2 rows
    rows = ground_rows(person[None], None)[0]
    assert torch.equal(rows, torch.arange(64) >= 49 - round(FEET_HEIGHT * 40))
    assert not ground_rows(torch.zeros(1, 64, 64, dtype=torch.bool), None).any()


def test_the_floor_under_the_feet_takes_the_floor_beside_it_not_the_dark_cabinet_behind_the_person():
    # A light wall, a dark cabinet behind a wide person, a strip of light floor from row 53 down to the crop's black padding at
    # row 57 (a tall person in a landscape photo): the floor beside the feet is all the floor there is to fill from.
    wall, cabinet, floor = 0.5, -0.8, 0.7
    image = torch.full((1, 3, 64, 64), wall)
    image[:, :, 10:53, 2:62] = cabinet
    image[:, :, 53:] = floor
    image[:, :, 57:] = -1.0
    person = rectangle(64, 6, 56, 6, 58)
    hole = background_hole(person[None], None)
    floor_in_hole = hole[0] & ((torch.arange(64) >= 53) & (torch.arange(64) < 57))[:, None]
    assert floor_in_hole.sum() > 200
    alone = inpaint_background(image, hole)
    ground_first = inpaint_background(image, hole, ground_rows(person[None], None))
    assert (alone[0, :, floor_in_hole] - floor).abs().mean() > 0.2, "the cabinet is carried down into the floor"
    assert (ground_first[0, :, floor_in_hole] - floor).abs().mean() < 0.02
    assert torch.equal(ground_first[0, :, ~hole[0]], image[0, :, ~hole[0]])


def test_a_dark_mat_under_dark_shoes_is_not_taken_for_the_crops_padding_when_the_ground_is_filled_first():
    # Within the ground's rows a dark mat reaches from the left edge to dark shoes: every column there is dark in those rows,
    # but not over the whole picture, so it is scene, and the shoes (in the hole) are filled from the mat.
    mat, shoes = torch.tensor([-0.95, -0.95, -0.95]), torch.tensor([-1.0, -1.0, -0.91])  # both under DARK_BORDER_LEVEL
    image = torch.full((1, 3, 64, 64), 0.5)
    image[0, :, 44:60, :40] = mat[:, None, None]
    person = rectangle(64, 8, 52, 26, 36)
    image[0, :, 8:48, 26:37] = 0.9  # the person
    image[0, :, 48:53, 26:37] = shoes[:, None, None]
    assert not dark_border(image).any()
    hole = background_hole(person[None], None)
    filled = inpaint_background(image, hole, ground_rows(person[None], None))
    feet = hole[0] & person & (torch.arange(64) >= 48)[:, None]
    assert feet.sum() > 20
    assert (filled[0, :, feet] - mat[:, None]).abs().max() < 0.02, "the shoes are left in the picture"


def test_fill_holes_keeps_known_pixels_and_stays_in_range():
    image = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(1, 3, 64, 64).clone()
    known = torch.ones(1, 64, 64, dtype=torch.bool)
    known[:, 20:40, 10:50] = False
    filled = fill_holes(image * known[:, None], known)
    assert torch.equal(filled[:, :, known[0]], image[:, :, known[0]])
    hole = filled[:, :, ~known[0]]
    assert hole.min() >= 0 and hole.max() <= 1
    # A horizontal ramp stays close to the ramp inside the hole.
    assert (hole - image[:, :, ~known[0]]).abs().mean() < 0.1
    assert (fill_holes(image, torch.zeros(1, 64, 64, dtype=torch.bool)) == 0).all()
