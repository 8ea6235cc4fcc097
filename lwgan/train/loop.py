"""`lwgan train data=DIR output=RUN_DIR [experiment=NAME]`: the Liquid Warping GAN training loop, top to bottom.

train(config) builds the data, body, G, D, EMA copy, optimizers and LR schedules; resumes from
RUN_DIR/state.pt when it exists; then each step: a batch -> bodies and flows (no gradients) ->
the generator step -> the discriminator step -> the EMA update -> the LR schedules. It logs
scalars (RUN_DIR/log.jsonl and TensorBoard in RUN_DIR/tensorboard) every log_every steps, a
picture (source | target | warped source | generated) every image_every steps (RUN_DIR/samples
and TensorBoard), and snapshots every snapshot_every steps and at the end: RUN_DIR/state.pt (the
resume state) and RUN_DIR/export (the EMA generator, for from_pretrained).

Optimisation follows the original's released training code: Adam, lr 2e-4 for G and D, betas (0.5, 0.999),
constant for the first constant_fraction of the iterations (5 of 30 epochs), then linear decay to
final_lr (2e-6) at the last step (per step here, per epoch in the original); D is updated every
step. Under torchrun every process trains on its own share of each epoch (DistributedSampler)
and only rank 0 writes.

Experiment presets are Hydra config groups (conf/experiment/*.yaml, `experiment=NAME`; the networks
in conf/model/*.yaml, `model=NAME`), applied before the user's own overrides, so `lwgan train
experiment=synthetic_small data=D output=R batch_size=2` is the preset with batch 2.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import MISSING, OmegaConf
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from lwgan.body import BodyConfig, build_body_model
from lwgan.data.iper import IperDataset
from lwgan.flow.inputs import scaled_hole_dilation
from lwgan.io.atomic_files import write_bytes_atomic
from lwgan.io.media import to_uint8, write_image
from lwgan.losses import DiscriminatorLoss, GeneratorLoss
from lwgan.models import (
    AttentionalLiquidWarpingGenerator,
    LiquidWarpingGenerator,
    PatchDiscriminator,
    check_image_size,
    save_pretrained,
)
from lwgan.pictures import image_grid
from lwgan.train.checkpoint import (
    EXPORT_NAME,
    STATE_NAME,
    load_training_state,
    save_training_state,
)
from lwgan.train.distributed import (
    DistributedContext,
    average_across_ranks,
    barrier,
    cleanup_distributed,
    setup_distributed,
    wrap_model,
)
from lwgan.train.step import (
    TrainingBatch,
    discriminator_step,
    ema_decay_at,
    generator_step,
    prepare_batch,
    update_ema,
)

logger = logging.getLogger(__name__)

GENERATORS = {"iccv": LiquidWarpingGenerator, "attention": AttentionalLiquidWarpingGenerator}


@dataclass
class TrainConfig:
    data: str = MISSING  # an iPER-format dataset folder (train.txt lists the training videos)
    output: str = MISSING  # the run folder: state.pt, export/, log.jsonl, tensorboard/, samples/, config.yaml
    experiment: str | None = None  # the experiment preset the run started from (set by `experiment=NAME`: conf/experiment/NAME.yaml)
    generator: str = "iccv"  # "iccv" (additive LWB, one source) or "attention" (attentional LWB, several sources)
    preset: str = "small"  # network widths of G and D: "small" (CPU) or "original" (the released models')
    refine: bool = True  # the streams correct the warped source and a filled background (false: they paint, as the original)
    image_size: int = 128  # must be a multiple of the generator's size_multiple (8)
    num_sources: int = 1  # source frames per target (1 for generator=iccv)
    source_window: int | None = None  # sources come from the first this many frames of a video (None: any)
    batch_size: int = 4  # per process
    iterations: int = 100000  # optimisation steps in all (a resumed run continues to this step)
    lr_generator: float = 2e-4
    lr_discriminator: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    final_lr: float = 2e-6  # both learning rates decay linearly to this at the last step
    constant_fraction: float = 1.0 / 6.0  # the learning rates stay constant for this part of the run
    ema_decay: float = 0.999  # of the exported generator's weight average (with a warm-up, see step.ema_decay_at)
    snapshot_every: int = 1000  # steps between snapshots (state.pt + export/); one more at the end
    log_every: int = 50  # steps between logged scalars (means over the steps since the last log)
    image_every: int = 500  # steps between pictures
    workers: int = 2  # data loader processes (0: load in the training process)
    seed: int = 0
    amp: bool = False  # float16 autocast + grad scaling; CUDA only (ignored with a warning elsewhere)
    device: str = "auto"  # "auto" (cuda when present), "cpu", "cuda", "cuda:1", ...
    vgg_path: str | None = None  # VGG19 weights for the perceptual loss; None: L1 + SSIM instead
    face_path: str | None = None  # SphereFace-20 weights for the face loss; None: no face term
    body_weight: float = 10.0  # L1 on the target body's pixels (ours; 0 = the original's losses only)
    background_weight: float = 10.0  # L1 of the background stream where the target shows background (ours; 0 = off)
    adversarial_weight: float = 1.0  # the generator's LSGAN term (the original's lambda_D_prob)
    hole_dilation: int | None = None  # background hole growth in pixels; None: 15 at 256 px, scaled
    body: BodyConfig = field(default_factory=BodyConfig)


@dataclass(frozen=True)
class TrainResult:
    """What train() leaves: the step reached, where it wrote, the last logged scalars and the networks (unwrapped)."""

    step: int
    run_dir: Path
    export_dir: Path
    scalars: dict[str, float]
    generator: nn.Module
    ema_generator: nn.Module
    discriminator: nn.Module


def check_config(config: TrainConfig) -> None:
    """ValueError for settings train() cannot use, before anything is built."""
    if config.generator not in GENERATORS:
        raise ValueError(f"generator must be one of {', '.join(GENERATORS)}, got {config.generator!r}")
    if config.generator == "iccv" and config.num_sources != 1:
        raise ValueError(f"generator=iccv takes one source per target, got num_sources={config.num_sources} (use generator=attention)")
    for name in ("image_size", "num_sources", "batch_size", "iterations", "snapshot_every", "log_every", "image_every"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(config, name)}")
    if config.workers < 0:
        raise ValueError(f"workers must be >= 0, got {config.workers}")
    if not 0.0 <= config.constant_fraction <= 1.0:
        raise ValueError(f"constant_fraction must be in [0, 1], got {config.constant_fraction}")
    if len(config.betas) != 2 or not all(0.0 <= beta < 1.0 for beta in config.betas):
        raise ValueError(f"betas must be two numbers in [0, 1), got {list(config.betas)}")
    if not 0.0 <= config.ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), got {config.ema_decay}")
    for name in ("lr_generator", "lr_discriminator"):
        if getattr(config, name) <= 0:
            raise ValueError(f"{name} must be positive, got {getattr(config, name)}")
    if config.final_lr < 0:
        raise ValueError(f"final_lr must be >= 0, got {config.final_lr}")


def build_generator(config: TrainConfig) -> nn.Module:
    """The configured generator; ValueError when image_size is not a multiple of its size_multiple."""
    generator = GENERATORS[config.generator].preset(config.preset, refine=config.refine)
    check_image_size(generator, config.image_size, f"the {config.generator} generator")
    return generator


def build_discriminator(config: TrainConfig) -> PatchDiscriminator:
    """The PatchGAN of the configured preset; ValueError when image_size is too small for it."""
    discriminator = PatchDiscriminator.preset(config.preset)
    if discriminator.output_size(config.image_size) < 1:
        raise ValueError(f"image_size={config.image_size} is too small for the discriminator's "
                         f"{discriminator.config['n_layers']} stride-2 layers: use at least 48")
    return discriminator


def learning_rate_factor(step: int, *, iterations: int, constant_steps: int, final_ratio: float) -> float:
    """Multiplier of the initial learning rate at `step`: 1 until constant_steps, then linear to final_ratio at `iterations`."""
    if step < constant_steps or iterations <= constant_steps:
        return 1.0
    progress = min(1.0, (step - constant_steps) / (iterations - constant_steps))
    return 1.0 + (final_ratio - 1.0) * progress


def build_scheduler(optimizer: torch.optim.Optimizer, learning_rate: float, config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """The constant-then-linear-decay schedule of one optimizer (stepped once per iteration)."""
    factor = functools.partial(learning_rate_factor, iterations=config.iterations,
                               constant_steps=round(config.constant_fraction * config.iterations),
                               final_ratio=config.final_lr / learning_rate)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def apply_schedule(scheduler: torch.optim.lr_scheduler.LambdaLR) -> None:
    """Set the optimizer's learning rates for the scheduler's current step (after resuming with a changed schedule)."""
    for group, base, factor in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * factor(scheduler.last_epoch)


def training_batches(dataset: IperDataset, config: TrainConfig, context: DistributedContext, start_step: int) -> Iterator[dict]:
    """Collated batches from step `start_step` on, forever, epoch after epoch.

    Epoch e visits this process's share of the items (DistributedSampler, shuffled with seed + e)
    in batches of batch_size, dropping the incomplete last one; resuming at step s skips the
    first s mod (batches per epoch) batches of epoch s div (batches per epoch) without loading
    them. Each epoch draws new (sources, target) pairs: item index i of epoch e is read as
    i + e * len(dataset) (IperDataset item i is video i mod V with frames drawn from seed + i).
    """
    sampler = DistributedSampler(dataset, num_replicas=context.world_size, rank=context.rank, shuffle=True, seed=config.seed)
    batches_per_epoch = len(sampler) // config.batch_size
    if batches_per_epoch == 0:
        raise ValueError(f"{config.data}: the train split has {len(dataset)} items, fewer than batch_size={config.batch_size}"
                         f" x {context.world_size} process(es)")
    epoch, skipped = divmod(start_step, batches_per_epoch)
    while True:
        sampler.set_epoch(epoch)
        indices = [index + epoch * len(dataset) for index in sampler][skipped * config.batch_size : batches_per_epoch * config.batch_size]
        loader = DataLoader(dataset, batch_size=config.batch_size, sampler=indices, num_workers=config.workers,
                            pin_memory=context.device.type == "cuda", drop_last=True)
        yield from loader
        epoch, skipped = epoch + 1, 0


def dataset_batches(config: TrainConfig, context: DistributedContext, hole_dilation: int, start_step: int,
                    with_head_boxes: bool) -> Iterator[TrainingBatch]:
    """The training split of config.data as prepared batches on the training device from step `start_step` on (training_batches)."""
    dataset = IperDataset(config.data, "train", image_size=config.image_size, num_sources=config.num_sources,
                          source_window=config.source_window, seed=config.seed)
    body = build_body_model(config.body).to(context.device)
    dataset.check_offsets(body)
    for item in training_batches(dataset, config, context, start_step):
        yield prepare_batch(item, body, context.device, hole_dilation, with_head_boxes=with_head_boxes)


class RunLog:
    """Rank 0's training log: scalars to RUN_DIR/log.jsonl (one JSON object a line) and TensorBoard, pictures to
    RUN_DIR/samples/step_NNNNNNN.png and TensorBoard (TensorBoard when the package is installed)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            logger.warning("tensorboard is not installed: scalars go to %s only", run_dir / "log.jsonl")
        else:
            self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        with (self.run_dir / "log.jsonl").open("a") as file:
            file.write(json.dumps({"step": step, **values}) + "\n")
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(name, value, step)

    def picture(self, step: int, grid: torch.Tensor) -> None:
        """grid: (3, H, W) in [0, 1]."""
        write_image(self.run_dir / "samples" / f"step_{step:07d}.png", to_uint8(grid))
        if self.writer is not None:
            self.writer.add_image("source | target | warped | generated", grid, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def train(config: TrainConfig, *, generator: nn.Module | None = None,
          batches: Callable[[int], Iterator[TrainingBatch]] | None = None) -> TrainResult:
    """Train (or resume training) a Liquid Warping GAN generator; see the module docstring.

    generator: the network to train (architecture and starting weights; a resumed run loads its
    saved weights into it); None builds config's. batches: start step -> prepared batches from
    that step on, forever (lwgan personalize's pairs); None reads config.data with IperDataset.

    Returns TrainResult. Raises FileNotFoundError / ValueError for missing or inconsistent data
    (naming the video), bad settings and unreadable resume states.
    """
    check_config(config)
    context = setup_distributed(config.device)
    try:
        device = context.device
        amp = config.amp and device.type == "cuda"
        if config.amp and not amp:
            logger.warning("amp=true applies on CUDA only; training in float32 on %s", device)
        run_dir = Path(config.output)
        saved_config = OmegaConf.to_container(OmegaConf.structured(config))
        hole_dilation = scaled_hole_dilation(config.image_size) if config.hole_dilation is None else config.hole_dilation
        torch.manual_seed(config.seed)

        # Build: networks, data, body, EMA copy, losses, optimizers, schedules.
        generator = (build_generator(config) if generator is None else generator).to(device)
        discriminator = build_discriminator(config).to(device)
        ema_generator = copy.deepcopy(generator).eval().requires_grad_(False)
        generator_loss = GeneratorLoss(vgg_path=config.vgg_path, face_path=config.face_path, body_weight=config.body_weight,
                                       background_weight=config.background_weight, adversarial_weight=config.adversarial_weight).to(device)
        discriminator_loss = DiscriminatorLoss()
        betas = (float(config.betas[0]), float(config.betas[1]))
        generator_optimizer = torch.optim.Adam(generator.parameters(), lr=config.lr_generator, betas=betas)
        discriminator_optimizer = torch.optim.Adam(discriminator.parameters(), lr=config.lr_discriminator, betas=betas)
        generator_schedule = build_scheduler(generator_optimizer, config.lr_generator, config)
        discriminator_schedule = build_scheduler(discriminator_optimizer, config.lr_discriminator, config)
        generator_scaler = torch.amp.GradScaler(device.type, enabled=amp)
        discriminator_scaler = torch.amp.GradScaler(device.type, enabled=amp)
        checkpoint_objects = {
            "models": {"generator": generator, "discriminator": discriminator, "ema_generator": ema_generator},
            "optimizers": {"generator": generator_optimizer, "discriminator": discriminator_optimizer},
            "schedulers": {"generator": generator_schedule, "discriminator": discriminator_schedule},
            "scalers": {"generator": generator_scaler, "discriminator": discriminator_scaler},
        }

        # Resume.
        step = 0
        state_path, export_dir = run_dir / STATE_NAME, run_dir / EXPORT_NAME
        if state_path.is_file():
            step = load_training_state(state_path, config=saved_config, **checkpoint_objects)
            apply_schedule(generator_schedule)
            apply_schedule(discriminator_schedule)
        if context.is_main:
            write_bytes_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(saved_config).encode())
        log = RunLog(run_dir) if context.is_main else None
        trained_generator, trained_discriminator = wrap_model(generator, context), wrap_model(discriminator, context)
        logger.info("training %s generator (%s, %.2fM parameters) and D (%.2fM) at %d px on %s from step %d to %d",
                    config.generator, config.preset, sum(p.numel() for p in generator.parameters()) / 1e6,
                    sum(p.numel() for p in discriminator.parameters()) / 1e6, config.image_size, device, step, config.iterations)

        if batches is None:
            batches = functools.partial(dataset_batches, config, context, hole_dilation, with_head_boxes=generator_loss.face_network is not None)
        batch_stream = batches(step)
        window: dict[str, torch.Tensor] = {}
        window_steps, window_start = 0, time.perf_counter()
        scalars: dict[str, float] = {}
        progress = tqdm(total=config.iterations, initial=step, desc="train", unit="step", disable=not context.is_main)
        start_step = step
        trains_discriminator = config.adversarial_weight > 0  # D has a say only through the adversarial term
        generator.train()
        discriminator.train()
        while step < config.iterations:
            batch = next(batch_stream)

            # Generator step, then discriminator step on the detached output (none while D has no say).
            generator_terms, output = generator_step(trained_generator, trained_discriminator, generator_loss,
                                                     generator_optimizer, generator_scaler, batch, amp)
            discriminator_terms = {}
            if trains_discriminator:
                discriminator_terms = discriminator_step(trained_discriminator, discriminator_loss, discriminator_optimizer,
                                                         discriminator_scaler, batch, output.image, amp)

            # EMA of the generator's weights, then the learning-rate schedules.
            update_ema(ema_generator, generator, ema_decay_at(step, config.ema_decay))
            generator_schedule.step()
            if trains_discriminator:
                discriminator_schedule.step()
            step += 1
            progress.update(1)

            for prefix, terms in (("generator", generator_terms), ("discriminator", discriminator_terms)):
                for name, value in terms.items():
                    window[f"{prefix}/{name}"] = window.get(f"{prefix}/{name}", 0.0) + value
            window_steps += 1
            if step % config.log_every == 0 or step == config.iterations:
                scalars = average_across_ranks({name: total / window_steps for name, total in window.items()}, context)
                scalars["learning_rate/generator"] = generator_optimizer.param_groups[0]["lr"]
                scalars["learning_rate/discriminator"] = discriminator_optimizer.param_groups[0]["lr"]
                scalars["seconds_per_step"] = (time.perf_counter() - window_start) / window_steps
                if not all(math.isfinite(value) for value in scalars.values()):
                    logger.warning("step %d: non-finite losses %s", step, scalars)
                if log is not None:
                    log.scalars(step, scalars)
                    progress.set_postfix({name: f"{scalars[key]:.3f}" for name, key in (("G", "generator/total"), ("D", "discriminator/total"))
                                          if key in scalars})
                window, window_steps, window_start = {}, 0, time.perf_counter()
            if log is not None and step % config.image_every == 0:
                warped = batch.inputs.transfer_input[:, 0, :3]
                log.picture(step, image_grid([batch.source_images[:, 0], batch.target_image, warped, output.image], rows=4))

            # Snapshot: the resume state and the EMA generator's export.
            if step % config.snapshot_every == 0 or step == config.iterations:
                if context.is_main:
                    save_training_state(state_path, step=step, config=saved_config, **checkpoint_objects)
                    save_pretrained(ema_generator, export_dir)
                barrier(context)
        progress.close()
        if log is not None:
            log.close()
        if step == start_step:
            logger.info("%s is already at step %d of %d: nothing to train", state_path, step, config.iterations)
        return TrainResult(step=step, run_dir=run_dir, export_dir=export_dir, scalars=scalars,
                           generator=generator, ema_generator=ema_generator, discriminator=discriminator)
    finally:
        cleanup_distributed(context)


def run(config: TrainConfig) -> TrainResult:
    """The `lwgan train` command."""
    return train(config)
