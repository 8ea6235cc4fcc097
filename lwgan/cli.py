"""The `lwgan` command: `lwgan <command> key=value ...`; `lwgan` alone runs the demo."""

from __future__ import annotations

import logging
import os
import sys

# Idle OpenMP threads sleep instead of spinning: on a machine shared with other work (or with
# `workers=` data loaders) spinning threads slowed commands several times over. Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from lwgan.config import COMMANDS, compose, load_command

EXPECTED_ERRORS = (OSError, ValueError, ImportError, HydraException, OmegaConfBaseException)
"""Errors a user can cause (missing or unwritable files, bad values): one line on stderr, exit code 2, no traceback."""


def usage() -> str:
    lines = ["usage: lwgan [command] [key=value ...]", "", "commands:"]
    lines += [f"  {name:<14} {command.summary}" for name, command in COMMANDS.items()]
    lines += ["", "Overrides are Hydra's: lwgan bench render json=true sizes=[256]; see each command's config with key=value --cfg"]
    return "\n".join(lines)


def split_command(arguments: list[str]) -> tuple[str, list[str]]:
    """Split argv into the command name (one or two words) and the overrides."""
    words = []
    for argument in arguments:
        if "=" in argument or argument.startswith("-"):
            break
        words.append(argument)
    name = " ".join(words) or "demo"
    return name, arguments[len(words):]


def main(argv: list[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    name, overrides = split_command(arguments)
    if name not in COMMANDS:
        print(f"lwgan: error: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    show_config = "--cfg" in overrides
    overrides = [o for o in overrides if o != "--cfg"]
    try:
        config = compose(name, overrides)
        if show_config:
            from lwgan.config import to_yaml

            print(to_yaml(config))
            return 0
        _, run = load_command(name)
        run(config)
    except EXPECTED_ERRORS as error:
        print(f"lwgan {name}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
