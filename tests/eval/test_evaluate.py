"""The self-imitation evaluation on a tiny synthetic dataset: both methods, the JSON report, the warping baseline, clear errors."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from lwgan.cli import main
from lwgan.config import compose
from lwgan.data.iper import IperDataset
from lwgan.eval.baseline import inpaint_background, texture_warping
from lwgan.eval.evaluate import evaluate, load_frames
from lwgan.eval.metrics import psnr
from lwgan.flow.inputs import generator_inputs, posed_vertices_ndc
from lwgan.models import LiquidWarpingGenerator, save_pretrained
from lwgan.recovery.pose_files import read_pose_shape, write_pose_shape

SIZE = 64
METRIC_NAMES = {"ssim", "psnr", "ssim_body", "psnr_body", "mask_iou"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    return save_pretrained(LiquidWarpingGenerator.preset("small", refine=False), tmp_path_factory.mktemp("export"))


def test_evaluate_writes_every_metric_for_both_methods(dataset_root, checkpoint, tmp_path, capsys):
    output = tmp_path / "report.json"
    evaluate(compose("evaluate", [f"data={dataset_root}", f"checkpoint={checkpoint}", f"output={output}", "target_step=2"]))
    report = json.loads(output.read_text())
    assert report["protocol"]["videos"] == 2 and report["protocol"]["image_size"] == SIZE
    assert report["lpips"].startswith("not available without weights")
    for method in ("warping", "generator"):
        result = report["methods"][method]
        assert result["frames"] == 4  # 2 val videos x frames 2 and 4
        assert set(result["mean"]) == METRIC_NAMES and all(value is not None for value in result["mean"].values())
        assert set(result["videos"]) == set((dataset_root / "val.txt").read_text().split())
        for video in result["videos"].values():
            assert [frame["frame"] for frame in video["frames"]] == [2, 4]
    # The warping baseline's body mask is the target mesh, and the dataset's masks are the rendered meshes.
    assert report["methods"]["warping"]["mean"]["mask_iou"] == pytest.approx(1.0)
    assert report["methods"]["warping"]["mean"]["psnr"] > report["methods"]["generator"]["mean"]["psnr"]  # an untrained painting G
    picture = np.asarray(Image.open(report["grid"]["path"]))
    assert report["grid"]["columns"] == ["source", "target", "warping", "generator"]
    assert picture.shape == (2 * SIZE, 4 * SIZE, 3)
    table = capsys.readouterr().out
    assert "warping" in table and "generator" in table and "psnr_body" in table


def test_an_untrained_refining_generator_is_texture_warping_with_hidden_points_from_the_atlas(dataset_root, tmp_path):
    """Its zeroed heads add nothing: the mask is the target mesh (IoU 1 against the rendered masks), the background
    is the baseline's Telea fill, and only hidden body points differ (the source's UV atlas instead of the
    occluder's colour), which brings the body nearer the truth."""
    torch.manual_seed(0)
    export = save_pretrained(LiquidWarpingGenerator.preset("small"), tmp_path / "export")
    report = evaluate(compose("evaluate", [f"data={dataset_root}", f"checkpoint={export}", f"output={tmp_path / 'report.json'}",
                                           "target_step=2"]))
    warping, generator = report["methods"]["warping"]["mean"], report["methods"]["generator"]["mean"]
    assert generator["mask_iou"] == pytest.approx(1.0)
    assert generator["psnr_body"] > warping["psnr_body"]


def test_without_a_checkpoint_only_the_baseline_runs(dataset_root, tmp_path):
    output = tmp_path / "baseline.json"
    assert main(["evaluate", f"data={dataset_root}", f"output={output}", "target_step=3", "max_videos=1"]) == 0
    report = json.loads(output.read_text())
    assert set(report["methods"]) == {"warping"} and "generator" in report["skipped"]
    assert report["methods"]["warping"]["frames"] == 1  # frame 3 of a 6-frame video


