"""Video crops: frames, keypoints and compact masks map to the same crop coordinates (closed form)."""

import numpy as np
import pytest

from lwgan.recovery.frames import FrameSource, find_sources, select_shard
from lwgan.recovery.observation import PersonObservation
from lwgan.recovery.video import (
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
