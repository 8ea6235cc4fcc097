"""Video and image files: H.264 mp4 through PyAV, PNG through Pillow, always written atomically."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from lwgan.files import atomic_path


def _check_frame(frame: np.ndarray, path: Path, index: int) -> None:
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"{path}: frame {index} must be uint8 (H, W, 3) RGB, got {frame.dtype} {frame.shape}")


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float, crf: int = 18) -> Path:
    """Write uint8 (H, W, 3) RGB frames as an H.264 mp4 (yuv420p, plays everywhere).

    Odd frame sizes are padded by one pixel (H.264 with 4:2:0 needs even sizes). The file appears
    only once complete. Returns the path.
    """
    path = Path(path)
    if fps <= 0:
        raise ValueError(f"{path}: fps must be positive, got {fps}")
    with atomic_path(path) as temporary:
        count = 0
        with av.open(str(temporary), mode="w", format="mp4") as container:
            stream = None
            for count, frame in enumerate(frames, start=1):
                _check_frame(frame, path, count - 1)
                if stream is None:
                    height, width = frame.shape[:2]
                    stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
                    stream.width, stream.height = width + width % 2, height + height % 2
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"crf": str(crf)}
                elif frame.shape[:2] != (height, width):
                    raise ValueError(f"{path}: frame {count - 1} is {frame.shape[:2]}, the first frame was {(height, width)}")
                padded = np.pad(frame, ((0, stream.height - height), (0, stream.width - width), (0, 0)), mode="edge")
                for packet in stream.encode(av.VideoFrame.from_ndarray(padded, format="rgb24")):
                    container.mux(packet)
            if stream is None:
                raise ValueError(f"{path}: no frames to write")
            for packet in stream.encode():
                container.mux(packet)
    return path


def video_info(path: str | os.PathLike) -> tuple[float, int]:
    """(frame rate, frame count) of a video; the count is the container's, 0 when it does not say."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video not found: {path}")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return float(stream.average_rate or stream.guessed_rate or 0), int(stream.frames or 0)
    except (av.FFmpegError, IndexError) as error:
        raise ValueError(f"{path}: not a readable video ({error})") from error


def iter_video(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Decode a video frame by frame: (H, W, 3) uint8 RGB arrays, without holding the whole clip."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video not found: {path}")
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(container.streams.video[0]):
                yield frame.to_ndarray(format="rgb24")
    except (av.FFmpegError, IndexError) as error:
        raise ValueError(f"{path}: not a readable video ({error})") from error


def read_video(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """Read every frame of a video: (N, H, W, 3) uint8 RGB and the frame rate."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video not found: {path}")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    except (av.FFmpegError, IndexError) as error:
        raise ValueError(f"{path}: not a readable video ({error})") from error
    if not frames:
        raise ValueError(f"{path}: the video has no frames")
    return np.stack(frames), fps


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write a uint8 (H, W, 3) RGB or (H, W) grey image; the format follows the suffix."""
    path = Path(path)
    with atomic_path(path) as temporary:
        Image.fromarray(image).save(temporary, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
    return path


def to_uint8(image) -> np.ndarray:
    """(3, H, W) or (H, W, 3) float tensor/array in [0, 1] -> (H, W, 3) uint8."""
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if array.ndim == 3 and array.shape[0] == 3 and array.shape[2] != 3:
        array = array.transpose(1, 2, 0)
    return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
