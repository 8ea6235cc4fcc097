"""The default demo (`lwgan` with no argument): a real photo imitating a CMU motion clip.

It is `lwgan imitate` with bundled inputs (lwgan.bundled): the Pexels photo of a man in a lunge
as the source and the CMU walk clip as the reference, written to outputs/demo/ with a
side-by-side video (source | result) and the fitted mesh over the photo. Every imitate setting
applies (checkpoint=, image_size=, max_frames=, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lwgan.bundled import bundled_motion, bundled_photo
from lwgan.tasks import imitate


@dataclass
class DemoConfig(imitate.ImitateConfig):
    source: Any = None  # default: the bundled photo
    reference: str | None = None  # default: the bundled CMU walk clip
    output: str = "outputs/demo/demo.mp4"
    side_by_side: bool = True


def run(config: DemoConfig) -> dict[str, Path]:
    """Run the imitation with the bundled inputs where none are given; returns the written paths by name."""
    config.source = str(bundled_photo()) if config.source is None else config.source
    config.reference = str(bundled_motion()) if config.reference is None else config.reference
    return imitate.run(config)
