"""`lwgan preprocess input=VIDEO_OR_FOLDER output=DIR`: iPER-format folders from raw videos.

For every input video (a video file, a folder of frames, or each of those inside a folder):

    DIR/images/<video>/<index:06d>.jpg   square crops around the person, image_size pixels
    DIR/masks/<video>/<index:06d>.png    person masks (0 / 255)
    DIR/smpls/<video>/pose_shape.pkl     cams (N, 3), pose (N, 72), shape (N, K) (iPER's format;
                                         cameras in the crops' NDC, K = the body's shape size)
    DIR/smpls/<video>/offsets.npy        (V,) float32: the person's clothing, metres along the body's
                                         normals (lwgan.body.clothing), fitted to the masks of
                                         clothing_frames frames spread over the video (clothing=true)
    DIR/smpls/<video>/kps.pkl            kps (N, 23, 3): detected keypoints in the crops' NDC and
                                         their confidence; names: BODY_KEYPOINT_NAMES
    DIR/smpls/<video>/info.json          source, fps, frame count, lost frames (no person) and filled
                                         frames (each with why: no person, an unreliable detection,
                                         a fit that misses its keypoints, a fit turned half round
                                         against its neighbours; their bodies are interpolated from
                                         the neighbours), crop (the square in
                                         frame pixels and how its part beyond the frame is padded),
                                         body, settings
    DIR/previews/<video>.mp4             the fitted mesh over the frames

Fitting first finds the person's one body shape (lwgan.recovery.fitting.shared_shape over
shape_frames frames spread over the video) and keeps it in every frame. The detector's left and
right labels of the legs are first decided over the whole video (lwgan.recovery.leg_labels: each
leg moves on smoothly, and the frames that show the torso square on name them). Then it tracks the person:
the first fitted frame gets the full cold start; every later frame
starts from its own keypoints (camera) and heading (3D landmarks, or a heading search), with the
articulated pose of the fits before it, and each chunk is refined together with a temporal term
(lwgan.recovery.fitting.track_bodies). Fits that face the other way from the frames around them
(smoothing.flipped_headings) are dropped and filled from their neighbours, the whole video is
low-passed without lag, and then every frame is re-fitted on its keypoints and mask from its smoothed
fit, keeping whichever fit covers the mask better, and the few frames that still cover their masks
worse than their neighbours are polished with the soft silhouette term (fitting.refit_silhouettes;
the filled frames too when they were fitted, those whose fit faced the wrong way or missed its
keypoints, from their own detections).

info.json is written last: a video that has it is done and is skipped on the next run. An
interrupted video resumes from its saved detections and from the last fitted chunk. shard=i/n
processes every n-th input from the i-th, so n machines can share a folder of videos.
"""

from __future__ import annotations

import json
import logging
import pickle
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from omegaconf import MISSING
from tqdm import tqdm

from lwgan.body import BodyConfig, build_body_model
from lwgan.body.clothing import clothed_vertices
from lwgan.body.skeleton import BODY_KEYPOINT_NAMES
from lwgan.config import to_yaml
from lwgan.data.iper import OFFSETS_FILE, write_offsets
from lwgan.io.atomic_files import atomic_path, write_bytes_atomic
from lwgan.io.media import write_image, write_video
from lwgan.recovery.clothing import (
    ClothingSettings,
    fit_clothing,
    video_clothing_settings,
)
from lwgan.recovery.detector import NoPersonError, PoseDetector
from lwgan.recovery.fitting import (
    CHAMFER,
    FitSettings,
    fit_bodies,
    refit_silhouettes,
    shared_shape,
    track_bodies,
)
from lwgan.recovery.frames import FrameSource, find_sources, select_shard
from lwgan.recovery.leg_labels import consistent_leg_labels
from lwgan.recovery.observation import FitResult, box_side
from lwgan.recovery.pose_files import write_pose_shape
from lwgan.recovery.preview import overlay_fit
from lwgan.recovery.smoothing import fill_missing, flipped_headings, smooth_motion
from lwgan.recovery.video import (
    CROP_PADDING,
    CROP_PADDING_COLOUR,
    Detections,
    crop_frame,
    crop_observation,
    detect_frames,
    steadied_masks,
    unreliable_frames,
    video_crop,
)

