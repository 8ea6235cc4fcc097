"""PoseDetector on real photos: COCO ground truth for the skier, a back view, several people, tiny people, bad input, video."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lwgan.body.skeleton import BODY_KEYPOINT_NAMES, COCO17_MIRROR, COCO17_NAMES
from lwgan.io.images import load_image
from lwgan.recovery.detector import NoPersonError, PersonTooSmallError, PoseDetector
from lwgan.recovery.observation import PersonObservation

DATA = Path(__file__).parent.parent / "data"
SKIER = DATA / "coco_skier" / "000000000785.jpg"
LUNGE = DATA / "pexels_lunge" / "pexels-anete-lusina-4793258_512.jpg"


@pytest.fixture(scope="module")
def detector():
    with PoseDetector() as built:
        yield built


@pytest.fixture(scope="module")
def skier_truth():
    """COCO ground truth read straight from the json: (17, 3) keypoints x, y, v; bbox; (H, W) polygon mask."""
    annotation = json.loads((DATA / "coco_skier" / "annotation.json").read_text())["annotations"][0]
    keypoints = np.array(annotation["keypoints"], dtype=np.float64).reshape(17, 3)
    canvas = Image.new("L", (640, 425), 0)
    for polygon in annotation["segmentation"]:
        ImageDraw.Draw(canvas).polygon(polygon, fill=1)
    return keypoints, np.array(annotation["bbox"]), np.asarray(canvas).astype(bool)


@pytest.fixture(scope="module")
def skier(detector):
    return detector.detect(load_image(SKIER), name=str(SKIER))


@pytest.fixture(scope="module")
def lunge(detector):
    return detector.detect(load_image(LUNGE), name=str(LUNGE))


def errors_in_percent(keypoints: np.ndarray, truth: np.ndarray, height: float) -> np.ndarray:
    """(17,) distance of the detected COCO-17 keypoints to the truth, in % of the person's bbox height."""
    return np.linalg.norm(keypoints[:17, :2] - truth[:, :2], axis=1) / height * 100.0


def report(title: str, names, values, unit: str) -> None:
    print(f"\n{title}")
    for name, value in zip(names, values):
        print(f"  {name:16s} {value:7.2f} {unit}")


def test_skier_keypoints_match_coco_ground_truth(skier, skier_truth):
    truth, bbox, _ = skier_truth
    labelled = truth[:, 2] > 0
    errors = errors_in_percent(skier.keypoints, truth, bbox[3])
    report("skier: keypoint error (% of the GT bbox height)", COCO17_NAMES, errors, "%")
    within = int(np.sum((errors < 10.0) & labelled))
    print(f"  within 10%: {within} of {int(labelled.sum())}")
    assert within >= 14
    assert np.median(errors[labelled]) < 5.0


def test_skier_left_and_right_are_not_swapped(skier, skier_truth):
    """Every left/right pair is nearer the GT of its own side than the GT of the mirrored side."""
    truth, _, _ = skier_truth
    detected = skier.keypoints[:17, :2]
    for index, partner in enumerate(COCO17_MIRROR):
        if partner == index:
            continue
        own = np.linalg.norm(detected[index] - truth[index, :2])
        swapped = np.linalg.norm(detected[index] - truth[partner, :2])
        assert own < swapped, f"{COCO17_NAMES[index]} lies nearer the GT {COCO17_NAMES[partner]}"


def test_skier_mask_matches_coco_polygon(skier, skier_truth):
    _, bbox, truth_mask = skier_truth
    assert skier.mask.dtype == np.float32 and skier.mask.shape == (425, 640)
    assert 0.0 <= skier.mask.min() and skier.mask.max() <= 1.0
    detected = skier.mask > 0.5
    iou = (detected & truth_mask).sum() / (detected | truth_mask).sum()
    print(f"\nskier: mask IoU with the COCO polygon {iou:.3f}")
    assert iou > 0.8
    x0, y0, x1, y1 = skier.box
    box_iou = (min(x1, bbox[0] + bbox[2]) - max(x0, bbox[0])) * (min(y1, bbox[1] + bbox[3]) - max(y0, bbox[1]))
    box_iou /= (x1 - x0) * (y1 - y0) + bbox[2] * bbox[3] - box_iou
    assert box_iou > 0.85


def test_observation_layout(skier):
    assert isinstance(skier, PersonObservation) and skier.image_size == (425, 640)
    assert skier.keypoints.dtype == np.float32 and skier.keypoints.shape == (len(BODY_KEYPOINT_NAMES), 3)
    assert skier.world_landmarks.dtype == np.float32 and skier.world_landmarks.shape == (len(BODY_KEYPOINT_NAMES), 3)
    small_toes = [BODY_KEYPOINT_NAMES.index("left_small_toe"), BODY_KEYPOINT_NAMES.index("right_small_toe")]
    assert np.all(skier.keypoints[small_toes, 2] == 0)
    others = np.delete(np.arange(len(BODY_KEYPOINT_NAMES)), small_toes)
    assert np.all(skier.keypoints[others, 2] > 0.5)  # the whole body is in view
    # Feet: heels and big toes lie near the ankles, below the knees.
    for side in ("left", "right"):
        ankle = skier.keypoints[BODY_KEYPOINT_NAMES.index(f"{side}_ankle"), :2]
        for part in ("big_toe", "heel"):
            point = skier.keypoints[BODY_KEYPOINT_NAMES.index(f"{side}_{part}"), :2]
            assert np.linalg.norm(point - ankle) < 0.15 * 347


