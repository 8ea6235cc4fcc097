"""What mesh recovery knows about the person in an image, and what fitting returns.

Square frames: fitting works in a square frame around the image (the image centred in a square
of side max(H, W), padded), so that the weak-perspective camera has one scale for x and y. Every
camera of the recovery code refers to the NDC of that square frame (lwgan.body.camera); pixel
coordinates always refer to the original image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lwgan.body.skeleton import BODY_KEYPOINT_NAMES


@dataclass(frozen=True)
class SquareFrame:
    """The square around an image: offset (x0, y0) of the image's top-left corner in the square, and its side."""

    offset_x: float
    offset_y: float
    side: float

    @staticmethod
    def around(image_size: tuple[int, int]) -> SquareFrame:
        """The image (H, W) centred in a square of side max(H, W)."""
        height, width = image_size
        side = float(max(height, width))
        return SquareFrame((side - width) / 2.0, (side - height) / 2.0, side)

    def pixels_to_ndc(self, pixels: np.ndarray) -> np.ndarray:
        """(..., 2) continuous image pixel coordinates (x, y) -> (..., 2) NDC of the square frame."""
        return (pixels + np.array([self.offset_x, self.offset_y])) * (2.0 / self.side) - 1.0

    def ndc_to_pixels(self, ndc: np.ndarray) -> np.ndarray:
        """(..., 2) NDC of the square frame -> (..., 2) continuous image pixel coordinates (x, y)."""
        return (ndc + 1.0) * (self.side / 2.0) - np.array([self.offset_x, self.offset_y])


def square_to_image_ndc(points_ndc: torch.Tensor, frame: SquareFrame, image_size: tuple[int, int]) -> torch.Tensor:
    """(..., 3) x, y in the square frame's NDC (and depth) -> (..., 3) x, y in the image's own NDC (depth kept)."""
    height, width = image_size
    offset = points_ndc.new_tensor([frame.offset_x, frame.offset_y])
    pixels = (points_ndc[..., :2] + 1.0) * (frame.side / 2.0) - offset
    xy = pixels * points_ndc.new_tensor([2.0 / width, 2.0 / height]) - 1.0
    return torch.cat([xy, points_ndc[..., 2:]], dim=-1)


@dataclass(frozen=True)
class PersonObservation:
    """The one person found in an image (by the detector or read from a keypoint file).

    image_size: (H, W) of the image.
    keypoints: (23, 3) float32, BODY_KEYPOINT_NAMES order (COCO-17 then 6 foot points): x, y in
        continuous image pixels (pixel (i, j) covers [j, j+1) x [i, i+1)) and a confidence in
        [0, 1]; 0 where unknown.
    world_landmarks: (23, 3) float32 metres, the detector's 3D estimate of the same points in the
        camera frame of lwgan.body.camera (x to the image right, y down, z = depth, smaller is
        nearer; a posed body with the upright orientation lives in these axes), centred between
        the hips; confidence as in keypoints. None when not available.
    mask: (H, W) float32 in [0, 1], the person's silhouette; None when not available.
    box: (4,) float32 x0, y0, x1, y1 in image pixels around the person.
    """

    image_size: tuple[int, int]
    keypoints: np.ndarray
    world_landmarks: np.ndarray | None
    mask: np.ndarray | None
    box: np.ndarray

    def __post_init__(self) -> None:
        if self.keypoints.shape != (len(BODY_KEYPOINT_NAMES), 3):
            raise ValueError(f"keypoints must have shape ({len(BODY_KEYPOINT_NAMES)}, 3), got {self.keypoints.shape}")
        if self.world_landmarks is not None and self.world_landmarks.shape != (len(BODY_KEYPOINT_NAMES), 3):
            raise ValueError(f"world_landmarks must have shape ({len(BODY_KEYPOINT_NAMES)}, 3), got {self.world_landmarks.shape}")
        if self.mask is not None and self.mask.shape != tuple(self.image_size):
            raise ValueError(f"mask must have the image's shape {tuple(self.image_size)}, got {self.mask.shape}")

    @property
    def square_frame(self) -> SquareFrame:
        return SquareFrame.around(self.image_size)


def box_side(boxes: np.ndarray) -> np.ndarray:
    """The larger side of (..., 4) boxes (x0, y0, x1, y1): (...)."""
    boxes = np.asarray(boxes)
    return np.maximum(boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1])


@dataclass(frozen=True)
class FitResult:
    """Fitted bodies for a batch of B observations (numpy float32).

    pose: (B, 24, 3) SMPL axis-angle in the image orientation (the upright flip included, as in
        HMR and iPER's pose_shape.pkl); shape: (B, shape_dim); camera: (B, 3) weak perspective
        (s, tx, ty) in each image's square frame; keypoints_2d: (B, 23, 2) the fitted body's
        projected keypoints in image pixels; losses: final loss terms by name, each (B,).
    """

    pose: np.ndarray
    shape: np.ndarray
    camera: np.ndarray
    keypoints_2d: np.ndarray
    losses: dict[str, np.ndarray]
