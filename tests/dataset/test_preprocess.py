"""`lwgan preprocess` end to end on a synthetic video: iPER outputs, lost frames, resume, shards, the clothing."""

import json
import logging
import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

import lwgan.data.preprocess as preprocess
from lwgan.bench.fit import render_motion_video
from lwgan.body.clothing import clothing_vertex_mask
from lwgan.config import compose
from lwgan.data.iper import IperDataset
from lwgan.io.media import read_video, write_video
from lwgan.recovery.pose_files import read_pose_shape

FRAMES = 14
BLANK = (5, 6)  # frames without a person


@pytest.fixture(scope="module")
def video(tmp_path_factory, anny_body):
    folder = tmp_path_factory.mktemp("videos")
    clip = render_motion_video(anny_body, folder / "clip.mp4", FRAMES, 160)
    frames, fps = read_video(clip)
    frames[list(BLANK)] = frames[0, :4, :4].mean(axis=(0, 1)).astype(np.uint8)  # flat frames: nobody there
    return write_video(folder / "walker.mp4", list(frames), fps)


def config_for(video, output, *extra):
    return compose("preprocess", [f"input={video}", f"output={output}", "image_size=96", "chunk=6", "preview_size=64", "shape_frames=3", *extra])


@dataclass(frozen=True)
class Run:
    output: Path
    results: list  # what preprocess.run returned
    log: str  # what lwgan.data.preprocess logged
    tracked_shapes: np.ndarray | None = None  # (frames with a person, 6) the shapes track_bodies returned, where recorded


def run_once(video, output, *extra) -> Run:
    """One `lwgan preprocess` run that several tests read."""
    messages = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("lwgan.data.preprocess")
    logger.addHandler(handler)
    try:
        results = preprocess.run(config_for(video, output, *extra))
    finally:
        logger.removeHandler(handler)
    return Run(output, results, "\n".join(messages))


@pytest.fixture(scope="module")
def dressed(video, tmp_path_factory) -> Run:
    """The clothing fitted to 3 frames, previews on."""
    return run_once(video, tmp_path_factory.mktemp("dressed"), "clothing_frames=3")


@pytest.fixture(scope="module")
def naked(video, tmp_path_factory) -> Run:
    """No clothing, no previews, every frame fitting its own shape (the tracked shapes recorded)."""
    shapes = []
    real_track = preprocess.track_bodies

    def recording_track(*args, **kwargs):
        result = real_track(*args, **kwargs)
        shapes.append(result.shape)
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(preprocess, "track_bodies", recording_track)
        run = run_once(video, tmp_path_factory.mktemp("naked"), "shape_frames=0", "preview=false", "clothing=false")
    return replace(run, tracked_shapes=np.concatenate(shapes))


def test_writes_iper_outputs_and_reports_lost_frames(video, dressed):
    tmp_path = dressed.output
    assert len(dressed.results) == 1
    info = json.loads((tmp_path / "smpls" / "walker" / "info.json").read_text())
    assert info["frames"] == FRAMES and info["lost_frames"] == list(BLANK)
    assert "no person in 2 frame(s)" in dressed.log
    fits = read_pose_shape(tmp_path / "smpls" / "walker" / "pose_shape.pkl")
    assert fits.cams.shape == (FRAMES, 3) and fits.pose.shape == (FRAMES, 72) and fits.shape.shape == (FRAMES, 6)
    assert np.isfinite(fits.pose).all()
    keypoints = pickle.loads((tmp_path / "smpls" / "walker" / "kps.pkl").read_bytes())
    assert keypoints["kps"].shape == (FRAMES, 23, 3)
    assert sorted(p.name for p in (tmp_path / "images" / "walker").iterdir())[0] == "000000.jpg"
    assert len(list((tmp_path / "images" / "walker").iterdir())) == FRAMES
    assert len(list((tmp_path / "masks" / "walker").iterdir())) == FRAMES
    preview, _ = read_video(tmp_path / "previews" / "walker.mp4")
    assert preview.shape == (FRAMES, 64, 64, 3)
    assert not (tmp_path / ".work" / "walker").exists()
    # A second run skips the finished video.
    assert preprocess.run(config_for(video, tmp_path, "clothing_frames=3")) == []


