"""`lwgan fit image=PATH output=DIR`: fit the body to the person in one photo, then its clothing.

Writes fit.json (camera, pose, shape, projected and detected keypoints, offset statistics),
offsets.npy (the clothing: (V,) float32 metres along the posed normals, lwgan.recovery.clothing;
zeros with clothing=false or when the keypoint file gives no mask), silhouette.png (the clothed
body's mask at the photo's size, 255 inside), overlay.png (the clothed mesh over the photo),
mesh.obj (the clothed body, y up) and config.yaml. The clothed body is
lwgan.body.clothing.clothed_vertices of the body posed by fit.json's pose and shape with these
offsets.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import trimesh
from omegaconf import MISSING

from lwgan.body import BodyConfig, build_body_model
from lwgan.body.clothing import clothed_vertices
from lwgan.body.skeleton import COCO17_NAMES
from lwgan.config import to_yaml
from lwgan.data.iper import write_offsets
from lwgan.io.atomic_files import atomic_path, write_bytes_atomic
from lwgan.io.images import load_image
from lwgan.io.media import write_image
from lwgan.recovery.clothing import ClothingSettings, fit_clothing
from lwgan.recovery.detector import PoseDetector
from lwgan.recovery.fitting import FitSettings, fit_bodies
from lwgan.recovery.keypoint_files import read_keypoints
from lwgan.recovery.observation import FitResult, PersonObservation
from lwgan.recovery.preview import fitted_silhouette, overlay_fit

logger = logging.getLogger(__name__)


@dataclass
class FitConfig:
    image: str = MISSING  # the photo
    output: str = "outputs/fit"  # folder for fit.json, offsets.npy, silhouette.png, overlay.png, mesh.obj, config.yaml
    keypoints: str | None = None  # a COCO or OpenPose JSON file to use instead of the detector
    hmr_path: str | None = None  # the original hmr_tf2pt.pth: initialises the fit (with body.kind=smpl)
    body: BodyConfig = field(default_factory=BodyConfig)
    fitting: FitSettings = field(default_factory=FitSettings)
    clothing: bool = True  # fit the clothing offsets to the person's mask after the pose (false: the naked body)
    clothing_fitting: ClothingSettings = field(default_factory=ClothingSettings)


def observe(image: np.ndarray, image_path: Path, keypoints_path: str | None) -> PersonObservation:
    """The person in the image, from a keypoint file when given, else from the detector."""
    if keypoints_path:
        return read_keypoints(keypoints_path, image=image_path.name, image_size=image.shape[:2])
    with PoseDetector() as detector:
        return detector.detect(image, name=str(image_path))


def initial_fit(config: FitConfig, body, image: np.ndarray, observation: PersonObservation) -> FitResult | None:
    """HMR's prediction as the starting point when a checkpoint is configured, else None."""
    if not config.hmr_path:
        return None
    if body.name != "smpl":
        raise ValueError("hmr_path needs body.kind=smpl: HMR predicts SMPL parameters")
    from lwgan.recovery.hmr_loader import hmr_initial_fit, load_hmr

    pose, shape, camera = hmr_initial_fit(load_hmr(config.hmr_path), image, observation)
    empty = np.zeros((1, 0), np.float32)
    return FitResult(pose=pose[None], shape=shape[None], camera=camera[None], keypoints_2d=np.zeros((1, 23, 2), np.float32), losses={"hmr": empty[:, 0]})


def clothing_offsets(config: FitConfig, body, observation: PersonObservation, result: FitResult) -> np.ndarray:
    """(V,) float32 clothing offsets fitted to the observation's mask; zeros when config.clothing is off."""
    if not config.clothing:
        return np.zeros(body.mirror_vertices.shape[0], np.float32)
    return fit_clothing(body, [observation], result, config.clothing_fitting)


def fit_summary(
    image_path: Path, observation: PersonObservation, result: FitResult, offsets: np.ndarray, body_name: str, seconds: float
) -> dict:
    """The content of fit.json for the first fit of `result` and its (V,) clothing offsets."""
    frame = observation.square_frame
    count = len(COCO17_NAMES)
    return {
        "image": str(image_path),
        "image_size": list(observation.image_size),
        "body": body_name,
        "square_frame": {"offset": [frame.offset_x, frame.offset_y], "side": frame.side},
        "camera": result.camera[0].tolist(),
        "pose": result.pose[0].reshape(-1).tolist(),
        "shape": result.shape[0].tolist(),
        "keypoint_names": list(COCO17_NAMES),
        "keypoints_2d": result.keypoints_2d[0, :count].tolist(),
        "detected_keypoints_2d": observation.keypoints[:count].tolist(),
        "losses": {name: float(value[0]) for name, value in result.losses.items()},
        "offsets": {"file": "offsets.npy", "mean_m": float(offsets.mean()), "min_m": float(offsets.min()), "max_m": float(offsets.max())},
        "seconds": seconds,
    }


def write_mesh(path: Path, vertices: torch.Tensor, faces: torch.Tensor) -> None:
    """Write the fitted body as OBJ in the y-up body frame (the image orientation flipped back)."""
    upright = vertices.detach().cpu().numpy() * np.array([1.0, -1.0, -1.0])
    mesh = trimesh.Trimesh(vertices=upright, faces=faces.cpu().numpy(), process=False)
    with atomic_path(path) as temporary:
        mesh.export(temporary, file_type="obj")


def run(config: FitConfig) -> dict:
    """Fit one photo; returns the fit.json content."""
    start = time.perf_counter()
    image_path = Path(config.image)
    output = Path(config.output)
    image = load_image(image_path)
    observation = observe(image, image_path, config.keypoints)
    body = build_body_model(config.body)
    result = fit_bodies(body, [observation], config.fitting, initial=initial_fit(config, body, image, observation))
    offsets = clothing_offsets(config, body, observation, result)
    seconds = time.perf_counter() - start
    summary = fit_summary(image_path, observation, result, offsets, body.name, seconds)
    with torch.no_grad():
        naked = body(torch.from_numpy(result.pose), torch.from_numpy(result.shape)).vertices
        vertices = clothed_vertices(naked, body.faces, torch.from_numpy(offsets))[0]
    camera = torch.from_numpy(result.camera[0])
    write_bytes_atomic(output / "fit.json", json.dumps(summary, indent=1).encode())
    write_offsets(output / "offsets.npy", offsets)
    write_image(output / "silhouette.png", fitted_silhouette(observation.image_size, vertices, body.faces, camera).astype(np.uint8) * 255)
    write_image(output / "overlay.png", overlay_fit(image, vertices, body.faces, camera))
    write_mesh(output / "mesh.obj", vertices, body.faces)
    write_bytes_atomic(output / "config.yaml", to_yaml(config).encode())
    logger.info("fitted %s in %.1f s: %s", image_path.name, seconds, output / "fit.json")
    return summary
