"""Inpainting methods scored on backgrounds with a known truth: PSNR and SSIM inside person-shaped holes, seconds per image.

Usage:
    python tools/bench_inpaint.py [--count 5] [--size 256] [--methods ...] [--radii 1 5] [--videos CLIP_OR_FOLDER ...] [--frames 2]

Cases:
    procedural: `count` backgrounds (lwgan.render.procedural.background_image, seeds 0..count-1)
        at size x size, each with the hole lwgan.render.inpaint.background_hole makes for the
        silhouette of an AnnyBody in a pose of the CMU clip tests/data/cmu_mocap/131_01.bvh (random
        adult shape, yaw within +-60 degrees, 55-85% of the image, random place). Nobody is in the
        picture, so the whole background is the truth.
    real: for each video (an .mp4, or every .mp4 in a folder), `frames` frames spread over the
        clip, resized to `size` pixels high. BlazePose (lwgan.recovery.detector) finds the real
        person; that person's own hole is moved sideways, on the same floor line, into the middle
        of the wider free stretch beside the person's hole, so the truth under it is background.
        Frames where no such place exists, or where it is flat (a letterbox bar), are left out
        (logged). The videos are only read, never copied.
Every method sees the image with the hole's pixels set to 0, so none can peek at the truth.

Table: per case set, method and radius (telea and navier_stokes are scored at every --radii), the
mean PSNR (dB) and SSIM (lwgan.eval.metrics) over the hole's pixels, the PSNR gain over the old
default (telea, radius 5), the SSIM as a ratio of the old default's, on how many images the PSNR
and the SSIM beat the old default's, the median seconds per image (one image per call) and that
time as a ratio of the old default's.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import time
from pathlib import Path

# As in lwgan.cli: idle OpenMP threads sleep instead of spinning, or a shared machine's load skews the timings.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import cv2
import numpy as np
import torch

from lwgan.body import AnnyBody
from lwgan.body.camera import camera_to_fit, orient_for_image, project
from lwgan.eval.metrics import psnr, ssim
from lwgan.recovery.bvh import bvh_to_smpl, read_bvh
from lwgan.render import rasterize
from lwgan.render.inpaint import DEFAULT_RADII, METHODS, background_hole, inpaint
from lwgan.render.procedural import background_image
from lwgan.tables import format_table

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "tests" / "data" / "cmu_mocap" / "131_01.bvh"
BASELINE = ("telea", 5.0)
"""What the background was filled with before lwgan.render.inpaint: OpenCV Telea with radius 5."""
logger = logging.getLogger("bench_inpaint")


def body_silhouettes(count: int, size: int, seed: int) -> torch.Tensor:
    """(count, size, size) bool silhouettes of posed AnnyBodies, spread over the CMU clip."""
    body = AnnyBody()
    generator = np.random.default_rng(seed)
    with torch.no_grad():
        rest = body(torch.zeros(1, 24, 3)).joints[0].numpy()
        motion = bvh_to_smpl(read_bvh(CLIP), fps=30.0, rest_joints=rest)
        silhouettes = []
        for frame in np.linspace(0, motion.num_frames - 1, count).round().astype(int):
            pose = orient_for_image(torch.from_numpy(motion.pose[frame]), generator.uniform(-math.pi / 3, math.pi / 3))
            shape = torch.tensor([generator.uniform(0, 1), generator.uniform(0.5, 0.9), *generator.uniform(0.25, 0.75, size=4)], dtype=torch.float32)
            vertices = body(pose[None].float(), shape[None]).vertices
            fill = generator.uniform(0.55, 0.85)
            camera = camera_to_fit(vertices, fill)
            camera[0, 1:] += torch.from_numpy(generator.uniform(-(1 - fill), 1 - fill, size=2).astype(np.float32)) / camera[0, 0]
            silhouettes.append(rasterize(project(vertices, camera), body.faces, size).mask[0])
    return torch.stack(silhouettes)


def procedural_cases(count: int, size: int, seed: int) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, (3, H, W) truth in [-1, 1], (H, W) bool hole) per procedural background."""
    holes = background_hole(body_silhouettes(count, size, seed), None)
    return [(f"procedural {index}", background_image(size, size, seed=index) * 2 - 1, holes[index]) for index in range(count)]


def video_paths(paths: list[Path]) -> list[Path]:
    """The .mp4 files named, folders replaced by the .mp4 files inside them (sorted)."""
    found = []
    for path in paths:
        found += sorted(path.glob("*.mp4")) if path.is_dir() else [path]
    return found


def sampled_frames(path: Path, frames: int, size: int) -> list[tuple[int, np.ndarray]]:
    """(index, (size, W, 3) uint8 RGB) for `frames` frames spread evenly inside the clip (ends left out)."""
    from lwgan.io.media import iter_video, video_info

    _, total = video_info(path)
    wanted = {round(total * (number + 1) / (frames + 1)) for number in range(frames)}
    chosen = []
    for index, frame in enumerate(iter_video(path)):
        if index in wanted:
            width = round(frame.shape[1] * size / frame.shape[0])
            chosen.append((index, cv2.resize(frame, (width, size), interpolation=cv2.INTER_AREA)))
    return chosen


