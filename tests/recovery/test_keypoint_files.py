"""Keypoint files: the skier's COCO annotation read back exactly; OpenPose BODY_25 / COCO-18 index mapping; bad files."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lwgan.body.skeleton import BODY_KEYPOINT_NAMES
from lwgan.recovery.detector import NoPersonError
from lwgan.recovery.keypoint_files import (
    read_coco_keypoints,
    read_keypoints,
    read_openpose_keypoints,
)

ANNOTATION = Path(__file__).parent.parent / "data" / "coco_skier" / "annotation.json"

BODY_25 = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
    "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)
"""OpenPose's BODY_25 output order, as its documentation lists it."""
COCO_18 = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
)
"""OpenPose's COCO-18 output order."""


def openpose_name(body_name: str) -> str:
    """left_big_toe -> LBigToe, nose -> Nose (OpenPose's spelling of our names)."""
    side, _, part = body_name.partition("_")
    if side in ("left", "right"):
        return side[0].upper() + "".join(word.capitalize() for word in part.split("_"))
    return body_name.capitalize()


def write_json(path: Path, value) -> Path:
    path.write_text(json.dumps(value))
    return path


def test_coco_skier_reads_back_exactly():
    raw = json.loads(ANNOTATION.read_text())
    annotation = raw["annotations"][0]
    observation = read_coco_keypoints(ANNOTATION)
    assert observation.image_size == (raw["images"][0]["height"], raw["images"][0]["width"]) == (425, 640)
    values = np.array(annotation["keypoints"], dtype=np.float64).reshape(17, 3)
    np.testing.assert_array_equal(observation.keypoints[:17, :2], values[:, :2])
    np.testing.assert_array_equal(observation.keypoints[:17, 2], (values[:, 2] > 0).astype(np.float32))
    assert np.all(observation.keypoints[17:] == 0)  # COCO-17 has no foot points
    x, y, width, height = annotation["bbox"]
    np.testing.assert_allclose(observation.box, [x, y, x + width, y + height], rtol=1e-6)
    assert observation.world_landmarks is None


def test_coco_polygon_mask():
    """The mask matches PIL's rasterisation of the polygon, and its area COCO's own 'area'."""
    annotation = json.loads(ANNOTATION.read_text())["annotations"][0]
    mask = read_coco_keypoints(ANNOTATION).mask
    assert mask.dtype == np.float32 and mask.shape == (425, 640) and set(np.unique(mask)) <= {0.0, 1.0}
    canvas = Image.new("L", (640, 425), 0)
    ImageDraw.Draw(canvas).polygon(annotation["segmentation"][0], fill=1)
    reference = np.asarray(canvas).astype(bool)
    inside = mask > 0.5
    iou = (inside & reference).sum() / (inside | reference).sum()
    assert iou > 0.97
    assert abs(inside.sum() - annotation["area"]) / annotation["area"] < 0.02


def test_coco_picks_the_image_and_the_largest_person(tmp_path, caplog):
    raw = json.loads(ANNOTATION.read_text())
    skier = raw["annotations"][0]
    small = dict(skier, id=1, area=100.0, keypoints=[v / 4 if i % 3 != 2 else v for i, v in enumerate(skier["keypoints"])])
    other_image = dict(skier, id=2, image_id=9, area=1e6)
    raw["images"].append({"id": 9, "file_name": "other.jpg", "height": 100, "width": 100})
    raw["annotations"] = [small, skier, other_image]
    path = write_json(tmp_path / "people.json", raw)
    with caplog.at_level(logging.WARNING, logger="lwgan.recovery.keypoint_files"):
        by_name = read_coco_keypoints(path, image="photos/000000000785.jpg")
    assert "people.json" in caplog.text and "2 people" in caplog.text
    by_id = read_coco_keypoints(path, image=785)
    expected = np.array(skier["keypoints"], dtype=np.float32).reshape(17, 3)[:, :2]
    np.testing.assert_array_equal(by_name.keypoints[:17, :2], expected)
    np.testing.assert_array_equal(by_id.keypoints[:17, :2], expected)
    assert read_coco_keypoints(path, image="other.jpg").image_size == (100, 100)
    with pytest.raises(ValueError, match="people.json.*nothing.jpg"):
        read_coco_keypoints(path, image="nothing.jpg")
    with pytest.raises(NoPersonError, match="people.json.*12345"):
        read_coco_keypoints(path, image=12345, image_size=(10, 10))
    with pytest.raises(ValueError, match="differs"):
        read_coco_keypoints(path, image=785, image_size=(400, 600))


def test_coco_wholebody_feet_results_scores_and_rle(tmp_path):
    mask = np.zeros((3, 4), dtype=np.uint8)
    mask[1, 1:3] = 1
    mask[2, 2] = 1
    column_major = mask.T.reshape(-1).tolist()  # COCO RLE runs go down the columns, 0s first
    counts, current, run = [], 0, 0
    for value in column_major:
        if value != current:
            counts.append(run)
            current, run = value, 0
        run += 1
    counts.append(run)
    feet = [float(v) for point in range(6) for v in (10 + point, 20 + point, 2 if point != 1 else 0)]
    keypoints = [v for point in range(17) for v in (point, 2 * point, 0.25 + point / 40)]
    annotation = {"image_id": 1, "category_id": 1, "keypoints": keypoints, "foot_kpts": feet,
                  "segmentation": {"size": [3, 4], "counts": counts}}
    observation = read_coco_keypoints(write_json(tmp_path / "wholebody.json", [annotation]), image_size=(3, 4))
    np.testing.assert_array_equal(observation.mask, mask.astype(np.float32))
    np.testing.assert_allclose(observation.keypoints[:17, 2], [0.25 + point / 40 for point in range(17)], rtol=1e-6)
    np.testing.assert_array_equal(observation.keypoints[17:, 0], [10, 11, 12, 13, 14, 15])
    np.testing.assert_array_equal(observation.keypoints[17:, 2], [1, 0, 1, 1, 1, 1])
    np.testing.assert_allclose(observation.box, [0, 0, 16, 32])  # no bbox: the labelled keypoints' box


