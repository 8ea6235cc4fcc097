"""Body models behind one interface: AnnyBody (free default) and SmplBody (user-supplied SMPL files)."""

from __future__ import annotations

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


__all__ = ["AnnyBody", "BodyModel", "BodyOutput", "PART_NAMES", "create_body_model"]
