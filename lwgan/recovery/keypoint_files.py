"""Keypoints from files instead of the detector: COCO keypoint annotations and OpenPose JSON output."""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from lwgan.body.skeleton import BODY_KEYPOINT_NAMES
from lwgan.recovery.detector import NoPersonError
from lwgan.recovery.observation import PersonObservation

logger = logging.getLogger(__name__)

OPENPOSE_BODY25_FOR_BODY_KEYPOINTS = (0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11, 19, 20, 21, 22, 23, 24)
"""OpenPose BODY_25 index for each of BODY_KEYPOINT_NAMES (COCO-17, then left big toe, small toe,
heel, right big toe, small toe, heel). BODY_25: 0 nose, 1 neck, 2-4 right shoulder/elbow/wrist,
5-7 left shoulder/elbow/wrist, 8 mid hip, 9-11 right hip/knee/ankle, 12-14 left hip/knee/ankle,
15 right eye, 16 left eye, 17 right ear, 18 left ear, 19-21 left big toe/small toe/heel,
22-24 right big toe/small toe/heel."""

OPENPOSE_COCO18_FOR_BODY_KEYPOINTS = (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10, -1, -1, -1, -1, -1, -1)
"""OpenPose COCO-18 index for each of BODY_KEYPOINT_NAMES (-1: no foot points). COCO-18: 0 nose,
1 neck, 2-4 right shoulder/elbow/wrist, 5-7 left shoulder/elbow/wrist, 8-10 right hip/knee/ankle,
11-13 left hip/knee/ankle, 14 right eye, 15 left eye, 16 right ear, 17 left ear."""

_OPENPOSE_LAYOUTS = {75: OPENPOSE_BODY25_FOR_BODY_KEYPOINTS, 54: OPENPOSE_COCO18_FOR_BODY_KEYPOINTS}
_COCO_VALUES = 17 * 3
_FOOT_VALUES = 6 * 3


def read_keypoints(
    path: str | os.PathLike, image: int | str | None = None, image_size: tuple[int, int] | None = None
) -> PersonObservation:
    """Read a COCO keypoint file or an OpenPose JSON file, whichever `path` is (by its content).

    See read_coco_keypoints and read_openpose_keypoints for the arguments (`image` applies to COCO
    files only; OpenPose files need `image_size`).
    """
    path = Path(path)
    data = _load_json(path)
    if isinstance(data, dict) and "people" in data:
        if image_size is None:
            raise ValueError(f"{path}: an OpenPose file does not record the image size; pass image_size=(H, W)")
        return _openpose_observation(path, data, image_size)
    return _coco_observation(path, data, image, image_size)


def read_coco_keypoints(
    path: str | os.PathLike, image: int | str | None = None, image_size: tuple[int, int] | None = None
) -> PersonObservation:
    """One person from a COCO-format keypoint file.

    The file may be a COCO annotations file ({"images", "annotations", "categories"}), a list of
    annotations (COCO results format) or one annotation. The person is picked among the non-crowd
    person annotations with labelled keypoints, of the image given by `image` (its id, or its file
    name, compared without folders) or, when `image` is None, of the file's only image (or of all
    annotations); the largest one ("area", else the bbox area) when there are several, with a
    warning naming the file.

    Keypoints: the 17 COCO keypoints (x, y, v) are taken as they are (COCO's x, y are continuous
    pixel coordinates, the convention of lwgan.body.camera); confidence 1 where v is 1 or 2 and 0
    where v is 0 (not labelled). Values other than 0, 1, 2 (scores in results files) are clipped to
    [0, 1]. COCO-WholeBody's "foot_kpts" fill the 6 foot points; otherwise they have confidence 0.

    Mask: the "segmentation" polygons rasterised at the image size (pixel (i, j) is inside when
    its centre (j + 0.5, i + 0.5) is), or an uncompressed RLE; None when absent (or a compressed
    RLE string, which needs pycocotools: a warning says so). Box: "bbox" (x, y, w, h) as
    (x0, y0, x1, y1), else the box of the labelled keypoints.

    Args:
        path: the JSON file.
        image: COCO image id (int) or file name (str) to pick the annotations of; None for any.
        image_size: (H, W) of the image; needed when the file's "images" entry does not give it.
    Returns:
        PersonObservation (float32 arrays; world_landmarks None).
    Raises:
        FileNotFoundError; ValueError naming the file for malformed JSON, wrong keypoint lengths,
        an unknown image or a missing image size; NoPersonError when no person is annotated.
    """
    path = Path(path)
    return _coco_observation(path, _load_json(path), image, image_size)


