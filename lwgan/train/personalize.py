"""`lwgan personalize source=VIDEO_OR_FOLDER output=RUN`: a generator that learns one real person from their own video.

Steps:
    1. fit the video (lwgan.data.preprocess into RUN/data; a video already there is reused);
    2. keep the last `holdout` part of the frames out of training (when holdout > 0);
    3. choose `sources` training frames that cover the person's headings (front, back, sides):
       the most frontal first, then each time the frame farthest in heading from those chosen;
    4. train the generator (lwgan.train.loop.train: its losses, EMA, resume from RUN/state.pt,
       TensorBoard, RUN/export) on self-imitation pairs: each step draws one source bank (one of
       the chosen frames alone, or all of them together) and `batch_size` training frames as
       targets. The generator takes the "classical" inputs (lwgan.flow.input_recipes): texture
       warping's body layer and inpainted background, so it starts where texture warping ends
       and learns what warping gets wrong for this person. Its attention mask learns the
       person's own outline (the frames' person masks are its targets);
    5. with holdout > 0, RUN/holdout.json: `lwgan evaluate`'s report (same layout and protocol:
       the held-out part's first frame is the source, every holdout_step-th frame after it a
       target) for texture warping and the personalized generator.

RUN/export then serves `lwgan imitate|swap|view checkpoint=RUN/export` and
`Imitator(checkpoint=...)`. The starting point is checkpoint= (an export of `lwgan train` or of
an earlier personalization) when given, else a new refining generator.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from omegaconf import MISSING

from lwgan.body import BodyConfig, build_body_model
from lwgan.body.camera import angle_between, root_headings
from lwgan.config import to_yaml
from lwgan.data import preprocess
from lwgan.data.iper import Video, load_video
from lwgan.devices import resolve_device
from lwgan.eval.evaluate import (
    load_frames,
    load_masks,
    posed_meshes,
    self_imitation,
    video_bank,
    write_report,
)
from lwgan.flow.input_recipes import classical_inputs
from lwgan.flow.inputs import scaled_hole_dilation
from lwgan.flow.texture_warping import SourceBank
from lwgan.io.atomic_files import write_bytes_atomic
from lwgan.io.images import IMAGE_EXTENSIONS
from lwgan.models import check_image_size, from_pretrained
from lwgan.models.pretrained import read_config
from lwgan.recovery.frames import find_sources
from lwgan.train.loop import GENERATORS, TrainConfig, TrainResult, train
from lwgan.train.step import TrainingBatch, head_boxes_of

logger = logging.getLogger(__name__)

MINIMUM_TRAINING_FRAMES = 8
"""A personalization needs at least this many training frames (after the holdout)."""

HOLDOUT_GRID_ROWS = 6
"""RUN/holdout_grid.png shows this many held-out targets, spread over the held-out part."""


@dataclass
class PersonalizeVideoConfig:
    source: str = MISSING  # the person's video, or a folder of its frames (with fps=)
    output: str = MISSING  # the run folder: data/ (the fits), state.pt, export/, log.jsonl, tensorboard/, samples/, holdout.json
    checkpoint: str | None = None  # the generator export to start from; None: a new refining generator (starts as texture warping)
    steps: int = 600  # optimisation steps (a resumed run continues to this step)
    image_size: int = 256  # side of the square frames (the video's crops)
    fps: float = 30.0  # frame rate of a folder of frames
    holdout: float = 0.0  # keep this last part of the frames out of training and report on it (RUN/holdout.json)
    holdout_step: int = 2  # in the held-out part, frames k, 2k, ... after its first frame are the targets
    sources: int = 4  # training frames chosen to cover the person's headings (front, back, sides)
    generator: str = "iccv"  # for a new generator: "iccv" or "attention"
    preset: str = "small"  # for a new generator and the discriminator: "small" or "original"
    batch_size: int = 2  # target frames per step
    lr_generator: float = 2e-4
    lr_discriminator: float = 2e-4
    adversarial_weight: float = 0.1  # the discriminator's say (short runs: the L1 + SSIM terms lead)
    body_weight: float = 10.0  # L1 over the target person's pixels
    ema_decay: float = 0.999  # of the exported weights' average (with a warm-up)
    snapshot_every: int = 100  # steps between snapshots (state.pt + export/)
    log_every: int = 25
    image_every: int = 100
    vgg_path: str | None = None  # VGG19 weights for the perceptual loss; None: L1 + SSIM
    face_path: str | None = None  # SphereFace-20 weights for the face term; None: off
    device: str = "auto"  # "auto" (cuda when present), "cpu", "cuda", ...
    seed: int = 0
    body: BodyConfig = field(default_factory=BodyConfig)


@dataclass(frozen=True)
class PersonalizeResult:
    """What personalize() leaves: the training result, the frames used and the held-out report (None without holdout)."""

    training: TrainResult
    training_frames: int
    source_frames: list[int]
    holdout: dict | None


def covering_frames(headings: np.ndarray, count: int) -> list[int]:
    """Indices of `count` frames whose (N,) headings (radians, 0 facing the camera) cover the circle.

    The frame nearest to 0 first; then, each time, the frame whose smallest angular distance to
    the frames chosen so far is largest (ties: the earliest). Fewer frames than `count`: all of them.
    """
    if len(headings) == 0:
        raise ValueError("no frames to choose sources from")
    chosen = [int(np.argmin(angle_between(headings, 0.0)))]
    nearest = angle_between(headings, headings[chosen[0]])
    while len(chosen) < min(count, len(headings)):
        candidate = int(np.argmax(np.where(np.isin(np.arange(len(headings)), chosen), -1.0, nearest)))
        chosen.append(candidate)
        nearest = np.minimum(nearest, angle_between(headings, headings[candidate]))
    return chosen


def training_frame_count(frame_count: int, holdout: float, holdout_step: int, source_path: str) -> int:
    """The number of leading frames that train; ValueError naming the video when too few frames are left on either side."""
    if not 0.0 <= holdout < 1.0:
        raise ValueError(f"holdout must be in [0, 1), got {holdout}")
    if holdout_step < 1:
        raise ValueError(f"holdout_step must be at least 1, got {holdout_step}")
    training = frame_count - math.ceil(holdout * frame_count) if holdout > 0 else frame_count
    if training < MINIMUM_TRAINING_FRAMES:
        raise ValueError(f"{source_path}: {frame_count} frames leave {training} to train on with holdout={holdout}; "
                         f"personalization needs at least {MINIMUM_TRAINING_FRAMES} (a longer video, or a smaller holdout)")
    if holdout > 0 and frame_count - training <= holdout_step:
        raise ValueError(f"{source_path}: {frame_count} frames leave {frame_count - training} held out with holdout={holdout}, "
                         f"too few for a target at holdout_step={holdout_step} after the held-out source (a larger holdout, "
                         f"a smaller holdout_step or a longer video)")
    return training


def fitted_video(config: PersonalizeVideoConfig, run_dir: Path) -> Video:
    """The source video fitted into RUN/data (preprocess; reused when already there), as a dataset Video."""
    if Path(config.source).suffix.lower() in IMAGE_EXTENSIONS:
        raise ValueError(f"{config.source}: a photo; `lwgan personalize` learns from a video of the person (or a folder of its frames). "
                         "For 1 to 8 photos, fine-tune a trained generator on them: lwgan imitate source=... checkpoint=BASE personalize.steps=N")
    sources = find_sources(config.source, config.fps)
    if len(sources) != 1:
        raise ValueError(f"{config.source}: holds {len(sources)} videos; personalize takes one person's video (or one folder of its frames)")
    data = run_dir / "data"
    preprocess.run(preprocess.PreprocessConfig(input=config.source, output=str(data), image_size=config.image_size, fps=config.fps,
                                               body=config.body))
    if not (data / "smpls" / sources[0].name / "info.json").is_file():
        raise ValueError(f"{config.source}: no person found to personalize on (see the log above)")
    return load_video(data, sources[0].name)


def starting_generator(config: PersonalizeVideoConfig) -> torch.nn.Module:
    """The generator to personalize, taking the classical inputs: checkpoint='s (its weights), else a new refining one."""
    if config.checkpoint is None:
        return GENERATORS[config.generator].preset(config.preset, refine=True, inputs="classical")
    model_class, settings = read_config(config.checkpoint)
    if model_class not in GENERATORS.values():
        raise ValueError(f"{config.checkpoint}: holds a {model_class.__name__}, not a generator")
    generator = model_class(**{**settings, "inputs": "classical"})
    generator.load_state_dict(from_pretrained(config.checkpoint).state_dict())
    return generator


