"""`lwgan bench render`: rasterizer speed on the body mesh (ms per frame), with ratios."""

from __future__ import annotations

import json
import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lwgan.bench.timing import time_ms
from lwgan.render.pytorch3d_backend import pytorch3d_available
from lwgan.render.rasterize import rasterize
from lwgan.render.reference import rasterize_reference
from lwgan.tables import format_table

logger = logging.getLogger(__name__)

TARGET_MS_512 = 40.0
"""Issue target: a 512x512 frame of the body mesh on 2 CPU threads."""


@dataclass
class BenchRenderConfig:
    mesh: str | None = None  # an .npz with vertices (V, 3) in NDC (y down) and faces (F, 3); default: the body
    json: bool = False  # print machine-readable JSON on stdout instead of the table
    sizes: list[int] = field(default_factory=lambda: [256, 512])
    batches: list[int] = field(default_factory=lambda: [1, 8])
    threads: int = 2
    repeats: int = 10
    reference_size: int = 256  # the brute-force reference is timed at this size only, batch 1
    exactness_sizes: list[int] = field(default_factory=lambda: [256, 512])  # compare with the reference here
    cache_dir: str | None = None  # body model cache folder (default ~/.cache/lwgan)


def load_mesh(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a benchmark mesh: (V, 3) float vertices in NDC and (F, 3) int64 faces."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mesh file not found: {path}")
    try:
        with np.load(path) as data:
            missing = {"vertices", "faces"} - set(data.files)
            if missing:
                raise ValueError(f"{path}: missing arrays {sorted(missing)} (has {sorted(data.files)})")
            vertices, faces = data["vertices"], data["faces"]
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable .npz mesh ({error})") from error
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"{path}: vertices must be (V, 3) and faces (F, 3), got {vertices.shape} and {faces.shape}")
    return torch.from_numpy(vertices.astype(np.float32)), torch.from_numpy(faces.astype(np.int64))


def body_mesh(cache_dir: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The default body in a walking pose, framed to fill 90% of the image: (V, 3) NDC, (F, 3)."""
    from lwgan.body import AnnyBody
    from lwgan.body.camera import UPRIGHT_ORIENTATION, camera_to_fit, project

    body = AnnyBody(cache_dir=cache_dir)
    pose = torch.zeros(1, 24, 3)
    pose[0, 0] = torch.tensor(UPRIGHT_ORIENTATION)
    pose[0, 1, 0], pose[0, 2, 0], pose[0, 4, 0] = -0.4, 0.3, 0.5  # a stride
    pose[0, 16, 2], pose[0, 17, 2] = -1.1, 1.1  # arms down
    with torch.no_grad():
        vertices = body(pose).vertices
    return project(vertices, camera_to_fit(vertices, fill=0.9))[0], body.faces


def exactness(vertices: torch.Tensor, faces: torch.Tensor, size: int) -> dict:
    """Compare rasterize() with the brute-force reference on one mesh (V, 3) at size x size."""
    ours = rasterize(vertices[None], faces, size)
    reference = rasterize_reference(vertices[None], faces, size)
    differ = ours.face_index != reference.face_index
    same = ~differ & reference.mask
    return {
        "size": size,
        "covered_pixels": int(reference.mask.sum()),
        "differing_pixels": int(differ.sum()),
        "max_bary_error": float((ours.bary[same].double() - reference.bary[same]).abs().max()) if same.any() else 0.0,
        "max_depth_error": float((ours.depth[same].double() - reference.depth[same]).abs().max()) if same.any() else 0.0,
    }


def run(config: BenchRenderConfig) -> list[dict]:
    torch.set_num_threads(config.threads)
    vertices, faces = load_mesh(config.mesh) if config.mesh else body_mesh(config.cache_dir)
    backends = [("torch", "cpu")]
    if pytorch3d_available():
        backends.append(("pytorch3d", "cpu"))
    if torch.cuda.is_available():
        backends.append(("torch", "cuda"))
    rows = []
    for size in config.sizes:
        for batch in config.batches:
            for backend, device in backends:
                batch_vertices = vertices.to(device).expand(batch, -1, -1).contiguous()
                device_faces = faces.to(device)

                def call():
                    rasterize(batch_vertices, device_faces, size, backend=backend)
                    if device == "cuda":
                        torch.cuda.synchronize()

                rows.append({"rasterizer": f"{backend}-{device}", "size": size, "batch": batch, "ms_per_frame": statistics.median(time_ms(call, config.repeats)) / batch})
            if size == config.reference_size and batch == 1:
                repeats = max(1, config.repeats // 5)
                milliseconds = statistics.median(time_ms(lambda: rasterize_reference(vertices[None], faces, size), repeats))
                rows.append({"rasterizer": "reference-cpu (brute force)", "size": size, "batch": 1, "ms_per_frame": milliseconds})
    ours = {(r["size"], r["batch"]): r["ms_per_frame"] for r in rows if r["rasterizer"] == "torch-cpu"}
    for row in rows:
        row["vs_torch_cpu"] = row["ms_per_frame"] / ours[(row["size"], row["batch"])]
    info = {"vertices": len(vertices), "faces": len(faces), "threads": config.threads, "target_ms_512": TARGET_MS_512}
    checks = [exactness(vertices, faces, size) for size in config.exactness_sizes]
    if config.json:
        print(json.dumps({"mesh": info, "rows": rows, "exactness": checks}, indent=2))
    else:
        print(f"rasterize: {info['faces']} faces, {info['vertices']} vertices, CPU threads {config.threads}; target <= {TARGET_MS_512:.0f} ms per 512x512 frame")
        table = [[r["rasterizer"], f"{r['size']}x{r['size']}", r["batch"], r["ms_per_frame"], f"{r['vs_torch_cpu']:.2f}x",
                  f"{r['ms_per_frame'] / TARGET_MS_512:.2f}" if r["size"] == 512 else "-"] for r in rows]
        print(format_table(["rasterizer", "image", "batch", "ms/frame", "vs torch-cpu", "vs 512 target"], table))
        if checks:
            print("\nexactness against the brute-force reference:")
            print(format_table(["image", "covered px", "differing px", "max |bary| error", "max |depth| error"],
                               [[f"{c['size']}x{c['size']}", c["covered_pixels"], c["differing_pixels"], f"{c['max_bary_error']:.1e}", f"{c['max_depth_error']:.1e}"] for c in checks]))
    return rows