def read_openpose_keypoints(path: str | os.PathLike, image_size: tuple[int, int]) -> PersonObservation:
    """One person from an OpenPose JSON file ({"people": [{"pose_keypoints_2d": [...]}, ...]}).

    pose_keypoints_2d holds 75 values (BODY_25: x, y, confidence per point) or 54 (COCO-18, no
    foot points); they are mapped to BODY_KEYPOINT_NAMES (OPENPOSE_BODY25_FOR_BODY_KEYPOINTS).
    x, y must be in pixels of the source image (OpenPose's default --keypoint_scale 0) and are
    taken as continuous pixel coordinates; confidence as OpenPose gives it, clipped to [0, 1]
    (OpenPose writes 0, 0, 0 for a point it did not find). With several people the largest (box of
    the found points) is kept, with a warning naming the file.

    Args:
        path: the JSON file.
        image_size: (H, W) of the image the keypoints belong to (OpenPose does not record it).
    Returns:
        PersonObservation (float32 arrays; world_landmarks and mask None).
    Raises:
        FileNotFoundError; ValueError naming the file for malformed JSON or wrong lengths;
        NoPersonError when the file has no people.
    """
    path = Path(path)
    return _openpose_observation(path, _load_json(path), image_size)


def _load_json(path: Path) -> Any:
    if not path.exists():
        raise FileNotFoundError(f"keypoint file not found: {path}")
    try:
        with path.open("r", encoding="utf-8") as handle:
            return json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    except IsADirectoryError as error:
        raise ValueError(f"{path}: a folder, not a keypoint file") from error


def _numbers(path: Path, values: Any, what: str, lengths: tuple[int, ...]) -> np.ndarray:
    """A JSON list of finite numbers of one of the given lengths -> float64 array."""
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{path}: {what} must be a list of numbers")
    if len(values) not in lengths:
        wanted = " or ".join(str(length) for length in lengths)
        raise ValueError(f"{path}: {what} must hold {wanted} numbers, got {len(values)}")
    array = np.array(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{path}: {what} holds a non-finite number")
    return array


def _check_size(path: Path, image_size: Any) -> tuple[int, int]:
    if (
        not isinstance(image_size, (tuple, list)) or len(image_size) != 2
        or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in image_size)
    ):
        raise ValueError(f"{path}: image_size must be (H, W), two positive integers, got {image_size!r}")
    return int(image_size[0]), int(image_size[1])


# -- COCO --------------------------------------------------------------------------------------


def _coco_observation(path: Path, data: Any, image: int | str | None, image_size) -> PersonObservation:
    if isinstance(data, dict) and "annotations" in data:
        annotations, images = data["annotations"], data.get("images", [])
        categories = data.get("categories", [])
    elif isinstance(data, list):
        annotations, images, categories = data, [], []
    elif isinstance(data, dict) and "keypoints" in data:
        annotations, images, categories = [data], [], []
    else:
        raise ValueError(f"{path}: not a COCO keypoint file (no 'annotations', no 'people' as in OpenPose)")
    if not isinstance(annotations, list) or not isinstance(images, list) or not isinstance(categories, list):
        raise ValueError(f"{path}: 'annotations', 'images' and 'categories' must be lists")
    person_ids = {c.get("id") for c in categories if isinstance(c, dict) and c.get("name") == "person"} or {1}

    image_entry = _coco_image_entry(path, images, image)
    if image_entry is not None:
        image_id = image_entry.get("id")
    elif isinstance(image, (int, np.integer)) and not isinstance(image, bool):
        image_id = int(image)
    elif image is not None:
        raise ValueError(f"{path}: no image named {image!r} in the file's 'images'")
    else:
        image_id = None

    people = []
    for annotation in annotations:
        if not isinstance(annotation, dict):
            raise ValueError(f"{path}: every annotation must be a JSON object")
        if image_id is not None and annotation.get("image_id") != image_id:
            continue
        if annotation.get("category_id", 1) not in person_ids or annotation.get("iscrowd", 0) or "keypoints" not in annotation:
            continue
        keypoints = _numbers(path, annotation.get("keypoints"), f"annotation {annotation.get('id', '?')} 'keypoints'", (_COCO_VALUES,))
        if np.any(keypoints[2::3] > 0):
            people.append((annotation, keypoints.reshape(17, 3)))
    where = f" for image {image!r}" if image is not None else ""
    if not people:
        raise NoPersonError(f"no person with labelled keypoints in {path}{where}")
    if len(people) > 1:
        logger.warning("%s: %d people annotated%s; using the largest", path, len(people), where)
    annotation, coco_keypoints = max(people, key=lambda person: _coco_area(person[0], person[1]))

    size = _coco_image_size(path, image_entry, image_size)
    keypoints = np.zeros((len(BODY_KEYPOINT_NAMES), 3), dtype=np.float64)
    keypoints[:17] = coco_keypoints
    if "foot_kpts" in annotation:
        keypoints[17:] = _numbers(path, annotation["foot_kpts"], "'foot_kpts'", (_FOOT_VALUES,)).reshape(6, 3)
    visibility = keypoints[:, 2]
    if np.all(np.isin(visibility, (0.0, 1.0, 2.0))):
        keypoints[:, 2] = visibility > 0
    else:
        keypoints[:, 2] = np.clip(visibility, 0.0, 1.0)

    mask = _coco_mask(path, annotation.get("segmentation"), size)
    if "bbox" in annotation:
        x, y, width, height = _numbers(path, annotation["bbox"], "'bbox'", (4,))
        box = np.array([x, y, x + width, y + height])
    else:
        labelled = keypoints[keypoints[:, 2] > 0, :2]
        box = np.concatenate([labelled.min(axis=0), labelled.max(axis=0)])
    return PersonObservation(
        image_size=size,
        keypoints=keypoints.astype(np.float32),
        world_landmarks=None,
        mask=mask,
        box=box.astype(np.float32),
    )


