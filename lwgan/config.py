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
    "demo": Command("lwgan.tasks.demo", "DemoConfig", "animate a textured body with a motion clip by texture warping (default)"),
    "fit": Command("lwgan.tasks.fit", "FitConfig", "fit the body to the person in a photo: fit.json, overlay.png, mesh.obj"),
    "preprocess": Command("lwgan.tasks.preprocess", "PreprocessConfig", "videos -> iPER-format folders (frames, masks, pose_shape.pkl, kps.pkl, previews)"),
    "make-dataset": Command("lwgan.data.synthetic", "MakeDatasetConfig", "a synthetic iPER-format dataset with known fits (free bodies, procedural clothes, CMU motion)"),
    "bench render": Command("lwgan.bench.render", "BenchRenderConfig", "rasterizer speed table"),
    "bench body": Command("lwgan.bench.body", "BenchBodyConfig", "body model forward/backward speed table"),
    "bench fit": Command("lwgan.bench.fit", "BenchFitConfig", "mesh recovery speed: one photo end to end, a 100-frame video per stage"),
}


def load_command(name: str):
    """(config class, run function) of a command."""
    if name not in COMMANDS:
        raise ValueError(f"unknown command {name!r}; commands: {', '.join(COMMANDS)}")
    command = COMMANDS[name]
    module = importlib.import_module(command.module)
    return getattr(module, command.config_class), module.run


def compose(name: str, overrides: Sequence[str] = ()):
    """The config dataclass of command `name` with Hydra overrides ("key=value") applied."""
    config_class, _ = load_command(name)
    config_name = COMMANDS[name].config_name
    ConfigStore.instance().store(name=config_name, node=config_class)
    with initialize(version_base=None, config_path=None):
        config = hydra_compose(config_name=config_name, overrides=list(overrides))
    return OmegaConf.to_object(config)


def to_yaml(config) -> str:
    """A config object as YAML text (saved beside every output)."""
    return OmegaConf.to_yaml(OmegaConf.structured(config))
