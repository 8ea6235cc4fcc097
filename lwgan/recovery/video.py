"""Person tracking through a video and the square crop that frames it, for preprocessing.

Pass 1 detects the person in every frame and keeps compact results (keypoints, box, and the mask
cropped to the person and shrunk), so long videos fit in memory. One square crop for the whole
video (the union of the person boxes with a margin) keeps the background static, as iPER's
frames are; pass 2 cuts every frame to it and maps the detections into crop coordinates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lwgan.body.skeleton import BODY_KEYPOINT_NAMES
from lwgan.io.atomic_files import atomic_path
from lwgan.recovery.fitting import TORSO_KEYPOINTS
from lwgan.recovery.observation import PersonObservation

logger = logging.getLogger(__name__)

COMPACT_MASK_SIDE = 128
"""Longest side of the stored person masks, in pixels."""

CROP_PADDING = "constant"
"""How crop_frame fills a crop square where it reaches beyond the frame: with CROP_PADDING_COLOUR.

Not the edge pixels stretched (streaks that stay in every output frame), and not a mirror image:
that copies a person near the frame's edge into the border (ghost feet below the person, in the
inpainted background of every result, not covered by the person's mask; in evaluation a mirrored
person who moves in the true frames but in no result). A constant is the same in every frame of
a video, so results and true frames match there. crop_observation pads the masks with 0 (no person).
"""

CROP_PADDING_COLOUR = (0, 0, 0)
"""RGB of the padding: black, as a letterbox."""


@dataclass(frozen=True)
class Detections:
    """Pass-1 results for N frames of one video.

    found: (N,) bool; keypoints, world_landmarks: (N, 23, 3) float32 (NaN where not found);
    boxes: (N, 4) float32 x0, y0, x1, y1 image pixels; masks: N uint8 arrays (the person mask
    over its box, longest side <= COMPACT_MASK_SIDE; empty where not found); image_size (H, W).
    """

    found: np.ndarray
    keypoints: np.ndarray
    world_landmarks: np.ndarray
    boxes: np.ndarray
    masks: list[np.ndarray]
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.found)

    def save(self, path: Path) -> None:
        shapes = np.array([mask.shape for mask in self.masks], dtype=np.int64).reshape(-1, 2)
        flat = np.concatenate([mask.reshape(-1) for mask in self.masks]) if self.masks else np.zeros(0, np.uint8)
        with atomic_path(path) as temporary:
            with open(temporary, "wb") as handle:
                np.savez(handle, found=self.found, keypoints=self.keypoints, world_landmarks=self.world_landmarks,
                         boxes=self.boxes, mask_shapes=shapes, mask_data=flat, image_size=np.array(self.image_size))

    @staticmethod
    def load(path: Path) -> Detections:
        with np.load(path) as data:
            sizes = data["mask_shapes"].prod(axis=1)
            pieces = np.split(data["mask_data"], np.cumsum(sizes)[:-1]) if len(sizes) else []
            masks = [piece.reshape(shape) for piece, shape in zip(pieces, data["mask_shapes"])]
            return Detections(data["found"], data["keypoints"], data["world_landmarks"], data["boxes"], masks,
                              tuple(int(v) for v in data["image_size"]))


def detect_frames(
    frames: Iterable[np.ndarray],
    detect_all: Callable[[Iterable[np.ndarray]], Iterable[PersonObservation | None]],
    name: str,
) -> Detections:
    """Pass 1: run `detect_all` (frames -> one observation or None per frame) over a whole video.

    `name` names the video in errors; frames must all have the first frame's size.
    """
    found, keypoints, world, boxes, masks = [], [], [], [], []
    sizes: list[tuple[int, int]] = []

    def checked_frames():
        for index, frame in enumerate(frames):
            if sizes and frame.shape[:2] != sizes[0]:
                raise ValueError(f"{name}: frame {index} is {frame.shape[:2]}, the first frame was {sizes[0]}")
            sizes[:1] = [frame.shape[:2]]
            yield frame

    for observation in detect_all(checked_frames()):
        found.append(observation is not None)
        if observation is None:
            keypoints.append(np.full((23, 3), np.nan, np.float32))
            world.append(np.full((23, 3), np.nan, np.float32))
            boxes.append(np.full(4, np.nan, np.float32))
            masks.append(np.zeros((0, 0), np.uint8))
            continue
        keypoints.append(observation.keypoints.astype(np.float32))
        world.append(np.full((23, 3), np.nan, np.float32) if observation.world_landmarks is None else observation.world_landmarks.astype(np.float32))
        boxes.append(observation.box.astype(np.float32))
        masks.append(_compact_mask(observation))
    if not sizes:
        raise ValueError(f"{name}: the video has no frames")
    return Detections(np.array(found), np.stack(keypoints), np.stack(world), np.stack(boxes), masks, tuple(sizes[0]))


def unreliable_frames(detections: Detections, min_torso_confidence: float = 0.3, window: int = 3, max_jump: float = 0.5,
                      max_size_change: float = 1.6) -> dict[int, str]:
    """Frames whose detection is missing or not to be trusted: {index: reason}.

    Reasons: no person; the torso's keypoints barely seen (mean confidence of the shoulders and
    hips below min_torso_confidence); the person's box jumps away from where its neighbours put
    it (its centre is more than max_jump box heights from the straight-line fit of the centres of
    the found frames up to `window` frames either side, so a steady walk is never flagged), or its
    height changes by more than a factor max_size_change from their median. Frames with fewer than
    two found neighbours are judged by their keypoints alone.
    """
    reasons = {int(index): "no person" for index in np.flatnonzero(~detections.found)}
    torso = [BODY_KEYPOINT_NAMES.index(name) for name in TORSO_KEYPOINTS]
    confidence = np.nan_to_num(detections.keypoints[:, torso, 2]).mean(axis=1)
    centre = (detections.boxes[:, :2] + detections.boxes[:, 2:]) / 2.0
    height = detections.boxes[:, 3] - detections.boxes[:, 1]
    found = np.flatnonzero(detections.found)
    for index in found:
        if confidence[index] < min_torso_confidence:
            reasons[int(index)] = f"torso barely seen (keypoint confidence {confidence[index]:.2f})"
            continue
        neighbours = found[(np.abs(found - index) <= window) & (found != index)]
        if len(neighbours) < 2:
            continue
        slope, intercept = np.polyfit(neighbours, centre[neighbours], 1) if len(set(neighbours)) > 1 else (0.0, centre[neighbours].mean(0))
        typical_height = float(np.median(height[neighbours]))
        distance = float(np.linalg.norm(centre[index] - (slope * index + intercept)))
        if distance > max_jump * typical_height:
            reasons[int(index)] = f"the person's box jumps ({distance / typical_height:.2f} box heights from its neighbours' path)"
        elif not 1.0 / max_size_change <= height[index] / typical_height <= max_size_change:
            reasons[int(index)] = f"the person's box changes size ({height[index] / typical_height:.2f} x its neighbours')"
    return dict(sorted(reasons.items()))


UNSURE_MASK = 0.05
"""Mask pixels of a probability between this and one half are unsure: steadied_masks gives back a part of the person that the
frames on both sides hold when enough of it is unsure (LOST_PART, UNSURE_SHARE)."""
STEADYING_SIDE = 2 * COMPACT_MASK_SIDE
"""steadied_masks compares the masks on a grid whose longer side is at most this (the stored masks hold no finer detail)."""
LOST_PART = 0.03
"""A lost part holds unsure pixels of at least this share of the frame's sure mask (a head is 6-8 % of a walker's
silhouette): the blur along a moving person's outline, which the neighbours' masks hold too, is not a lost part
(dance_aerobic: up to 1.9 % in one piece; with every piece added, lwgan evaluate's body PSNR fell 17.14 -> 16.97 dB)."""
UNSURE_SHARE = 0.4
"""... and at least this share of a lost part is unsure; the rest of it the frame gives a probability under UNSURE_MASK.

Where a limb has swung on, the neighbours hold a place it has left: there the frame is sure it is background, but for the
blur along the limb's edge (the turning walk's seed 2, a shin: 0.29 of the part unsure). A head lost before a blue box is
0.48-0.90 unsure; its darkest pixels (the face, the hair) are under UNSURE_MASK but come back with it."""


def steadied_masks(detections: Detections, unsure: float = UNSURE_MASK, window: int = 2) -> Detections:
    """`detections` whose masks also hold the parts of the person they lost for a frame or two: those become 1.

    The masks of frames on both sides hold the part: one of the `window` frames before and one of the `window` after, each
    moved by the torso's motion (the mean of its seen TORSO_KEYPOINTS) to this frame. This frame is not sure of it
    (probability under 0.5), and it is a lost part, not the wake of a moving limb: of the part's pixels (a connected piece
    of those held on both sides, opened by 3 x 3), at least LOST_PART of the frame's sure mask and UNSURE_SHARE of the
    part are unsure (probability of at least `unsure`). The holes the part leaves in the mask that the neighbours hold come
    back too.

    BlazePose can lose a part of the person for a frame or two against a background like it: on tools/eval_tracking.py's
    seed 0, the head before a blue box in frames 8 and 9 (0.1-0.5 over a sixth of the head's rows, under 0.05 over its
    face). The fit then bowed the head into the shoulders (IoU 0.67 and 0.69 against the rendered truth). Frames whose
    mask gains nothing keep it as it was, and so does a frame without a found neighbour with a seen torso on either side.
    """
    masks, boxes = list(detections.masks), detections.boxes.copy()
    centres = _torso_centres(detections)
    usable = detections.found & np.array([mask.size > 0 for mask in detections.masks]) & np.isfinite(centres).all(axis=1)
    scale = min(1.0, STEADYING_SIDE / max(detections.image_size))  # the masks are compared on a grid this much smaller
    on_grid: dict[int, np.ndarray] = {}

    def grid_mask(index: int) -> np.ndarray:
        if index not in on_grid:
            on_grid[index] = _full_mask(detections, index, scale)
        for old in [key for key in on_grid if key < index - 2 * window]:  # frames are visited in order
            del on_grid[old]
        return on_grid[index]

    for index in np.flatnonzero(usable):
        sides = [[n for n in range(index - window, index) if n >= 0 and usable[n]],
                 [n for n in range(index + 1, index + window + 1) if n < len(detections) and usable[n]]]
        if not all(sides):
            continue
        here = grid_mask(index)
        sure = here >= 0.5
        if ((here >= unsure) & ~sure).sum() < LOST_PART * sure.sum():
            continue  # too few unsure pixels for any lost part
        held = np.logical_and.reduce([np.logical_or.reduce([_shifted(grid_mask(n) >= 0.5, (centres[index] - centres[n]) * scale) for n in side])
                                      for side in sides])
        lost = _lost_parts(held & ~sure, here >= unsure, LOST_PART * sure.sum())
        if not lost.any():
            continue
        restored_on_grid = lost | (_holes(sure | lost) & held)
        here = _full_mask(detections, index)
        restored = (cv2.resize(restored_on_grid.astype(np.uint8), here.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0) & (here < 0.5)
        steadied = np.where(restored, 1.0, here).astype(np.float32)
        rows, columns = np.nonzero(restored)
        box = np.array([min(boxes[index, 0], columns.min()), min(boxes[index, 1], rows.min()),
                        max(boxes[index, 2], columns.max() + 1), max(boxes[index, 3], rows.max() + 1)], np.float32)
        masks[index] = _compact_mask(PersonObservation(detections.image_size, detections.keypoints[index], None, steadied, box))
        boxes[index] = box
        logger.debug("frame %d: %d mask pixels of a lost part restored from the frames on both sides", index, int(restored.sum()))
    return Detections(detections.found, detections.keypoints, detections.world_landmarks, boxes, masks, detections.image_size)


def _lost_parts(pixels: np.ndarray, unsure: np.ndarray, min_unsure: float) -> np.ndarray:
    """(H, W) bool: the 8-connected parts of `pixels`, opened by a 3 x 3 square (no thin lines), with at least `min_unsure`
    pixels of `unsure` ((H, W) bool) that make up at least UNSURE_SHARE of the part."""
    opened = cv2.morphologyEx(pixels.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
    count, labels = cv2.connectedComponents(opened.astype(np.uint8), connectivity=8)
    areas = np.bincount(labels[opened], minlength=count)
    unsure_areas = np.bincount(labels[opened & unsure], minlength=count)
    lost = np.flatnonzero((unsure_areas >= min_unsure) & (unsure_areas >= UNSURE_SHARE * areas))
    return np.isin(labels, lost[lost > 0])


def _holes(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels outside `mask` that no 4-connected path outside it joins to the image's border."""
    _, labels = cv2.connectedComponents((~mask).astype(np.uint8), connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return ~mask & ~np.isin(labels, border)


def _torso_centres(detections: Detections, min_confidence: float = 0.3) -> np.ndarray:
    """(N, 2) the mean image position of each frame's torso keypoints seen with min_confidence; NaN without any."""
    torso = detections.keypoints[:, [BODY_KEYPOINT_NAMES.index(name) for name in TORSO_KEYPOINTS]]
    seen = np.nan_to_num(torso[..., 2]) >= min_confidence
    count = seen.sum(axis=1, keepdims=True)
    total = np.where(seen[..., None], np.nan_to_num(torso[..., :2]), 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _full_mask(detections: Detections, index: int, scale: float = 1.0) -> np.ndarray:
    """(H, W) float32 in [0, 1]: frame `index`'s compact mask back over its box in the image (its size times `scale`), 0 elsewhere."""
    size = (max(1, round(detections.image_size[0] * scale)), max(1, round(detections.image_size[1] * scale)))
    x0, y0, x1, y1 = _integer_box(detections.boxes[index] * scale, size)
    mask = np.zeros(size, np.float32)
    mask[y0:y1, x0:x1] = cv2.resize(detections.masks[index].astype(np.float32) / 255.0, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    return mask


def _shifted(mask: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """(H, W) bool `mask` moved by (dx, dy) `offset` pixels (rounded), False where it moves in from outside."""
    matrix = np.array([[1.0, 0.0, round(float(offset[0]))], [0.0, 1.0, round(float(offset[1]))]])
    return cv2.warpAffine(mask.astype(np.uint8), matrix, mask.shape[::-1], flags=cv2.INTER_NEAREST, borderValue=0) > 0


def _compact_mask(observation: PersonObservation) -> np.ndarray:
    """The observation's mask over its (integer-rounded) box, shrunk to COMPACT_MASK_SIDE, uint8 0..255."""
    if observation.mask is None:
        return np.zeros((0, 0), np.uint8)
    x0, y0, x1, y1 = _integer_box(observation.box, observation.image_size)
    region = observation.mask[y0:y1, x0:x1]
    scale = min(1.0, COMPACT_MASK_SIDE / max(region.shape))
    size = (max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale)))
    return (cv2.resize(region.astype(np.float32), size, interpolation=cv2.INTER_AREA) * 255 + 0.5).astype(np.uint8)


def _integer_box(box: np.ndarray, image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    height, width = image_size
    x0, y0 = int(np.clip(np.floor(box[0]), 0, width - 1)), int(np.clip(np.floor(box[1]), 0, height - 1))
    x1, y1 = int(np.clip(np.ceil(box[2]), x0 + 1, width)), int(np.clip(np.ceil(box[3]), y0 + 1, height))
    return x0, y0, x1, y1


def video_crop(detections: Detections, margin: float) -> np.ndarray:
    """(3,) x0, y0, side: the square (in image pixels) around every person box, widened by `margin`.

    The square is then moved (never shrunk) to cover as much of the image as it can, so crops need
    less made-up border: inside the image along an axis where it fits, centred on the image where
    it does not. It still holds every person box.
    """
    if not detections.found.any():
        raise ValueError("no frame shows a person")
    boxes = detections.boxes[detections.found]
    low, high = boxes[:, :2].min(axis=0), boxes[:, 2:].max(axis=0)
    side = float((high - low).max() * margin)
    corner = (low + high) / 2.0 - side / 2.0
    extent = np.array(detections.image_size[::-1], np.float64)  # (W, H)
    fits = side <= extent
    corner = np.where(fits, np.clip(corner, 0.0, np.maximum(extent - side, 0.0)), (extent - side) / 2.0)
    return np.array([corner[0], corner[1], side], np.float32)


def _crop_matrix(crop: np.ndarray, size: int, source_pixel: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """OpenCV affine matrix from a source raster to the (size, size) crop.

    The source's pixels are `source_pixel` = (width, height) image pixels (1 for the frame itself,
    more for a shrunk mask) and `crop` = (x0, y0, side) gives the crop square relative to the
    source's origin, in image pixels. In continuous coordinates c_crop = (c_source * pixel - x0) *
    size / side; OpenCV indexes pixel centres, c = index + 0.5.
    """
    x0, y0, side = (float(v) for v in crop)
    ratio = size / side
    pixel_x, pixel_y = source_pixel
    return np.array([[pixel_x * ratio, 0, (0.5 * pixel_x - x0) * ratio - 0.5],
                     [0, pixel_y * ratio, (0.5 * pixel_y - y0) * ratio - 0.5]], np.float64)


def crop_frame(frame: np.ndarray, crop: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) uint8 frame -> (size, size, C) uint8: the square crop = (x0, y0, side) in image pixels.

    Beyond the frame the crop is CROP_PADDING_COLOUR. A square larger than `size` is first shrunk
    with the whole frame by area averaging to about the crop's scale (warpAffine alone samples
    bilinearly, which aliases when shrinking); the warp then maps the shrunk pixels exactly.
    """
    height, width = frame.shape[:2]
    source_pixel = (1.0, 1.0)
    if crop[2] > size:
        shrunk = (max(1, round(width * size / float(crop[2]))), max(1, round(height * size / float(crop[2]))))
        frame = cv2.resize(frame, shrunk, interpolation=cv2.INTER_AREA)
        source_pixel = (width / shrunk[0], height / shrunk[1])
    return cv2.warpAffine(frame, _crop_matrix(crop, size, source_pixel), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=CROP_PADDING_COLOUR)


def crop_observation(detections: Detections, index: int, crop: np.ndarray, size: int) -> PersonObservation:
    """Frame `index`'s detection in the coordinates of its (size, size) crop."""
    x0, y0, side = (float(v) for v in crop)
    scale = size / side
    keypoints = detections.keypoints[index].copy()
    keypoints[:, :2] = (keypoints[:, :2] - [x0, y0]) * scale
    box = (detections.boxes[index] - [x0, y0, x0, y0]) * scale
    compact = detections.masks[index]
    mask = None
    if compact.size:
        bx0, by0, bx1, by1 = _integer_box(detections.boxes[index], detections.image_size)
        pixel = ((bx1 - bx0) / compact.shape[1], (by1 - by0) / compact.shape[0])  # image pixels per mask pixel
        matrix = _crop_matrix(np.array([x0 - bx0, y0 - by0, side]), size, source_pixel=pixel)
        mask = cv2.warpAffine(compact.astype(np.float32) / 255.0, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0.0)
    world = detections.world_landmarks[index]
    return PersonObservation(image_size=(size, size), keypoints=keypoints.astype(np.float32),
                             world_landmarks=None if np.isnan(world).all() else world, mask=mask, box=box.astype(np.float32))