class PairSampler:
    """Self-imitation pairs of one video for each training step, drawn from (seed, step) so a resumed run draws the same.

    banks: the source banks (one per chosen frame, and all of them together); images: (N, 3, H, W)
    training frames in [-1, 1]; masks: (N, H, W) bool person masks; meshes: (N, V, 3) their
    clothed meshes in NDC; poses, shapes, cameras: their fits (for the face term's head boxes).
    """

    def __init__(self, banks: list[SourceBank], video: Video, frame_count: int, body, source_count: int, batch_size: int,
                 seed: int, head_boxes: bool) -> None:
        device = body.faces.device
        size = banks[0].image_size[0]
        frames = list(range(frame_count))
        self.banks, self.body, self.source_count, self.batch_size, self.seed = banks, body, source_count, batch_size, seed
        self.images = load_frames(video, frames, size)
        masks = load_masks(video, frames, size)
        self.masks = None if masks is None else masks.to(device)
        with torch.no_grad():
            self.meshes = posed_meshes(body, video, frames)
        self.fits = None  # the fits as tensors, for the face term's head boxes
        if head_boxes:
            self.fits = tuple(torch.from_numpy(np.ascontiguousarray(array[:frame_count])).float().to(device)
                              for array in (video.poses, video.shapes, video.cameras))

    def batches(self, start_step: int):
        """Prepared TrainingBatch objects for steps start_step, start_step + 1, ..., forever."""
        step = start_step
        while True:
            yield self.batch(step)
            step += 1

    def batch(self, step: int) -> TrainingBatch:
        """The pairs of one step: a bank and batch_size target frames, drawn from (seed, step)."""
        generator = np.random.default_rng([self.seed, step])
        bank = self.banks[int(generator.integers(len(self.banks)))]
        targets = generator.choice(len(self.images), size=self.batch_size, replace=len(self.images) < self.batch_size).tolist()
        device = self.body.faces.device
        with torch.no_grad():
            inputs, flows = classical_inputs(bank, self.meshes[targets], self.body, self.source_count)
            if self.masks is not None:  # the attention mask and the body term learn the person's own outline
                inputs = replace(inputs, target_background_mask=1 - self.masks[targets].unsqueeze(1).float())
            target_image = self.images[targets].to(device)
            head_boxes = None if self.fits is None else head_boxes_of(self.body, *(fit[targets] for fit in self.fits), tuple(target_image.shape[-2:]))
        sources = bank.signed_range_images[: self.source_count][None].expand(len(targets), -1, -1, -1, -1)
        return TrainingBatch(source_images=sources, target_image=target_image, inputs=inputs,
                             target_condition=flows[0].target_condition.to(target_image.dtype), target_mask=flows[0].target_mask,
                             head_boxes=head_boxes)


