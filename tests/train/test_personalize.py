"""`lwgan personalize` on a synthetic video: the export and holdout.json, resume after a kill, bad inputs, the choice of sources."""

import json
import math
import shutil

import numpy as np
import pytest
import torch

import lwgan.data.preprocess as preprocess
import lwgan.train.personalize as personalize
from lwgan import Imitator
from lwgan.bench.fit import render_motion_video
from lwgan.cli import main
from lwgan.config import compose
from lwgan.io.media import read_video, write_video
from lwgan.models import from_pretrained
from lwgan.train.checkpoint import read_training_state

FRAMES = 16
SIZE = 96


@pytest.fixture(scope="module")
def fitted_run(tmp_path_factory, anny_body):
    """A synthetic walker video and a run folder whose data/ already holds its fits (preprocess at 96 px)."""
    folder = tmp_path_factory.mktemp("personalize")
    video = render_motion_video(anny_body, folder / "walker.mp4", FRAMES, 160)
    data = folder / "fits" / "data"
    preprocess.run(compose("preprocess", [f"input={video}", f"output={data}", f"image_size={SIZE}", "chunk=8", "preview=false"]))
    return video, data


def run_folder(fitted_run, tmp_path):
    """A fresh run folder holding a copy of the fitted video (so personalize reuses the fits)."""
    _, data = fitted_run
    shutil.copytree(data, tmp_path / "run" / "data")
    return tmp_path / "run"


def config(video, output, *extra):
    return compose("personalize", [f"source={video}", f"output={output}", f"image_size={SIZE}", "steps=3", "batch_size=1",
                                   "sources=2", "snapshot_every=2", "log_every=1", "image_every=2", "device=cpu", *extra])


def test_a_tiny_run_writes_a_loadable_export_and_the_holdout_report(fitted_run, tmp_path):
    video, _ = fitted_run
    output = run_folder(fitted_run, tmp_path)
    result = personalize.run(config(video, output, "holdout=0.3"))

    assert result.training.step == 3
    assert result.training_frames == FRAMES - math.ceil(0.3 * FRAMES)
    generator = from_pretrained(output / "export")
    assert generator.config["inputs"] == "classical"
    report = json.loads((output / "holdout.json").read_text())
    assert report["protocol"]["source_frame"] == result.training_frames
    held_out = FRAMES - result.training_frames
    expected_targets = len(range(2, held_out, 2))  # holdout_step 2 after the held-out part's first frame
    for method in ("warping", "generator"):
        assert report["methods"][method]["frames"] == expected_targets
        means = report["methods"][method]["mean"]
        assert {"ssim", "psnr", "psnr_body", "ssim_body", "mask_iou"} <= set(means)
        assert all(np.isfinite(value) for value in means.values())
    assert (output / "holdout_grid.png").is_file()
    assert len([line for line in (output / "log.jsonl").read_text().splitlines() if line]) == 3

    # The export makes frames through the Python API.
    imitator = Imitator(checkpoint=str(output / "export"), image_size=SIZE, preserve_face=False)
    made = imitator(source=read_video(video)[0][0], reference=str(video), max_frames=2)
    assert len(made.frames) == 2 and made.frames[0].shape == (SIZE, SIZE, 3)


def test_an_untrained_generator_makes_the_frames_of_texture_warping(fitted_run, tmp_path):
    """The classical inputs start the refining generator where texture warping ends (up to its feathered edge)."""
    video, _ = fitted_run
    output = run_folder(fitted_run, tmp_path)
    config_without_training = config(video, output, "holdout=0.4", "steps=1", "lr_generator=1e-12", "lr_discriminator=1e-12")
    report = personalize.run(config_without_training).holdout
    warping, generator = (report["methods"][name]["mean"] for name in ("warping", "generator"))
    # The two differ only along the feathered edge, so by how much depends on the fitted outlines: 0.36 dB and 0.0042
    # SSIM here (the video lossless; while it was lossy, its pixels and so its fits changed from run to run, and the
    # differences with them: 0.34-0.49 dB, 0.0042-0.0051), 0.38-0.39 dB on another machine, at about 29 dB. A
    # generator that did not start from texture warping is dBs away.
    assert abs(warping["psnr"] - generator["psnr"]) < 0.5
    assert abs(warping["ssim"] - generator["ssim"]) < 0.005


