"""Process set-up for training: one process on any device, or DDP under torchrun (env RANK, WORLD_SIZE, LOCAL_RANK)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lwgan.devices import resolve_device

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process trains: its rank among world_size processes, its local rank on the node, its device."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only process that writes files and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _environment_int(name: str) -> int:
    value = os.environ.get(name)
    if value is None:
        raise ValueError(f"WORLD_SIZE is set for distributed training but {name} is not: start the run with torchrun")
    try:
        return int(value)
    except ValueError as error:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from error


def setup_distributed(device: str = "auto") -> DistributedContext:
    """Read torchrun's environment and join the process group when WORLD_SIZE > 1; else a single process.

    Backend: NCCL on CUDA, gloo on CPU. Each CUDA process uses cuda:LOCAL_RANK.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext(rank=0, local_rank=0, world_size=1, device=resolve_device(device))
    rank, local_rank = _environment_int("RANK"), _environment_int("LOCAL_RANK")
    resolved = resolve_device(device, local_rank)
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if resolved.type == "cuda" else "gloo", rank=rank, world_size=world_size)
    logger.info("rank %d of %d (local rank %d) on %s", rank, world_size, local_rank, resolved)
    return DistributedContext(rank=rank, local_rank=local_rank, world_size=world_size, device=resolved)


def cleanup_distributed(context: DistributedContext) -> None:
    """Leave the process group (when this process joined one)."""
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: nn.Module, context: DistributedContext) -> nn.Module:
    """The model in DistributedDataParallel when training on several processes, else itself."""
    if not context.distributed:
        return model
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def average_across_ranks(values: dict[str, torch.Tensor], context: DistributedContext) -> dict[str, float]:
    """Scalar tensors -> their mean over all processes, as floats (one all-reduce for the lot)."""
    if not values:
        return {}
    names = list(values)
    stacked = torch.stack([values[name].detach().float().reshape(()) for name in names])
    if context.distributed:
        dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
        stacked /= context.world_size
    return dict(zip(names, stacked.tolist()))


def barrier(context: DistributedContext) -> None:
    """Wait for every process (no-op for a single process)."""
    if context.distributed:
        dist.barrier()