def source_banks(video: Video, frames: list[int], body, size: int) -> list[SourceBank]:
    """One SourceBank for each of `frames` alone and, with several frames, one for all of them together."""
    picks = [[frame] for frame in frames] + ([frames] if len(frames) > 1 else [])
    return [video_bank(body, video, pick, size) for pick in picks]


def personalize(config: PersonalizeVideoConfig) -> PersonalizeResult:
    """Run the steps of the module docstring; returns PersonalizeResult."""
    if config.steps < 1 or config.sources < 1 or config.batch_size < 1:
        raise ValueError(f"steps, sources and batch_size must be at least 1, got {config.steps}, {config.sources} and {config.batch_size}")
    if config.generator not in GENERATORS:
        raise ValueError(f"generator must be one of {', '.join(GENERATORS)}, got {config.generator!r}")
    run_dir = Path(config.output)
    run_dir.mkdir(parents=True, exist_ok=True)
    generator = starting_generator(config)
    check_image_size(generator, config.image_size, config.checkpoint or f"the {config.generator} generator")
    write_bytes_atomic(run_dir / "personalize.yaml", to_yaml(config).encode())
    video = fitted_video(config, run_dir)
    training_count = training_frame_count(len(video.frames), config.holdout, config.holdout_step, config.source)

    device = resolve_device(config.device)
    body = build_body_model(config.body).to(device)
    headings = root_headings(video.poses[:training_count, 0])
    chosen = covering_frames(headings, config.sources)
    logger.info("sources: frames %s (headings %s degrees) of %d training frames", chosen,
                ", ".join(f"{math.degrees(headings[index]):.0f}" for index in chosen), training_count)
    banks = source_banks(video, chosen, body, config.image_size)
    source_count = min(generator.source_limit or len(chosen), len(chosen))
    sampler = PairSampler(banks, video, training_count, body, source_count, config.batch_size, config.seed,
                          head_boxes=config.face_path is not None)
    training = train(training_config(config, generator, run_dir), generator=generator, batches=sampler.batches)

    report = None
    if config.holdout > 0:
        report = holdout_report(config, video, training_count, training.ema_generator, body, run_dir)
    return PersonalizeResult(training=training, training_frames=training_count, source_frames=chosen, holdout=report)


