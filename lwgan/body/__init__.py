"""Body models behind one interface: AnnyBody (free default) and SmplBody (user-supplied SMPL files)."""

from __future__ import annotations

from dataclasses import dataclass

from lwgan.body.anny_body import AnnyBody
from lwgan.body.model import PART_NAMES, BodyModel, BodyOutput

BODY_MODEL_KINDS = ("anny", "smpl")


def create_body_model(kind: str = "anny", **kwargs) -> BodyModel:
    """Build a body model by name: "anny" (AnnyBody, free) or "smpl" (SmplBody, needs the user's SMPL files).

    kwargs go to the model's constructor. The SMPL backend is imported only when asked for, so the
    default path never imports smplx.
    """
    if kind == "anny":
        return AnnyBody(**kwargs)
    if kind == "smpl":
        from lwgan.body.smpl_body import SmplBody

        return SmplBody(**kwargs)
    raise ValueError(f"kind must be one of {BODY_MODEL_KINDS}, got {kind!r}")


@dataclass
class BodyConfig:
    """Which body model a command uses (the `body.` keys on the command line)."""

    kind: str = "anny"  # "anny" (free, default) or "smpl" (your SMPL file, `pip install lwgan[smpl]`)
    cache_dir: str | None = None  # anny: cache folder (default $LWGAN_CACHE_DIR or ~/.cache/lwgan)
    model_path: str | None = None  # smpl: the SMPL .pkl/.npz (default: looked up in assets/smpl/)
    uv_path: str | None = None  # smpl: an OBJ with the UV layout (optional)


def build_body_model(config: BodyConfig) -> BodyModel:
    """The body model a BodyConfig describes."""
    if config.kind == "anny":
        return create_body_model("anny", cache_dir=config.cache_dir)
    if config.kind == "smpl":
        return create_body_model("smpl", model_path=config.model_path, uv_path=config.uv_path)
    raise ValueError(f"body.kind must be one of {BODY_MODEL_KINDS}, got {config.kind!r}")


__all__ = ["AnnyBody", "BodyConfig", "BodyModel", "BodyOutput", "PART_NAMES", "build_body_model", "create_body_model"]
