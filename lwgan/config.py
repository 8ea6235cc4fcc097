"""Commands, their typed configs and Hydra: compose() turns key=value overrides into a command's config object.

A command's config is a dataclass (the typed schema: fields with defaults, MISSING for required values)
stored in Hydra's ConfigStore. The values live as YAML in the top-level conf/ folder, installed as the
package lwgan.conf (setup.py) and searched as pkg://lwgan.conf: Hydra's settings for every command
(conf/lwgan.yaml) and the config groups, body/ (anny, smpl) for every command with a `body` block and,
for training, model/ (the networks) and experiment/ (training presets). A command's primary config is
a defaults list (register): its schema, lwgan.yaml, its groups. A folder given as config_dir (the CLI's
--config-dir) is searched before lwgan.conf, so a user's experiment/my_run.yaml is `experiment=my_run`.

One composition serves the CLI and the Python API: compose("bench render", ["json=true"]) returns the
command's dataclass with the overrides applied; the CLI (lwgan.cli) hands the same Hydra instance
(hydra_for) to Hydra's run, multirun and --cfg.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import os
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra._internal.hydra import Hydra
from hydra._internal.utils import create_config_search_path
from hydra.core.config_search_path import ConfigSearchPath, SearchPathQuery
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

CONFIG_MODULE = "lwgan.conf"
"""The package that holds conf/'s YAML (setup.py installs the top-level conf/ folder under this name)."""

BLOCK_GROUPS = {"body": "anny"}
"""Config groups that fill a nested block, with their default option: a command whose config has the field gets the group."""


@dataclass(frozen=True)
class Command:
    module: str  # module holding the config dataclass and run(config)
    config_class: str
    summary: str
    presets: tuple[tuple[str, str | None], ...] = ()  # groups of whole-config presets (conf/<group>/, `# @package _global_`) and their default option (None: none)

    @property
    def config_name(self) -> str:
        return self.module.rsplit(".", 2)[-2] + "_" + self.module.rsplit(".", 1)[-1]


