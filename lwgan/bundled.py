"""Files shipped inside the package (lwgan/assets, licences in its ATTRIBUTION.md): the demo's photo and motion clips."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

MOTIONS = {"walk": "cmu_131_01_walk.bvh", "hop": "cmu_131_03_hop.bvh"}


def bundled_motion(name: str = "walk") -> Path:
    """Path of a bundled CMU clip: "walk" (131_01, the demo's) or "hop" (131_03)."""
    if name not in MOTIONS:
        raise ValueError(f"no bundled motion {name!r}; there are {', '.join(MOTIONS)}")
    return Path(str(resources.files("lwgan") / "assets" / "motion" / MOTIONS[name]))


def bundled_photo() -> Path:
    """Path of the bundled full-body photo (Pexels 4793258, a man in a barbell lunge, seen from behind)."""
    return Path(str(resources.files("lwgan") / "assets" / "photos" / "pexels_4793258_lunge.jpg"))