def test_world_landmarks_axes(skier, lunge):
    """World x, y are the image's x, y up to a positive scale; z is smaller for nearer points.

    The skier faces the camera (her eyes are labelled visible in COCO), so her nose is nearer
    than her ears; the lifter is seen from behind, so his nose is farther than his ears.
    """
    for observation in (skier, lunge):
        seen = observation.keypoints[:, 2] > 0.5
        world = observation.world_landmarks[seen, :2]
        pixels = observation.keypoints[seen, :2]
        design = np.zeros((2 * seen.sum(), 3))
        design[:, 0] = world.reshape(-1)
        design[0::2, 1] = 1.0
        design[1::2, 2] = 1.0
        solution, residual, _, _ = np.linalg.lstsq(design, pixels.reshape(-1), rcond=None)
        rms = np.sqrt(residual[0] / seen.sum())
        extent = np.ptp(pixels[:, 1])
        print(f"\nworld -> pixels: scale {solution[0]:.1f} px/m, rms {rms:.1f} px over a {extent:.0f} px person")
        assert solution[0] > 0 and rms < 0.06 * extent
        assert np.abs(observation.world_landmarks[seen]).max() < 1.5  # metres, around the hips
    ears = [BODY_KEYPOINT_NAMES.index("left_ear"), BODY_KEYPOINT_NAMES.index("right_ear")]
    assert skier.world_landmarks[0, 2] < skier.world_landmarks[ears, 2].mean()
    assert lunge.world_landmarks[0, 2] > lunge.world_landmarks[ears, 2].mean()


def test_back_view(lunge):
    """The lifter seen from behind: found, keypoints inside the image, his left on the image's left."""
    report("lunge: keypoint confidence", BODY_KEYPOINT_NAMES, lunge.keypoints[:, 2], "")
    height, width = lunge.image_size
    seen = lunge.keypoints[:, 2] > 0.5
    assert seen.sum() >= 17
    assert np.all((lunge.keypoints[seen, 0] >= 0) & (lunge.keypoints[seen, 0] <= width))
    assert np.all((lunge.keypoints[seen, 1] >= 0) & (lunge.keypoints[seen, 1] <= height))
    for part in ("shoulder", "hip"):
        left = lunge.keypoints[BODY_KEYPOINT_NAMES.index(f"left_{part}"), 0]
        right = lunge.keypoints[BODY_KEYPOINT_NAMES.index(f"right_{part}"), 0]
        assert left < right
    assert 0.03 < (lunge.mask > 0.5).mean() < 0.3


def test_no_person(detector):
    gradient = np.broadcast_to(np.linspace(30, 220, 640).astype(np.uint8)[None, :, None], (480, 640, 3)).copy()
    with pytest.raises(NoPersonError, match="no person found in gradient.png"):
        detector.detect(gradient, name="gradient.png")
    snow = load_image(SKIER)[:, :250].copy()  # the slope left of the skier: snow and poles
    with pytest.raises(NoPersonError, match="snow crop"):
        detector.detect(snow, name="snow crop")


@pytest.mark.parametrize("skier_scale", [1.0, 0.6])
def test_two_people_keeps_the_larger(detector, skier, lunge, skier_scale, caplog):
    """Skier photo and lunge photo side by side: the larger person (by their own boxes) comes back."""
    import cv2

    skier_image = cv2.resize(load_image(SKIER), None, fx=skier_scale, fy=skier_scale, interpolation=cv2.INTER_AREA)
    lunge_image = load_image(LUNGE)
    height = max(skier_image.shape[0], lunge_image.shape[0])
    canvas = np.full((height, skier_image.shape[1] + lunge_image.shape[1], 3), 128, np.uint8)
    canvas[: skier_image.shape[0], : skier_image.shape[1]] = skier_image
    canvas[: lunge_image.shape[0], skier_image.shape[1]:] = lunge_image
    skier_area = np.prod(skier.box[2:] - skier.box[:2]) * skier_scale**2
    lunge_area = np.prod(lunge.box[2:] - lunge.box[:2])
    if skier_area > lunge_area:
        expected, offset = skier.keypoints[:, :2] * skier_scale, np.array([0.0, 0.0])
    else:
        expected, offset = lunge.keypoints[:, :2], np.array([skier_image.shape[1], 0.0])
    with caplog.at_level(logging.WARNING, logger="lwgan.recovery.detector"):
        found = detector.detect(canvas, name="pair.jpg")
    assert any("pair.jpg" in record.getMessage() and "2 people" in record.getMessage() for record in caplog.records)
    error = np.linalg.norm(found.keypoints[:17, :2] - offset - expected[:17], axis=1)
    assert np.median(error) < 5.0, error


