"""Source and donor photos for the synthesis tasks: find the person, crop square around them, fit the body."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lwgan.body.model import BodyModel
from lwgan.io.images import load_image
from lwgan.recovery.clothing import ClothingSettings, fit_clothing
from lwgan.recovery.detector import PoseDetector
from lwgan.recovery.fitting import FitSettings, fit_bodies
from lwgan.recovery.observation import box_side
from lwgan.recovery.video import crop_frame, crop_observation, detect_frames, video_crop

logger = logging.getLogger(__name__)

ImageInput = str | os.PathLike | np.ndarray
"""A photo: a file path, or an (H, W, 3) uint8 RGB array."""

MIN_PERSON_SIZE = 80.0
"""Smallest person a photo may show: the longer side of the detector's box, in the photo's pixels. Below it
the frames magnify the photo's few pixels of the person more than about 2.5 times (at 256 px) and the
face and hands are lost; the `min_person_size` setting lowers it."""

MAX_KEYPOINT_ERROR = 0.2
"""Largest mean distance between a photo's fitted body keypoints and the detected ones, as a part of the crop's
side (good fits: about 0.02; a 64 x 64 photo's blob: 0.4). The `max_keypoint_error` setting raises it."""


@dataclass(frozen=True)
class PhotoPerson:
    """One photo cropped square around its person, with the fitted body (numpy float32).

    name: the file name (or "image <i>" for arrays), for messages.
    image: (S, S, 3) uint8 RGB crop; mask: (S, S) float32 in [0, 1], the detector's person mask.
    pose: (24, 3) SMPL axis-angle in the image orientation; shape: (K,); camera: (3,) weak
        perspective (s, tx, ty) in the crop's NDC; offsets: (V,) the person's clothing along the
        body's normals in metres (lwgan.body.clothing; shared by all photos of one person, zeros
        when clothing is off).
    """

    name: str
    image: np.ndarray
    mask: np.ndarray
    pose: np.ndarray
    shape: np.ndarray
    camera: np.ndarray
    offsets: np.ndarray


def as_image_list(images: ImageInput | list[ImageInput] | tuple[ImageInput, ...], argument: str, most: int | None = None) -> list[ImageInput]:
    """One photo or a list of photos -> a non-empty list (at most `most`), with a clear error naming `argument`."""
    photos = list(images) if isinstance(images, (list, tuple)) else [images]
    if not photos:
        raise ValueError(f"{argument}: no photo given")
    if most is not None and len(photos) > most:
        raise ValueError(f"{argument}: at most {most} photos, got {len(photos)}")
    return photos


def read_photo(photo: ImageInput, index: int) -> tuple[str, np.ndarray]:
    """(name, (H, W, 3) uint8 RGB) of a path or an array; arrays are checked."""
    if isinstance(photo, np.ndarray):
        if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
            raise ValueError(f"image {index}: expected an (H, W, 3) uint8 RGB array, got {photo.shape} {photo.dtype}")
        return f"image {index}", photo
    return str(photo), load_image(photo)


def fit_photos(
    photos: list[ImageInput],
    body: BodyModel,
    image_size: int,
    margin: float = 1.3,
    settings: FitSettings | None = None,
    clothing: ClothingSettings | None = None,
    min_person_size: float = MIN_PERSON_SIZE,
    max_keypoint_error: float = MAX_KEYPOINT_ERROR,
) -> list[PhotoPerson]:
    """Detect the person in each photo, crop a square of `margin` x the person's extent, fit the bodies together.

    Then, unless `clothing` is None, one clothing field for the person from all the photos' masks
    (lwgan.recovery.clothing.fit_clothing); the photos show one person.

    Raises lwgan.recovery.detector.NoPersonError (naming the file) when a photo shows nobody, the
    loading errors of lwgan.io.images.load_image, and ValueError naming the photo, what was measured
    and the setting that allows it, for a person under `min_person_size` pixels (check_person_size)
    and for a fit whose keypoint error is over `max_keypoint_error` of the crop (check_fit_error).
    """
    named = [read_photo(photo, index) for index, photo in enumerate(photos)]
    crops, observations = [], []
    with PoseDetector(min_person_size=0.0) as detector:  # the size is checked here (check_person_size), naming the setting
        for name, image in named:
            detections = detect_frames([image], lambda frames, name=name: (detector.detect(frame, name=name) for frame in frames), name)
            check_person_size(name, detections.boxes[0], min_person_size)
            crop = video_crop(detections, margin)
            crops.append(crop_frame(image, crop, image_size))
            observations.append(crop_observation(detections, 0, crop, image_size))
    fits = fit_bodies(body, observations, settings, progress=True)
    vertex_count = len(body.mirror_vertices)
    offsets = np.zeros(vertex_count, np.float32) if clothing is None else fit_clothing(body, observations, fits, clothing)
    people = []
    for index, ((name, _), crop_image, observation) in enumerate(zip(named, crops, observations, strict=True)):
        mask = np.zeros((image_size, image_size), np.float32) if observation.mask is None else observation.mask.astype(np.float32)
        people.append(PhotoPerson(name, crop_image, mask, fits.pose[index], fits.shape[index], fits.camera[index], offsets))
        logger.info("%s: fitted, keypoint error %.1f px at %d px", name, float(fits.losses["keypoint_error_px"][index]), image_size)
        check_fit_error(name, float(fits.losses["keypoint_error_px"][index]), image_size, max_keypoint_error)
    return people


def check_person_size(name: str, box: np.ndarray, min_person_size: float) -> None:
    """ValueError naming the photo when its person's (4,) box (x0, y0, x1, y1, photo pixels) is under min_person_size on its longer side."""
    size = float(box_side(box))
    if size < min_person_size:
        raise ValueError(f"{name}: the person is only {size:.0f} px tall or wide; a usable fit and texture need at least "
                         f"{min_person_size:.0f} px (min_person_size): use a larger photo, or min_person_size={math.floor(size)} to go on anyway")


def check_fit_error(name: str, error_px: float, image_size: int, max_keypoint_error: float) -> None:
    """ValueError naming the photo when its fit misses the detected keypoints by more than max_keypoint_error of the crop's side on average."""
    error = error_px / image_size
    if error > max_keypoint_error:
        raise ValueError(f"{name}: the fitted body misses the person's keypoints by {error_px:.0f} px on average at {image_size} px "
                         f"({error:.2f} of the picture; at most {max_keypoint_error:g} is used, max_keypoint_error): the photo may be too "
                         f"small or blurred, or the person cut off or hidden; max_keypoint_error={math.ceil(error * 100) / 100:g} to go on anyway")


def read_background(path: str | os.PathLike, size: int) -> np.ndarray:
    """A user's background picture resized (and centre-cropped) to (size, size, 3) uint8."""
    image = load_image(Path(path))
    side = min(image.shape[:2])
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    square = image[top : top + side, left : left + side]
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