def test_a_killed_run_resumes_at_its_snapshot_and_ends_as_an_uninterrupted_one(fitted_run, tmp_path, monkeypatch):
    video, _ = fitted_run
    whole = run_folder(fitted_run, tmp_path / "whole")
    personalize.run(config(video, whole, "steps=4"))

    interrupted = run_folder(fitted_run, tmp_path / "interrupted")
    real_batch = personalize.PairSampler.batch

    def killed_before_step_three(self, step):
        if step == 2:  # batches are drawn for steps 0, 1, ...: the third step's
            raise KeyboardInterrupt
        return real_batch(self, step)

    monkeypatch.setattr(personalize.PairSampler, "batch", killed_before_step_three)
    with pytest.raises(KeyboardInterrupt):
        personalize.run(config(video, interrupted, "steps=4"))
    assert read_training_state(interrupted / "state.pt")["step"] == 2
    monkeypatch.setattr(personalize.PairSampler, "batch", real_batch)
    result = personalize.run(config(video, interrupted, "steps=4"))

    assert result.training.step == 4
    steps = [json.loads(line)["step"] for line in (interrupted / "log.jsonl").read_text().splitlines() if line]
    assert steps == [1, 2, 3, 4]
    resumed, uninterrupted = from_pretrained(interrupted / "export"), from_pretrained(whole / "export")
    for (name, value), other in zip(resumed.state_dict().items(), uninterrupted.state_dict().values()):
        torch.testing.assert_close(value, other, rtol=1e-5, atol=1e-6, msg=f"{name} differs after resuming")


def test_a_video_without_a_person_is_a_clear_error(tmp_path, capsys):
    empty = write_video(tmp_path / "nobody.mp4", [np.full((96, 96, 3), 90, np.uint8)] * 12, 25.0)
    code = main(["personalize", f"source={empty}", f"output={tmp_path / 'run'}", "steps=1", "device=cpu"])
    assert code == 2
    error = capsys.readouterr().err
    assert "nobody.mp4" in error and "no person" in error


def test_a_photo_is_a_clear_error_pointing_to_the_photo_route(tmp_path, capsys):
    photo = tmp_path / "me.jpg"
    photo.write_bytes(b"not read")
    assert main(["personalize", f"source={photo}", f"output={tmp_path / 'run'}", "device=cpu"]) == 2
    error = capsys.readouterr().err
    assert "me.jpg: a photo" in error and "personalize.steps" in error


def test_too_few_frames_for_the_holdout_is_a_clear_error(fitted_run, tmp_path):
    video, _ = fitted_run
    output = run_folder(fitted_run, tmp_path)
    with pytest.raises(ValueError, match=r"walker.mp4: 16 frames leave 3 to train on with holdout=0.8"):
        personalize.run(config(video, output, "holdout=0.8"))
    with pytest.raises(ValueError, match=r"too few for a target at holdout_step=4"):
        personalize.run(config(video, output, "holdout=0.2", "holdout_step=4"))
    assert not (output / "state.pt").exists()


def test_sources_cover_the_headings_front_first():
    degrees = np.array([170.0, 10.0, 95.0, 5.0, -80.0, 100.0, -175.0])
    chosen = personalize.covering_frames(np.radians(degrees), 4)
    assert chosen[0] == 3  # the most frontal
    assert chosen[1] in (0, 6)  # the back
    assert set(chosen[2:]) == {4, 5} or set(chosen[2:]) == {2, 4}  # the two sides
    assert personalize.covering_frames(np.radians(degrees[:2]), 4) == [1, 0]


def test_the_holdout_split_counts_frames():
    assert personalize.training_frame_count(150, 0.3, 2, "clip.mp4") == 105
    assert personalize.training_frame_count(150, 0.0, 2, "clip.mp4") == 150
    with pytest.raises(ValueError, match="holdout must be in"):
        personalize.training_frame_count(150, 1.0, 2, "clip.mp4")