def training_config(config: PersonalizeVideoConfig, generator: torch.nn.Module, run_dir: Path) -> TrainConfig:
    """The training loop's settings for a personalization (the pairs come from PairSampler, not from a dataset)."""
    kind = next(name for name, model_class in GENERATORS.items() if isinstance(generator, model_class))
    return TrainConfig(
        data=str(run_dir / "data"), output=str(run_dir), generator=kind, preset=config.preset, image_size=config.image_size,
        num_sources=1 if generator.source_limit == 1 else config.sources, batch_size=config.batch_size, iterations=config.steps,
        lr_generator=config.lr_generator, lr_discriminator=config.lr_discriminator, ema_decay=config.ema_decay,
        snapshot_every=config.snapshot_every, log_every=config.log_every, image_every=config.image_every, workers=0,
        seed=config.seed, device=config.device, vgg_path=config.vgg_path, face_path=config.face_path,
        body_weight=config.body_weight, adversarial_weight=config.adversarial_weight, body=config.body,
    )


def holdout_report(config: PersonalizeVideoConfig, video: Video, training_count: int, generator: torch.nn.Module, body,
                   run_dir: Path) -> dict:
    """Self-imitation on the held-out frames (lwgan evaluate's protocol and layout) -> RUN/holdout.json; returns the report."""
    held_out = Video(video.name, video.frames[training_count:], video.cameras[training_count:], video.poses[training_count:],
                     video.shapes[training_count:], None if video.masks is None else video.masks[training_count:], video.offsets)
    hole_dilation = scaled_hole_dilation(config.image_size)
    generator = generator.eval()
    results, grid_columns = self_imitation([held_out], ["warping", "generator"], body, config.image_size,
                                           target_step=config.holdout_step, batch_size=8, generator=generator,
                                           hole_dilation=hole_dilation, grid_rows=HOLDOUT_GRID_ROWS, grid_rows_per_video=HOLDOUT_GRID_ROWS)
    protocol = {"data": str(run_dir / "data"), "split": "holdout", "video": video.name, "source_frame": training_count,
                "held_out_frames": [training_count, len(video.frames)], "target_step": config.holdout_step,
                "image_size": config.image_size, "videos": 1, "checkpoint": str(run_dir / "export"), "hole_dilation": hole_dilation}
    return write_report(run_dir / "holdout.json", protocol, results, grid_columns, False, {}, {"personalize": to_yaml(config)})


def run(config: PersonalizeVideoConfig) -> PersonalizeResult:
    """The `lwgan personalize` command."""
    return personalize(config)
