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
from lwgan.eval.evaluate import evaluate, load_frames
from lwgan.eval.metrics import psnr
from lwgan.flow.inputs import posed_vertices_ndc
from lwgan.flow.texture_warping import GRAZING_COSINE, make_bank, warped_frames
from lwgan.flow.transfer import transfer_flow
from lwgan.models import LiquidWarpingGenerator, save_pretrained
from lwgan.recovery.pose_files import read_pose_shape, write_pose_shape
from lwgan.render import rasterize

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


def test_warping_reproduces_the_source_and_visible_target_pixels_well(dataset_root, anny_body):
    video = IperDataset(dataset_root, "val", image_size=SIZE).videos[0]
    frames = list(range(len(video.frames)))
    as_tensor = lambda array: torch.from_numpy(array[frames]).float()
    with torch.no_grad():
        vertices = posed_vertices_ndc(anny_body, as_tensor(video.poses), as_tensor(video.shapes), as_tensor(video.cameras))
        images = (load_frames(video, frames, SIZE) + 1) / 2
        bank = make_bank(anny_body, images[:1], vertices[:1], as_tensor(video.cameras)[:1, 0], None, torch.zeros(vertices.shape[1]))
        # Source onto itself: the flow is the identity on the body, so trusted pixels of surface facing the camera come back unchanged.
        itself = warped_frames(bank, vertices[:1], anny_body)
        fragments = rasterize(vertices[:1], anny_body.faces, SIZE)
        facing = bank.trusted & (bank.facing[0][fragments.face_index.clamp_min(0)] >= GRAZING_COSINE)
        assert facing.sum() > 0.2 * fragments.mask.sum()
        assert psnr(itself, images[:1], mask=facing).item() > 60
        # Frame 0 onto frames 1..5: visible surface points are sampled from where the source shows them.
        result = warped_frames(bank, vertices[1:], anny_body)
        flow = transfer_flow(vertices[:1].expand(len(frames) - 1, -1, -1), vertices[1:], anny_body.faces, SIZE, anny_body.uv, anny_body.face_uv)
    visible = flow.visible & flow.target_mask
    hidden = flow.target_mask & ~flow.visible
    visible_psnr = psnr(result, images[1:], mask=visible)
    # Measured 24.0 to 24.7 dB at 64 x 64 (JPEG frames, bilinear resampling): a 21 dB bound. The hidden
    # points, from their counterparts on the other side of the body, measured 25.1 to 27.4 dB.
    assert (visible_psnr > 21).all(), visible_psnr
    assert (psnr(result, images[1:], mask=hidden) > 21).all()


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
