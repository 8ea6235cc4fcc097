"""Benchmark of one training step (bodies and flows, generator step, discriminator step, EMA) by size, batch and preset.

A tiny synthetic dataset (lwgan.data.synthetic, rendered at the largest size) is made in a
temporary folder; one batch of it is decoded once and reused, so the timings leave out image
decoding and the data loader but include everything a real step does on the device: the body
model for sources and targets, rasterization and flows, the generator inputs, G forward and
backward with its losses (L1 + SSIM without VGG weights), D forward and backward, both Adam
steps and the EMA update.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from lwgan.bench.timing import time_ms
from lwgan.body import BodyConfig, build_body_model
from lwgan.data.iper import IperDataset
from lwgan.data.synthetic import MakeDatasetConfig
from lwgan.data.synthetic import run as make_dataset
from lwgan.flow.inputs import scaled_hole_dilation
from lwgan.losses import DiscriminatorLoss, GeneratorLoss
from lwgan.models import PatchDiscriminator
from lwgan.tables import format_table
from lwgan.train.loop import GENERATORS
from lwgan.train.step import (
    discriminator_step,
    generator_step,
    prepare_batch,
    update_ema,
)

logger = logging.getLogger(__name__)


@dataclass
class BenchTrainConfig:
    sizes: list[int] = field(default_factory=lambda: [128, 256])
    batch_sizes: list[int] = field(default_factory=lambda: [1, 4])
    presets: list[str] = field(default_factory=lambda: ["small", "original"])
    generator: str = "iccv"  # "iccv" or "attention"
    devices: list[str] = field(default_factory=list)  # empty: cpu, and cuda when present
    repeats: int = 3
    warmup: int = 1
    threads: int = 2  # CPU threads (torch.set_num_threads)
    amp: bool = False  # float16 autocast on CUDA
    json: bool = False  # print machine-readable JSON on stdout instead of the table
    body: BodyConfig = field(default_factory=BodyConfig)


def _training_step(models: dict, batch_item: dict, body, device: torch.device, hole_dilation: int, amp: bool) -> None:
    """One full step on a pre-loaded batch; synchronises CUDA so the wall clock covers the work."""
    batch = prepare_batch(batch_item, body, device, hole_dilation)
    _, output = generator_step(models["generator"], models["discriminator"], models["generator_loss"],
                               models["generator_optimizer"], models["generator_scaler"], batch, amp)
    discriminator_step(models["discriminator"], models["discriminator_loss"], models["discriminator_optimizer"],
                       models["discriminator_scaler"], batch, output.image, amp)
    update_ema(models["ema_generator"], models["generator"], 0.999)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _build(generator_name: str, preset: str, device: torch.device, amp: bool, losses: dict) -> dict:
    """Fresh networks, optimizers and scalers of one configuration, with the device's shared losses."""
    generator = GENERATORS[generator_name].preset(preset).to(device)
    discriminator = PatchDiscriminator.preset(preset).to(device)
    return {
        **losses,
        "generator": generator,
        "discriminator": discriminator,
        "ema_generator": copy.deepcopy(generator).requires_grad_(False),
        "generator_optimizer": torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999)),
        "discriminator_optimizer": torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999)),
        "generator_scaler": torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda"),
        "discriminator_scaler": torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda"),
    }


def run(config: BenchTrainConfig) -> dict:
    """Time training steps for every (device, size, batch, preset); returns {"rows": [...], "dataset": ...}.

    Each row: device, size, batch_size, preset, generator, median_ms, min_ms, ms_per_image and
    ratio (median_ms over the fastest configuration on the same device). The table (or JSON) is printed.
    """
    if config.generator not in GENERATORS:
        raise ValueError(f"generator must be one of {', '.join(GENERATORS)}, got {config.generator!r}")
    if config.repeats < 1 or not config.sizes or not config.batch_sizes or not config.presets:
        raise ValueError("repeats must be >= 1 and sizes, batch_sizes, presets non-empty")
    devices = [torch.device(name) for name in config.devices] or [torch.device("cpu")] + (
        [torch.device("cuda")] if torch.cuda.is_available() else [])
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="lwgan-bench-train-") as folder:
            largest = max(config.sizes)
            logger.info("making a tiny synthetic dataset at %d px in %s", largest, folder)
            make_dataset(MakeDatasetConfig(output=str(Path(folder) / "data"), subjects=2, val_subjects=1, clips_per_subject=1,
                                           frames_per_clip=max(8, max(config.batch_sizes) + 1), image_size=largest,
                                           texture_size=256, body=config.body))
            body_cpu = build_body_model(config.body)
            for device in devices:
                body = body_cpu.to(device)
                losses = {"generator_loss": GeneratorLoss().to(device), "discriminator_loss": DiscriminatorLoss()}
                for size in config.sizes:
                    dataset = IperDataset(Path(folder) / "data", "train", image_size=size)
                    for batch_size in config.batch_sizes:
                        item = next(iter(DataLoader(dataset, batch_size=batch_size, shuffle=False)))
                        for preset in config.presets:
                            models = _build(config.generator, preset, device, config.amp, losses)
                            step = functools.partial(_training_step, models, item, body, device, scaled_hole_dilation(size), config.amp)
                            timings = time_ms(step, config.repeats, warmup=config.warmup)
                            median = statistics.median(timings)
                            rows.append({"device": device.type, "size": size, "batch_size": batch_size, "preset": preset,
                                         "generator": config.generator, "median_ms": median, "min_ms": min(timings),
                                         "ms_per_image": median / batch_size})
                            logger.info("%s %d px batch %d %s: %.0f ms per step", device, size, batch_size, preset, median)
                            del models
    finally:
        torch.set_num_threads(previous_threads)
    for row in rows:
        fastest = min(other["median_ms"] for other in rows if other["device"] == row["device"])
        row["ratio"] = row["median_ms"] / fastest
    report = {"rows": rows, "threads": config.threads, "repeats": config.repeats,
              "note": "per step: bodies + flows + G step + D step + EMA on one pre-loaded batch (no image decoding)"}
    if config.json:
        print(json.dumps(report, indent=2))
    else:
        header = ("device", "size", "batch", "preset", "median ms", "min ms", "ms / image", "ratio to fastest")
        print(format_table(header, [(row["device"], row["size"], row["batch_size"], row["preset"], row["median_ms"], row["min_ms"],
                                     row["ms_per_image"], row["ratio"]) for row in rows]))
    return report
