"""Reading weight files from users safely, and checking every key and shape against a model."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch


def shape_text(shape: Iterable[int]) -> str:
    """A shape as "(a, b, c)"."""
    return str(tuple(int(size) for size in shape))


def read_state_dict_file(path: str | os.PathLike, what: str, not_found_help: str) -> Mapping[str, torch.Tensor]:
    """A plain state dict from an untrusted `.pth` file, read with torch.load(weights_only=True).

    Raises FileNotFoundError "<what> not found: expected <path>. <not_found_help>" when there is no
    file, ValueError naming the file when it cannot be read safely or is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: expected {path}. {not_found_help}")
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as error:
        raise ValueError(
            f"{path}: not a readable PyTorch state dict (loaded with weights_only=True): {type(error).__name__}: {error}"
        ) from error
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"{path}: expected a state dict (a mapping of names to tensors), got {type(state_dict).__name__}")  # noqa: TRY004
    return state_dict


def check_state_dict(
    found: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Tensor | tuple[int, ...]],
    source: str,
    what: str,
    ignored_prefixes: tuple[str, ...] = (),
    optional_suffixes: tuple[str, ...] = (),
) -> dict[str, torch.Tensor]:
    """Check every key and shape of `found` against `expected` (tensors or shapes); return the checked tensors.

    Keys starting with `ignored_prefixes` are skipped; expected keys ending with
    `optional_suffixes` may be missing. Raises ValueError naming `source` and listing every
    missing key, unexpected key, non-tensor value and shape mismatch (with both shapes).
    """
    expected_shapes = {key: tuple(value.shape) if isinstance(value, torch.Tensor) else tuple(value) for key, value in expected.items()}
    problems, unexpected = [], []
    checked: dict[str, torch.Tensor] = {}
    for key, value in found.items():
        if not isinstance(key, str):
            problems.append(f"key {key!r} is not a string")
        elif ignored_prefixes and key.startswith(ignored_prefixes):
            continue
        elif key not in expected_shapes:
            unexpected.append(key)
        elif not isinstance(value, torch.Tensor):
            problems.append(f"key {key!r} holds a {type(value).__name__}, not a tensor")
        elif tuple(value.shape) != expected_shapes[key]:
            problems.append(f"key {key!r} has shape {shape_text(value.shape)} in {source}, {what} expects {shape_text(expected_shapes[key])}")
        else:
            checked[key] = value
    missing = [key for key in expected_shapes if key not in found and not (optional_suffixes and key.endswith(optional_suffixes))]
    if missing:
        problems.append(f"missing keys ({len(missing)}): {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
    if problems:
        raise ValueError(f"{source}: does not match {what}:\n  " + "\n  ".join(problems))
    return checked