@pytest.mark.parametrize("layout", [BODY_25, COCO_18])
def test_openpose_indices(tmp_path, layout):
    """Point i of the file has x = 100 + i, y = 300 - i, confidence (i + 1) / 30: each lands under its own name."""
    values = [v for index in range(len(layout)) for v in (100.0 + index, 300.0 - index, (index + 1) / 30)]
    path = write_json(tmp_path / "frame_keypoints.json", {"version": 1.3, "people": [{"pose_keypoints_2d": values}]})
    observation = read_openpose_keypoints(path, image_size=(480, 640))
    assert observation.image_size == (480, 640) and observation.mask is None and observation.world_landmarks is None
    for body_index, name in enumerate(BODY_KEYPOINT_NAMES):
        if openpose_name(name) in layout:
            index = layout.index(openpose_name(name))
            np.testing.assert_allclose(observation.keypoints[body_index], [100 + index, 300 - index, (index + 1) / 30], rtol=1e-6)
        else:
            assert observation.keypoints[body_index, 2] == 0, name
    assert read_keypoints(path, image_size=(480, 640)).keypoints.tobytes() == observation.keypoints.tobytes()


def test_openpose_largest_person_and_errors(tmp_path, caplog):
    small = [v for index in range(25) for v in (10.0 + index, 10.0 + index, 0.9)]
    large = [v for index in range(25) for v in (10.0 + 8 * index, 10.0 + 9 * index, 0.8)]
    missing = [0.0] * 75
    path = write_json(tmp_path / "two.json", {"people": [{"pose_keypoints_2d": small}, {"pose_keypoints_2d": large},
                                                          {"pose_keypoints_2d": missing}, {"face_keypoints_2d": [1.0]}]})
    with caplog.at_level(logging.WARNING, logger="lwgan.recovery.keypoint_files"):
        observation = read_openpose_keypoints(path, image_size=(400, 400))
    assert "two.json" in caplog.text and "2 people" in caplog.text
    assert observation.keypoints[0, 0] == 10.0 and observation.keypoints[BODY_KEYPOINT_NAMES.index("right_heel"), 0] == 10.0 + 8 * 24

    with pytest.raises(ValueError, match=r"short.json.*75 or 54 numbers, got 74"):
        read_openpose_keypoints(write_json(tmp_path / "short.json", {"people": [{"pose_keypoints_2d": [0.5] * 74}]}), (10, 10))
    with pytest.raises(NoPersonError, match="nobody.json"):
        read_openpose_keypoints(write_json(tmp_path / "nobody.json", {"version": 1.3, "people": []}), (10, 10))
    (tmp_path / "broken.json").write_text('{"people": [')
    with pytest.raises(ValueError, match="broken.json.*not valid JSON"):
        read_keypoints(tmp_path / "broken.json", image_size=(10, 10))
    with pytest.raises(ValueError, match="image_size"):
        read_keypoints(path)
    with pytest.raises(FileNotFoundError, match="absent.json"):
        read_keypoints(tmp_path / "absent.json")
    with pytest.raises(ValueError, match="bad_coco.json.*51 numbers, got 50"):
        read_coco_keypoints(write_json(tmp_path / "bad_coco.json", [{"keypoints": [1] * 50}]), image_size=(10, 10))
    with pytest.raises(ValueError, match="other.json.*not a COCO keypoint file"):
        read_keypoints(write_json(tmp_path / "other.json", {"hello": 1}))


def test_polygon_masks_sample_pixel_centres(tmp_path):
    """Two polygons (a square and a slanted triangle): a pixel is in when its centre is inside one of them."""
    square = [1.0, 1.0, 4.0, 1.0, 4.0, 3.0, 1.0, 3.0]
    triangle = [6.2, 0.3, 11.7, 2.1, 7.1, 5.8]
    annotation = {"keypoints": [5.0] * 51, "segmentation": [square, triangle]}
    mask = read_coco_keypoints(write_json(tmp_path / "shapes.json", annotation), image_size=(7, 12)).mask
    rows, columns = np.mgrid[0:7, 0:12]
    x, y = columns + 0.5, rows + 0.5
    in_square = (x >= 1) & (x < 4) & (y >= 1) & (y < 3)
    corners = np.array(triangle).reshape(3, 2)
    sides = []
    for (ax, ay), (bx, by) in zip(corners, np.roll(corners, -1, axis=0)):
        sides.append((bx - ax) * (y - ay) - (by - ay) * (x - ax) > 0)
    in_triangle = np.all(sides, axis=0) | ~np.any(sides, axis=0)
    np.testing.assert_array_equal(mask, (in_square | in_triangle).astype(np.float32))
