"""Inputs of preprocessing: videos and folders of frames, found under a path and split into shards."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lwgan.io.images import list_images, load_image
from lwgan.io.media import iter_video, video_info

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


@dataclass(frozen=True)
class FrameSource:
    """One video to process: a video file, or a folder of frames (sorted by name)."""

    name: str
    path: Path
    default_fps: float = 30.0
    max_frames: int | None = None  # read only the first max_frames frames

    @property
    def is_video_file(self) -> bool:
        return self.path.is_file()

    @property
    def fps(self) -> float:
        """The video's frame rate; default_fps for a folder of frames."""
        if self.is_video_file:
            rate, _ = video_info(self.path)
            return rate or self.default_fps
        return self.default_fps

    def frames(self) -> Iterator[np.ndarray]:
        """(H, W, 3) uint8 RGB frames in order (the first max_frames of them when set)."""
        if self.is_video_file:
            yield from itertools.islice(iter_video(self.path), self.max_frames)
        else:
            for image in list_images(self.path)[: self.max_frames]:
                yield load_image(image)


def find_sources(path: str | Path, default_fps: float = 30.0) -> list[FrameSource]:
    """The videos under `path`: a video file; a folder of frames; or a folder of videos and/or frame folders.

    Names are the file stems or folder names (sorted). Raises FileNotFoundError for a missing
    path and ValueError when nothing to process is there.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input not found: {path}")
    if path.is_file():
        if path.suffix.lower() not in VIDEO_EXTENSIONS:
            raise ValueError(f"{path}: not a video file (supported: {', '.join(VIDEO_EXTENSIONS)})")
        return [FrameSource(path.stem, path, default_fps)]
    if list_images(path):
        return [FrameSource(path.name, path, default_fps)]
    sources = [FrameSource(child.stem, child, default_fps) for child in sorted(path.iterdir())
               if (child.is_file() and child.suffix.lower() in VIDEO_EXTENSIONS) or (child.is_dir() and list_images(child))]
    if not sources:
        raise ValueError(f"{path}: no video files and no folders of images in it")
    names = [source.name for source in sources]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"{path}: several inputs share the names {duplicates}; rename them")
    return sources


def select_shard(sources: list[FrameSource], shard: str | None) -> list[FrameSource]:
    """Inputs of shard "i/n" (0 <= i < n): every n-th input starting at i; all inputs when shard is None."""
    if not shard:
        return sources
    try:
        index, count = (int(part) for part in shard.split("/"))
    except ValueError as error:
        raise ValueError(f"shard must look like i/n (e.g. 0/4), got {shard!r}") from error
    if not 0 <= index < count:
        raise ValueError(f"shard {shard!r}: i must be in [0, n)")
    return sources[index::count]