def moved_hole(person_hole: torch.Tensor) -> torch.Tensor | None:
    """(H, W) bool: the person's hole shifted sideways into the middle of the wider free stretch beside it, or None when none fits."""
    columns = torch.nonzero(person_hole.any(dim=0))[:, 0]
    left, right = int(columns.min()), int(columns.max())
    width = person_hole.shape[1]
    shifts = [shift for shift in range(-left, width - right) if abs(shift) > right - left]  # no overlap with the person's own columns
    if not shifts:
        return None

    def clearance(shift: int) -> int:  # pixels between the moved hole and the nearer of the person's hole and the image's edge
        return min(abs(shift) - (right - left), width - 1 - right - shift if shift > 0 else left + shift)

    shift = max(shifts, key=clearance)
    moved = torch.zeros_like(person_hole)
    moved[:, left + shift : right + shift + 1] = person_hole[:, left : right + 1]
    return moved


def video_cases(paths: list[Path], frames: int, size: int) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, (3, H, W) truth in [-1, 1], (H, W) bool hole) per usable video frame (see the module docstring)."""
    from lwgan.recovery.detector import NoPersonError, PoseDetector

    cases = []
    with PoseDetector() as detector:
        for path in video_paths(paths):
            for index, frame in sampled_frames(path, frames, size):
                name = f"{path.stem}:{index}"
                try:
                    person = torch.from_numpy(detector.detect(frame, name).mask > 0.5)
                except NoPersonError:
                    logger.info("%s: no person found, left out", name)
                    continue
                hole = moved_hole(background_hole(person[None], None)[0])
                if hole is None:
                    logger.info("%s: no room beside the person for a second hole, left out", name)
                    continue
                truth = torch.from_numpy(frame).permute(2, 0, 1).float() / 127.5 - 1
                if float(truth[:, hole].std(dim=1).max()) < 2 / 127.5:  # any fill scores an infinite PSNR there
                    logger.info("%s: the second hole lies on a flat area (a letterbox bar?), left out", name)
                    continue
                cases.append((name, truth, hole))
    return cases


def score(cases: list[tuple[str, torch.Tensor, torch.Tensor]], scored: list[tuple[str, float | None]]
          ) -> dict[tuple[str, float | None], tuple[np.ndarray, np.ndarray, float]]:
    """{(method, radius): ((N,) PSNR, (N,) SSIM over each case's hole, median seconds per image)} on N `cases`.

    The configurations take turns on each case, so a load on the machine slows them alike.
    """
    psnrs, ssims, seconds = ({configuration: [] for configuration in scored} for _ in range(3))
    for _, truth, hole in cases:
        image, hole = (truth * ~hole)[None], hole[None]
        for method, radius in scored:
            start = time.perf_counter()
            filled = inpaint(image, hole, method, radius)
            seconds[method, radius].append(time.perf_counter() - start)
            psnrs[method, radius].append(float(psnr(filled, truth[None], hole)[0]))
            ssims[method, radius].append(float(ssim(filled, truth[None], hole)[0]))
    return {configuration: (np.array(psnrs[configuration]), np.array(ssims[configuration]), statistics.median(seconds[configuration]))
            for configuration in scored}


def configurations(methods: list[str], radii: list[float]) -> list[tuple[str, float | None]]:
    """(method, radius) pairs to score: the old default (telea, radius 5) first, then every radius of the methods that take one."""
    chosen = [BASELINE]
    for method in methods:
        for radius in (radii if method in DEFAULT_RADII else [None]):
            if (method, radius) not in chosen:
                chosen.append((method, radius))
    return chosen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5, help="number of procedural backgrounds")
    parser.add_argument("--size", type=int, default=256, help="image height in pixels (procedural images are square)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--radii", nargs="+", type=float, default=[1.0, 5.0], help="radii in pixels for telea and navier_stokes")
    parser.add_argument("--videos", nargs="*", type=Path, default=[], help="real clips (.mp4) or folders of them; none: procedural only")
    parser.add_argument("--frames", type=int, default=2, help="frames per real clip")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    scored = configurations(args.methods, args.radii)

    sets = {"procedural": procedural_cases(args.count, args.size, args.seed)}
    if args.videos:
        sets["real"] = video_cases(args.videos, args.frames, args.size)
    rows = []
    for set_name, cases in sets.items():
        if not cases:
            continue
        hole_share = statistics.fmean(float(hole.float().mean()) for _, _, hole in cases)
        results = score(cases, scored)
        base_psnr, base_ssim, base_seconds = results[BASELINE]
        for (method, radius), (psnrs, ssims, seconds) in results.items():
            rows.append([f"{set_name} ({len(cases)} images, hole {100 * hole_share:.0f}%)", method, "" if radius is None else f"{radius:g}",
                         psnrs.mean(), f"{psnrs.mean() - base_psnr.mean():+.2f}", f"{ssims.mean():.3f}", f"{ssims.mean() / base_ssim.mean():.3f}",
                         f"{int((psnrs > base_psnr).sum())}/{int((ssims > base_ssim).sum())}", f"{seconds:.3f}", f"{seconds / base_seconds:.1f}"])
    print(format_table(["cases", "method", "radius", "PSNR dB", "vs old dB", "SSIM", "SSIM / old", "wins PSNR/SSIM", "s / image", "time / old"], rows))


if __name__ == "__main__":
    main()
