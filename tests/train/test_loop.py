"""The training loop on a tiny synthetic dataset: finite losses, exact resume, the export, the schedule, clear errors."""

import json
import logging
import math
import os
import shutil
import subprocess
import sys

import pytest
import torch
from hydra.errors import MissingConfigException

from lwgan.cli import main
from lwgan.config import compose
from lwgan.data.iper import IperDataset
from lwgan.flow.inputs import scaled_hole_dilation
from lwgan.models import from_pretrained, generate
from lwgan.recovery.pose_files import read_pose_shape, write_pose_shape
from lwgan.train import train
from lwgan.train.checkpoint import read_training_state
from lwgan.train.loop import learning_rate_factor
from lwgan.train.step import ema_decay_at, prepare_batch, update_ema

SIZE = 64  # the smallest comfortable size: the generator needs multiples of 8, the PatchGAN at least 48


def train_config(data, output, *overrides):
    return compose("train", [f"data={data}", f"output={output}", f"image_size={SIZE}", "batch_size=2", "workers=0",
                             "log_every=1", "image_every=2", *overrides])


@pytest.fixture(scope="module")
def short_run(dataset_root, tmp_path_factory):
    return train(train_config(dataset_root, tmp_path_factory.mktemp("run"), "iterations=3", "snapshot_every=2"))


