"""Person detection with BlazePose (mediapipe): 2D keypoints, 3D world landmarks and a silhouette per photo or video frame."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from lwgan.body.skeleton import BODY_KEYPOINT_NAMES
from lwgan.io.images import load_image
from lwgan.recovery.observation import PersonObservation

logger = logging.getLogger(__name__)

BLAZEPOSE_FOR_BODY_KEYPOINTS = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28, 31, -1, 29, 32, -1, 30)
"""BlazePose landmark index for each of BODY_KEYPOINT_NAMES (COCO-17, then left big toe, small toe,
heel, right big toe, small toe, heel); -1 where BlazePose has no landmark (the small toes).
BlazePose's left is the subject's left, as in COCO (checked against COCO ground truth in the tests)."""

_NOSE, _LEFT_HIP, _RIGHT_HIP = 0, 23, 24
_VISIBLE = 0.5
"""Landmark confidence above which a landmark counts as seen (for the person's box)."""

_NATIVE_NOISE = (
    "Created TensorFlow Lite XNNPACK delegate",
    "All log messages before absl::InitializeLog()",
    "inference_feedback_manager",
    "Feedback manager requires a model with a single signature",
    "SymbolDatabase.GetPrototype() is deprecated",
    "warnings.warn('SymbolDatabase.GetPrototype()",
)
"""Start-up lines that mediapipe's C++ side prints on every graph start; anything else is passed on."""


class NoPersonError(ValueError):
    """No person was found in an image (the message names the image)."""


class PersonTooSmallError(NoPersonError):
    """A person was found but is too small in the image for usable keypoints."""


@contextlib.contextmanager
def _quiet_native_start() -> Iterator[None]:
    """Hold back mediapipe's start-up chatter on stderr; pass every other line on as a logging warning.

    The C++ side (TFLite, absl) writes to file descriptor 2 directly, from the graph's own threads
    while it opens, and ignores GLOG_minloglevel and absl's Python logging settings; so the
    descriptor is redirected to a temporary file for the duration. Use only around a graph's
    construction together with its first run (which waits until the graph is open).
    """
    sys_stderr_fd = 2
    with tempfile.TemporaryFile(mode="w+b") as captured:
        saved = os.dup(sys_stderr_fd)
        os.dup2(captured.fileno(), sys_stderr_fd)
        try:
            yield
        finally:
            os.dup2(saved, sys_stderr_fd)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", errors="replace").splitlines():
                if line.strip() and not any(noise in line for noise in _NATIVE_NOISE):
                    logger.warning("mediapipe: %s", line)


@dataclass(frozen=True)
class _Window:
    """A square window of the image as fed to the network.

    left, top: continuous image pixel coordinates of the window's top-left corner; side: its side
    in image pixels; size: its side in network input pixels. Parts outside the image are black.
    """

    left: float
    top: float
    side: float
    size: int

    @property
    def scale(self) -> float:
        return self.size / self.side

    @staticmethod
    def around(image_size: tuple[int, int], size: int) -> _Window:
        """The whole image centred in a square of side max(H, W), resized to `size` pixels."""
        height, width = image_size
        side = float(max(height, width))
        return _Window((width - side) / 2.0, (height - side) / 2.0, side, size)

    def extract(self, image: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) image -> uint8 (size, size, 3) window (area-averaged when shrinking)."""
        height, width = image.shape[:2]
        source, shrink_x, shrink_y = image, 1.0, 1.0
        if self.scale < 1.0:
            new_width, new_height = max(1, round(width * self.scale)), max(1, round(height * self.scale))
            source = cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_AREA)
            shrink_x, shrink_y = new_width / width, new_height / height
        # Continuous coordinates: window u' = (u - left) * scale with u = source u / shrink. OpenCV puts
        # pixel centres at integers (continuous u = x + 0.5), hence the half-pixel terms.
        scale_x, scale_y = self.scale / shrink_x, self.scale / shrink_y
        matrix = np.array([
            [scale_x, 0.0, 0.5 * scale_x - self.left * self.scale - 0.5],
            [0.0, scale_y, 0.5 * scale_y - self.top * self.scale - 0.5],
        ])
        return cv2.warpAffine(source, matrix, (self.size, self.size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))

    def points_to_image(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) continuous window pixels -> (N, 2) continuous image pixels."""
        return points / self.scale + np.array([self.left, self.top])

    def mask_to_image(self, mask: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
        """float32 (size, size) window mask -> float32 (H, W) image mask, zeros outside the window."""
        height, width = image_size
        matrix = np.array([
            [self.scale, 0.0, 0.5 * self.scale - self.left * self.scale - 0.5],
            [0.0, self.scale, 0.5 * self.scale - self.top * self.scale - 0.5],
        ])
        return cv2.warpAffine(mask.astype(np.float32), matrix, (width, height),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


@dataclass(frozen=True)
class _Person:
    """One BlazePose result in image coordinates.

    landmarks: (33, 3) float64 x, y continuous image pixels and confidence in [0, 1].
    world: (33, 3) float64 metres (BlazePose world landmarks) or None.
    mask: (H, W) float32 in [0, 1] or None.
    """

    landmarks: np.ndarray
    world: np.ndarray | None
    mask: np.ndarray | None

    @property
    def box(self) -> np.ndarray:
        """(4,) x0, y0, x1, y1 around all 33 landmarks (BlazePose also places the unseen ones)."""
        xy = self.landmarks[:, :2]
        return np.concatenate([xy.min(axis=0), xy.max(axis=0)])

    @property
    def extent(self) -> float:
        """The person's size in image pixels: the larger side of the landmark box."""
        x0, y0, x1, y1 = self.box
        return float(max(x1 - x0, y1 - y0))

    def area_in(self, image_size: tuple[int, int]) -> float:
        """Area of the landmark box inside the image, in pixels (the measure of "largest person")."""
        height, width = image_size
        x0, y0, x1, y1 = self.box
        return float(max(0.0, min(x1, width) - max(x0, 0.0)) * max(0.0, min(y1, height) - max(y0, 0.0)))


def _process(graph, pixels: np.ndarray):
    """One mediapipe run, without protobuf's deprecation warning that every run would print."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated")
        return graph.process(pixels)


def _overlap(box_a: np.ndarray, box_b: np.ndarray) -> float:
    """Intersection of two (4,) boxes over the smaller one's area, in [0, 1]."""
    width = min(box_a[2], box_b[2]) - max(box_a[0], box_b[0])
    height = min(box_a[3], box_b[3]) - max(box_a[1], box_b[1])
    if width <= 0 or height <= 0:
        return 0.0
    smaller = min((box_a[2] - box_a[0]) * (box_a[3] - box_a[1]), (box_b[2] - box_b[0]) * (box_b[3] - box_b[1]))
    return float(width * height / max(smaller, 1e-6))


def _same_person(found: _Person, counted: _Person) -> bool:
    """Whether a detection in a painted-over image is a person already counted, found again.

    Either their landmark boxes overlap by more than half, or the new mask covers more than half of
    the counted person's mask: BlazePose can take the flat painted silhouette together with a cast
    shadow for a larger "person" (measured: a shadow-and-silhouette detection covering 78% of the
    real person's mask, with a larger box, which the largest-person rule then picked).
    """
    if _overlap(found.box, counted.box) > 0.5:
        return True
    if found.mask is None or counted.mask is None:
        return False
    counted_region = counted.mask > 0.5
    covered = np.logical_and(found.mask > 0.5, counted_region).sum()
    return bool(covered > 0.5 * max(int(counted_region.sum()), 1))


class PoseDetector:
    """BlazePose (mediapipe Pose, model_complexity=1, which ships in the wheel) for photos and videos.

    Build once and reuse: every detect() runs on the same mediapipe graph. Use it from one thread
    at a time, and close it (or use it as a context manager) to free the graph.

    detect() on a photo:
      1. find people: BlazePose on the whole image padded to a square (search_size pixels). Its
         person detector sees a 224 x 224 version of that square and finds people from about
         1/6-1/5 of the square's side upwards (measured with the COCO skier: 260 px tall in a
         1024 px square found, 174 px not always). When it finds nobody, tiles of 1/2 and then
         1/4 of the longer side (overlapping by half; tile_levels=2) are tried, each enlarged to
         search_size, which finds people down to about 1/20 of the longer side (52 px tall in a
         1024 x 1024 image found, 35 px not). Each person found is painted over with the image's
         mean colour and the search runs again (up to max_people), so several people are
         counted; the largest (landmark box area inside the image) is kept and a warning names
         the image and how many people were seen. (BlazePose's segmentation mask covers only the
         person it tracks, not a second person inside its crop, so its connected components do
         not reveal other people; painting over does.)
      2. refine: a square crop around the kept person's landmarks (crop_margin times the larger of
         the landmark box's sides and twice the hips-to-nose distance), resized to crop_size
         pixels, goes through BlazePose again; landmarks, world landmarks and the segmentation
         mask are mapped back to the full image.
      3. raise PersonTooSmallError when the person's landmark box is under min_person_size pixels.

    detect_video() tracks one person through frames with mediapipe's video mode (smoothed
    landmarks and segmentation, tuned by mediapipe for 30 fps) and yields None, with a warning
    naming the frame index, for frames without a person.

    Output conventions (PersonObservation): keypoints in BODY_KEYPOINT_NAMES order, x = BlazePose's
    normalised x times the input width (continuous pixels), confidence = BlazePose visibility
    (times presence where mediapipe reports it). World landmarks are BlazePose's
    pose_world_landmarks: metres, origin between the hips, x towards the image's right, y down,
    z away from the camera (smaller is nearer), i.e. the camera frame of lwgan.body.camera;
    checked in the tests against the 2D keypoints (same x/y axes up to a positive scale) and
    against real photos (the nose is nearer than the ears for a person facing the camera and
    farther for one seen from behind). The small toes have no BlazePose landmark: confidence 0,
    position 0. The mask is BlazePose's segmentation (float in [0, 1]), zero outside the crop.
    """

    def __init__(
        self,
        min_confidence: float = 0.5,
        tracking_confidence: float = 0.5,
        search_size: int = 512,
        crop_size: int = 384,
        crop_margin: float = 1.25,
        max_people: int = 4,
        tile_levels: int = 2,
        min_person_size: float = 40.0,
    ) -> None:
        """Build the photo graph.

        Args:
            min_confidence: BlazePose person-detection score needed to accept a person, in [0, 1].
            tracking_confidence: landmark score below which video mode searches the frame anew.
            search_size: side in pixels of the square the people search runs on.
            crop_size: side in pixels of the refining crop (256-512 is sensible).
            crop_margin: the refining crop's side over the person's extent (>= 1).
            max_people: most people counted per photo (>= 1); 1 skips the search for others.
            tile_levels: how many tile sizes (1/2, 1/4, ... of the image) to try when the whole
                image shows nobody; 0 turns the tile search off.
            min_person_size: smallest accepted person (landmark box side) in image pixels.
        """
        if not 0.0 <= min_confidence <= 1.0 or not 0.0 <= tracking_confidence <= 1.0:
            raise ValueError(f"confidences must lie in [0, 1], got {min_confidence}, {tracking_confidence}")
        if search_size < 64 or crop_size < 64:
            raise ValueError(f"search_size and crop_size must be at least 64 pixels, got {search_size}, {crop_size}")
        if crop_margin < 1.0 or max_people < 1 or tile_levels < 0 or min_person_size < 0:
            raise ValueError(
                f"need crop_margin >= 1, max_people >= 1, tile_levels >= 0, min_person_size >= 0; got "
                f"{crop_margin}, {max_people}, {tile_levels}, {min_person_size}"
            )
        import mediapipe as mp

        self._pose_module = mp.solutions.pose
        self.min_confidence = min_confidence
        self.tracking_confidence = tracking_confidence
        self.search_size = int(search_size)
        self.crop_size = int(crop_size)
        self.crop_margin = float(crop_margin)
        self.max_people = int(max_people)
        self.tile_levels = int(tile_levels)
        self.min_person_size = float(min_person_size)
        with _quiet_native_start():
            self._photo_graph = self._build_graph(video=False)
            _process(self._photo_graph, np.zeros((64, 64, 3), dtype=np.uint8))

    def _build_graph(self, video: bool):
        return self._pose_module.Pose(
            static_image_mode=not video,
            model_complexity=1,
            smooth_landmarks=video,
            enable_segmentation=True,
            smooth_segmentation=video,
            min_detection_confidence=self.min_confidence,
            min_tracking_confidence=self.tracking_confidence,
        )

    def close(self) -> None:
        """Free the mediapipe graph; the detector cannot be used afterwards."""
        if self._photo_graph is not None:
            self._photo_graph.close()
            self._photo_graph = None

    def __enter__(self) -> PoseDetector:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- one network run ---------------------------------------------------------------------

    def _run(self, graph, image: np.ndarray, window: _Window) -> _Person | None:
        """BlazePose on one window of the image; None when it finds nobody."""
        if graph is None:
            raise RuntimeError("this PoseDetector has been closed")
        return self._person_from_results(_process(graph, window.extract(image)), image.shape[:2], window)

    @staticmethod
    def _person_from_results(results, image_size: tuple[int, int], window: _Window) -> _Person | None:
        if results.pose_landmarks is None:
            return None
        values = []
        for landmark in results.pose_landmarks.landmark:
            confidence = landmark.visibility
            if landmark.HasField("presence"):
                confidence *= landmark.presence
            values.append((landmark.x * window.size, landmark.y * window.size, confidence))
        landmarks = np.array(values, dtype=np.float64)
        landmarks[:, :2] = window.points_to_image(landmarks[:, :2])
        landmarks[:, 2] = np.clip(landmarks[:, 2], 0.0, 1.0)
        world = None
        if results.pose_world_landmarks is not None:
            world = np.array([(point.x, point.y, point.z) for point in results.pose_world_landmarks.landmark])
        mask = None
        if results.segmentation_mask is not None:
            mask = np.clip(window.mask_to_image(results.segmentation_mask, image_size), 0.0, 1.0)
        return _Person(landmarks, world, mask)

    # -- photos ------------------------------------------------------------------------------

    def detect(self, image: np.ndarray | str | os.PathLike, name: str | None = None) -> PersonObservation:
        """Find the person in one photo.

        Args:
            image: uint8 (H, W, 3) RGB, or a path read with lwgan.io.images.load_image
                (grayscale, transparent and EXIF-rotated files are handled there).
            name: how messages name the image (default: the path, or "image").
        Returns:
            PersonObservation with keypoints (23, 3), world_landmarks (23, 3), mask (H, W) in
            [0, 1] and box (4,), all float32, in the image's continuous pixel coordinates.
        Raises:
            NoPersonError (a ValueError) naming the image when nobody is found;
            PersonTooSmallError (a NoPersonError) when the person is under min_person_size pixels.
        """
        image, name = self._check_image(image, name)
        people = self._find_people(image, self.max_people)
        if not people:
            raise NoPersonError(f"no person found in {name}")
        image_size = image.shape[:2]
        largest = max(people, key=lambda person: person.area_in(image_size))
        if len(people) > 1:
            logger.warning("%s: %d people found; using the largest (landmark box %s)", name, len(people),
                           np.round(largest.box).astype(int).tolist())
        person = self._refine(image, largest)
        return self._observation(person, image_size, name)

    def _check_image(self, image, name: str | None) -> tuple[np.ndarray, str]:
        if isinstance(image, (str, os.PathLike)):
            return load_image(image), str(image) if name is None else name
        name = "image" if name is None else name
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            description = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            raise ValueError(f"{name}: the image must be uint8 (H, W, 3) RGB (load_image converts files), got {description}")
        if min(image.shape[:2]) == 0:
            raise ValueError(f"{name}: the image has zero size {image.shape[:2]}")
        return np.ascontiguousarray(image), name

    def _find_people(self, image: np.ndarray, max_people: int) -> list[_Person]:
        """Every person found (up to max_people): whole image first, then tiles if nobody was found."""
        window = _Window.around(image.shape[:2], self.search_size)
        people: list[_Person] = []
        view = image
        while len(people) < max_people:
            person = self._run(self._photo_graph, view, window)
            if person is None or any(_same_person(person, other) for other in people):
                break  # nobody else, or the painted-over silhouette of someone already counted
            people.append(person)
            if len(people) < max_people:
                view = self._paint_over(view, person)
        if not people:
            people = self._search_tiles(image, max_people)
        return people

    def _paint_over(self, image: np.ndarray, person: _Person) -> np.ndarray:
        """The image with the person's silhouette (dilated), or landmark box, filled with the mean colour."""
        height, width = image.shape[:2]
        region = np.zeros((height, width), dtype=np.uint8)
        if person.mask is not None:
            region = (person.mask > 0.25).astype(np.uint8)
        x0, y0, x1, y1 = np.clip(person.box, 0, [width, height, width, height]).astype(int)
        if region.sum() < 0.1 * max(1, (x1 - x0) * (y1 - y0)):
            region[y0:y1, x0:x1] = 1
        grow = max(3, int(0.05 * person.extent)) | 1
        region = cv2.dilate(region, np.ones((grow, grow), np.uint8)).astype(bool)
        painted = image.copy()
        painted[region] = image.reshape(-1, 3).mean(axis=0).astype(np.uint8)
        return painted

    def _search_tiles(self, image: np.ndarray, max_people: int) -> list[_Person]:
        """People found in overlapping tiles of 1/2, 1/4, ... of the longer side (the first level that finds any)."""
        height, width = image.shape[:2]
        longer = max(height, width)
        for level in range(1, self.tile_levels + 1):
            side = longer / 2**level
            if side < 32:
                break
            people: list[_Person] = []
            for top in self._tile_starts(height, side):
                for left in self._tile_starts(width, side):
                    person = self._run(self._photo_graph, image, _Window(left, top, side, self.search_size))
                    if person is None:
                        continue
                    same = [index for index, other in enumerate(people) if _overlap(person.box, other.box) > 0.5]
                    if not same:
                        people.append(person)
                    elif person.area_in(image.shape[:2]) > people[same[0]].area_in(image.shape[:2]):
                        people[same[0]] = person  # a tile that cut the person off found less of them
            if people:
                logger.debug("found %d people in tiles of %.0f px", len(people), side)
                return sorted(people, key=lambda person: -person.area_in(image.shape[:2]))[:max_people]
        return []

    @staticmethod
    def _tile_starts(length: int, side: float) -> list[float]:
        """Tile starts along one axis: tiles of `side` overlapping by half, covering [0, length]."""
        if side >= length:
            return [(length - side) / 2.0]
        count = int(np.ceil((length - side) / (side / 2.0))) + 1
        return list(np.linspace(0.0, length - side, count))

    def _refine(self, image: np.ndarray, person: _Person) -> _Person:
        """BlazePose again on a square crop around the person; the first result if the crop loses them."""
        x0, y0, x1, y1 = person.box
        hips = (person.landmarks[_LEFT_HIP, :2] + person.landmarks[_RIGHT_HIP, :2]) / 2.0
        hips_to_nose = float(np.linalg.norm(person.landmarks[_NOSE, :2] - hips))
        side = self.crop_margin * max(x1 - x0, y1 - y0, 2.0 * hips_to_nose, 8.0)
        window = _Window((x0 + x1 - side) / 2.0, (y0 + y1 - side) / 2.0, side, self.crop_size)
        refined = self._run(self._photo_graph, image, window)
        if refined is None or _overlap(refined.box, person.box) < 0.5:
            logger.debug("the refining crop lost the person; keeping the first pass")
            return person
        return refined

    # -- observations --------------------------------------------------------------------------

    def _observation(self, person: _Person, image_size: tuple[int, int], name: str) -> PersonObservation:
        if person.extent < self.min_person_size:
            raise PersonTooSmallError(
                f"the person found in {name} is only {person.extent:.0f} px tall or wide; at least "
                f"{self.min_person_size:.0f} px are needed for usable keypoints (use a larger image)"
            )
        height, width = image_size
        indices = np.array(BLAZEPOSE_FOR_BODY_KEYPOINTS)
        known = indices >= 0
        keypoints = np.zeros((len(BODY_KEYPOINT_NAMES), 3), dtype=np.float32)
        keypoints[known] = person.landmarks[indices[known]]
        world = None
        if person.world is not None:
            world = np.zeros((len(BODY_KEYPOINT_NAMES), 3), dtype=np.float32)
            world[known] = person.world[indices[known]]
        mask = person.mask
        return PersonObservation(
            image_size=(height, width),
            keypoints=keypoints,
            world_landmarks=world,
            mask=mask,
            box=self._person_box(person.landmarks, mask, image_size),
        )

    @staticmethod
    def _person_box(landmarks: np.ndarray, mask: np.ndarray | None, image_size: tuple[int, int]) -> np.ndarray:
        """(4,) float32 box around the seen landmarks and the mask (> 0.5), clipped to the image."""
        height, width = image_size
        points = [landmarks[landmarks[:, 2] > _VISIBLE, :2]]
        if mask is not None:
            rows, columns = np.nonzero(mask > 0.5)
            if rows.size:
                points.append(np.array([[columns.min(), rows.min()], [columns.max() + 1.0, rows.max() + 1.0]]))
        points = np.concatenate(points)
        if points.size == 0:
            points = landmarks[:, :2]
        box = np.concatenate([points.min(axis=0), points.max(axis=0)])
        return np.clip(box, 0.0, [width, height, width, height]).astype(np.float32)

    # -- videos --------------------------------------------------------------------------------

    def detect_video(self, frames: Iterable[np.ndarray], name: str = "video") -> Iterator[PersonObservation | None]:
        """Track one person through video frames; yields one result per frame, in order.

        Args:
            frames: uint8 (H, W, 3) RGB frames, all the same size (for example read_video's array).
            name: how warnings name the video.
        Yields:
            PersonObservation per frame (as detect() returns, from mediapipe's video mode with
            smoothed landmarks and segmentation), or None, with a warning naming the frame index,
            when the frame shows nobody. A frame where tracking finds nobody is searched like a
            photo (tiles included, without counting people) before giving up, so a small person
            is still found, without smoothing, at the cost of that search.
        """
        if self._photo_graph is None:
            raise RuntimeError("this PoseDetector has been closed")
        graph = None
        image_size = None
        try:
            for index, frame in enumerate(frames):
                frame_name = f"{name} frame {index}"
                frame, _ = self._check_image(frame, frame_name)
                if image_size is None:
                    image_size = frame.shape[:2]
                    window = _Window.around(image_size, int(min(max(image_size), 2048)))
                elif frame.shape[:2] != image_size:
                    raise ValueError(f"{frame_name} is {frame.shape[:2]}, the first frame was {image_size}")
                if graph is None:
                    with _quiet_native_start():
                        graph = self._build_graph(video=True)
                        person = self._run(graph, frame, window)
                else:
                    person = self._run(graph, frame, window)
                if person is None:
                    people = self._find_people(frame, max_people=1)
                    person = self._refine(frame, people[0]) if people else None
                observation = None
                if person is not None:
                    try:
                        observation = self._observation(person, image_size, frame_name)
                    except PersonTooSmallError as error:
                        logger.warning("%s", error)
                else:
                    logger.warning("no person found in %s", frame_name)
                yield observation
        finally:
            if graph is not None:
                graph.close()
