"""Tracking a walker who crosses the frame and turns around: `lwgan preprocess` against the truth.

Renders lwgan.eval.tracking's turning walk (a make-dataset subject walking across the picture in
profile, a 180-degree U-turn, back), fits it with `lwgan preprocess`, and prints per-frame
silhouette IoU (of the fitted body, and of that body clothed by the video's offsets, as lwgan
evaluate and training use it) and MPJPE with their mean and worst values, and the frames whose
fitted legs stand swapped (of those with the feet apart) and how often the legs switch.

With --true-keypoints the detector's 2D keypoints are replaced by the true body's (all 23, seen
or not, at full confidence; its masks and 3D landmarks stay): what the tracker reaches when the
keypoints are exact, to tell the detector's errors from the fitting's.

    .venv/bin/python tools/eval_tracking.py [--size 256] [--fps 15] [--seeds 0 1 2] [--output outputs/tracking] [--true-keypoints]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch

from lwgan.body import BodyConfig, build_body_model
from lwgan.body.camera import ndc_to_pixels, project
from lwgan.config import compose
from lwgan.data import preprocess
from lwgan.eval.tracking import TrackingClip, make_turning_walk, score_tracking
from lwgan.recovery.frames import FrameSource
from lwgan.recovery.video import Detections
from lwgan.tables import format_table


def save_true_keypoint_detections(body, clip: TrackingClip, dataset: Path) -> None:
    """Detect the clip as `lwgan preprocess` would, then save the detections with the true keypoints for preprocess to reuse."""
    paths = preprocess.VideoPaths(dataset, clip.video.stem)
    detections = preprocess.detect_video(FrameSource(clip.video.stem, clip.video), paths)
    count = len(detections)
    with torch.no_grad():
        keypoints = body(torch.from_numpy(clip.pose), torch.from_numpy(clip.shape).expand(count, -1)).keypoints
        pixels = ndc_to_pixels(project(keypoints, torch.from_numpy(clip.camera))[..., :2], detections.image_size).numpy()
    true_keypoints = np.concatenate([pixels, np.ones((*pixels.shape[:2], 1))], axis=-1).astype(np.float32)
    Detections(detections.found, true_keypoints, detections.world_landmarks, detections.boxes, detections.masks,
               detections.image_size).save(paths.work / "detections.npz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--output", default="outputs/tracking")
    parser.add_argument("--per-frame", action="store_true", help="print every frame's scores")
    parser.add_argument("--true-keypoints", action="store_true", help="fit the true body's 2D keypoints instead of the detector's")
    parser.add_argument("overrides", nargs="*", help="extra `lwgan preprocess` overrides, e.g. fitting.warm_body_iterations=50")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    body = build_body_model(BodyConfig())
    rows = []
    for seed in arguments.seeds:
        folder = Path(arguments.output) / f"seed{seed}"
        clip = make_turning_walk(body, folder, size=arguments.size, fps=arguments.fps, seed=seed)
        if arguments.true_keypoints:
            save_true_keypoint_detections(body, clip, folder / "dataset")
        config = compose("preprocess", [f"input={clip.video}", f"output={folder / 'dataset'}", f"image_size={arguments.size}", *arguments.overrides])
        start = time.perf_counter()
        preprocess.run(config)
        seconds = time.perf_counter() - start
        score = score_tracking(body, clip, folder / "dataset")
        clothed = np.full_like(score.iou, np.nan) if score.clothed_iou is None else score.clothed_iou
        if arguments.per_frame:
            print(format_table(["frame", "heading deg", "IoU", "clothed IoU", "MPJPE mm", "legs swapped"],
                               [[index, float(np.degrees(clip.heading[index])), float(score.iou[index]), float(clothed[index]), float(score.mpjpe_mm[index]),
                                 "yes" if score.legs_swapped[index] else "" if score.feet_apart[index] else "-"] for index in range(len(score.iou))]))
        rows.append([seed, len(score.iou), float(score.iou.mean()), float(score.iou.min()), int(score.iou.argmin()),
                     float(clothed.mean()), float(clothed.min()), float(score.mpjpe_mm.mean()), float(score.mpjpe_mm.max()),
                     f"{int(score.legs_swapped.sum())} / {int(score.feet_apart.sum())}", score.identity_switches(), seconds / len(score.iou)])
    print(format_table(["seed", "frames", "IoU mean", "IoU min", "worst frame", "clothed mean", "clothed min", "MPJPE mean mm",
                        "MPJPE max mm", "legs swapped", "leg switches", "s per frame"], rows))


if __name__ == "__main__":
    main()
