"""The torch device a setting names ("auto", "cpu", "cuda", "cuda:1", ...)."""

from __future__ import annotations

import torch


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """"auto" -> cuda:local_rank when CUDA is present, else cpu; "cuda" -> cuda:local_rank; anything else as given."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={name} asks for CUDA, but torch.cuda.is_available() is False here")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device
