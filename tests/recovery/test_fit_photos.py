"""Fitting real photos: the COCO skier against its ground truth, the Pexels lunge through `lwgan fit`."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lwgan.body.camera import project
from lwgan.io.images import load_image
from lwgan.recovery.detector import PoseDetector
from lwgan.recovery.fitting import fit_bodies
from lwgan.recovery.keypoint_files import read_coco_keypoints
from lwgan.render import rasterize

DATA = Path(__file__).parent.parent / "data"
SKIER = DATA / "coco_skier" / "000000000785.jpg"
LUNGE = DATA / "pexels_lunge" / "pexels-anete-lusina-4793258_512.jpg"


def rendered_mask(body, result, image_size) -> np.ndarray:
    """(H, W) bool silhouette of the fitted body over the image (rendered in the square frame)."""
    height, width = image_size
    side = max(height, width)
    with torch.no_grad():
        vertices = body(torch.from_numpy(result.pose), torch.from_numpy(result.shape)).vertices
        mask = rasterize(project(vertices, torch.from_numpy(result.camera)), body.faces, side).mask[0].numpy()
    top, left = (side - height) // 2, (side - width) // 2
    return mask[top : top + height, left : left + width]


@pytest.fixture(scope="module")
def skier_fit(anny_body):
    image = load_image(SKIER)
    with PoseDetector() as detector:
        observation = detector.detect(image, name=str(SKIER))
    return observation, fit_bodies(anny_body, [observation])


def test_skier_keypoints_match_the_ground_truth(skier_fit):
    _, result = skier_fit
    truth = read_coco_keypoints(DATA / "coco_skier" / "annotation.json")
    box_height = truth.box[3] - truth.box[1]
    labelled = truth.keypoints[:17, 2] > 0
    errors = np.linalg.norm(result.keypoints_2d[0, :17][labelled] - truth.keypoints[:17, :2][labelled], axis=1) / box_height
    assert errors.mean() <= 0.05, f"mean error {errors.mean():.3f} of the box height"


def test_skier_silhouette_matches_the_ground_truth_mask(skier_fit, anny_body):
    observation, result = skier_fit
    truth = read_coco_keypoints(DATA / "coco_skier" / "annotation.json")
    mask = rendered_mask(anny_body, result, observation.image_size)
    reference = truth.mask > 0.5
    iou = (mask & reference).sum() / (mask | reference).sum()
    assert iou >= 0.75, f"IoU {iou:.3f}"


def test_fit_command_on_the_lunge_photo(tmp_path, anny_body):
    from lwgan.config import compose
    from lwgan.tasks.fit import run

    summary = run(compose("fit", [f"image={LUNGE}", f"output={tmp_path}"]))
    saved = json.loads((tmp_path / "fit.json").read_text())
    assert saved == summary
    assert saved["image_size"] == [512, 342]
    assert len(saved["camera"]) == 3 and len(saved["pose"]) == 72 and len(saved["shape"]) == 6
    fitted = np.array(saved["keypoints_2d"])
    detected = np.array(saved["detected_keypoints_2d"])
    assert fitted.shape == (17, 2) and detected.shape == (17, 3)
    confident = detected[:, 2] > 0.5
    height = detected[confident, 1].max() - detected[confident, 1].min()
    assert np.linalg.norm(fitted[confident] - detected[confident, :2], axis=1).mean() < 0.06 * height
    assert (tmp_path / "overlay.png").stat().st_size > 1000 and (tmp_path / "mesh.obj").exists()
    assert "lunge" in (tmp_path / "config.yaml").read_text()
