"""`lwgan evaluate data=DIR [checkpoint=EXPORT_DIR] output=FILE.json`: the self-imitation protocol on held-out videos.

Protocol (the original's paired "self-imitation", ICCV §4): for every video of the split
(val.txt: subjects never seen in training), frame 0 is the source and frames k, 2k, ... (k =
target_step) are the targets; each method renders the source person in each target's fitted
pose and is compared with the real target frame. Methods:
    "generator": an exported generator (checkpoint=, from lwgan.models.from_pretrained);
    "warping": the frames users get without a checkpoint (lwgan.flow.texture_warping: trusted
        source pixels warped along the flow, the hidden surface from the other side of the body,
        the person's outline, the inpainted background), no learned weights.
Metrics per target frame (lwgan.eval.metrics), then means per video and per method (every
frame weighs the same):
    ssim, psnr: the whole image;
    ssim_body, psnr_body: over the pixels of the target mesh only (SSIM: the mean of the SSIM map
        there; PSNR: the MSE there);
    mask_iou: the method's body mask (generator: 1 - attention mask > 0.5; warping: the target
        mesh) against the ground-truth mask (the dataset's masks/ file, else the target mesh);
    lpips: LPIPS v0.1 AlexNet, only when both weight files are given.
Writes FILE.json (means and per-video, per-frame numbers), FILE_grid.png beside it (source |
target | warping | generator for the first target of a few videos) and prints a table.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import MISSING, OmegaConf
from PIL import Image

from lwgan.body import BodyConfig, build_body_model
from lwgan.data.iper import IperDataset, Video, image_tensor_signed_range
from lwgan.devices import resolve_device
from lwgan.eval.metrics import load_lpips, mask_iou, psnr, ssim
from lwgan.flow.input_recipes import inputs_for
from lwgan.flow.inputs import posed_vertices_ndc, scaled_hole_dilation
from lwgan.flow.texture_warping import SourceBank, make_bank, warped_frames
from lwgan.image_ranges import signed_to_unit_range, unit_to_signed_range
from lwgan.io.atomic_files import write_bytes_atomic
from lwgan.io.media import to_uint8, write_image
from lwgan.models import check_image_size, from_pretrained, generate
from lwgan.pictures import image_grid
from lwgan.render import rasterize
from lwgan.tables import format_table

logger = logging.getLogger(__name__)

METHODS = ("warping", "generator")
METRICS = {
    "ssim": "SSIM of the whole image (kornia, Gaussian window 11, data range 1)",
    "psnr": "PSNR of the whole image in dB (data range 1)",
    "ssim_body": "mean of the SSIM map over the target mesh's pixels",
    "psnr_body": "PSNR in dB over the target mesh's pixels",
    "mask_iou": "IoU of the method's body mask (generator: 1 - attention mask > 0.5; warping: the target mesh) "
                "with the ground-truth mask (masks/ when present, else the target mesh)",
    "lpips": "LPIPS v0.1 AlexNet distance (lower is better)",
}
LPIPS_MISSING = ("not available without weights: set lpips_alexnet_path (torchvision alexnet-owt-7be5be79.pth) and "
                 "lpips_linear_path (LPIPS v0.1 weights/v0.1/alex.pth)")


@dataclass
class EvaluateConfig:
    data: str = MISSING  # an iPER-format dataset folder
    output: str = MISSING  # the report, FILE.json (the picture goes to FILE_grid.png)
    checkpoint: str | None = None  # an export folder (model.safetensors + config.json); None: the baseline only
    split: str = "val"  # the videos to evaluate (<split>.txt)
    methods: list[str] = field(default_factory=lambda: list(METHODS))  # "generator" needs checkpoint=
    target_step: int = 10  # frames k, 2k, ... are the targets; frame 0 is the source
    image_size: int | None = None  # None: the frames' own size
    max_videos: int | None = None  # evaluate only the first this many videos of the split
    batch_size: int = 8  # targets per forward pass
    grid_rows: int = 4  # videos shown in the picture
    hole_dilation: int | None = None  # the generator's background hole growth; None: 15 px at 256, scaled
    lpips_alexnet_path: str | None = None  # torchvision AlexNet weights, for LPIPS
    lpips_linear_path: str | None = None  # LPIPS v0.1 linear-layer weights (alex.pth), for LPIPS
    device: str = "auto"
    body: BodyConfig = field(default_factory=BodyConfig)


def target_frames(frame_count: int, target_step: int) -> list[int]:
    """The self-imitation targets of a video: frames target_step, 2 target_step, ... (frame 0 is the source)."""
    return list(range(target_step, frame_count, target_step))


def load_frames(video: Video, indices: list[int], size: int) -> torch.Tensor:
    """(T, 3, size, size) float in [-1, 1]: the frames of `video` at `indices` (the dataset's own loading and resizing)."""
    return torch.stack([image_tensor_signed_range(video.frames[index], size, video.name) for index in indices])


def load_masks(video: Video, indices: list[int], size: int) -> torch.Tensor | None:
    """(T, size, size) bool person masks from the dataset's masks/ files (> 127), or None when the video has none."""
    if video.masks is None:
        return None
    masks = []
    for index in indices:
        path = video.masks[index]
        try:
            with Image.open(path) as image:
                masks.append(torch.from_numpy(np.asarray(image.convert("L")) > 127))
        except OSError as error:
            raise ValueError(f"video {video.name}: cannot read the mask {path}: {error}") from error
    stacked = torch.stack(masks).float().unsqueeze(1)
    if stacked.shape[-1] != size or stacked.shape[-2] != size:
        stacked = F.interpolate(stacked, size=(size, size), mode="nearest")
    return stacked[:, 0] > 0.5


def frame_metrics(image: torch.Tensor, target: torch.Tensor, body_region: torch.Tensor, predicted_mask: torch.Tensor,
                  truth_mask: torch.Tensor, lpips=None) -> dict[str, torch.Tensor]:
    """Every metric of METRICS for T frames: (T, 3, H, W) images in [-1, 1], (T, H, W) bool masks -> name -> (T,)."""
    values = {
        "ssim": ssim(image, target),
        "psnr": psnr(image, target),
        "ssim_body": ssim(image, target, mask=body_region),
        "psnr_body": psnr(image, target, mask=body_region),
        "mask_iou": mask_iou(predicted_mask, truth_mask),
    }
    if lpips is not None:
        values["lpips"] = lpips(image, target)
    return values


def _plain(value: float) -> float | None:
    """A JSON-safe number: NaN and infinities become null."""
    return float(value) if math.isfinite(value) else None


def _means(frames: list[dict]) -> dict[str, float | None]:
    """Metric -> mean over the frames (NaN entries, e.g. an empty body region, are left out)."""
    names = [name for name in frames[0] if name != "frame"] if frames else []
    means = {}
    for name in names:
        values = np.array([frame[name] if frame[name] is not None else np.nan for frame in frames], dtype=np.float64)
        finite = values[np.isfinite(values)]
        means[name] = float(finite.mean()) if finite.size else None
    return means


def evaluate(config: EvaluateConfig) -> dict:
    """Run the protocol; returns the report written to config.output (see the module docstring)."""
    unknown = [method for method in config.methods if method not in METHODS]
    if unknown or not config.methods:
        raise ValueError(f"methods must be a non-empty list of {', '.join(METHODS)}, got {list(config.methods)}")
    if config.target_step < 1 or config.batch_size < 1:
        raise ValueError(f"target_step and batch_size must be at least 1, got {config.target_step} and {config.batch_size}")
    output = Path(config.output)
    if output.suffix.lower() != ".json":
        raise ValueError(f"output must be a .json file, got {output}")
    device = resolve_device(config.device)
    methods = list(dict.fromkeys(config.methods))
    skipped = {}
    generator = None
    if "generator" in methods:
        if config.checkpoint is None:
            skipped["generator"] = "no checkpoint= given"
            methods.remove("generator")
            logger.info("no checkpoint given: evaluating the warping baseline only")
        else:
            generator = from_pretrained(config.checkpoint, device=device)
    if not methods:
        raise ValueError("nothing to evaluate: methods=[generator] needs checkpoint=EXPORT_DIR")
    lpips = None
    if (config.lpips_alexnet_path is None) != (config.lpips_linear_path is None):
        raise ValueError("LPIPS needs both lpips_alexnet_path and lpips_linear_path")
    if config.lpips_alexnet_path is not None:
        lpips = load_lpips(config.lpips_alexnet_path, config.lpips_linear_path, device=device)

    dataset = IperDataset(config.data, config.split, image_size=config.image_size)  # None: the frames' own size
    videos = dataset.videos[: config.max_videos] if config.max_videos else dataset.videos
    size = dataset.image_size
    if generator is not None:
        check_image_size(generator, size, config.checkpoint)
    hole_dilation = scaled_hole_dilation(size) if config.hole_dilation is None else config.hole_dilation
    body = build_body_model(config.body).to(device)
    dataset.check_offsets(body)

    results, grid_columns = self_imitation(videos, methods, body, size, target_step=config.target_step, batch_size=config.batch_size,
                                           generator=generator, lpips=lpips, hole_dilation=hole_dilation, grid_rows=config.grid_rows)
    if not grid_columns["source"]:
        raise ValueError(f"{config.data}: no {config.split} video has a frame at target_step={config.target_step}; lower target_step")
    protocol = {"data": str(config.data), "split": config.split, "source_frame": 0, "target_step": config.target_step,
                "image_size": size, "videos": len(next(iter(results.values()))["videos"]), "checkpoint": config.checkpoint,
                "hole_dilation": hole_dilation}
    return write_report(output, protocol, results, grid_columns, lpips is not None, skipped,
                        OmegaConf.to_container(OmegaConf.structured(config)))


def self_imitation(videos: list[Video], methods: list[str], body, size: int, *, target_step: int, batch_size: int, generator=None,
                   lpips=None, hole_dilation: int, grid_rows: int = 4, grid_rows_per_video: int = 1) -> tuple[dict, dict[str, list[torch.Tensor]]]:
    """The protocol on `videos` (frame 0 the source, frames k, 2k, ... the targets) for each method of `methods`.

    Returns the report's "methods" part (method -> frames, mean, videos -> mean, frames; see the
    module docstring) and the picture's columns (name -> (3, H, W) images in [-1, 1]: up to
    grid_rows targets in all, grid_rows_per_video of each video spread over its targets from the
    first). A video with no target frame is skipped with a warning.
    """
    device = body.faces.device
    per_video: dict[str, dict[str, list[dict]]] = {method: {} for method in methods}
    grid_columns: dict[str, list[torch.Tensor]] = {name: [] for name in ("source", "target", *methods)}
    for video in videos:
        targets = target_frames(len(video.frames), target_step)
        if not targets:
            logger.warning("video %s: %d frames, none at target_step=%d: skipped", video.name, len(video.frames), target_step)
            continue
        bank = video_bank(body, video, [0], size)
        for method in methods:
            per_video[method][video.name] = []
        shown = {targets[index] for index in np.linspace(0, len(targets) - 1, min(grid_rows_per_video, len(targets))).round().astype(int)}
        for start in range(0, len(targets), batch_size):
            chunk = targets[start : start + batch_size]
            real = load_frames(video, chunk, size).to(device)
            with torch.no_grad():
                vertices = posed_meshes(body, video, chunk)
                target_mask = rasterize(vertices, body.faces, size).mask
                truth = load_masks(video, chunk, size)
                truth = target_mask if truth is None else truth.to(device)
                images = {}
                if "warping" in methods:
                    images["warping"] = (unit_to_signed_range(warped_frames(bank, vertices, body)), target_mask)
                if "generator" in methods:
                    generated = generate(generator, inputs_for(generator, bank, vertices, body, hole_dilation)[0])
                    images["generator"] = (generated.image.clamp(-1, 1), generated.background_mask[:, 0] < 0.5)
                for method, (image, predicted_mask) in images.items():
                    values = frame_metrics(image, real, target_mask, predicted_mask, truth, lpips)
                    for row, frame in enumerate(chunk):
                        per_video[method][video.name].append({"frame": frame, **{name: _plain(value[row].item()) for name, value in values.items()}})
            for row in (row for row, frame in enumerate(chunk) if frame in shown):
                if len(grid_columns["source"]) < grid_rows:
                    grid_columns["source"].append(bank.signed_range_images[0].cpu())
                    grid_columns["target"].append(real[row].cpu())
                    for method, (image, _) in images.items():
                        grid_columns[method].append(image[row].cpu())
    results = {}
    for method in methods:
        all_frames = [frame for frames in per_video[method].values() for frame in frames]
        results[method] = {
            "frames": len(all_frames),
            "mean": _means(all_frames),
            "videos": {name: {"mean": _means(frames), "frames": frames} for name, frames in per_video[method].items()},
        }
    return results, grid_columns


def write_report(output: Path, protocol: dict, results: dict, grid_columns: dict[str, list[torch.Tensor]], with_lpips: bool,
                 skipped: dict[str, str], config: dict) -> dict:
    """Write the report (output, a .json) and its picture (output_grid.png beside it), print the table of means; returns the report."""
    methods = list(results)
    report = {
        "protocol": protocol,
        "metrics": {name: text for name, text in METRICS.items() if name != "lpips" or with_lpips},
        "lpips": "computed" if with_lpips else LPIPS_MISSING,
        "methods": results,
        "skipped": skipped,
        "config": config,
    }
    grid_path = output.with_name(f"{output.stem}_grid.png")
    columns = [torch.stack(grid_columns[name]) for name in ("source", "target", *methods)]
    write_image(grid_path, to_uint8(image_grid(columns)))
    report["grid"] = {"path": str(grid_path), "columns": ["source", "target", *methods]}
    write_bytes_atomic(output, (json.dumps(report, indent=1) + "\n").encode())
    names = [name for name in METRICS if name != "lpips" or with_lpips]
    rows = [[method, results[method]["frames"]] + [_cell(results[method]["mean"].get(name)) for name in names] for method in methods]
    print(format_table(["method", "frames", *names], rows))
    logger.info("wrote %s and %s", output, grid_path)
    return report


def posed_meshes(body, video: Video, frames: list[int]) -> torch.Tensor:
    """(T, V, 3) NDC meshes of the video's fits at `frames` on the body's device, dressed in the video's clothing offsets when it has them."""
    device = body.faces.device
    poses, shapes, cameras = (torch.from_numpy(np.ascontiguousarray(array[frames])).float().to(device)
                              for array in (video.poses, video.shapes, video.cameras))
    offsets = None if video.offsets is None else torch.from_numpy(video.offsets).to(device)
    return posed_vertices_ndc(body, poses, shapes, cameras, offsets)


def video_bank(body, video: Video, frames: list[int], size: int) -> SourceBank:
    """The SourceBank of the video's frames at `frames` (its person, clothed in the video's offsets), at `size` px."""
    device = body.faces.device
    masks = load_masks(video, frames, size)
    with torch.no_grad():
        meshes = posed_meshes(body, video, frames)
        offsets = torch.zeros_like(meshes[0, :, 0]) if video.offsets is None else torch.from_numpy(video.offsets).to(device)
        images = signed_to_unit_range(load_frames(video, frames, size).to(device))  # the bank's range; the dataset's frames are in [-1, 1]
        scales = torch.from_numpy(np.ascontiguousarray(video.cameras[frames, 0])).float().to(device)
        return make_bank(body, images, meshes, scales, None if masks is None else masks.to(device), offsets)


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def run(config: EvaluateConfig) -> dict:
    """The `lwgan evaluate` command."""
    return evaluate(config)
