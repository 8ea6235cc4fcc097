"""Training checkpoints: the resume state RUN_DIR/state.pt (the export, RUN_DIR/export, is lwgan.models.save_pretrained's).

state.pt holds everything a run needs to continue as if never stopped: the weights of G, D and
the EMA copy, both optimizers, both LR schedulers, the AMP grad scalers, the step, the random
states (Python, NumPy, torch CPU and CUDA) and the config it was written with. It holds only
tensors and plain Python values, so it loads with torch.load(weights_only=True). It is written
to a temporary file and renamed (lwgan.io.atomic_files.atomic_path): a run killed mid-write keeps the
previous snapshot.
"""

from __future__ import annotations

import logging
import pickle
import random
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lwgan.io.atomic_files import atomic_path

logger = logging.getLogger(__name__)

STATE_NAME = "state.pt"
EXPORT_NAME = "export"
STATE_VERSION = 1


def random_states() -> dict:
    """The Python, NumPy (legacy global) and torch (CPU, every CUDA device) random states, as tensors and plain values."""
    _, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    states = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: Mapping) -> None:
    """Inverse of random_states (CUDA states only when this machine has as many devices)."""
    random.setstate(_as_python_state(states["python"]))
    numpy_state = states["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["position"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    torch.set_rng_state(states["torch"].cpu())
    cuda_states = states.get("cuda")
    if cuda_states is not None and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([state.cpu() for state in cuda_states])


def _as_python_state(state) -> tuple:
    """random.setstate needs tuples; a saved state may come back with lists."""
    version, internal, gauss = state
    return version, tuple(internal), gauss


def save_training_state(
    path: str | Path,
    *,
    step: int,
    config: dict,
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    schedulers: Mapping[str, torch.optim.lr_scheduler.LRScheduler],
    scalers: Mapping[str, torch.amp.GradScaler],
) -> Path:
    """Write the resume state atomically; returns the path.

    Args:
        step: optimisation steps done.
        config: the run's config as plain values (OmegaConf.to_container of the TrainConfig).
        models: name -> module (unwrapped, not DDP), e.g. generator, discriminator, ema_generator.
        optimizers, schedulers, scalers: name -> object with state_dict().
    """
    path = Path(path)
    state = {
        "version": STATE_VERSION,
        "step": int(step),
        "config": config,
        "models": {name: model.state_dict() for name, model in models.items()},
        "optimizers": {name: optimizer.state_dict() for name, optimizer in optimizers.items()},
        "schedulers": {name: scheduler.state_dict() for name, scheduler in schedulers.items()},
        "scalers": {name: scaler.state_dict() for name, scaler in scalers.items()},
        "random": random_states(),
    }
    with atomic_path(path) as temporary:
        torch.save(state, temporary)
    logger.info("saved the training state at step %d to %s", step, path)
    return path


def read_training_state(path: str | Path) -> dict:
    """The dict save_training_state wrote (tensors on the CPU); ValueError naming the file when unreadable."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as error:
        raise ValueError(f"{path}: not a readable training state ({type(error).__name__}: {error}); "
                         "delete it to start the run afresh") from error
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise ValueError(f"{path}: not a training state of this lwgan (version {STATE_VERSION}); delete it to start afresh")
    return state


def config_differences(saved: Mapping, current: Mapping, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config dicts, as "key: saved -> current"."""
    differences = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key, "<absent>"), current.get(key, "<absent>")
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            differences += config_differences(old, new, f"{prefix}{key}.")
        elif old != new:
            differences.append(f"{prefix}{key}: {old!r} -> {new!r}")
    return differences


def load_training_state(
    path: str | Path,
    *,
    config: dict,
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    schedulers: Mapping[str, torch.optim.lr_scheduler.LRScheduler],
    scalers: Mapping[str, torch.amp.GradScaler],
) -> int:
    """Restore a run from save_training_state's file into the given objects; returns the step.

    The models must have the saved architecture (strict loading; a mismatch raises ValueError
    naming the file). A config that differs from the saved one is allowed (e.g. more iterations)
    and logged as a warning listing every changed key. Optimizer state moves to the device of
    each optimizer's parameters.
    """
    path = Path(path)
    state = read_training_state(path)
    differences = config_differences(state["config"], config)
    if differences:
        logger.warning("resuming %s with a different config:\n  %s", path, "\n  ".join(differences))
    for name, model in models.items():
        try:
            model.load_state_dict(state["models"][name], strict=True)
        except (KeyError, RuntimeError) as error:
            raise ValueError(f"{path}: the saved {name} does not match the model built from the config: {error}") from error
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(state["optimizers"][name])
    for name, scheduler in schedulers.items():
        scheduler.load_state_dict(state["schedulers"][name])
    for name, scaler in scalers.items():
        if state["scalers"][name]:  # empty when saved by a disabled scaler (no AMP)
            scaler.load_state_dict(state["scalers"][name])
    restore_random_states(state["random"])
    logger.info("resumed %s at step %d", path, state["step"])
    return int(state["step"])