logger = logging.getLogger(__name__)


@dataclass
class PreprocessConfig:
    input: str = MISSING  # a video, a folder of frames, or a folder of videos / frame folders
    output: str = MISSING  # the iPER-format dataset folder
    shard: str | None = None  # "i/n": this run's share of the inputs
    image_size: int = 512  # side of the square crops
    margin: float = 1.2  # crop side = margin x the person's extent over the whole video
    chunk: int = 32  # frames fitted together (after the fits of the frames before them)
    shape_frames: int = 8  # the person's one body shape is fitted to this many reliable frames spread over the video, then tracked fixed (0: every frame tracks its own; either way pose_shape.pkl holds one shape, the median over the frames)
    mismatch_fraction: float = 0.1  # a fit whose keypoints miss the detected ones by more (mean, in box sizes) is dropped and filled from its neighbours
    fps: float = 30.0  # frame rate of folders of frames
    pose_cutoff_hz: float = 4.0  # zero-phase low-pass of the poses
    camera_cutoff_hz: float = 4.0  # ... and of the cameras (the fit's temporal term already steadies them; 2 Hz trailed a walker who turns)
    clothing: bool = True  # fit the person's clothed body (offsets.npy); evaluate and train carry it into every pose
    clothing_frames: int = 8  # frames (spread over the video, with a mask) the clothing is fitted to
    preview: bool = True
    preview_size: int = 256
    body: BodyConfig = field(default_factory=BodyConfig)
    fitting: FitSettings = field(default_factory=FitSettings)
    clothing_fitting: ClothingSettings = field(default_factory=video_clothing_settings)


@dataclass(frozen=True)
class VideoPaths:
    """Where one video's outputs and working files go."""

    root: Path
    name: str

    @property
    def images(self) -> Path:
        return self.root / "images" / self.name

    @property
    def masks(self) -> Path:
        return self.root / "masks" / self.name

    @property
    def smpls(self) -> Path:
        return self.root / "smpls" / self.name

    @property
    def work(self) -> Path:
        return self.root / ".work" / self.name

    @property
    def info(self) -> Path:
        return self.smpls / "info.json"

    @property
    def preview(self) -> Path:
        return self.root / "previews" / f"{self.name}.mp4"


def frame_name(index: int) -> str:
    return f"{index:06d}"


def detect_video(source: FrameSource, paths: VideoPaths) -> Detections:
    """Pass 1, or its saved result."""
    saved = paths.work / "detections.npz"
    if saved.exists():
        logger.info("%s: reusing saved detections", source.name)
        return Detections.load(saved)
    with PoseDetector() as detector:
        frames = tqdm(source.frames(), desc=f"{source.name}: detecting", unit="frame")
        detections = detect_frames(frames, lambda stream: detector.detect_video(stream, name=str(source.path)), str(source.path))
    detections.save(saved)
    return detections


