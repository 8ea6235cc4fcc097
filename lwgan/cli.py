"""The `lwgan` command: `lwgan <command> [--cfg] [-m] [--config-dir DIR] key=value ...`; `lwgan` alone runs the demo."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from collections.abc import Sequence

# Idle OpenMP threads sleep instead of spinning: on a machine shared with other work (or with
# `workers=` data loaders) spinning threads slowed commands several times over. Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from lwgan.config import (
    COMMANDS,
    check_overrides,
    config_object,
    hydra_for,
    load_command,
)

EXPECTED_ERRORS = (OSError, ValueError, ImportError, HydraException, OmegaConfBaseException)
"""Errors a user can cause (missing or unwritable files, bad values): one line on stderr, exit code 2, no traceback."""

CFG_PARTS = ("job", "hydra", "all")
"""What --cfg prints (Hydra's choices); a bare --cfg is the job's config."""

INFO_TOPICS = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")
"""What --info prints (Hydra's choices); a bare --info is all of it."""

SHARED_OUTPUT_SWEEPS = {"shard", "input"}
"""Multirun jobs that differ only in these (which inputs they process: preprocess) may share one output folder."""


def usage() -> str:
    lines = ["usage: lwgan [command] [--cfg] [-m] [--config-dir DIR] [key=value ...]", "", "commands:"]
    lines += [f"  {name:<14} {command.summary}" for name, command in COMMANDS.items()]
    lines += ["", "Overrides are Hydra's: lwgan bench render json=true sizes=[256]; quote values with spaces or ( ) [ ] , as",
              "  \"reference='dance clip (1).mp4'\". Config groups: body=anny|smpl, and for train model=NAME experiment=NAME",
              "  (conf/, or your own in --config-dir DIR).",
              "  --cfg [job|hydra|all]  print the command's config (??? marks required values) and exit",
              "  -m, --multirun         one job per combination of comma-separated values (shard=0/2,1/2);",
              "                         hydra/launcher=submitit_local|submitit_slurm with `pip install lwgan[cluster]`",
              "  --config-dir DIR       a folder of your own config groups, searched first (DIR/experiment/my_run.yaml)",
              "  --info [searchpath|defaults|defaults-tree|config|plugins|all]  where Hydra looks and what it composes"]
    return "\n".join(lines)


def split_command(arguments: list[str]) -> tuple[str, list[str]]:
    """Split argv into the command name (one or two words) and the rest."""
    words = []
    for argument in arguments:
        if "=" in argument or argument.startswith("-"):
            break
        words.append(argument)
    name = " ".join(words) or "demo"
    return name, arguments[len(words):]


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str):
        raise ValueError(f"{message} (lwgan --help lists the options)")


def parse_options(arguments: Sequence[str]) -> argparse.Namespace:
    """The options Hydra apps take (--cfg, --resolve, --multirun, --config-dir, --info) and the overrides.

    --cfg and --info take an optional value: a bare --cfg shows the job's config, a bare --info everything.
    """
    arguments = list(arguments)
    for flag, bare, values in (("--cfg", "job", CFG_PARTS), ("--info", "all", INFO_TOPICS)):
        if flag in arguments:
            index = arguments.index(flag)
            if index + 1 == len(arguments) or arguments[index + 1] not in values:
                arguments.insert(index + 1, bare)
    parser = _ArgumentParser(prog="lwgan", add_help=False)
    parser.add_argument("--cfg", choices=CFG_PARTS)
    parser.add_argument("--resolve", action="store_true")
    parser.add_argument("--info", choices=INFO_TOPICS)
    parser.add_argument("--multirun", "-m", action="store_true")
    parser.add_argument("--config-dir", "-cd")
    parser.add_argument("overrides", nargs="*")
    return parser.parse_intermixed_args(arguments)


def check_sweep_outputs(name: str, overrides: Sequence[str]) -> None:
    """ValueError unless every job of a multirun has its own output: the sweep varies `output`, or output
    interpolates something that does (output=runs/${hydra:job.num}, output=runs/aw_${adversarial_weight}).

    Jobs that differ only in which inputs they process (SHARED_OUTPUT_SWEEPS: preprocess's shard= and
    input=) share one output folder, as preprocess's shards are meant to.
    """
    config_class, _ = load_command(name)
    if "output" not in config_class.__dataclass_fields__:
        return
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    swept = {override.key_or_group for override in parsed if override.is_sweep_override() and not override.key_or_group.startswith("hydra")}
    if not swept or swept <= SHARED_OUTPUT_SWEEPS:
        return
    outputs = [override for override in parsed if override.key_or_group == "output"]
    if outputs and (outputs[-1].is_sweep_override() or "${" in outputs[-1].input_line):
        return
    raise ValueError(f"a multirun over {', '.join(sorted(swept))} needs one output per job, or the jobs overwrite each other: "
                     "sweep it (output=runs/a,runs/b) or interpolate the job number or a swept value "
                     "('output=runs/job${hydra:job.num}', in single quotes for the shell)")


def configure_logging() -> None:
    """INFO messages on stderr, once per process (also in a launcher's job processes)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def run_job(name: str, config: DictConfig) -> Exception | None:
    """Hydra's task function of command `name`: one job's config as the command's dataclass, then its run().

    A single run returns a user's error (EXPECTED_ERRORS) for main() to print as one line; a multirun's
    job raises it, so Hydra names the failed job's overrides.
    """
    configure_logging()
    _, run = load_command(name)
    try:
        run(config_object(name, config, HydraConfig.get().runtime.choices))
    except EXPECTED_ERRORS as error:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise
        return error
    return None


def launch(name: str, options: argparse.Namespace) -> None:
    """Show the config (--cfg, --info), or run the command once or as a sweep (-m) through Hydra."""
    with hydra_for(name, options.config_dir) as (hydra, config_name):
        overrides = list(options.overrides)
        if options.cfg:
            hydra.show_cfg(config_name, overrides, options.cfg, package=None, resolve=options.resolve)
            return
        if options.info:
            hydra.show_info(options.info, config_name, overrides)
            return
        task = functools.partial(run_job, name)
        if options.multirun or hydra.get_mode(config_name, overrides) == RunMode.MULTIRUN:
            check_sweep_outputs(name, overrides)
            hydra.multirun(config_name, task, [*overrides, "hydra.mode=MULTIRUN"])
        else:
            error = hydra.run(config_name, task, [*overrides, "hydra.mode=RUN"]).return_value
            if error is not None:
                raise error


def main(argv: list[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = split_command(arguments)
    if name not in COMMANDS:
        print(f"lwgan: error: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    try:
        options = parse_options(rest)
        if not options.info:  # --info prints through Hydra's own log handler
            configure_logging()
        check_overrides(options.overrides)
        launch(name, options)
    except EXPECTED_ERRORS as error:
        print(f"lwgan {name}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