def test_an_interrupted_run_resumes_after_the_last_fitted_chunk(video, tmp_path, monkeypatch):
    real_track = preprocess.track_bodies
    cold_starts, tracked = [], []

    def failing_track(body, observations, previous, frames, previous_frames, settings=None):
        tracked.append(list(frames))
        if len(tracked) == 2:
            raise KeyboardInterrupt("killed during the second chunk")
        return real_track(body, observations, previous, frames, previous_frames, settings)

    real_fit = preprocess.fit_bodies
    monkeypatch.setattr(preprocess, "fit_bodies", lambda *a, **k: (cold_starts.append(len(a[1])), real_fit(*a, **k))[1])
    monkeypatch.setattr(preprocess, "track_bodies", failing_track)
    with pytest.raises(KeyboardInterrupt):
        preprocess.run(config_for(video, tmp_path))
    assert cold_starts == [1]  # the video's first frame alone
    assert (tmp_path / ".work" / "walker" / "detections.npz").exists()
    with np.load(tmp_path / ".work" / "walker" / "fits.npz") as saved:
        assert int(saved["done"]) == 6
        assert np.isfinite(saved["camera"][:5]).all() and np.isnan(saved["camera"][6:]).all()
        # The video's one shape was fitted before the first chunk and every fit so far kept it.
        video_shape = np.load(tmp_path / ".work" / "walker" / "shape.npy")
        assert video_shape.shape == (6,) and np.abs(saved["shape"][:5] - video_shape).max() < 1e-5  # through the phenotypes' logit and back
    cold_starts.clear()
    tracked.clear()
    monkeypatch.setattr(preprocess, "track_bodies", lambda *a, **k: (tracked.append(list(a[3])), real_track(*a, **k))[1])
    preprocess.run(config_for(video, tmp_path))
    # Only frames after the first chunk, tracked on from the saved fits: no second cold start.
    assert cold_starts == []
    assert sum(tracked, []) == [index for index in range(6, FRAMES) if index not in BLANK]
    info = json.loads((tmp_path / "smpls" / "walker" / "info.json").read_text())
    assert info["frames"] == FRAMES and info["filled_frames"] == {str(index): "no person" for index in BLANK}
    # The resumed run tracked on with the saved shape: one body for the whole video.
    assert np.abs(read_pose_shape(tmp_path / "smpls" / "walker" / "pose_shape.pkl").shape - video_shape).max() < 1e-5


def test_shape_frames_zero_lets_every_frame_fit_its_own_shape(naked):
    shapes = naked.tracked_shapes
    assert len(shapes) == FRAMES - len(BLANK) and np.ptp(shapes, axis=0).max() > 1e-4


def test_shards_split_the_inputs(video, tmp_path):
    folder = video.parent
    assert [s.name for s in preprocess.select_shard(preprocess.find_sources(folder), "0/2")] == ["clip"]
    assert [s.name for s in preprocess.select_shard(preprocess.find_sources(folder), "1/2")] == ["walker"]


def test_an_empty_video_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.mp4"):
        preprocess.run(config_for(empty, tmp_path / "out"))


def test_clothing_is_fitted_to_spread_frames_with_a_person_and_written_beside_the_fits(dressed, anny_body):
    tmp_path = dressed.output
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
    # Three frames spread over those with a person: the first, one in the middle, the last.
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


def test_without_clothing_no_offsets_are_written(naked):
    tmp_path = naked.output
    smpls = tmp_path / "smpls" / "walker"
    assert (smpls / "pose_shape.pkl").is_file() and not (smpls / "offsets.npy").exists()
    info = json.loads((smpls / "info.json").read_text())
    assert info["clothing"] is False and "clothing" not in info["seconds_by_stage"]
    (tmp_path / "val.txt").write_text("walker\n")
    assert IperDataset(tmp_path, "val").videos[0].offsets is None


def test_a_frame_whose_fit_missed_its_keypoints_is_filled_then_refitted_from_its_own_detection(video, tmp_path, monkeypatch):
    """Frame 3's tracked fit is made to miss its keypoints: it is reported as filled, and the re-fit after the smoothing takes its detection too."""
    missed = 3
    real_track = preprocess.track_bodies

    def track_missing_one_frame(body, observations, previous, frames, previous_frames, settings=None):
        result = real_track(body, observations, previous, frames, previous_frames, settings)
        result.losses["keypoint_error_px"][[row for row, frame in enumerate(frames) if frame == missed]] = 1e3
        return result

    refitted = []
    real_refit = preprocess.refit_silhouettes
    monkeypatch.setattr(preprocess, "track_bodies", track_missing_one_frame)
    monkeypatch.setattr(preprocess, "refit_silhouettes",
                        lambda body, observations, *a, **k: (refitted.append(len(observations)), real_refit(body, observations, *a, **k))[1])
    preprocess.run(config_for(video, tmp_path, "clothing=false", "preview=false"))
    info = json.loads((tmp_path / "smpls" / "walker" / "info.json").read_text())
    assert info["filled_frames"][str(missed)].startswith(preprocess.MISMATCH)
    assert refitted == [FRAMES - len(BLANK)]  # every frame with a person, the missed one included