def crop_and_fit(source: FrameSource, paths: VideoPaths, detections: Detections, crop: np.ndarray, body, config: PreprocessConfig, timings: dict):
    """Pass 2: write crops and masks, fit each chunk of reliably detected frames; resumable per chunk.

    Returns (pose (N, 24, 3), shape (N, K), camera (N, 3)) with NaN on frames without a fit, and
    the frames left unfitted with why ({index: reason}: no person, an unreliable detection, or a
    fit that does not match its keypoints); adds the seconds spent fitting to timings["fit"] and
    those spent on the video's shape to timings["shape"].
    """
    progress_file = paths.work / "fits.npz"
    count = len(detections)
    unfitted = unreliable_frames(detections)
    shape_start = time.perf_counter()
    fixed_shape = video_shape(paths, detections, crop, body, config, unfitted)
    timings["shape"] = time.perf_counter() - shape_start
    if progress_file.exists():
        with np.load(progress_file) as saved:
            pose, shape, camera, done = saved["pose"], saved["shape"], saved["camera"], int(saved["done"])
            unfitted.update({int(index): str(reason) for index, reason in zip(saved["rejected"], saved["rejected_reasons"])})
    else:
        pose = np.full((count, 24, 3), np.nan, np.float32)
        shape = np.full((count, body.shape_dim), np.nan, np.float32)
        camera = np.full((count, 3), np.nan, np.float32)
        done = 0
    paths.images.mkdir(parents=True, exist_ok=True)
    paths.masks.mkdir(parents=True, exist_ok=True)
    chunk_frames: list[int] = []
    bar = tqdm(total=count, initial=done, desc=f"{source.name}: cropping and fitting", unit="frame")
    for index, frame in enumerate(source.frames()):
        if index >= count:
            break
        if index < done:
            continue
        image_path = paths.images / f"{frame_name(index)}.jpg"
        with atomic_path(image_path) as temporary:
            cv2.imwrite(str(temporary), cv2.cvtColor(crop_frame(frame, crop, config.image_size), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        chunk_frames.append(index)
        if len(chunk_frames) == config.chunk or index == count - 1:
            fit_start = time.perf_counter()
            _fit_chunk(chunk_frames, detections, crop, body, config, paths, (pose, shape, camera), unfitted, fixed_shape)
            timings["fit"] = timings.get("fit", 0.0) + time.perf_counter() - fit_start
            done = index + 1
            rejected = mismatched_frames(unfitted)
            with atomic_path(progress_file) as temporary:
                with open(temporary, "wb") as handle:
                    np.savez(handle, pose=pose, shape=shape, camera=camera, done=done, rejected=np.array(rejected, np.int64),
                             rejected_reasons=np.array([unfitted[frame] for frame in rejected], dtype=str))
            bar.update(len(chunk_frames))
            chunk_frames = []
    bar.close()
    return (pose, shape, camera), dict(sorted(unfitted.items()))


MISMATCH = "the fit does not match the keypoints"
"""Reason given for frames whose fitted body stays far from the detected keypoints."""


def mismatched_frames(unfitted: dict[int, str]) -> list[int]:
    """The frames of `unfitted` ({index: reason}) left unfitted because their fit missed the keypoints (MISMATCH), in order."""
    return sorted(frame for frame, reason in unfitted.items() if reason.startswith(MISMATCH))


HEADING_FLIP = "the fit faces the other way from the frames around it"
"""Reason given for frames whose fitted body turned half round against its neighbours (smoothing.flipped_headings)."""


def spread_evenly(frames: list[int], count: int) -> list[int]:
    """Up to `count` of `frames` (increasing indices), evenly spread from the first to the last."""
    return sorted({frames[round(position)] for position in np.linspace(0, len(frames) - 1, min(count, len(frames)))})


def video_shape(paths: VideoPaths, detections: Detections, crop, body, config: PreprocessConfig, unfitted: dict[int, str]) -> np.ndarray | None:
    """(K,) the person's shape for the whole video (fitting.shared_shape of config.shape_frames reliable frames spread over it), saved for a resumed run; None with shape_frames=0."""
    saved = paths.work / "shape.npy"
    if config.shape_frames <= 0:
        return None
    if saved.exists():
        return np.load(saved)
    reliable = [index for index in np.flatnonzero(detections.found) if index not in unfitted]
    if not reliable:
        return None
    chosen = spread_evenly(reliable, config.shape_frames)
    shape = shared_shape(body, [crop_observation(detections, index, crop, config.image_size) for index in chosen], config.fitting)
    paths.work.mkdir(parents=True, exist_ok=True)
    with atomic_path(saved) as temporary:
        with open(temporary, "wb") as handle:
            np.save(handle, shape)
    return shape


def _fit_chunk(frames, detections, crop, body, config, paths, outputs, unfitted: dict[int, str], fixed_shape: np.ndarray | None) -> None:
    """Fit the reliably detected frames among `frames` after the fits before them; write their masks.

    With a fixed_shape (K,) every frame keeps it (the cold start and the tracking fit no shape).

    Fits go into `outputs` (pose, shape, camera) in place; frames whose fit misses its keypoints
    by more than config.mismatch_fraction of the box size are left NaN and added to `unfitted`.
    """
    pose, shape, camera = outputs
    observations, indices = [], []
    for index in frames:
        mask_path = paths.masks / f"{frame_name(index)}.png"
        empty = np.zeros((config.image_size, config.image_size), np.float32)
        if not detections.found[index]:
            write_image(mask_path, empty.astype(np.uint8))
            continue
        observation = crop_observation(detections, index, crop, config.image_size)
        mask = empty if observation.mask is None else observation.mask
        write_image(mask_path, ((mask > 0.5) * 255).astype(np.uint8))
        if index not in unfitted:
            observations.append(observation)
            indices.append(index)
    if not observations:
        return
    previous_frames = np.flatnonzero(np.isfinite(camera[: indices[0]]).all(axis=1))[-2:].tolist()
    settings = config.fitting if fixed_shape is None else replace(config.fitting, fit_shape=False)
    if previous_frames:
        previous = FitResult(pose[previous_frames], shape[previous_frames], camera[previous_frames], np.zeros((len(previous_frames), 23, 2)), {})
    else:
        # The video's first fit: the cold start (heading search, silhouette stage) on its first frame alone.
        # Tracking refits that frame from it, so the cheap chamfer silhouette term does (1 s less than the soft one).
        previous = fit_bodies(body, observations[:1], settings, shape=fixed_shape, silhouette_term=CHAMFER)
        previous_frames = indices[:1]
    result = track_bodies(body, observations, previous, indices, previous_frames, settings)
    box_sizes = np.array([box_side(o.box) for o in observations])
    misses = result.losses["keypoint_error_px"] > config.mismatch_fraction * box_sizes
    for row, index in enumerate(indices):
        if misses[row]:
            unfitted[index] = f"{MISMATCH} ({result.losses['keypoint_error_px'][row]:.1f} px off, box {box_sizes[row]:.0f} px)"
        else:
            pose[index], shape[index], camera[index] = result.pose[row], result.shape[row], result.camera[row]


def write_outputs(source: FrameSource, paths: VideoPaths, detections: Detections, crop, fits, unfitted: dict[int, str], body,
                  config: PreprocessConfig, timings: dict) -> dict:
    """Fill unfitted frames from their neighbours, smooth, then write pose_shape.pkl, kps.pkl, the preview and info.json (last)."""
    start = time.perf_counter()
    pose, shape, camera = fits
    found = ~np.isnan(camera).any(axis=1)
    if not found.any():
        raise NoPersonError(f"{source.path}: no frame could be fitted ({_listing(unfitted)})")
    flipped = flipped_headings(pose, found)
    unfitted = dict(sorted({**unfitted, **{int(index): HEADING_FLIP for index in np.flatnonzero(flipped)}}.items()))
    found &= ~flipped
    lost = np.flatnonzero(~detections.found).tolist()
    if lost:
        logger.warning("%s: no person in %d frame(s) (%s); their bodies are interpolated", source.path, len(lost), _listing(lost))
    doubtful = {index: reason for index, reason in unfitted.items() if detections.found[index]}
    if doubtful:
        logger.warning("%s: %d frame(s) left unfitted and interpolated: %s", source.path, len(doubtful), _listing(doubtful))
    fps = source.fps
    pose, camera = fill_missing(pose, camera, found)
    pose, camera = smooth_motion(pose, camera, fps, config.pose_cutoff_hz, config.camera_cutoff_hz)
    video_shape = np.repeat(np.median(shape[found], axis=0, keepdims=True), len(pose), axis=0)
    if config.fitting.refit_silhouette_iterations > 0:
        mismatched = np.isin(np.arange(len(pose)), mismatched_frames(unfitted))
        pose, camera = refit_smoothed(detections, crop, (pose, video_shape, camera), found | flipped | mismatched, flipped, body, config)
    write_pose_shape(paths.smpls / "pose_shape.pkl", cams=camera, pose=pose.reshape(len(pose), 72), shape=video_shape)

    x0, y0, side = (float(v) for v in crop)
    keypoints = detections.keypoints.copy()
    keypoints[..., :2] = (keypoints[..., :2] - [x0, y0]) * (2.0 / side) - 1.0
    keypoints = np.nan_to_num(keypoints, nan=0.0).astype(np.float32)
    with atomic_path(paths.smpls / "kps.pkl") as temporary:
        temporary.write_bytes(pickle.dumps({"kps": keypoints, "names": list(BODY_KEYPOINT_NAMES)}, protocol=2))

    timings["smooth_and_write"] = time.perf_counter() - start
    offsets, clothing_frames = None, []
    if config.clothing:
        start = time.perf_counter()
        offsets, clothing_frames = fit_video_clothing(detections, crop, (pose, video_shape, camera), body, config)
        write_offsets(paths.smpls / OFFSETS_FILE, offsets)
        timings["clothing"] = time.perf_counter() - start
    if config.preview:
        start = time.perf_counter()
        write_video(paths.preview, _preview_frames(paths, pose, video_shape, camera, offsets, body, config.preview_size), fps)
        timings["preview"] = time.perf_counter() - start
    info = {
        "source": str(source.path), "fps": fps, "frames": len(pose), "lost_frames": lost,
        "filled_frames": {str(index): reason for index, reason in unfitted.items()},
        "crop": {"x0": x0, "y0": y0, "side": side, "source_size": list(detections.image_size),
                 "padding": CROP_PADDING, "padding_colour": list(CROP_PADDING_COLOUR)},
        "image_size": config.image_size, "body": body.name, "seconds": sum(timings.values()),
        "clothing": {"file": OFFSETS_FILE, "frames": clothing_frames, "mean_m": float(offsets.mean()), "max_m": float(offsets.max())}
        if offsets is not None else False,
        "seconds_by_stage": dict(timings),
        "settings": {key: value for key, value in asdict(config).items() if key not in ("input", "output", "shard")},
    }
    write_bytes_atomic(paths.info, json.dumps(info, indent=1).encode())
    return info


def refit_smoothed(detections: Detections, crop, fits, candidates: np.ndarray, flipped: np.ndarray, body, config: PreprocessConfig
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The smoothed (pose (N, 24, 3), camera (N, 3)) with the `candidates` ((N,) bool) re-fitted (fitting.refit_silhouettes).

    fits: the smoothed (pose, shape, camera). candidates: frames with a detection to re-fit (the
    fitted frames, and those filled because their fit faced the wrong way or missed its keypoints:
    a leg forward and a leg back interpolate into two legs together). The `flipped` ((N,) bool)
    frames, filled because their fit faced the other way, keep their filled heading (refit_silhouettes'
    keep_heading): their detection says the other way too. Each keeps whichever of its
    smoothed fit and its re-fits covers its mask best. It runs after the smoothing, so that a
    re-fitted frame, which may differ from its neighbours, is not averaged with them.
    """
    pose, shape, camera = (array.copy() for array in fits)
    frames = np.flatnonzero(candidates)
    observations = [crop_observation(detections, index, crop, config.image_size) for index in frames]
    smoothed = FitResult(pose[frames], shape[frames], camera[frames], np.zeros((len(frames), len(BODY_KEYPOINT_NAMES), 2), np.float32), {})
    refitted = refit_silhouettes(body, observations, smoothed, replace(config.fitting, fit_shape=False), keep_heading=flipped[frames])
    pose[frames], camera[frames] = refitted.pose, refitted.camera
    return pose, camera


def _listing(items, limit: int = 20) -> str:
    """The first `limit` frames of a list (or of a dict frame -> reason), comma-separated."""
    shown = [f"{index}: {items[index]}" if isinstance(items, dict) else str(index) for index in list(items)[:limit]]
    return ", ".join(shown) + (" ..." if len(items) > limit else "")


def fit_video_clothing(detections: Detections, crop, fits, body, config: PreprocessConfig) -> tuple[np.ndarray, list[int]]:
    """The person's (V,) clothing offsets from up to config.clothing_frames frames with a mask, spread evenly over the video.

    fits: the final (pose (N, 24, 3), shape (N, K), camera (N, 3)). Returns the offsets and the frames used.
    """
    pose, shape, camera = fits
    candidates = [index for index in np.flatnonzero(detections.found) if detections.masks[index].size]
    if not candidates:
        logger.warning("no frame has a person mask: the body stays naked")
        return np.zeros(len(body.mirror_vertices), np.float32), []
    chosen = spread_evenly(candidates, config.clothing_frames)
    observations = [crop_observation(detections, index, crop, config.image_size) for index in chosen]
    views = FitResult(pose[chosen], shape[chosen], camera[chosen], np.zeros((len(chosen), 23, 2), np.float32), {})
    return fit_clothing(body, observations, views, config.clothing_fitting), [int(index) for index in chosen]


def _preview_frames(paths: VideoPaths, pose, shape, camera, offsets, body, size: int):
    """The fitted (clothed, when `offsets` (V,) is given) meshes over the written crops, at `size` pixels."""
    for index in tqdm(range(len(pose)), desc=f"{paths.name}: preview", unit="frame"):
        image = cv2.cvtColor(cv2.imread(str(paths.images / f"{frame_name(index)}.jpg")), cv2.COLOR_BGR2RGB)
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        with torch.no_grad():
            vertices = body(torch.from_numpy(pose[index : index + 1]), torch.from_numpy(shape[index : index + 1])).vertices
            if offsets is not None:
                vertices = clothed_vertices(vertices, body.faces, torch.from_numpy(offsets))
        yield overlay_fit(image, vertices[0], body.faces, torch.from_numpy(camera[index]))


def preprocess_video(source: FrameSource, output: Path, body, config: PreprocessConfig) -> dict | None:
    """Process one video unless it is already done; returns its info (None when skipped)."""
    paths = VideoPaths(output, source.name)
    if paths.info.exists():
        logger.info("%s: already done (%s), skipped", source.name, paths.info)
        return None
    timings: dict[str, float] = {}
    start = time.perf_counter()
    detections = consistent_leg_labels(steadied_masks(detect_video(source, paths)))
    timings["detect"] = time.perf_counter() - start
    if not detections.found.any():
        raise NoPersonError(f"{source.path}: no person found in any of its {len(detections)} frames")
    crop = video_crop(detections, config.margin)
    start = time.perf_counter()
    fits, unfitted = crop_and_fit(source, paths, detections, crop, body, config, timings)
    timings["crop_and_write_frames"] = time.perf_counter() - start - timings.get("fit", 0.0) - timings["shape"]
    info = write_outputs(source, paths, detections, crop, fits, unfitted, body, config, timings)
    for leftover in paths.work.glob("*"):
        leftover.unlink()
    paths.work.rmdir()
    logger.info("%s: %d frames in %.1f s -> %s", source.name, info["frames"], info["seconds"], paths.smpls)
    return info


def run(config: PreprocessConfig) -> list[dict]:
    output = Path(config.output)
    sources = select_shard(find_sources(config.input, config.fps), config.shard)
    logger.info("preprocessing %d video(s) into %s", len(sources), output)
    body = build_body_model(config.body)
    output.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(output / f"preprocess_config{'_' + config.shard.replace('/', 'of') if config.shard else ''}.yaml", to_yaml(config).encode())
    results = []
    for source in sources:
        try:
            info = preprocess_video(source, output, body, config)
        except NoPersonError as error:
            logger.error("%s", error)
            continue
        if info is not None:
            results.append(info)
    return results