COMMANDS = {
    "demo": Command("lwgan.tasks.demo", "DemoConfig", "the default: a bundled photo imitating a bundled CMU walk clip (lwgan imitate with bundled inputs)"),
    "imitate": Command("lwgan.tasks.imitate", "ImitateConfig", "motion imitation: source=PHOTO(S) reference=VIDEO|FOLDER|BVH|PKL|NPZ output=OUT.mp4"),
    "swap": Command("lwgan.tasks.swap", "SwapConfig", "appearance transfer: source=PHOTO reference=DONOR_PHOTO parts=upper|lower|whole output=OUT.png/"),
    "view": Command("lwgan.tasks.view", "ViewConfig", "novel views: source=PHOTO yaw=[...] or turn=N output=OUT.gif"),
    "fit": Command("lwgan.tasks.fit", "FitConfig", "fit the body and its clothing to the person in a photo: fit.json, offsets.npy, silhouette.png, overlay.png, mesh.obj"),
    "preprocess": Command("lwgan.data.preprocess", "PreprocessConfig", "videos -> iPER-format folders (frames, masks, pose_shape.pkl, kps.pkl, previews)"),
    "make-dataset": Command("lwgan.data.synthetic", "MakeDatasetConfig", "a synthetic iPER-format dataset with known fits (free bodies, procedural clothes, CMU motion)"),
    "bench render": Command("lwgan.bench.render", "BenchRenderConfig", "rasterizer speed table"),
    "bench body": Command("lwgan.bench.body", "BenchBodyConfig", "body model forward/backward speed table"),
    "bench fit": Command("lwgan.bench.fit", "BenchFitConfig", "mesh recovery speed: one photo end to end, a 100-frame video per stage"),
    "bench imitate": Command("lwgan.bench.imitate", "BenchImitateConfig", "motion imitation seconds per frame by stage and peak RAM (motion file and video references)"),
    "train": Command("lwgan.train.loop", "TrainConfig", "train a generator on an iPER-format dataset (resumes from RUN_DIR/state.pt; torchrun for DDP)",
                     presets=(("model", "iccv_small"), ("experiment", None))),
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


def register(name: str) -> str:
    """Store command `name`'s schema and primary config in Hydra's ConfigStore; returns the primary config's name.

    The primary config is a defaults list: the schema (the config dataclass), conf/lwgan.yaml (Hydra's
    settings), the block groups its config has (BLOCK_GROUPS), the command's preset groups in order
    (later ones win: an experiment sets what a model preset set), then its own values (none).
    """
    config_class, _ = load_command(name)
    command = COMMANDS[name]
    schema = f"{command.config_name}_schema"
    fields = {field.name for field in dataclasses.fields(config_class)}
    blocks = [{group: option} for group, option in BLOCK_GROUPS.items() if group in fields]
    presets = [{group: option} for group, option in command.presets]
    store = ConfigStore.instance()
    store.store(name=schema, node=config_class)
    store.store(name=command.config_name, node={"defaults": [schema, "lwgan", *blocks, *presets, "_self_"]})
    return command.config_name


def search_path(config_dir: str | os.PathLike | None = None) -> ConfigSearchPath:
    """Where Hydra looks for configs: its own, `config_dir` (a user's, so its files win), lwgan.conf, plugins', the ConfigStore."""
    path = create_config_search_path(config_source())
    if config_dir is not None:
        folder = Path(config_dir).expanduser().absolute()
        if not folder.is_dir():
            raise FileNotFoundError(f"config folder not found: {config_dir} (--config-dir)")
        path.prepend(provider="command-line", path=f"file://{folder}", anchor=SearchPathQuery(provider="main"))
    return path


def config_source() -> str:
    """pkg://lwgan.conf where lwgan is installed (a wheel, or `pip install -e .`); the checkout's conf/ folder when
    lwgan is imported from a source tree that was never installed (PYTHONPATH=. python -m lwgan.cli)."""
    if importlib.util.find_spec(CONFIG_MODULE) is not None:
        return f"pkg://{CONFIG_MODULE}"
    return f"file://{Path(__file__).resolve().parents[1] / 'conf'}"


@contextlib.contextmanager
def hydra_for(name: str, config_dir: str | os.PathLike | None = None) -> Iterator[tuple[Hydra, str]]:
    """(Hydra instance, primary config name) of command `name`, with its configs registered; Hydra is cleared on exit."""
    config_name = register(name)
    hydra = Hydra.create_main_hydra2(task_name=name.replace(" ", "_"), config_search_path=search_path(config_dir))
    try:
        yield hydra, config_name
    finally:
        GlobalHydra.instance().clear()


def compose(name: str, overrides: Sequence[str] = (), config_dir: str | os.PathLike | None = None):
    """The config dataclass of command `name` with Hydra overrides ("key=value", "experiment=NAME") applied.

    config_dir: a folder of the user's own configs (searched first, as the CLI's --config-dir).
    Raises ValueError for an override Hydra's grammar cannot read (check_overrides), Hydra's and
    OmegaConf's errors for unknown keys, options or missing values.
    """
    check_overrides(overrides)
    with hydra_for(name, config_dir) as (hydra, config_name):
        config = hydra.compose_config(config_name, list(overrides), run_mode=RunMode.RUN, from_shell=False)
        choices = OmegaConf.to_container(config.hydra.runtime.choices)
        with open_dict(config):
            del config["hydra"]
        return config_object(name, config, choices)


def config_object(name: str, config: DictConfig, choices: Mapping[str, str | None]):
    """The command's dataclass of its composed config (without Hydra's node); MissingMandatoryValue names a required key left out.

    A preset group's choice (`choices`, Hydra's runtime.choices) goes into the field of the group's
    name where the config has one: TrainConfig.experiment records the experiment a run started from.
    """
    for group, _ in COMMANDS[name].presets:
        if group in config:
            config[group] = choices.get(group)
    return OmegaConf.to_object(config)


def check_overrides(overrides: Sequence[str]) -> None:
    """ValueError for an override Hydra's grammar cannot read, saying how to quote its value.

    An unquoted value may not hold spaces, parentheses, brackets, braces, commas or quotes:
    reference=dance clip (1).mp4 must be reference='dance clip (1).mp4' for Hydra, which is
    "reference='dance clip (1).mp4'" in a shell (whose own quotes it removes).
    """
    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_overrides([override])
        except OverrideParseException as error:
            key, separator, value = override.partition("=")
            reason = str(error).splitlines()[0]
            if not separator:
                raise ValueError(f"cannot read {override!r}: overrides are key=value ({reason})") from None
            quoted = f"{key}='{value}'" if "'" not in value else f'{key}="{value}"'
            shell = f'"{quoted}"' if not set(quoted) & set('"$`\\!') else shlex.quote(quoted)
            raise ValueError(f"cannot read {override!r}: Hydra's override grammar does not take this value unquoted ({reason}); "
                             f"quote the value, {quoted}, and quote that for the shell: lwgan ... {shell}") from None


def to_yaml(config) -> str:
    """A config object as YAML text (saved beside every output)."""
    return OmegaConf.to_yaml(OmegaConf.structured(config))
