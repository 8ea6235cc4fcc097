"""Atomic files, H.264 video (with carried audio), GIF and PNG-folder round trips."""

import os

import av
import numpy as np
import pytest
from media_helpers import write_test_video
from PIL import Image

from lwgan.io.atomic_files import atomic_path
from lwgan.io.media import (
    has_audio,
    read_video,
    save_frames,
    write_frames_folder,
    write_gif,
    write_image,
    write_video,
)


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_bytes(b"half")
        raise RuntimeError("crash while writing")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


@pytest.fixture
def locked_folder(tmp_path):
    """A folder this process may read but not write (skips when the user can write anywhere, e.g. root)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        yield folder
    finally:
        folder.chmod(0o700)


def test_atomic_path_refuses_an_unwritable_folder(locked_folder):
    with pytest.raises(PermissionError, match="not writable"), atomic_path(locked_folder / "x.mp4"):
        pass


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
    image = np.random.default_rng(0).integers(0, 255, (9, 7, 3), dtype=np.uint8)
    path = write_image(tmp_path / "a.png", image)
    assert np.array_equal(np.asarray(Image.open(path)), image)


# --- audio, GIF, PNG folders, save_frames -------------------------------------------------------


def _flat_frames(count, height=16, width=24):
    """Distinct flat-colour uint8 (H, W, 3) frames (flat colours survive the GIF palette)."""
    return [np.full((height, width, 3), (20 * t % 256, 200 - 10 * t, 90), np.uint8) for t in range(count)]


def _make_reference(path, seconds, fps=10, tone_hz=440.0, rate=44100, with_audio=True):
    """A small mp4: gradient frames and (optionally) a mono AAC sine tone."""
    frames = [np.full((24, 32, 3), index * 7 % 256, np.uint8) for index in range(round(seconds * fps))]
    return write_test_video(path, frames, fps, tone_hz if with_audio else None, rate)


def _read_audio(path):
    """(samples as float32 (channels, n), sample rate, audio stream duration in s, video duration in s)."""
    with av.open(str(path)) as container:
        assert len(container.streams.audio) == 1
        stream = container.streams.audio[0]
        blocks = [frame.to_ndarray() for frame in container.decode(stream)]
        audio_seconds = float(stream.duration * stream.time_base)
        video = container.streams.video[0]
        video_seconds = float(video.duration * video.time_base)
        return np.concatenate(blocks, axis=1), stream.rate, audio_seconds, video_seconds


def test_video_carries_the_reference_audio(tmp_path):
    reference = _make_reference(tmp_path / "talk.mp4", seconds=3.0)
    assert has_audio(reference)
    frames = _flat_frames(15)  # 1.5 s at 10 fps, taken from 1 s into the 3 s reference
    path = write_video(tmp_path / "out.mp4", frames, fps=10, audio_from=reference, audio_start_seconds=1.0)
    assert has_audio(path)
    samples, rate, audio_seconds, video_seconds = _read_audio(path)
    assert video_seconds == pytest.approx(1.5, abs=0.01)
    assert audio_seconds == pytest.approx(video_seconds, abs=0.1)
    assert samples.shape[0] == 1  # mono stays mono
    middle = samples[0, rate // 4 : rate]  # away from the AAC start-up and the cut
    assert np.sqrt(np.mean(middle**2)) > 0.2  # a 0.5-amplitude sine has RMS 0.35
    spectrum = np.abs(np.fft.rfft(middle))
    assert np.fft.rfftfreq(middle.size, 1 / rate)[spectrum.argmax()] == pytest.approx(440, abs=5)
    decoded, fps = read_video(path)
    assert len(decoded) == 15 and fps == pytest.approx(10)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_video_from_a_reference_without_audio_is_silent(tmp_path, caplog):
    reference = _make_reference(tmp_path / "mute.mp4", seconds=1.0, with_audio=False)
    assert not has_audio(reference)
    with caplog.at_level("INFO", logger="lwgan.io.media"):
        path = write_video(tmp_path / "out.mp4", _flat_frames(5), fps=10, audio_from=reference)
    assert "no audio" in caplog.text
    assert not has_audio(path)
    assert len(read_video(path)[0]) == 5


def test_audio_reference_errors_name_the_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        write_video(tmp_path / "out.mp4", _flat_frames(2), fps=10, audio_from=tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="junk.mp4"):
        write_video(tmp_path / "out.mp4", _flat_frames(2), fps=10, audio_from=tmp_path / "junk.mp4")
    with pytest.raises(ValueError, match="junk.mp4"):
        has_audio(tmp_path / "junk.mp4")
    assert not (tmp_path / "out.mp4").exists()


def test_gif_round_trip(tmp_path):
    frames = _flat_frames(6)
    path = write_gif(tmp_path / "clip.gif", frames, fps=8)
    with Image.open(path) as gif:
        assert gif.n_frames == 6
        assert gif.info.get("loop") == 0
        for index, frame in enumerate(frames):
            gif.seek(index)
            assert np.abs(np.asarray(gif.convert("RGB")).astype(int) - frame).max() <= 8
            assert gif.info["duration"] in (120, 130)  # 1/8 s in GIF's 10 ms steps
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_png_folder_round_trip_and_overwrite_rules(tmp_path):
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (7, 9, 3), dtype=np.uint8) for _ in range(4)]
    folder = write_frames_folder(tmp_path / "frames", frames)
    assert sorted(p.name for p in folder.iterdir()) == ["000000.png", "000001.png", "000002.png", "000003.png"]
    for index, frame in enumerate(frames):
        assert np.array_equal(np.asarray(Image.open(folder / f"{index:06d}.png")), frame)
    # Our own output is replaced as a whole (no stale frames from the longer clip).
    write_frames_folder(folder, frames[:2])
    assert sorted(p.name for p in folder.iterdir()) == ["000000.png", "000001.png"]
    assert np.array_equal(np.asarray(Image.open(folder / "000001.png")), frames[1])
    # A folder holding anything else is refused and left alone.
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        write_frames_folder(folder, frames)
    assert sorted(p.name for p in folder.iterdir()) == ["000000.png", "000001.png", "notes.txt"]
    # An empty existing folder is fine.
    (tmp_path / "empty").mkdir()
    write_frames_folder(tmp_path / "empty", frames[:1])
    assert [p.name for p in (tmp_path / "empty").iterdir()] == ["000000.png"]
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_save_frames_picks_the_kind_by_suffix(tmp_path):
    reference = _make_reference(tmp_path / "ref.mp4", seconds=1.0)
    frames = _flat_frames(4)
    video = save_frames(tmp_path / "a.MP4", frames, fps=10, audio_from=reference)
    assert video == tmp_path / "a.MP4" and has_audio(video) and len(read_video(video)[0]) == 4
    gif = save_frames(tmp_path / "a.gif", frames, fps=10, audio_from=reference)
    assert Image.open(gif).n_frames == 4
    folder = save_frames(tmp_path / "a", frames, fps=10)
    assert folder.is_dir() and len(list(folder.iterdir())) == 4
    with pytest.raises(ValueError, match=r"a\.avi.*\.mp4.*\.gif.*folder"):
        save_frames(tmp_path / "a.avi", frames, fps=10)
    assert not (tmp_path / "a.avi").exists()


@pytest.mark.parametrize("name", ["bad.mp4", "bad.gif", "bad"])
def test_bad_frames_raise_naming_the_path_and_leave_nothing(tmp_path, name):
    path = tmp_path / name
    good = _flat_frames(3)
    cases = [
        ([], "no frames"),
        ([good[0], np.zeros((16, 25, 3), np.uint8), good[1]], "frame 1 is"),  # wrong size in the middle
        ([good[0], good[1], good[2].astype(np.float32)], "frame 2 must be uint8"),
        ([good[0], np.zeros((16, 24), np.uint8)], "frame 1 must be uint8"),
        ([good[0], np.zeros((16, 24, 4), np.uint8)], "frame 1 must be uint8"),
    ]
    for frames, message in cases:
        with pytest.raises(ValueError, match=message) as raised:
            save_frames(path, iter(frames), fps=10)  # a generator: the writer sees the bad frame mid-stream
        assert str(path) in str(raised.value)
        assert list(tmp_path.iterdir()) == []  # no partial file, folder or temporary left behind


def test_bad_frames_keep_an_existing_output(tmp_path):
    path = write_video(tmp_path / "keep.mp4", _flat_frames(3), fps=10)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="keep.mp4: frame 2"):
        write_video(path, iter(_flat_frames(2) + [np.zeros((4, 4, 3), np.uint8)]), fps=10)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.mp4"]


@pytest.mark.parametrize("name", ["x.mp4", "x.gif", "x"])
def test_unwritable_output_folder_names_the_path(locked_folder, name):
    for target in (locked_folder / name, locked_folder / "sub" / name):  # existing folder, and one that cannot be made
        with pytest.raises(PermissionError, match=str(target)):
            save_frames(target, _flat_frames(2), fps=10)


@pytest.mark.parametrize("name", ["x.mp4", "x.gif", "x"])
def test_output_under_a_file_is_an_oserror_naming_the_path(tmp_path, name):
    (tmp_path / "plain").write_text("a file, not a folder")
    target = tmp_path / "plain" / "sub" / name
    with pytest.raises(OSError, match=f"cannot write {target}"):
        save_frames(target, _flat_frames(2), fps=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]


def test_check_output_fails_early_and_creates_nothing(tmp_path):
    from lwgan.io.media import check_output

    assert check_output(tmp_path / "new" / "deeper" / "run.mp4") == tmp_path / "new" / "deeper" / "run.mp4"
    assert not (tmp_path / "new").exists()
    blocker = tmp_path / "results"
    blocker.write_text("a file")
    with pytest.raises(NotADirectoryError, match="results is a file"):
        check_output(blocker / "inner" / "run.gif")
    with pytest.raises(ValueError, match="unsupported output kind '.avi'"):
        check_output(tmp_path / "run.avi")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["results"]
