"""Motion imitation acceptance: a real photo imitating a CMU clip, judged by re-detecting the person.

Usage:
    python tools/eval_imitation.py [--source PHOTO] [--reference CLIP.bvh] [--size 256] [--output DIR]

Defaults: the Pexels lunge photo (tests/data) imitating the CMU hop clip 131_03, every frame at 30 fps.
Each output frame is searched by the person detector on its own (photo mode); the IoU of the mask
it finds with the target mesh's silhouette says whether a person stands where the body should be.
Writes OUTPUT/imitation.mp4, imitation_side_by_side.mp4 and a contact sheet imitation_frames.png
(every 20th frame), and prints the IoU statistics.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch

from lwgan.eval.redetect import redetected_mask_iou
from lwgan.io.media import write_image
from lwgan.tables import format_table
from lwgan.tasks.imitate import Imitator

ROOT = Path(__file__).resolve().parents[1]
TARGET_MEDIAN_IOU = 0.7


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=str(ROOT / "tests" / "data" / "pexels_lunge" / "pexels-anete-lusina-4793258_512.jpg"))
    parser.add_argument("--reference", default=str(ROOT / "tests" / "data" / "cmu_mocap" / "131_03.bvh"))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default="outputs/eval_imitation")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(arguments.threads)

    imitator = Imitator(image_size=arguments.size)
    result = imitator(source=arguments.source, reference=arguments.reference, max_frames=arguments.max_frames)
    output = Path(arguments.output)
    result.save(output / "imitation.mp4")
    result.save_side_by_side(output / "imitation_side_by_side.mp4")
    sheet = [result.frames[index] for index in range(0, len(result), 20)]
    rows = [np.concatenate(sheet[start : start + 7] + [np.zeros_like(sheet[0])] * (7 - len(sheet[start : start + 7])), axis=1)
            for start in range(0, len(sheet), 7)]
    write_image(output / "imitation_frames.png", np.concatenate(rows, axis=0))

    iou = redetected_mask_iou(result.frames, imitator.body_masks(result))
    print(f"\n{Path(arguments.source).name} imitating {Path(arguments.reference).name}: {len(result)} frames at {arguments.size} px")
    print(format_table(["statistic", "IoU"], [
        ["median", float(np.median(iou))], ["mean", float(iou.mean())], ["10th percentile", float(np.percentile(iou, 10))],
        ["minimum", float(iou.min())], [f"frames >= {TARGET_MEDIAN_IOU}", f"{(iou >= TARGET_MEDIAN_IOU).mean():.1%}"],
        ["frames without a person", int((iou == 0).sum())],
    ]))
    print(f"stage seconds: {', '.join(f'{name} {seconds:.1f}' for name, seconds in imitator.seconds_by_stage.items())}")
    print(f"median IoU vs target {TARGET_MEDIAN_IOU}: {'met' if np.median(iou) >= TARGET_MEDIAN_IOU else 'MISSED'}")


if __name__ == "__main__":
    main()