def _coco_image_entry(path: Path, images: list, image: int | str | None) -> dict | None:
    """The "images" entry for `image` (id or file name); the only entry when image is None."""
    entries = [entry for entry in images if isinstance(entry, dict)]
    if image is None:
        return entries[0] if len(entries) == 1 else None
    if isinstance(image, (int, np.integer)) and not isinstance(image, bool):
        matches = [entry for entry in entries if entry.get("id") == int(image)]
    else:
        name = Path(str(image)).name
        matches = [entry for entry in entries if Path(str(entry.get("file_name", ""))).name == name]
    return matches[0] if matches else None


def _coco_image_size(path: Path, image_entry: dict | None, image_size) -> tuple[int, int]:
    from_file = None
    if image_entry is not None and "height" in image_entry and "width" in image_entry:
        from_file = _check_size(path, (image_entry["height"], image_entry["width"]))
    if image_size is not None:
        image_size = _check_size(path, image_size)
        if from_file is not None and from_file != image_size:
            raise ValueError(f"{path}: image_size {image_size} differs from the file's {from_file} (a different image?)")
        return image_size
    if from_file is None:
        raise ValueError(f"{path}: the file does not give the image's height and width; pass image_size=(H, W)")
    return from_file


def _coco_area(annotation: dict, keypoints: np.ndarray) -> float:
    """Size of an annotated person: "area", else the bbox area, else the labelled keypoints' box area."""
    if isinstance(annotation.get("area"), (int, float)):
        return float(annotation["area"])
    bbox = annotation.get("bbox")
    if isinstance(bbox, list) and len(bbox) == 4:
        return float(bbox[2]) * float(bbox[3])
    labelled = keypoints[keypoints[:, 2] > 0, :2]
    return float(np.prod(labelled.max(axis=0) - labelled.min(axis=0)))


def _coco_mask(path: Path, segmentation: Any, image_size: tuple[int, int]) -> np.ndarray | None:
    """float32 (H, W) mask from COCO polygons or an uncompressed RLE; None when there is none."""
    height, width = image_size
    if segmentation is None or segmentation == []:
        return None
    if isinstance(segmentation, list):
        mask = np.zeros((height, width), dtype=bool)
        for index, polygon in enumerate(segmentation):
            if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2:
                raise ValueError(f"{path}: segmentation polygon {index} must be a list of at least 3 x, y pairs")
            points = _numbers(path, polygon, f"segmentation polygon {index}", (len(polygon),)).reshape(-1, 2)
            mask |= _polygon_mask(points, image_size)
        return mask.astype(np.float32)
    if isinstance(segmentation, dict) and "counts" in segmentation:
        counts, size = segmentation["counts"], segmentation.get("size")
        if isinstance(counts, str):
            logger.warning("%s: compressed RLE segmentation needs pycocotools; reading the keypoints without a mask", path)
            return None
        if list(size or []) != [height, width]:
            raise ValueError(f"{path}: RLE segmentation size {size} differs from the image size {[height, width]}")
        runs = _numbers(path, counts, "RLE 'counts'", (len(counts),)).astype(np.int64)
        if np.any(runs < 0) or runs.sum() != height * width:
            raise ValueError(f"{path}: RLE 'counts' must be non-negative and sum to H*W = {height * width}")
        # Runs alternate 0s and 1s, starting with 0s, over the pixels in column-major order.
        values = np.arange(len(runs)) % 2
        flat = np.repeat(values, runs).astype(np.float32)
        return flat.reshape(width, height).T.copy()
    raise ValueError(f"{path}: 'segmentation' must be a list of polygons or an RLE object")


