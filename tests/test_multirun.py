"""Hydra multirun through `lwgan -m`: a training sweep on a preset of the user's own, preprocess shards as submitit jobs."""

import pickle
import shutil

import numpy as np
import pytest
import torch
import yaml

from lwgan.bench.fit import render_motion_video
from lwgan.cli import main
from lwgan.recovery.pose_files import read_pose_shape

FRAMES = 3
QUICK_FIT = ["fitting.orientation_iterations=10", "fitting.body_iterations=15", "fitting.warm_body_iterations=10",
             "fitting.silhouette_iterations=0", "fitting.track_silhouette_iterations=0"]
SWEEP_PRESET = """# @package _global_
image_size: 64
batch_size: 2
iterations: 1
workers: 0
log_every: 1
image_every: 1
"""


def test_a_training_sweep_runs_each_job_into_its_own_folder_with_its_config(dataset_root, tmp_path):
    (tmp_path / "conf" / "experiment").mkdir(parents=True)
    (tmp_path / "conf" / "experiment" / "tiny.yaml").write_text(SWEEP_PRESET)
    runs = tmp_path / "runs"
    assert main(["train", "-m", "--config-dir", str(tmp_path / "conf"), "experiment=tiny", f"data={dataset_root}",
                 "adversarial_weight=0,0.5", f"output={runs}/aw_${{adversarial_weight}}", f"hydra.sweep.dir={tmp_path / 'sweep'}"]) == 0
    assert sorted(path.name for path in runs.iterdir()) == ["aw_0.0", "aw_0.5"]
    for weight in (0.0, 0.5):
        saved = yaml.safe_load((runs / f"aw_{weight}" / "config.yaml").read_text())
        assert (saved["adversarial_weight"], saved["experiment"], saved["iterations"], saved["image_size"]) == (weight, "tiny", 1, 64)
        assert saved["output"] == str(runs / f"aw_{weight}")
        assert (runs / f"aw_{weight}" / "export" / "model.safetensors").is_file()
    assert yaml.safe_load((tmp_path / "sweep" / "multirun.yaml").read_text())["hydra"]["overrides"]["task"][-1] == f"output={runs}/aw_${{adversarial_weight}}"


@pytest.fixture
def one_thread(monkeypatch):
    """Torch on one thread here and in child processes (they inherit OMP_NUM_THREADS): multi-threaded
    sums round differently from run to run, and the fitter's many steps carry that into different fits."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_preprocess_shards_as_submitit_jobs_make_what_one_run_makes(anny_body, tmp_path, one_thread):
    videos = tmp_path / "videos"
    videos.mkdir()
    render_motion_video(anny_body, videos / "first.mp4", FRAMES, 128)
    shutil.copy(videos / "first.mp4", videos / "second.mp4")
    settings = [f"input={videos}", "image_size=64", f"chunk={FRAMES}", "preview=false", "clothing=false", *QUICK_FIT]
    assert main(["preprocess", *settings, f"output={tmp_path / 'one'}"]) == 0
    assert main(["preprocess", "-m", "hydra/launcher=submitit_local", f"hydra.sweep.dir={tmp_path / 'sweep'}", *settings,
                 f"output={tmp_path / 'sharded'}", "shard=0/2,1/2"]) == 0
    # Each shard ran as its own submitit job (its log folder) and saved its own resolved config.
    assert len([path for path in (tmp_path / "sweep" / ".submitit").iterdir() if path.name.isdigit()]) == 2
    assert sorted(path.name for path in (tmp_path / "sharded").glob("preprocess_config*.yaml")) == [
        "preprocess_config_0of2.yaml", "preprocess_config_1of2.yaml"]
    for video in ("first", "second"):
        # The detections, crops and masks are the same files, byte for byte.
        for kind in ("images", "masks"):
            single, shard = (sorted((tmp_path / folder / kind / video).iterdir()) for folder in ("one", "sharded"))
            assert [path.name for path in single] == [path.name for path in shard] and len(single) == FRAMES
            assert all(a.read_bytes() == b.read_bytes() for a, b in zip(single, shard, strict=True)), f"{video} {kind}"
        one, sharded = (tmp_path / folder / "smpls" / video for folder in ("one", "sharded"))
        np.testing.assert_array_equal(pickle.loads((sharded / "kps.pkl").read_bytes())["kps"], pickle.loads((one / "kps.pkl").read_bytes())["kps"])
        # On one thread the fits are the same numbers too.
        single, shard = read_pose_shape(one / "pose_shape.pkl"), read_pose_shape(sharded / "pose_shape.pkl")
        for name in ("cams", "pose", "shape"):
            np.testing.assert_array_equal(getattr(shard, name), getattr(single, name), err_msg=f"{video} {name}")
