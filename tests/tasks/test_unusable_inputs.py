"""Inputs that cannot give a usable result are refused before the work, naming the file, what was measured and the
setting that allows it: a person too small, a fit too poor, a truncated reference video. A video whose end is
damaged keeps its decodable frames, with a warning that says how many."""

import logging
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from lwgan.io.images import load_image
from lwgan.io.media import check_video, iter_video, read_video, write_image, write_video

DATA = Path(__file__).resolve().parents[1] / "data"
SKIER = DATA / "coco_skier" / "000000000785.jpg"
LUNGE = DATA / "pexels_lunge" / "pexels-anete-lusina-4793258_512.jpg"
WALK = DATA / "cmu_mocap" / "131_01.bvh"
QUICK = ["image_size=64", "fitting.orientation_iterations=10", "fitting.body_iterations=10", "fitting.silhouette_iterations=0",
         "clothing=false", "previews=false"]
FRAMES = 30


def textured_frames(count: int, size: int = 64) -> list[np.ndarray]:
    """`count` different frames with detail, so every frame is real work for the encoder."""
    generator = np.random.default_rng(0)
    return [cv2.GaussianBlur(generator.integers(0, 256, (size, size, 3), dtype=np.uint8), (5, 5), 0) for _ in range(count)]


def write_faststart_video(path: Path, frames: list[np.ndarray]) -> Path:
    """An H.264 mp4 with its index first (as streaming sites serve them), so a cut file still opens."""
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def cut(path: Path, fraction: float) -> Path:
    """A copy of `path` with only its first `fraction` of bytes."""
    data = path.read_bytes()
    damaged = path.with_name(f"cut_{path.name}")
    damaged.write_bytes(data[: int(len(data) * fraction)])
    return damaged


def test_a_photo_whose_person_is_too_small_is_refused_naming_the_size_and_the_setting(cli, tmp_path):
    photo = load_image(LUNGE)
    tiny = write_image(tmp_path / "tiny.png", cv2.resize(photo, (64, 64), interpolation=cv2.INTER_AREA))
    code, error = cli("imitate", f"source={tiny}", f"reference={WALK}", f"output={tmp_path / 'out.mp4'}", *QUICK)
    assert code == 2 and "Traceback" not in error
    assert f"{tiny}: the person is only" in error and "at least 80 px (min_person_size)" in error and "min_person_size=" in error
    size = int(error.split("the person is only ")[1].split(" px")[0])
    assert 40 <= size < 64  # the detector's own minimum is 40 px; the photo is 64 px
    assert not (tmp_path / "out.mp4").exists()


def test_a_fit_whose_keypoint_error_is_too_high_is_refused_naming_the_error_and_the_setting(cli, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    code, error = cli("swap", f"source={SKIER}", f"reference={SKIER}", f"output={tmp_path / 'out.png'}", "max_keypoint_error=0.001", *QUICK)
    assert code == 2 and f"{SKIER}: the fitted body misses the person's keypoints by" in error and "at 64 px" in error
    assert "at most 0.001 is used, max_keypoint_error" in error
    logged = [record.getMessage() for record in caplog.records if "fitted, keypoint error" in record.getMessage()]
    measured = float(logged[0].split("keypoint error ")[1].split(" px")[0])  # what the fit itself logged
    assert f"by {measured:.0f} px on average" in error and measured / 64 > 0.001
    assert not (tmp_path / "out.png").exists()


def test_a_truncated_reference_video_is_refused_before_the_source_is_fitted(cli, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    video = write_video(tmp_path / "dance.mp4", textured_frames(FRAMES), 30)  # its index (moov) is written last
    truncated = cut(video, 0.8)
    with pytest.raises(ValueError, match=f"{truncated}: not a readable video"):
        check_video(truncated)
    code, error = cli("imitate", f"source={SKIER}", f"reference={truncated}", f"output={tmp_path / 'out.mp4'}", *QUICK)
    assert code == 2 and f"{truncated}: not a readable video" in error
    # No photo was fitted: a fit logs this line (the keypoint-error test above reads it).
    assert not any("fitted, keypoint error" in record.getMessage() for record in caplog.records)
    assert check_video(video) == video


def test_a_video_damaged_after_its_first_frames_keeps_the_frames_that_decode(tmp_path, caplog):
    frames = textured_frames(FRAMES)
    intact = write_faststart_video(tmp_path / "clip.mp4", frames)
    damaged = cut(intact, 0.6)
    assert check_video(damaged) == damaged
    expected, _ = read_video(intact)
    kept, fps = read_video(damaged)
    assert 0 < len(kept) < FRAMES and fps == 30
    np.testing.assert_array_equal(kept, expected[: len(kept)])
    assert f"{damaged}: the video is damaged or cut short after frame {len(kept)}" in caplog.text
    assert f"using its {len(kept)} decodable frames" in caplog.text
    assert len(list(iter_video(damaged))) == len(kept)