def test_warping_reproduces_the_source_exactly_and_visible_target_pixels_well(dataset_root, anny_body):
    video = IperDataset(dataset_root, "val", image_size=SIZE).videos[0]
    frames = list(range(len(video.frames)))
    as_tensor = lambda array: torch.from_numpy(array[frames]).float()
    vertices = posed_vertices_ndc(anny_body, as_tensor(video.poses), as_tensor(video.shapes), as_tensor(video.cameras))
    images = load_frames(video, frames, SIZE)
    count = len(frames) - 1
    # Source onto itself: the flow is the identity on the body, so body pixels come back unchanged.
    _, (flow,) = generator_inputs(images[:1, None], vertices[:1, None], vertices[:1], anny_body, hole_dilation=3)
    itself = texture_warping(images[:1], flow, hole_dilation=3)
    assert psnr(itself.image, images[:1], mask=flow.target_mask).item() > 60
    # Frame 0 onto frames 1..5: visible surface points are sampled from where the source shows them.
    sources = images[:1].expand(count, -1, -1, -1)
    _, (flow,) = generator_inputs(sources[:, None], vertices[:1].expand(count, -1, -1)[:, None], vertices[1:], anny_body, hole_dilation=3)
    result = texture_warping(sources, flow, hole_dilation=3)
    visible = flow.visible & flow.target_mask
    hidden = flow.target_mask & ~flow.visible
    visible_psnr = psnr(result.image, images[1:], mask=visible)
    # Measured 24.2 to 25.9 dB at 64 x 64 (JPEG frames, bilinear resampling): a 21 dB bound.
    assert (visible_psnr > 21).all(), visible_psnr
    assert visible_psnr.mean() > psnr(result.image, images[1:], mask=hidden).nanmean()
    assert torch.equal(result.body_mask, flow.target_mask)


def test_inpainting_fills_only_the_hole():
    image = torch.linspace(-1, 1, 32).view(1, 1, 1, 32).expand(1, 3, 32, 32).contiguous()
    hole = torch.zeros(1, 32, 32, dtype=torch.bool)
    hole[:, 10:20, 10:20] = True
    damaged = image.clone()
    damaged[:, :, 10:20, 10:20] = 1.0
    filled = inpaint_background(damaged, hole)
    assert (filled[:, :, ~hole[0]] - damaged[:, :, ~hole[0]]).abs().max() <= 1 / 127.5  # 8-bit quantisation only
    assert (filled[:, :, hole[0]] - image[:, :, hole[0]]).abs().mean() < 0.1  # a smooth ramp is filled smoothly


def test_bad_inputs_are_clear_errors_through_the_cli(dataset_root, checkpoint, tmp_path, capsys):
    output = f"output={tmp_path / 'report.json'}"
    assert main(["evaluate", f"data={tmp_path / 'nowhere'}", output]) == 2
    assert "dataset folder not found" in capsys.readouterr().err
    assert main(["evaluate", f"data={dataset_root}", f"checkpoint={tmp_path / 'no_export'}", output]) == 2
    assert "export folder not found" in capsys.readouterr().err
    assert main(["evaluate", f"data={dataset_root}", "lpips_alexnet_path=/x.pth", output]) == 2
    assert "lpips_linear_path" in capsys.readouterr().err

    root = tmp_path / "broken"
    shutil.copytree(dataset_root, root)
    name = (root / "val.txt").read_text().split()[0]
    fits = read_pose_shape(root / "smpls" / name / "pose_shape.pkl")
    write_pose_shape(root / "smpls" / name / "pose_shape.pkl", cams=fits.cams[:-1], pose=fits.pose[:-1], shape=fits.shape[:-1])
    assert main(["evaluate", f"data={root}", output]) == 2
    error = capsys.readouterr().err
    assert f"video {name}" in error and "Traceback" not in error
    write_pose_shape(root / "smpls" / name / "pose_shape.pkl", cams=fits.cams, pose=fits.pose, shape=fits.shape)
    (root / "masks" / name / "000002.png").unlink()
    assert main(["evaluate", f"data={root}", output]) == 2
    assert f"video {name}: 1 mask(s) missing" in capsys.readouterr().err
