"""`lwgan preprocess` fits the video's clothing (clothing=true): offsets.npy with one float per body vertex, fitted to at
most clothing_frames frames that show the person, recorded in info.json; clothing=false writes none."""

import json

import numpy as np
import pytest

import lwgan.tasks.preprocess as preprocess
from lwgan.bench.fit import render_motion_video
from lwgan.body.clothing import clothing_vertex_mask
from lwgan.config import compose
from lwgan.data.iper import IperDataset
from lwgan.media import read_video, write_video

FRAMES = 8
BLANK = (2, 3)  # frames without a person


@pytest.fixture(scope="module")
def video(tmp_path_factory, anny_body):
    """A short synthetic walker (as tests/tasks/test_preprocess.py's, shorter) with two empty frames."""
    folder = tmp_path_factory.mktemp("videos")
    clip = render_motion_video(anny_body, folder / "clip.mp4", FRAMES, 160)
    frames, fps = read_video(clip)
    frames[list(BLANK)] = frames[0, :4, :4].mean(axis=(0, 1)).astype(np.uint8)  # flat frames: nobody there
    return write_video(folder / "walker.mp4", list(frames), fps)


def config_for(video, output, *extra):
    return compose("preprocess", [f"input={video}", f"output={output}", "image_size=96", "chunk=8", "preview_size=64", *extra])


def test_clothing_is_fitted_to_spread_frames_with_a_person_and_written_beside_the_fits(video, tmp_path, anny_body):
    preprocess.run(config_for(video, tmp_path, "clothing_frames=3"))
    smpls = tmp_path / "smpls" / "walker"
    offsets = np.load(smpls / "offsets.npy", allow_pickle=False)
    assert offsets.dtype == np.float32 and offsets.shape == anny_body.mirror_vertices.shape
    assert np.isfinite(offsets).all() and -0.02 - 1e-6 <= offsets.min() and offsets.max() <= 0.15 + 1e-6  # ClothingSettings' bounds
    fixed = ~clothing_vertex_mask(anny_body).numpy()
    assert (offsets[fixed] == 0).all() and (offsets[~fixed] != 0).any()  # hands and face stay skin; the rest was fitted
    info = json.loads((smpls / "info.json").read_text())
    assert info["lost_frames"] == list(BLANK)
    clothing = info["clothing"]
    assert clothing["file"] == "offsets.npy"
    # Three frames spread over the six with a person: the first, one in the middle, the last.
    assert len(clothing["frames"]) == 3 and clothing["frames"] == sorted(set(clothing["frames"]))
    assert not set(clothing["frames"]) & set(BLANK) and set(clothing["frames"]) <= set(range(FRAMES))
    assert clothing["frames"][0] == 0 and clothing["frames"][-1] == FRAMES - 1
    assert clothing["mean_m"] == pytest.approx(float(offsets.mean()), abs=1e-7)
    assert clothing["max_m"] == pytest.approx(float(offsets.max()), abs=1e-7)
    assert info["settings"]["clothing"] is True and info["settings"]["clothing_frames"] == 3
    preview, _ = read_video(tmp_path / "previews" / "walker.mp4")
    assert preview.shape == (FRAMES, 64, 64, 3)
    # The dataset reader serves the file back.
    (tmp_path / "val.txt").write_text("walker\n")
    np.testing.assert_array_equal(IperDataset(tmp_path, "val").videos[0].offsets, offsets)


def test_without_clothing_no_offsets_are_written(video, tmp_path):
    preprocess.run(config_for(video, tmp_path, "clothing=false", "preview=false"))
    smpls = tmp_path / "smpls" / "walker"
    assert (smpls / "pose_shape.pkl").is_file() and not (smpls / "offsets.npy").exists()
    info = json.loads((smpls / "info.json").read_text())
    assert info["clothing"] is False and "clothing" not in info["seconds_by_stage"]
    (tmp_path / "val.txt").write_text("walker\n")
    assert IperDataset(tmp_path, "val").videos[0].offsets is None
