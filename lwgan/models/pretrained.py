"""Export checkpoints: a folder with `model.safetensors` (weights) and `config.json` (class and constructor arguments)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from lwgan.io.atomic_files import atomic_path, write_bytes_atomic
from lwgan.io.state_dicts import check_state_dict
from lwgan.models.discriminator import PatchDiscriminator
from lwgan.models.generator_attention import AttentionalLiquidWarpingGenerator
from lwgan.models.generator_iccv import LiquidWarpingGenerator

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
FORMAT_VERSION = 1

MODEL_CLASSES: dict[str, type[nn.Module]] = {
    cls.__name__: cls for cls in (LiquidWarpingGenerator, AttentionalLiquidWarpingGenerator, PatchDiscriminator)
}
"""Classes an export folder may name; each has a `config` property with its constructor's keyword arguments."""


def save_pretrained(model: nn.Module, folder: str | os.PathLike) -> Path:
    """Write `model` to `folder` as model.safetensors + config.json (each written atomically); returns the folder.

    The model's class must be one of MODEL_CLASSES; its `config` property gives the constructor arguments.
    """
    name = type(model).__name__
    if MODEL_CLASSES.get(name) is not type(model):
        raise TypeError(f"cannot export a {name}: from_pretrained knows only {', '.join(MODEL_CLASSES)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().to("cpu").contiguous() for key, value in model.state_dict().items()}
    with atomic_path(folder / WEIGHTS_NAME) as temporary:
        save_file(tensors, str(temporary), metadata={"format": "pt", "class_name": name})
    description = {"class_name": name, "config": model.config, "format_version": FORMAT_VERSION}
    write_bytes_atomic(folder / CONFIG_NAME, (json.dumps(description, indent=2) + "\n").encode())
    logger.info("saved %s (%d tensors) to %s", name, len(tensors), folder)
    return folder


def read_config(folder: str | os.PathLike) -> tuple[type[nn.Module], dict]:
    """The model class and constructor arguments recorded in `folder`/config.json.

    Raises FileNotFoundError (naming the file) when it is missing, ValueError when it is not a
    valid export config or names an unknown class.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"export folder not found: {folder}")
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: an export folder holds {CONFIG_NAME} and {WEIGHTS_NAME} (see save_pretrained)")
    try:
        description = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(description, dict) or not isinstance(description.get("config"), dict) or "class_name" not in description:
        raise ValueError(f"{path} must be a JSON object with 'class_name' and 'config' (an object)")
    if description.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has format_version {description.get('format_version')!r}, this lwgan reads {FORMAT_VERSION}")
    name = description["class_name"]
    if name not in MODEL_CLASSES:
        raise ValueError(f"{path} names the unknown model class {name!r}; known: {', '.join(MODEL_CLASSES)}")
    return MODEL_CLASSES[name], description["config"]


def from_pretrained(folder: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model saved in `folder` (save_pretrained) and load its weights strictly; eval mode on `device`.

    Raises:
        FileNotFoundError: the folder, config.json or model.safetensors is missing (the message names it).
        ValueError: unreadable config or weights, unknown class, constructor arguments the class
            rejects, or weights whose keys or shapes do not match the model (every missing and
            unexpected key and every shape mismatch is listed).
    """
    folder = Path(folder)
    model_class, config = read_config(folder)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    try:
        model = model_class(**config)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{config_path}: cannot build {model_class.__name__} from its config: {error}") from error
    if not weights_path.is_file():
        raise FileNotFoundError(f"{weights_path} not found (the weights of the {model_class.__name__} in {folder})")
    try:
        tensors = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{weights_path} is not a readable safetensors file: {error}") from error
    check_state_dict(tensors, model.state_dict(), str(weights_path), "the model")
    model.load_state_dict(tensors, strict=True)
    return model.to(device).eval()
