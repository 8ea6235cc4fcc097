"""Wall-clock timing for benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable


def time_ms(function: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Milliseconds of `repeats` calls of `function`, after `warmup` untimed calls."""
    for _ in range(warmup):
        function()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        timings.append(1000.0 * (time.perf_counter() - start))
    return timings
