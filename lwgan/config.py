"""Commands and their structured configs; compose() turns key=value overrides into a config object.

One function serves the CLI and the Python API: compose("bench render", ["json=true"]) returns
the command's dataclass with the overrides applied (Hydra's compose API over structured configs).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass

from hydra import compose as hydra_compose
from hydra import initialize
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf


@dataclass(frozen=True)
class Command:
    module: str  # module holding the config dataclass and run(config)
    config_class: str
    summary: str

    @property
    def config_name(self) -> str:
        return self.module.rsplit(".", 2)[-2] + "_" + self.module.rsplit(".", 1)[-1]


COMMANDS = {
    "demo": Command("lwgan.tasks.demo", "DemoConfig", "the default: a bundled photo imitating a bundled CMU walk clip (lwgan imitate with bundled inputs)"),
    "imitate": Command("lwgan.tasks.imitate", "ImitateConfig", "motion imitation: source=PHOTO(S) reference=VIDEO|FOLDER|BVH|PKL|NPZ output=OUT.mp4"),
    "swap": Command("lwgan.tasks.swap", "SwapConfig", "appearance transfer: source=PHOTO reference=DONOR_PHOTO parts=upper|lower|whole output=OUT.png/"),
    "view": Command("lwgan.tasks.view", "ViewConfig", "novel views: source=PHOTO yaw=[...] or turn=N output=OUT.gif"),
    "fit": Command("lwgan.tasks.fit", "FitConfig", "fit the body and its clothing to the person in a photo: fit.json, offsets.npy, silhouette.png, overlay.png, mesh.obj"),
    "preprocess": Command("lwgan.tasks.preprocess", "PreprocessConfig", "videos -> iPER-format folders (frames, masks, pose_shape.pkl, kps.pkl, previews)"),
    "make-dataset": Command("lwgan.data.synthetic", "MakeDatasetConfig", "a synthetic iPER-format dataset with known fits (free bodies, procedural clothes, CMU motion)"),
    "bench render": Command("lwgan.bench.render", "BenchRenderConfig", "rasterizer speed table"),
    "bench body": Command("lwgan.bench.body", "BenchBodyConfig", "body model forward/backward speed table"),
    "bench fit": Command("lwgan.bench.fit", "BenchFitConfig", "mesh recovery speed: one photo end to end, a 100-frame video per stage"),
    "bench imitate": Command("lwgan.bench.imitate", "BenchImitateConfig", "motion imitation seconds per frame by stage and peak RAM (motion file and video references)"),
    "train": Command("lwgan.train.loop", "TrainConfig", "train a generator on an iPER-format dataset (resumes from RUN_DIR/state.pt; torchrun for DDP)"),
    "personalize": Command("lwgan.train.personalize", "PersonalizeVideoConfig", "learn one real person from their own video: source=VIDEO|FOLDER output=RUN [holdout=0.3] -> RUN/export for checkpoint="),
    "evaluate": Command("lwgan.eval.evaluate", "EvaluateConfig", "self-imitation metrics (SSIM, PSNR, body-region, mask IoU) of a checkpoint and the warping baseline"),
    "bench train": Command("lwgan.bench.train", "BenchTrainConfig", "ms per training step (bodies, flows, G and D) by size, batch and preset"),
    "serve": Command("lwgan.web.serve", "ServeConfig", "the local web page (Gradio, pip install lwgan[web]): imitate, swap and view in a browser at http://127.0.0.1:7860 [port= host=]"),
}


def load_command(name: str):
    """(config class, run function) of a command."""
    if name not in COMMANDS:
        raise ValueError(f"unknown command {name!r}; commands: {', '.join(COMMANDS)}")
    command = COMMANDS[name]
    module = importlib.import_module(command.module)
    return getattr(module, command.config_class), module.run


def compose(name: str, overrides: Sequence[str] = ()):
    """The config dataclass of command `name` with Hydra overrides ("key=value") applied.

    `experiment=NAME` (commands whose module defines EXPERIMENTS) applies that preset's overrides
    first, then the user's: see expand_experiment.
    """
    config_class, _ = load_command(name)
    config_name = COMMANDS[name].config_name
    ConfigStore.instance().store(name=config_name, node=config_class)
    overrides = expand_experiment(name, overrides)
    with initialize(version_base=None, config_path=None):
        config = hydra_compose(config_name=config_name, overrides=overrides)
    return OmegaConf.to_object(config)


def expand_experiment(name: str, overrides: Sequence[str]) -> list[str]:
    """Put the overrides of the named experiment preset before the user's, so the user's win.

    A command opts in with a module-level dict EXPERIMENTS (name -> list of "key=value"); the
    `experiment=NAME` override itself is kept (the config records which preset it started from).
    The last `experiment=` given counts; a key the user sets drops the preset's value for it.
    """
    overrides = list(overrides)
    experiments = getattr(importlib.import_module(COMMANDS[name].module), "EXPERIMENTS", None)
    chosen = [override.split("=", 1)[1] for override in overrides if override.split("=", 1)[0] == "experiment" and "=" in override]
    if experiments is None or not chosen or chosen[-1] in ("null", ""):
        return overrides
    if chosen[-1] not in experiments:
        raise ValueError(f"unknown experiment {chosen[-1]!r} for `lwgan {name}`; known: {', '.join(experiments)}")
    user_keys = {override.split("=", 1)[0].lstrip("+~") for override in overrides}
    preset = [override for override in experiments[chosen[-1]] if override.split("=", 1)[0] not in user_keys]
    return [*preset, *overrides]


def to_yaml(config) -> str:
    """A config object as YAML text (saved beside every output)."""
    return OmegaConf.to_yaml(OmegaConf.structured(config))
