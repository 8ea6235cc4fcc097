"""`lwgan fit` on the COCO skier: the clothed silhouette and the keypoints against the photo's ground truth, and its files."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from lwgan.body.clothing import clothed_vertices
from lwgan.config import compose
from lwgan.recovery.keypoint_files import read_coco_keypoints
from lwgan.recovery.preview import fitted_silhouette
from lwgan.tasks.fit import run

SKIER = Path(__file__).resolve().parents[1] / "data" / "coco_skier"

# Measured: the naked body's silhouette has IoU 0.77 with the annotated polygon, the clothed one
# 0.91 (the detector's own mask has 0.925: the polygon takes in the ski bindings, the mask parts of
# the poles); the keypoints are 3% of the box height from the annotation.
MIN_CLOTHED_IOU = 0.90
MAX_KEYPOINT_ERROR = 0.05


def iou(first: np.ndarray, second: np.ndarray) -> float:
    return float((first & second).sum() / (first | second).sum())


@pytest.fixture(scope="module")
def skier_fit(tmp_path_factory, anny_body):
    """(fit.json content, output folder) of `lwgan fit` on the skier."""
    output = tmp_path_factory.mktemp("skier")
    return run(compose("fit", [f"image={SKIER / '000000000785.jpg'}", f"output={output}"])), output


def test_clothed_silhouette_matches_the_annotated_person(skier_fit, anny_body):
    summary, output = skier_fit
    truth = read_coco_keypoints(SKIER / "annotation.json")
    mask = np.asarray(Image.open(output / "silhouette.png"))
    assert mask.shape == tuple(summary["image_size"]) and mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    naked = fitted_silhouette(truth.image_size, naked_vertices(anny_body, summary)[0], anny_body.faces, torch.tensor(summary["camera"]))
    naked_iou, clothed_iou = iou(naked, truth.mask > 0.5), iou(mask == 255, truth.mask > 0.5)
    assert clothed_iou >= MIN_CLOTHED_IOU and clothed_iou > naked_iou + 0.08, f"IoU naked {naked_iou:.3f}, clothed {clothed_iou:.3f}"


def test_keypoints_match_the_annotation(skier_fit):
    summary, _ = skier_fit
    truth = read_coco_keypoints(SKIER / "annotation.json")
    labelled = truth.keypoints[:17, 2] > 0
    errors = np.linalg.norm(np.array(summary["keypoints_2d"])[labelled] - truth.keypoints[:17, :2][labelled], axis=1)
    assert errors.mean() <= MAX_KEYPOINT_ERROR * (truth.box[3] - truth.box[1])


def test_files_hold_the_clothed_body(skier_fit, anny_body):
    summary, output = skier_fit
    assert json.loads((output / "fit.json").read_text()) == summary
    offsets = np.load(output / "offsets.npy")
    assert offsets.shape == (anny_body.mirror_vertices.shape[0],) and offsets.dtype == np.float32
    assert summary["offsets"] == {"file": "offsets.npy", "mean_m": pytest.approx(float(offsets.mean())),
                                  "min_m": float(offsets.min()), "max_m": float(offsets.max())}
    assert offsets.max() > 0.03  # the jacket, the trousers and the hat are wider than the body
    clothed = clothed_vertices(naked_vertices(anny_body, summary), anny_body.faces, torch.from_numpy(offsets))[0].numpy()
    mesh = trimesh.load(output / "mesh.obj", process=False)
    assert np.allclose(mesh.vertices, clothed * np.array([1.0, -1.0, -1.0]), atol=1e-5)
    assert "clothing: true" in (output / "config.yaml").read_text()


def test_clothing_can_be_turned_off(tmp_path, anny_body):
    quick = ["fitting.orientation_iterations=5", "fitting.body_iterations=5", "fitting.silhouette_iterations=0"]
    summary = run(compose("fit", [f"image={SKIER / '000000000785.jpg'}", f"output={tmp_path}", "clothing=false", *quick]))
    assert not np.load(tmp_path / "offsets.npy").any()
    naked = fitted_silhouette(tuple(summary["image_size"]), naked_vertices(anny_body, summary)[0], anny_body.faces, torch.tensor(summary["camera"]))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "silhouette.png")) == 255, naked)


def naked_vertices(body, summary: dict) -> torch.Tensor:
    """(1, V, 3) the body posed by fit.json's pose and shape."""
    with torch.no_grad():
        return body(torch.tensor(summary["pose"]).view(1, 24, 3), torch.tensor([summary["shape"]])).vertices