def test_the_loop_runs_and_writes_logs_snapshots_and_pictures(short_run):
    assert short_run.step == 3
    lines = [json.loads(line) for line in (short_run.run_dir / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3]
    for line in lines:
        assert all(math.isfinite(value) for value in line.values())
        assert {"generator/total", "generator/reconstruction", "generator/l1", "generator/ssim", "generator/mask",
                "generator/adversarial", "discriminator/real", "discriminator/fake"} <= set(line)
    assert short_run.scalars == {key: value for key, value in lines[-1].items() if key != "step"}
    assert (short_run.run_dir / "samples" / "step_0000002.png").is_file()
    assert (short_run.run_dir / "config.yaml").is_file()
    assert read_training_state(short_run.run_dir / "state.pt")["step"] == 3  # the final snapshot


def test_the_export_loads_and_reproduces_the_ema_generator(short_run, dataset_root, anny_body):
    exported = from_pretrained(short_run.export_dir)
    item = next(iter(torch.utils.data.DataLoader(IperDataset(dataset_root, "val", image_size=SIZE), batch_size=2)))
    batch = prepare_batch(item, anny_body, torch.device("cpu"), scaled_hole_dilation(SIZE))
    with torch.no_grad():
        expected = generate(short_run.ema_generator.eval(), batch.inputs)
        found = generate(exported, batch.inputs)
    assert torch.equal(found.image, expected.image) and torch.equal(found.background_mask, expected.background_mask)
    # The EMA copy is not the trained generator itself (it lags behind it).
    assert not torch.equal(next(short_run.ema_generator.parameters()), next(short_run.generator.parameters()))


def test_a_resumed_run_continues_exactly_where_the_snapshot_left_off(dataset_root, tmp_path, caplog):
    constant = ("constant_fraction=1.0", "snapshot_every=2")  # the same LR at every step, however long the run
    uninterrupted = train(train_config(dataset_root, tmp_path / "whole", "iterations=4", *constant))

    first = train(train_config(dataset_root, tmp_path / "split", "iterations=2", *constant))
    snapshot = read_training_state(tmp_path / "split" / "state.pt")
    assert first.step == snapshot["step"] == 2
    # A new train() finds the snapshot: with nothing left to do its weights are the snapshot's.
    again = train(train_config(dataset_root, tmp_path / "split", "iterations=2", *constant))
    assert again.step == 2
    for name, model in (("generator", again.generator), ("discriminator", again.discriminator), ("ema_generator", again.ema_generator)):
        for key, value in model.state_dict().items():
            assert torch.equal(value, snapshot["models"][name][key]), (name, key)

    with caplog.at_level(logging.WARNING, logger="lwgan.train.checkpoint"):
        resumed = train(train_config(dataset_root, tmp_path / "split", "iterations=4", *constant))
    assert "iterations: 2 -> 4" in caplog.text
    assert resumed.step == 4
    state = read_training_state(tmp_path / "split" / "state.pt")
    # Adam's per-parameter step counts went on from the restored 2, not from 0.
    assert all(int(entry["step"]) == 4 for entry in state["optimizers"]["generator"]["state"].values())
    assert all(int(entry["step"]) == 4 for entry in state["optimizers"]["discriminator"]["state"].values())
    # Same data order, weights, optimizer moments and EMA: the split run equals the uninterrupted one.
    for name in ("generator", "discriminator", "ema_generator"):
        for (key, value), other in zip(getattr(resumed, name).state_dict().items(), getattr(uninterrupted, name).state_dict().values()):
            torch.testing.assert_close(value, other, rtol=1e-5, atol=1e-6, msg=f"{name} {key}")


def test_attention_generator_trains_with_two_sources(dataset_root, tmp_path):
    result = train(train_config(dataset_root, tmp_path, "iterations=1", "generator=attention", "num_sources=2"))
    assert result.step == 1 and all(math.isfinite(value) for value in result.scalars.values())
    assert type(from_pretrained(result.export_dir)).__name__ == "AttentionalLiquidWarpingGenerator"


def test_without_an_adversarial_term_the_discriminator_is_not_trained(dataset_root, tmp_path):
    runs = [train(train_config(dataset_root, tmp_path / f"run{steps}", f"iterations={steps}", "adversarial_weight=0")) for steps in (1, 2)]
    lines = [json.loads(line) for line in (runs[1].run_dir / "log.jsonl").read_text().splitlines()]
    assert not any(key.startswith("discriminator/") or key == "generator/adversarial" for line in lines for key in line)
    first, second = (run.discriminator.state_dict() for run in runs)
    assert all(torch.equal(first[key], second[key]) for key in first)  # D as initialised after both runs
    assert not all(torch.equal(a, b) for a, b in zip(runs[0].generator.state_dict().values(), runs[1].generator.state_dict().values()))


def test_learning_rate_is_constant_then_decays_linearly_to_the_final_rate():
    factor = lambda step: learning_rate_factor(step, iterations=30, constant_steps=5, final_ratio=0.01)
    assert [factor(step) for step in (0, 4, 5)] == [1.0, 1.0, 1.0]
    assert factor(30) == pytest.approx(0.01) and factor(17.5) == pytest.approx((1 + 0.01) / 2)
    assert factor(40) == pytest.approx(0.01)


def test_ema_update_and_warm_up_closed_form():
    average, model = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.constant_(average.weight, 1.0)
    torch.nn.init.constant_(model.weight, 3.0)
    update_ema(average, model, 0.75)
    assert average.weight.item() == pytest.approx(0.75 * 1.0 + 0.25 * 3.0)
    assert ema_decay_at(0, 0.999) == pytest.approx(0.1) and ema_decay_at(10**6, 0.999) == 0.999


def test_hole_dilation_scales_with_the_image_size():
    assert [scaled_hole_dilation(size) for size in (256, 128, 64, 512)] == [15, 7, 3, 31]


def test_experiment_presets_apply_before_the_users_overrides():
    config = compose("train", ["experiment=synthetic_small", "data=d", "output=o", "batch_size=2"])
    assert (config.experiment, config.image_size, config.preset, config.batch_size) == ("synthetic_small", 128, "small", 2)
    assert config.adversarial_weight == 0.1 and compose("train", ["data=d", "output=o"]).adversarial_weight == 1.0
    assert compose("train", ["experiment=synthetic_full_256", "data=d", "output=o"]).preset == "original"
    # The preset picks its networks from model/ (iccv_original); the user's own choice still wins.
    config = compose("train", ["experiment=iper_impersonator", "data=d", "output=o", "model=attention_small"])
    assert (config.source_window, config.generator, config.preset) == (15, "attention", "small")
    with pytest.raises(MissingConfigException, match="(?s)Could not find 'experiment/nope'.*synthetic_small"):
        compose("train", ["experiment=nope", "data=d", "output=o"])


def test_bad_settings_are_clear_errors(dataset_root, tmp_path, capsys):
    assert main(["train", f"data={dataset_root}", f"output={tmp_path}", "image_size=60"]) == 2
    assert "image_size=60 is not a multiple of 8" in capsys.readouterr().err
    assert main(["train", f"data={dataset_root}", f"output={tmp_path}", "num_sources=2"]) == 2
    assert "generator=attention" in capsys.readouterr().err
    assert main(["train", f"data={dataset_root}", f"output={tmp_path}", f"image_size={SIZE}", "adversarial_weight=-1"]) == 2
    assert "the weight of term 'adversarial' must be a finite number >= 0, got -1.0" in capsys.readouterr().err


def test_missing_or_inconsistent_data_fail_through_the_cli_naming_the_video(broken_dataset, tmp_path, capsys):
    assert main(["train", f"data={tmp_path / 'nowhere'}", f"output={tmp_path / 'run'}"]) == 2
    assert "dataset folder not found" in capsys.readouterr().err

    root, name = broken_dataset
    fits = read_pose_shape(root / "smpls" / name / "pose_shape.pkl")
    write_pose_shape(root / "smpls" / name / "pose_shape.pkl", cams=fits.cams[:-1], pose=fits.pose[:-1], shape=fits.shape[:-1])
    assert main(["train", f"data={root}", f"output={tmp_path / 'run'}", f"image_size={SIZE}"]) == 2
    error = capsys.readouterr().err
    assert f"video {name}" in error and "5 rows" in error and "Traceback" not in error

    shutil.rmtree(root / "images" / name)
    assert main(["train", f"data={root}", f"output={tmp_path / 'run'}", f"image_size={SIZE}"]) == 2
    assert f"video {name}: frame folder" in capsys.readouterr().err


@pytest.mark.slow
def test_two_processes_under_torchrun_train_in_step(dataset_root, tmp_path):
    command = [os.path.join(os.path.dirname(sys.executable), "torchrun"), "--nproc_per_node=2", "-m", "lwgan.cli", "train",
               f"data={dataset_root}", f"output={tmp_path}", f"image_size={SIZE}", "batch_size=1", "workers=0", "iterations=2",
               "log_every=1"]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = (tmp_path / "log.jsonl").read_text().splitlines()  # rank 0 alone writes
    assert [json.loads(line)["step"] for line in lines] == [1, 2]
    assert read_training_state(tmp_path / "state.pt")["step"] == 2
