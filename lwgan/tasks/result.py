"""What Imitator, Swapper and Viewer return: the frames, the bodies behind them, and save()."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from lwgan.io.media import save_frames

logger = logging.getLogger(__name__)


@dataclass
class SynthesisResult:
    """The made frames and the bodies behind them.

    frames: N (H, W, 3) uint8 RGB images.
    fps: frame rate for videos.
    pose: (N, 24, 3) SMPL axis-angle of the target bodies (image orientation); shape: (K,) the
        source's body shape; camera: (N, 3) weak-perspective target cameras (in the frames' NDC).
    sources: the source crops, (H, W, 3) uint8 each; references: per frame, the reference picture
        shown in side-by-side videos ((H, W, 3) uint8 or None).
    audio_from: a video whose audio save() carries into mp4 outputs, or None.
    people: the fitted source people (lwgan.tasks.people.PhotoPerson), for previews of the fits.
    offsets: (V,) the clothing the target bodies carry (lwgan.body.clothing), or None for naked bodies.
    """

    frames: list[np.ndarray]
    fps: float
    pose: np.ndarray
    shape: np.ndarray
    camera: np.ndarray
    sources: list[np.ndarray] = field(default_factory=list)
    references: list[np.ndarray | None] = field(default_factory=list)
    audio_from: Path | None = None
    people: list = field(default_factory=list)
    offsets: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the frames: .mp4 (H.264, with the reference's audio when it has some), .gif, a folder of PNGs (no suffix),
        or for a one-frame result (a swap, one view) a .png or .jpg picture; a picture path for several
        frames is a ValueError naming it (lwgan.io.media.save_frames). Written to a temporary file, then renamed."""
        frames = tqdm(self.frames, desc=f"writing {Path(path).name}", unit="frame")
        written = save_frames(Path(path), frames, self.fps, audio_from=self.audio_from)
        logger.info("wrote %d frames: %s", len(self.frames), written)
        return written

    def side_by_side(self) -> list[np.ndarray]:
        """Frames of source | reference (when there is one) | result, side by side."""
        source = self.sources[0] if self.sources else None
        rows = []
        for index, frame in enumerate(self.frames):
            reference = self.references[index] if index < len(self.references) else None
            panels = [panel for panel in (source, reference, frame) if panel is not None]
            rows.append(np.concatenate([_resized(panel, frame.shape[0]) for panel in panels], axis=1))
        return rows

    def save_side_by_side(self, path: str | os.PathLike) -> Path:
        """Write side_by_side() like save()."""
        return save_frames(Path(path), self.side_by_side(), self.fps, audio_from=self.audio_from)


def _resized(image: np.ndarray, height: int) -> np.ndarray:
    """(h, w, 3) uint8 scaled to `height` rows (aspect kept)."""
    if image.shape[0] == height:
        return image
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
