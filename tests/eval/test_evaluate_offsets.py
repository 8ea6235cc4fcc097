"""`lwgan evaluate` dresses each video's source and targets in its offsets.npy: the warping baseline's mask is the clothed
target (its IoU against the naked masks falls, frame by frame as a brute recomputation says), and zero offsets are the
run without offsets.npy exactly; the source frame is dressed too (the warped images are those of a clothed source)."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from lwgan.body.camera import project
from lwgan.body.clothing import clothed_vertices, clothing_vertex_mask
from lwgan.cli import main
from lwgan.config import compose
from lwgan.data.iper import IperDataset
from lwgan.eval.evaluate import evaluate, load_frames
from lwgan.eval.metrics import mask_iou, psnr
from lwgan.flow.inputs import posed_vertices_ndc
from lwgan.flow.texture_warping import make_bank, warped_frames
from lwgan.render import rasterize

SIZE = 64
TARGETS = [2, 4]  # target_step=2 on 6-frame videos


def evaluate_warping(root, output):
    return evaluate(compose("evaluate", [f"data={root}", f"output={output}", "target_step=2", "methods=[warping]"]))


@pytest.fixture
def dressed_root(dataset_root, tmp_path):
    """(root, names): a copy of dataset_root for a test to give offsets.npy files, and its val videos."""
    root = tmp_path / "dressed"
    shutil.copytree(dataset_root, root)
    return root, (root / "val.txt").read_text().split()


def test_zero_offsets_are_the_naked_evaluation_exactly(dataset_root, dressed_root, tmp_path, anny_body):
    root, names = dressed_root
    for name in names:
        np.save(root / "smpls" / name / "offsets.npy", np.zeros(anny_body.mirror_vertices.shape[0], np.float32))
    naked = evaluate_warping(dataset_root, tmp_path / "naked.json")
    zero = evaluate_warping(root, tmp_path / "zero.json")
    assert zero["methods"] == naked["methods"]
    assert zero["methods"]["warping"]["mean"]["mask_iou"] == pytest.approx(1.0)


def test_offsets_that_push_the_body_out_lower_the_mask_iou_by_what_the_clothed_targets_cover(dressed_root, tmp_path, anny_body):
    root, names = dressed_root
    free = clothing_vertex_mask(anny_body).numpy()
    wear = {name: (0.03 + 0.02 * index) * free.astype(np.float32) for index, name in enumerate(names)}  # 3 and 5 cm
    for name, offsets in wear.items():
        np.save(root / "smpls" / name / "offsets.npy", offsets)
    report = evaluate_warping(root, tmp_path / "dressed.json")
    warping = report["methods"]["warping"]
    assert warping["mean"]["mask_iou"] < 0.9
    for video in IperDataset(root, "val").videos:
        frames = warping["videos"][video.name]["frames"]
        assert [frame["frame"] for frame in frames] == TARGETS
        # The expected mask: each target's fit, clothed, rasterized; the truth: the masks written from the naked bodies.
        as_tensor = lambda array: torch.from_numpy(array[TARGETS]).float()
        with torch.no_grad():
            posed = anny_body(as_tensor(video.poses), as_tensor(video.shapes)).vertices
            dressed = clothed_vertices(posed, anny_body.faces, torch.from_numpy(wear[video.name]))
        expected = rasterize(project(dressed, as_tensor(video.cameras)), anny_body.faces, SIZE).mask
        truth = torch.from_numpy(np.stack([np.asarray(Image.open(video.masks[index])) > 127 for index in TARGETS]))
        found = [frame["mask_iou"] for frame in frames]
        assert found == pytest.approx(mask_iou(expected, truth).tolist(), abs=1e-6)
        assert max(found) < 0.95, (video.name, found)
    # The thicker clothes of the second video cost more.
    means = [warping["videos"][name]["mean"]["mask_iou"] for name in names]
    assert means[1] < means[0]


def warped_psnr(body, video, source_offsets: torch.Tensor, target_offsets: torch.Tensor) -> list[float]:
    """The warping method's PSNR at TARGETS from frame 0, its source dressed in one field and its targets in another."""
    rows = [0, *TARGETS]
    as_tensor = lambda array: torch.from_numpy(array[rows]).float()
    poses, shapes, cameras = as_tensor(video.poses), as_tensor(video.shapes), as_tensor(video.cameras)
    with torch.no_grad():
        source = posed_vertices_ndc(body, poses[:1], shapes[:1], cameras[:1], source_offsets)
        targets = posed_vertices_ndc(body, poses[1:], shapes[1:], cameras[1:], target_offsets)
        images = load_frames(video, rows, SIZE)
        source_mask = torch.from_numpy(np.asarray(Image.open(video.masks[0])) > 127)[None]
        bank = make_bank(body, (images[:1] + 1) / 2, source, cameras[:1, 0], source_mask, source_offsets)
        return psnr(warped_frames(bank, targets, body) * 2 - 1, images[1:]).tolist()


def test_the_source_frame_is_dressed_as_well_as_the_targets(dressed_root, tmp_path, anny_body):
    root, names = dressed_root
    wear = 0.05 * clothing_vertex_mask(anny_body).float()
    for name in names:
        np.save(root / "smpls" / name / "offsets.npy", wear.numpy())
    warping = evaluate_warping(root, tmp_path / "dressed.json")["methods"]["warping"]
    for video in IperDataset(root, "val").videos:
        found = [frame["psnr"] for frame in warping["videos"][video.name]["frames"]]
        assert found == pytest.approx(warped_psnr(anny_body, video, wear, wear), abs=1e-4)
        # A naked source would warp other pixels: the comparison tells the two apart.
        naked_source = warped_psnr(anny_body, video, torch.zeros_like(wear), wear)
        assert all(abs(one - other) > 1e-2 for one, other in zip(found, naked_source)), (found, naked_source)


def test_offsets_for_another_body_are_an_error_naming_the_file(dressed_root, tmp_path, capsys):
    root, names = dressed_root
    np.save(root / "smpls" / names[0] / "offsets.npy", np.zeros(6890, np.float32))  # SMPL's vertex count, not Anny's
    assert main(["evaluate", f"data={root}", f"output={tmp_path / 'report.json'}", "target_step=2"]) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error
    assert "offsets.npy" in error and names[0] in error, error
