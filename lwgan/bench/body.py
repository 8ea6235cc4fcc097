"""Benchmark of AnnyBody: forward and forward+backward milliseconds per call against the 100 ms target."""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable, Sequence

import torch

from lwgan.bench.table import format_table

TARGET_MS = 100.0
"""Budget for one AnnyBody forward at batch 16 on 2 CPU threads (pose + phenotypes in, vertices out)."""


def _time_ms(function: Callable[[], object], repeats: int, warmup: int = 2) -> list[float]:
    """Wall-clock milliseconds of `repeats` calls of `function` after `warmup` untimed calls."""
    for _ in range(warmup):
        function()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        timings.append(1000.0 * (time.perf_counter() - start))
    return timings


def _forward(body, inputs: tuple[torch.Tensor, ...]) -> None:
    """One forward without gradients: (pose, shape, translation) in, BodyOutput discarded."""
    with torch.no_grad():
        body(*inputs)


def _forward_backward(body, inputs: tuple[torch.Tensor, ...]) -> None:
    """One forward and backward with gradients to pose, shape and translation."""
    leaves = [tensor.clone().requires_grad_(True) for tensor in inputs]
    output = body(*leaves)
    (output.vertices.square().sum() + output.keypoints.square().sum()).backward()


def run(
    batch_sizes: Sequence[int] = (1, 16),
    threads: int = 2,
    repeats: int = 20,
    skinning: str = "auto",
    body=None,
) -> list[dict]:
    """Time AnnyBody's forward (no_grad) and forward+backward (gradients to pose, shape, translation).

    Args:
        batch_sizes: batch sizes B to time.
        threads: torch CPU threads during the run (restored afterwards).
        repeats: timed calls per measurement, after two warm-up calls.
        skinning: AnnyBody skinning method, when `body` is None.
        body: an already built body model to time instead of a new AnnyBody.
    Returns:
        One dict per (batch size, mode): model, batch_size, mode ("forward" or "forward+backward"),
        median_ms, min_ms and ratio (median_ms / TARGET_MS). The table is printed too.
    """
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        if body is None:
            from lwgan.body.anny_body import AnnyBody

            body = AnnyBody(skinning=skinning)
        generator = torch.Generator().manual_seed(0)
        rows = []
        for batch_size in batch_sizes:
            pose = 0.3 * torch.randn(batch_size, 24, 3, generator=generator)
            shape = body.default_shape(batch_size)
            translation = torch.zeros(batch_size, 3)

            inputs = (pose, shape, translation)
            for mode, step in (("forward", _forward), ("forward+backward", _forward_backward)):
                timings = _time_ms(functools.partial(step, body, inputs), repeats)
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


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: python -m lwgan.bench.body [--batch-sizes 1 16] [--threads 2] [--repeats 20] [--skinning auto]."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skinning", default="auto", choices=("auto", "lbs", "warp_lbs"))
    arguments = parser.parse_args(argv)
    run(arguments.batch_sizes, arguments.threads, arguments.repeats, arguments.skinning)


if __name__ == "__main__":
    main()
