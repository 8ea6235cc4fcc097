"""Video crops: frames, keypoints and compact masks map to the same crop coordinates, and the part
of a crop beyond the frame is the padding colour, never stretched edge pixels (closed form)."""

import numpy as np
import pytest

from lwgan.recovery.frames import FrameSource, find_sources, select_shard
from lwgan.recovery.observation import PersonObservation
from lwgan.recovery.video import (
    CROP_PADDING,
    CROP_PADDING_COLOUR,
    Detections,
    crop_frame,
    crop_observation,
    detect_frames,
    video_crop,
)


def observation_with_rectangle(image_size, rectangle):
    """A person whose mask is an axis-aligned rectangle (x0, y0, x1, y1) and whose nose is its centre."""
    height, width = image_size
    mask = np.zeros(image_size, np.float32)
    x0, y0, x1, y1 = rectangle
    mask[y0:y1, x0:x1] = 1.0
    keypoints = np.zeros((23, 3), np.float32)
    keypoints[0] = [(x0 + x1) / 2, (y0 + y1) / 2, 1.0]
    return PersonObservation(image_size=image_size, keypoints=keypoints, world_landmarks=None, mask=mask,
                             box=np.array(rectangle, np.float32))


def test_crop_maps_pixels_keypoints_and_masks_consistently():
    image_size = (240, 320)
    rectangle = (100, 60, 180, 200)  # 80 x 140 pixels
    observations = [observation_with_rectangle(image_size, rectangle), None]
    frames = [np.zeros((*image_size, 3), np.uint8)] * 2
    detections = detect_frames(frames, lambda stream: (observations.pop(0) for _ in stream), "clip")
    assert detections.found.tolist() == [True, False]
    crop = video_crop(detections, margin=1.5)
    assert np.allclose(crop, [140 - 105, 130 - 105, 210])  # centre (140, 130), side 1.5 x 140
    size = 105  # half scale
    cropped = crop_observation(detections, 0, crop, size)
    # The nose at the rectangle's centre lands at the crop's centre.
    assert np.allclose(cropped.keypoints[0, :2], [52.5, 52.5])
    # The compact mask, mapped back: a 40 x 70 rectangle centred in the crop.
    expected = np.zeros((size, size), bool)
    expected[52 - 35 + 1 : 52 + 35, 52 - 20 + 1 : 52 + 20] = True  # interior, a pixel inside the edges
    assert (cropped.mask[expected] > 0.9).all()
    assert abs((cropped.mask > 0.5).sum() - 40 * 70) < 0.05 * 40 * 70
    # A bright pixel in the frame lands where its coordinates map.
    frame = np.zeros((*image_size, 3), np.uint8)
    frame[100:102, 140:142] = 255  # pixels centred at (141, 101) in continuous coordinates
    crop_image = crop_frame(frame, crop, size)
    row, column = np.unravel_index(crop_image[..., 0].argmax(), crop_image.shape[:2])
    assert (column + 0.5, row + 0.5) == pytest.approx(((141 - crop[0]) / 2, (101 - crop[1]) / 2), abs=0.6)



@pytest.mark.parametrize(("frame_size", "crop", "inside"), [
    ((60, 40), (-10, 0, 60), (slice(0, 60), slice(10, 50))),  # portrait: columns padded on both sides
    ((40, 60), (0, -10, 60), (slice(10, 50), slice(0, 60))),  # landscape: rows padded above and below
    ((50, 40), (-15, -5, 60), (slice(5, 55), slice(15, 55))),  # beyond all four edges
])
def test_a_crop_beyond_the_frame_is_the_frame_in_the_padding_colour(frame_size, crop, inside):
    frame = np.random.default_rng(0).integers(1, 255, (*frame_size, 3), dtype=np.uint8)
    cropped = crop_frame(frame, np.array(crop, np.float32), 60)  # one frame pixel per crop pixel
    expected = np.empty((60, 60, 3), np.uint8)
    expected[:] = CROP_PADDING_COLOUR
    expected[inside] = frame
    np.testing.assert_array_equal(cropped, expected)
    assert CROP_PADDING == "constant"
    # The frame has no pixel of the padding colour, so the comparison would catch any edge row or
    # column repeated (stretched) or mirrored into the padding.