def _polygon_mask(points: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """bool (H, W): pixels whose centre (j + 0.5, i + 0.5) lies inside the (N, 2) polygon (even-odd rule).

    Our own scanline fill because cv2.fillPoly and PIL's ImageDraw.polygon also fill every pixel
    the outline touches, which makes a person's mask about 2% larger than the polygon's area.
    """
    height, width = image_size
    start_x, start_y = points[:, 0], points[:, 1]
    end_x, end_y = np.roll(start_x, -1), np.roll(start_y, -1)
    rows = np.arange(max(0, int(np.floor(points[:, 1].min()))), min(height, int(np.ceil(points[:, 1].max())) + 1))
    centre_y = rows[:, None] + 0.5
    crosses = (start_y <= centre_y) != (end_y <= centre_y)  # (rows, edges): the edge spans the row's centre line
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing_x = start_x + (centre_y - start_y) / (end_y - start_y) * (end_x - start_x)
    crossing_x = np.sort(np.where(crosses, crossing_x, np.inf), axis=1)
    # Consecutive crossings pair up into spans; pixel j is inside when xa <= j + 0.5 < xb.
    pairs = crossing_x.shape[1] // 2
    span_start, span_end = crossing_x[:, 0 : 2 * pairs : 2], crossing_x[:, 1 : 2 * pairs : 2]
    valid = np.isfinite(span_start) & np.isfinite(span_end)
    first = np.clip(np.ceil(span_start[valid] - 0.5), 0, width).astype(np.int64)
    last = np.clip(np.ceil(span_end[valid] - 0.5), 0, width).astype(np.int64)
    row_of_span = np.broadcast_to(rows[:, None], valid.shape)[valid]
    change = np.zeros((height, width + 1), dtype=np.int64)
    np.add.at(change, (row_of_span, first), 1)
    np.add.at(change, (row_of_span, last), -1)
    return np.cumsum(change, axis=1)[:, :width] > 0


# -- OpenPose ----------------------------------------------------------------------------------


def _openpose_observation(path: Path, data: Any, image_size) -> PersonObservation:
    size = _check_size(path, image_size)
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise ValueError(f"{path}: not an OpenPose file (needs a 'people' list)")
    people = []
    for index, person in enumerate(data["people"]):
        if not isinstance(person, dict):
            raise ValueError(f"{path}: person {index} must be a JSON object")
        values = person.get("pose_keypoints_2d", [])
        if values == []:
            continue  # OpenPose writes empty lists for people found only by the face or hand detectors
        raw = _numbers(path, values, f"person {index} 'pose_keypoints_2d'", tuple(_OPENPOSE_LAYOUTS)).reshape(-1, 3)
        indices = np.array(_OPENPOSE_LAYOUTS[raw.size])
        keypoints = np.zeros((len(BODY_KEYPOINT_NAMES), 3), dtype=np.float64)
        keypoints[indices >= 0] = raw[indices[indices >= 0]]
        keypoints[:, 2] = np.clip(keypoints[:, 2], 0.0, 1.0)
        if np.any(keypoints[:, 2] > 0):
            people.append(keypoints)
    if not people:
        raise NoPersonError(f"no person in {path}")
    if len(people) > 1:
        logger.warning("%s: %d people; using the largest", path, len(people))

    def box_of(keypoints: np.ndarray) -> np.ndarray:
        found = keypoints[keypoints[:, 2] > 0, :2]
        return np.concatenate([found.min(axis=0), found.max(axis=0)])

    keypoints = max(people, key=lambda candidate: math.prod(box_of(candidate)[2:] - box_of(candidate)[:2]))
    return PersonObservation(
        image_size=size,
        keypoints=keypoints.astype(np.float32),
        world_landmarks=None,
        mask=None,
        box=box_of(keypoints).astype(np.float32),
    )