def test_tiny_person_is_found_by_the_tile_search(detector, skier_truth):
    """The skier photo at 1/4 size (the skier ~87 px tall) in a 1024 x 1024 canvas."""
    import cv2

    truth, bbox, _ = skier_truth
    scale = 0.25
    small = cv2.resize(load_image(SKIER), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.empty((1024, 1024, 3), np.uint8)
    canvas[:] = small[2, 2]
    top, left = 600, 380
    canvas[top: top + small.shape[0], left: left + small.shape[1]] = small
    found = detector.detect(canvas, name="tiny")
    keypoints = (found.keypoints[:17, :2] - [left, top]) / scale
    errors = errors_in_percent(keypoints, truth, bbox[3])
    report("tiny skier: keypoint error (% of the GT bbox height)", COCO17_NAMES, errors, "%")
    assert np.sum(errors < 10.0) >= 14


def test_too_small_person(detector, monkeypatch):
    with pytest.raises(NoPersonError, match="no person found in speck"):
        import cv2

        speck = cv2.resize(load_image(SKIER), None, fx=0.08, fy=0.08, interpolation=cv2.INTER_AREA)
        canvas = np.full((1024, 1024, 3), speck[1, 1], np.uint8)
        canvas[500: 500 + speck.shape[0], 500: 500 + speck.shape[1]] = speck
        detector.detect(canvas, name="speck")
    monkeypatch.setattr(detector, "min_person_size", 1000.0)
    with pytest.raises(PersonTooSmallError, match=r"skier.*only \d+ px"):
        detector.detect(load_image(SKIER), name="skier")


def test_file_variants_give_the_same_keypoints(detector, skier, tmp_path):
    """Grayscale, transparent-bordered and EXIF-rotated copies of the skier, read from files."""
    image = load_image(SKIER)
    Image.fromarray(image).convert("L").save(tmp_path / "grey.png")
    grey = detector.detect(tmp_path / "grey.png")
    border = 40
    rgba = np.zeros((425 + 2 * border, 640 + 2 * border, 4), np.uint8)
    rgba[border:-border, border:-border, :3] = image
    rgba[border:-border, border:-border, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "transparent.png")
    transparent = detector.detect(tmp_path / "transparent.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed after a 90 degree clockwise turn; stored turned anticlockwise
    Image.fromarray(image).transpose(Image.Transpose.ROTATE_90).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    rotated = detector.detect(tmp_path / "rotated.jpg")

    seen = skier.keypoints[:, 2] > 0.5
    assert grey.image_size == (425, 640) and rotated.image_size == (425, 640)
    for copy, shift in ((grey, 0), (transparent, border), (rotated, 0)):
        error = np.linalg.norm(copy.keypoints[seen, :2] - shift - skier.keypoints[seen, :2], axis=1)
        print(f"\nfile copy: keypoint offset median {np.median(error):.1f} px, max {error.max():.1f} px")
        assert np.median(error) < 4.0 and np.percentile(error, 90) < 10.0
    assert np.all(transparent.mask[:border] < 0.5)  # the white border is background


def test_bad_files_and_arrays(detector, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.jpg"):
        detector.detect(tmp_path / "nothing.jpg")
    data = SKIER.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="cut.jpg"):
        detector.detect(tmp_path / "cut.jpg")
    with pytest.raises(ValueError, match=r"uint8 \(H, W, 3\).*float32 \(10, 10, 3\)"):
        detector.detect(np.zeros((10, 10, 3), np.float32), name="floats")
    with pytest.raises(ValueError, match=r"\(10, 10\)"):
        detector.detect(np.zeros((10, 10), np.uint8))


def test_video_mode(detector, skier, caplog):
    """Frames of the skier sliding right, two empty frames in between: None there, tracked elsewhere."""
    image = load_image(SKIER)
    frames = [np.roll(image, 4 * index, axis=1) for index in range(7)]
    frames[3] = np.full_like(image, 200)
    frames[4] = np.full_like(image, 200)
    with caplog.at_level(logging.WARNING, logger="lwgan.recovery.detector"):
        results = list(detector.detect_video(frames, name="clip"))
    assert [result is None for result in results] == [False, False, False, True, True, False, False]
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "clip frame 3" in messages and "clip frame 4" in messages
    seen = skier.keypoints[:, 2] > 0.5
    for index, result in enumerate(results):
        if result is not None:
            assert result.mask.shape == (425, 640) and result.world_landmarks is not None
            error = np.linalg.norm(result.keypoints[seen, :2] - [4 * index, 0] - skier.keypoints[seen, :2], axis=1)
            assert np.median(error) < 6.0
    with pytest.raises(ValueError, match="clip frame 1"):
        list(detector.detect_video([image, image[:100]], name="clip"))


def test_closed_detector_refuses():
    with PoseDetector(max_people=1, tile_levels=0) as closing:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        closing.detect(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError):
        PoseDetector(min_confidence=2.0)
