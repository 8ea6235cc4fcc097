"""Source and donor photos for the synthesis tasks: find the person, crop square around them, fit the body."""

from __future__ import annotations

import logging
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
from lwgan.recovery.video import crop_frame, crop_observation, detect_frames, video_crop

logger = logging.getLogger(__name__)

ImageInput = str | os.PathLike | np.ndarray
"""A photo: a file path, or an (H, W, 3) uint8 RGB array."""


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
) -> list[PhotoPerson]:
    """Detect the person in each photo, crop a square of `margin` x the person's extent, fit the bodies together.

    Then, unless `clothing` is None, one clothing field for the person from all the photos' masks
    (lwgan.recovery.clothing.fit_clothing); the photos show one person.

    Raises lwgan.recovery.detector.NoPersonError (naming the file) when a photo shows nobody, and
    the loading errors of lwgan.io.images.load_image.
    """
    named = [read_photo(photo, index) for index, photo in enumerate(photos)]
    crops, observations = [], []
    with PoseDetector() as detector:
        for name, image in named:
            detections = detect_frames([image], lambda frames, name=name: (detector.detect(frame, name=name) for frame in frames), name)
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
    return people


def read_background(path: str | os.PathLike, size: int) -> np.ndarray:
    """A user's background picture resized (and centre-cropped) to (size, size, 3) uint8."""
    image = load_image(Path(path))
    side = min(image.shape[:2])
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    square = image[top : top + side, left : left + side]
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
