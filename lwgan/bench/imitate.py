"""`lwgan bench imitate`: motion imitation speed per stage and peak memory, for a motion file and a video reference.

Each case runs in a fresh process (so its peak resident memory is its own): build the Imitator,
fit the source photo, load (or fit) the reference, prepare the sources, make the frames, write
the mp4. Seconds per frame divide each stage by the number of reference frames.
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from lwgan.body import BodyConfig
from lwgan.bundled import bundled_motion, bundled_photo
from lwgan.tables import format_table

TARGET_SECONDS_PER_FRAME = 0.5
TARGET_PEAK_GIB = 2.0


@dataclass
class BenchImitateConfig:
    source: str | None = None  # default: the bundled photo
    motion: str | None = None  # the motion-file case's reference; default: the bundled CMU hop clip
    video_reference: bool = True  # also time a reference video (a synthetic person moving by the walk clip): its fitting counts
    frames: int = 100
    image_size: int = 256
    batch_size: int = 8
    threads: int = 2
    checkpoint: str | None = None  # time a generator instead of texture warping
    json: bool = False
    body: BodyConfig = field(default_factory=BodyConfig)


def _case(config: BenchImitateConfig, reference: str, folder: str) -> dict:
    """One timed imitation (run in a child process); returns stage seconds and peak RSS."""
    from lwgan.tasks.imitate import Imitator

    torch.set_num_threads(config.threads)
    start = time.perf_counter()
    imitator = Imitator(image_size=config.image_size, batch_size=config.batch_size, checkpoint=config.checkpoint, body=config.body)
    build = time.perf_counter() - start
    result = imitator(source=config.source or str(bundled_photo()), reference=reference, max_frames=config.frames,
                      work_folder=Path(folder) / "reference")
    with imitator.stage("write mp4"):
        result.save(Path(folder) / "result.mp4")
    return {"frames": len(result), "build_seconds": build, "seconds_by_stage": imitator.seconds_by_stage,
            "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def _video_reference(config: BenchImitateConfig, folder: Path) -> str:
    """A synthetic reference video of config.frames frames (lwgan.bench.fit.render_motion_video)."""
    from lwgan.bench.fit import render_motion_video
    from lwgan.body import build_body_model

    return str(render_motion_video(build_body_model(config.body), folder / "reference.mp4", config.frames, config.image_size))


def run(config: BenchImitateConfig) -> dict:
    context = multiprocessing.get_context("spawn")
    cases = {}
    with tempfile.TemporaryDirectory() as folder:
        references = {"motion file": config.motion or str(bundled_motion("hop"))}
        if config.video_reference:
            references["video"] = _video_reference(config, Path(folder))
        for name, reference in references.items():
            with ProcessPoolExecutor(1, mp_context=context) as pool:
                cases[name] = pool.submit(_case, config, reference, str(Path(folder) / name.replace(" ", "_"))).result()
    report = {"config": asdict(config), "cases": cases}
    if config.json:
        print(json.dumps(report, indent=2))
        return report
    stages = list(dict.fromkeys(stage for case in cases.values() for stage in case["seconds_by_stage"]))
    rows = []
    for stage in stages:
        rows.append([stage, *(case["seconds_by_stage"].get(stage, 0.0) / case["frames"] for case in cases.values())])
    totals = [sum(case["seconds_by_stage"].values()) / case["frames"] for case in cases.values()]
    rows.append(["total", *totals])
    rows.append([f"vs {TARGET_SECONDS_PER_FRAME} s/frame target", *(f"{total / TARGET_SECONDS_PER_FRAME:.2f}" for total in totals)])
    rows.append(["peak RAM GiB", *(case["peak_gib"] for case in cases.values())])
    rows.append([f"vs {TARGET_PEAK_GIB:.0f} GiB target", *(f"{case['peak_gib'] / TARGET_PEAK_GIB:.2f}" for case in cases.values())])
    mode = f"generator {config.checkpoint}" if config.checkpoint else "texture warping"
    print(f"imitate: {config.frames} reference frames at {config.image_size}x{config.image_size}, {mode}, CPU threads {config.threads}, "
          f"batch {config.batch_size}; seconds per frame by stage (body model build, once per process: "
          + ", ".join(f"{name} {case['build_seconds']:.1f} s" for name, case in cases.items()) + ")")
    print(format_table(["stage", *(f"{name} ({case['frames']} frames)" for name, case in cases.items())], rows))
    return report
