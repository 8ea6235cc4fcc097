"""Convert an original released generator (impersonator ICCV'19 or iPERCore AttLWB-SPADE) to an lwgan export folder.

Usage:
    python tools/convert_original_checkpoint.py net_epoch_30_id_G.pth OUT_DIR [--kind iccv]
    python tools/convert_original_checkpoint.py AttLWB-SPADE_id_G_2020-05-18.pth OUT_DIR [--kind attention]

The kind is told from the file's keys when not given. Loading and checking are lwgan.models.original's
(its docstring says where the files are); OUT_DIR gets model.safetensors + config.json for
lwgan.models.from_pretrained and the commands' checkpoint=.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from lwgan.models import save_pretrained
from lwgan.models.original import FILE_NAMES, KINDS, convert_original_generator

logger = logging.getLogger("convert_original_checkpoint")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Convert an original Liquid Warping GAN generator to an lwgan export folder.")
    parser.add_argument("checkpoint", help=f"the original file ({FILE_NAMES['iccv']} or {FILE_NAMES['attention']})")
    parser.add_argument("output", help="export folder to write (model.safetensors + config.json)")
    parser.add_argument("--kind", choices=KINDS, default=None,
                        help="iccv: impersonator's ImpersonatorGenerator; attention: iPERCore's AttLWB-SPADE (default: from the keys)")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        model = convert_original_generator(arguments.checkpoint, arguments.kind)
    except (FileNotFoundError, ValueError) as error:
        logger.error("error: %s", error)
        return 1
    save_pretrained(model, arguments.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
