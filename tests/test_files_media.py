"""Atomic files and H.264 video round trips."""

import os

import numpy as np
import pytest

from lwgan.files import atomic_path
from lwgan.media import read_video, write_image, write_video


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_bytes(b"half")
            raise RuntimeError("crash while writing")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_atomic_path_refuses_an_unwritable_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(PermissionError, match="not writable"):
            with atomic_path(folder / "x.mp4"):
                pass
    finally:
        folder.chmod(0o700)


def test_video_round_trip_keeps_frames_and_rate(tmp_path):
    # Smooth frames (H.264 is lossy): a moving gradient, odd size to exercise the padding.
    height, width = 37, 50
    y, x = np.mgrid[0:height, 0:width]
    frames = [np.stack([(x * 5 + 10 * t) % 256, y * 6, np.full_like(x, 128)], -1).astype(np.uint8) for t in range(12)]
    path = write_video(tmp_path / "clip.mp4", frames, fps=15)
    decoded, fps = read_video(path)
    assert fps == pytest.approx(15)
    assert decoded.shape == (12, height + 1, width, 3)
    assert np.abs(decoded[:, :height].astype(int) - np.stack(frames)).mean() < 4
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_video_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "empty.mp4", [], fps=10)
    assert not (tmp_path / "empty.mp4").exists()
    with pytest.raises(ValueError, match="frame 0 must be uint8"):
        write_video(tmp_path / "bad.mp4", [np.zeros((8, 8, 3), np.float32)], fps=10)
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="junk.mp4"):
        read_video(tmp_path / "junk.mp4")
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        read_video(tmp_path / "missing.mp4")


def test_write_image_png(tmp_path):
    from PIL import Image

    image = np.random.default_rng(0).integers(0, 255, (9, 7, 3), dtype=np.uint8)
    path = write_image(tmp_path / "a.png", image)
    assert np.array_equal(np.asarray(Image.open(path)), image)
