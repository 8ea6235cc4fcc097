"""lwgan: 3D-mesh-based human image synthesis in the style of Liquid Warping GAN.

    from lwgan import Imitator, Swapper, Viewer
    Imitator()(source="me.jpg", reference="dance.mp4").save("me_dancing.mp4")
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {"Imitator": "lwgan.tasks.imitate", "Swapper": "lwgan.tasks.swap", "Viewer": "lwgan.tasks.view",
        "SynthesisResult": "lwgan.tasks.result"}

__all__ = ["Imitator", "Swapper", "SynthesisResult", "Viewer", "__version__"]


def __getattr__(name: str):
    """The pipelines load on first use, so `import lwgan` stays light (no torch, no detector)."""
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'lwgan' has no attribute {name!r}")
