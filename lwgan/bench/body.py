"""Benchmark of AnnyBody: forward and forward+backward milliseconds per call against the 100 ms target."""

from __future__ import annotations

import functools
import statistics
from dataclasses import dataclass, field

import torch

from lwgan.bench.timing import time_ms
from lwgan.tables import format_table

TARGET_MS = 100.0
"""Budget for one AnnyBody forward at batch 16 on 2 CPU threads (pose + phenotypes in, vertices out)."""


def _forward(body, inputs: tuple[torch.Tensor, ...]) -> None:
    """One forward without gradients: (pose, shape, translation) in, BodyOutput discarded."""
    with torch.no_grad():
        body(*inputs)


def _forward_backward(body, inputs: tuple[torch.Tensor, ...]) -> None:
    """One forward and backward with gradients to pose, shape and translation."""
    leaves = [tensor.clone().requires_grad_(True) for tensor in inputs]
    output = body(*leaves)
    (output.vertices.square().sum() + output.keypoints.square().sum()).backward()


@dataclass
class BenchBodyConfig:
    batch_sizes: list[int] = field(default_factory=lambda: [1, 16])
    threads: int = 2
    repeats: int = 20
    skinning: str = "auto"  # AnnyBody skinning: auto, lbs or warp_lbs
    cache_dir: str | None = None  # body model cache folder (default ~/.cache/lwgan)


def run(config: BenchBodyConfig, body=None) -> list[dict]:
    """Time AnnyBody's forward (no_grad) and forward+backward (gradients to pose, shape, translation).

    `body` times an already built body model instead of a new AnnyBody. Returns one dict per
    (batch size, mode): model, batch_size, mode ("forward" or "forward+backward"), median_ms,
    min_ms and ratio (median_ms / TARGET_MS). The table is printed too.
    """
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        if body is None:
            from lwgan.body.anny_body import AnnyBody

            body = AnnyBody(skinning=config.skinning, cache_dir=config.cache_dir)
        generator = torch.Generator().manual_seed(0)
        rows = []
        for batch_size in config.batch_sizes:
            pose = 0.3 * torch.randn(batch_size, 24, 3, generator=generator)
            shape = body.default_shape(batch_size)
            translation = torch.zeros(batch_size, 3)

            inputs = (pose, shape, translation)
            for mode, step in (("forward", _forward), ("forward+backward", _forward_backward)):
                timings = time_ms(functools.partial(step, body, inputs), config.repeats, warmup=2)
                median = statistics.median(timings)
                rows.append({
                    "model": body.name, "batch_size": batch_size, "mode": mode,
                    "median_ms": median, "min_ms": min(timings), "ratio": median / TARGET_MS,
                })
        header = ("model", "batch", "mode", "median ms", "min ms", f"ratio to {TARGET_MS:.0f} ms target")
        print(format_table(header, [
            (row["model"], row["batch_size"], row["mode"], row["median_ms"], row["min_ms"], row["ratio"]) for row in rows
        ]))
        return rows
    finally:
        torch.set_num_threads(previous_threads)