def test_a_shrinking_crop_averages_the_frame_and_pads_beyond_it():
    frame = np.random.default_rng(1).integers(0, 256, (240, 160, 3), dtype=np.uint8)
    cropped = crop_frame(frame, np.array([-40, 0, 240], np.float32), 60)  # quarter scale, 40 frame pixels beyond each side
    block_means = frame.reshape(60, 4, 40, 4, 3).astype(np.float64).mean(axis=(1, 3))  # each crop pixel covers 4 x 4 frame pixels
    np.testing.assert_allclose(cropped[:, 10:50], block_means, atol=1)  # (bilinear sampling would average 2 x 2 of them: std twice as large)
    assert (cropped[:, :10] == CROP_PADDING_COLOUR).all() and (cropped[:, 50:] == CROP_PADDING_COLOUR).all()


@pytest.mark.parametrize(("image_size", "rectangle", "expected"), [
    ((240, 320), (250, 60, 310, 200), [320 - 210, 25, 210]),  # near the right edge: moved left, inside the image
    ((240, 320), (10, 10, 60, 230), [-5, -45, 330]),  # larger than the image: centred on it, not on the person
])
def test_crop_moves_inside_the_image_and_keeps_the_person(image_size, rectangle, expected):
    detections = detect_frames([np.zeros((*image_size, 3), np.uint8)], lambda stream: (observation_with_rectangle(image_size, rectangle) for _ in stream), "clip")
    crop = video_crop(detections, margin=1.5)
    assert np.allclose(crop, expected)
    x0, y0, side = crop
    assert x0 <= rectangle[0] and y0 <= rectangle[1] and x0 + side >= rectangle[2] and y0 + side >= rectangle[3]


def test_detections_round_trip(tmp_path):
    image_size = (50, 60)
    observations = [observation_with_rectangle(image_size, (10, 5, 30, 45)), None, observation_with_rectangle(image_size, (20, 10, 40, 40))]
    detections = detect_frames([np.zeros((*image_size, 3), np.uint8)] * 3, lambda stream: (observations.pop(0) for _ in stream), "clip")
    detections.save(tmp_path / "d.npz")
    loaded = Detections.load(tmp_path / "d.npz")
    assert loaded.image_size == image_size and loaded.found.tolist() == [True, False, True]
    assert all(np.array_equal(a, b) for a, b in zip(loaded.masks, detections.masks))
    assert np.array_equal(loaded.keypoints, detections.keypoints, equal_nan=True)


def test_frames_of_different_sizes_are_an_error():
    frames = [np.zeros((10, 10, 3), np.uint8), np.zeros((12, 10, 3), np.uint8)]
    with pytest.raises(ValueError, match="clip: frame 1"):
        detect_frames(frames, lambda stream: (None for _ in stream), "clip")


def test_sources_and_shards(tmp_path):
    from PIL import Image

    for name in ("b_video", "a_video"):
        (tmp_path / name).mkdir()
        for index in range(2):
            Image.new("RGB", (8, 8)).save(tmp_path / name / f"{index}.png")
    (tmp_path / "notes.txt").write_text("not a video")
    sources = find_sources(tmp_path)
    assert [s.name for s in sources] == ["a_video", "b_video"]
    assert [s.name for s in select_shard(sources, "1/2")] == ["b_video"]
    assert len(list(FrameSource("a", tmp_path / "a_video").frames())) == 2
    with pytest.raises(ValueError, match="i/n"):
        select_shard(sources, "2")
    with pytest.raises(ValueError, match=r"\[0, n\)"):
        select_shard(sources, "2/2")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        find_sources(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="not a video"):
        find_sources(tmp_path / "notes.txt")
