"""The `lwgan` command line and the demo, run as a user would."""

import json
import subprocess
import sys

import numpy as np
import pytest

from lwgan.cli import main
from lwgan.io.media import read_video


def run_cli(*arguments):
    return subprocess.run([sys.executable, "-m", "lwgan.cli", *arguments], capture_output=True, text=True, timeout=600)


def test_help_lists_the_commands(capsys):
    assert main(["--help"]) == 0
    assert "bench render" in capsys.readouterr().out


def test_unknown_command_and_bad_override_are_clear_errors():
    unknown = run_cli("frobnicate")
    assert unknown.returncode == 2 and "unknown command 'frobnicate'" in unknown.stderr
    bad = run_cli("bench", "render", "no_such_key=1")
    assert bad.returncode == 2 and "no_such_key" in bad.stderr and "Traceback" not in bad.stderr


def test_bench_render_json_on_a_mesh_file(tmp_path):
    vertices = np.array([[-0.5, -0.5, 0], [0.5, -0.5, 0], [0.5, 0.5, 0], [-0.5, 0.5, 0]], np.float32)
    np.savez(tmp_path / "quad.npz", vertices=vertices, faces=np.array([[0, 1, 2], [0, 2, 3]]))
    result = run_cli("bench", "render", f"mesh={tmp_path / 'quad.npz'}", "json=true", "sizes=[64]", "batches=[1,2]", "repeats=2", "reference_size=64", "exactness_sizes=[64]")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["mesh"]["faces"] == 2
    rasterizers = {row["rasterizer"] for row in report["rows"]}
    assert {"torch-cpu", "reference-cpu (brute force)"} <= rasterizers
    assert all(row["ms_per_frame"] > 0 for row in report["rows"])
    # The quad covers NDC [-0.5, 0.5]^2: 32 x 32 pixel centres at 64 x 64, the same for both rasterizers.
    assert report["exactness"] == [{"size": 64, "covered_pixels": 1024, "differing_pixels": 0,
                                    "max_bary_error": pytest.approx(0, abs=1e-6), "max_depth_error": pytest.approx(0, abs=1e-6)}]


def test_bench_render_rejects_a_bad_mesh_file(tmp_path):
    np.savez(tmp_path / "bad.npz", points=np.zeros((3, 3)))
    result = run_cli("bench", "render", f"mesh={tmp_path / 'bad.npz'}")
    assert result.returncode == 2 and "bad.npz" in result.stderr and "vertices" in result.stderr


def test_demo_writes_videos_and_config(tmp_path, anny_body):
    from lwgan.config import compose
    from lwgan.tasks.demo import run

    config = compose("demo", [f"output={tmp_path / 'demo.mp4'}", "max_frames=6", "image_size=64", "batch_size=4"])
    paths = run(config)
    frames, fps = read_video(paths["result"])
    assert frames.shape == (6, 64, 64, 3) and fps == 30
    side, _ = read_video(paths["side_by_side"])
    assert side.shape == (6, 64, 128, 3)  # source | result (a motion file has no reference frames)
    assert (tmp_path / "demo_config.yaml").read_text().count("max_frames: 6") == 1
    assert paths["fits"].exists()
    # The person moves: consecutive frames of the walk differ, and the photo's background stays.
    assert np.abs(np.diff(frames.astype(int), axis=0)).mean() > 0.5


def test_demo_uses_a_trained_generator_when_given_one(tmp_path, anny_body):
    from lwgan.config import compose
    from lwgan.models import LiquidWarpingGenerator, save_pretrained
    from lwgan.tasks.demo import run

    export = save_pretrained(LiquidWarpingGenerator.preset("small", refine=False), tmp_path / "export")
    common = ["max_frames=3", "image_size=64", "side_by_side=false", "previews=false"]
    warped, _ = read_video(run(compose("demo", [f"output={tmp_path / 'warp.mp4'}", *common]))["result"])
    generated, _ = read_video(run(compose("demo", [f"output={tmp_path / 'gen.mp4'}", f"checkpoint={export}", *common]))["result"])
    assert generated.shape == warped.shape == (3, 64, 64, 3)
    # An untrained painting generator (an untrained refining one would render the warp) paints something else.
    assert np.abs(generated.astype(int) - warped.astype(int)).mean() > 5
    bad = compose("demo", [f"output={tmp_path / 'bad.mp4'}", f"checkpoint={export}", "max_frames=2", "image_size=72"])
    with pytest.raises(ValueError, match="multiple of 16"):
        run(bad)
    assert not (tmp_path / "bad.mp4").exists()
