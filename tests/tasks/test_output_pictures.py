"""One-frame results written as pictures (.png, .jpg): SynthesisResult.save, the commands' outputs, and their errors.

Every file is read back: its format by its first bytes, its size, its pixels against the frame
that was written (exactly for PNG, within JPEG's loss).
"""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lwgan.io.images import load_image
from lwgan.io.media import check_output
from lwgan.tasks.result import SynthesisResult

DATA = Path(__file__).resolve().parents[1] / "data"
SKIER = DATA / "coco_skier" / "000000000785.jpg"
LUNGE = DATA / "pexels_lunge" / "pexels-anete-lusina-4793258_512.jpg"
WALK = DATA / "cmu_mocap" / "131_01.bvh"
QUICK = ["image_size=64", "fitting.orientation_iterations=10", "fitting.body_iterations=10", "fitting.silhouette_iterations=0"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"


def textured_frames(count: int, size: int = 64) -> list[np.ndarray]:
    """`count` different (size, size, 3) uint8 frames with detail (smooth gradients and a sharp square), so a lossy or misplaced write shows."""
    rows, columns = np.mgrid[0:size, 0:size]
    frames = []
    for index in range(count):
        frame = np.stack([4 * columns, 4 * rows, np.full_like(rows, 60 * index)], axis=-1).clip(0, 255).astype(np.uint8)
        frame[10 + index : 30 + index, 20:40] = (250, 20, 120)
        frames.append(frame)
    return frames


def one_frame_result(frame: np.ndarray) -> SynthesisResult:
    return SynthesisResult([frame], 1.0, np.zeros((1, 24, 3), np.float32), np.zeros(6, np.float32), np.array([[1.0, 0.0, 0.0]], np.float32))


def listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_a_one_frame_result_saves_as_png_and_jpeg(tmp_path):
    frame = textured_frames(1)[0]
    result = one_frame_result(frame)
    png = result.save(tmp_path / "swap.png")
    assert png == tmp_path / "swap.png" and png.read_bytes()[:8] == PNG_SIGNATURE
    np.testing.assert_array_equal(load_image(png), frame)
    for name in ("swap.jpg", "swap.JPEG"):
        jpeg = result.save(tmp_path / name)
        assert jpeg.read_bytes()[:3] == JPEG_SIGNATURE
        with Image.open(jpeg) as picture:
            assert picture.format == "JPEG" and picture.size == (64, 64) and picture.mode == "RGB"
        assert np.abs(load_image(jpeg).astype(int) - frame).mean() < 3  # quality 95 (Pillow's default 75 loses more)
    assert listing(tmp_path) == ["swap.JPEG", "swap.jpg", "swap.png"]  # no temporary files left


def test_several_frames_to_a_picture_are_refused_naming_the_path(tmp_path):
    result = SynthesisResult(textured_frames(3), 8.0, np.zeros((3, 24, 3), np.float32), np.zeros(6, np.float32), np.tile([1.0, 0.0, 0.0], (3, 1)).astype(np.float32))
    with pytest.raises(ValueError, match=r"turn\.png: .* 3 frames; use a folder \(output=.*turn, numbered PNG frames\), \.mp4 or \.gif"):
        result.save(tmp_path / "turn.png")
    with pytest.raises(ValueError, match=r"turn\.jpg: .* 2 frames"):
        check_output(tmp_path / "turn.jpg", frame_count=2)
    assert check_output(tmp_path / "turn.jpg", frame_count=1) == tmp_path / "turn.jpg"
    assert listing(tmp_path) == []


def test_a_failed_write_leaves_the_old_picture_and_no_temporary_file(tmp_path, monkeypatch):
    old, new = textured_frames(2)
    path = one_frame_result(old).save(tmp_path / "swap.png")

    def failing_save(image, target, *args, **kwargs):
        Path(target).write_bytes(PNG_SIGNATURE)  # half a file, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="No space left"):
        one_frame_result(new).save(path)
    monkeypatch.undo()
    np.testing.assert_array_equal(load_image(path), old)
    assert listing(tmp_path) == ["swap.png"]


def test_the_readme_swap_command_writes_a_png(cli, tmp_path):
    output = tmp_path / "swap" / "OUT.png"
    code, stderr = cli("swap", f"source={SKIER}", f"reference={LUNGE}", f"output={output}", "side_by_side=true", *QUICK)
    assert code == 0, stderr
    assert output.read_bytes()[:8] == PNG_SIGNATURE
    result = load_image(output)
    assert result.shape == (64, 64, 3)
    # The side-by-side picture (source | donor | result) ends with the same pixels, losslessly.
    side_by_side = output.with_name("OUT_side_by_side.png")
    assert side_by_side.read_bytes()[:8] == PNG_SIGNATURE
    np.testing.assert_array_equal(load_image(side_by_side)[:, -64:], result)
    assert listing(output.parent) == ["OUT.png", "OUT_config.yaml", "OUT_fits.png", "OUT_side_by_side.png"]


def test_the_commands_write_the_frames_they_make_as_pictures(cli, tmp_path, monkeypatch):
    """The command's own writing (write_outputs, save) of a known frame, the synthesis replaced."""
    frame = textured_frames(1)[0]
    monkeypatch.setattr("lwgan.tasks.swap.Swapper.__call__", lambda self, **arguments: one_frame_result(frame))
    for name in ("OUT.png", "OUT.jpg"):
        code, stderr = cli("swap", f"source={SKIER}", f"reference={LUNGE}", f"output={tmp_path / name}", "previews=false", "image_size=64")
        assert code == 0, stderr
    np.testing.assert_array_equal(load_image(tmp_path / "OUT.png"), frame)
    assert (tmp_path / "OUT.jpg").read_bytes()[:3] == JPEG_SIGNATURE
    assert np.abs(load_image(tmp_path / "OUT.jpg").astype(int) - frame).mean() < 3
    assert listing(tmp_path) == ["OUT.jpg", "OUT.png", "OUT_config.yaml"]


def test_one_view_goes_to_a_jpeg_and_a_turn_to_a_picture_is_refused_before_any_work(cli, tmp_path, monkeypatch):
    code, stderr = cli("view", f"source={SKIER}", "yaw=[90]", f"output={tmp_path / 'side.jpg'}", "previews=false", *QUICK)
    assert code == 0, stderr
    with Image.open(tmp_path / "side.jpg") as picture:
        assert picture.format == "JPEG" and picture.size == (64, 64)

    def no_fitting(*arguments, **keywords):
        raise AssertionError("the view fitted the photo before refusing its output")

    monkeypatch.setattr("lwgan.tasks.pipeline.fit_photos", no_fitting)
    code, stderr = cli("view", f"source={SKIER}", "turn=8", f"output={tmp_path / 'turn.png'}", *QUICK)
    assert code == 2 and "turn.png" in stderr and "8 frames" in stderr and "Traceback" not in stderr
    assert listing(tmp_path) == ["side.jpg", "side_config.yaml"]


def test_imitating_one_frame_writes_a_png_and_several_frames_are_refused(cli, tmp_path):
    output = tmp_path / "pose.png"
    code, stderr = cli("imitate", f"source={SKIER}", f"reference={WALK}", "max_frames=1", f"output={output}", "previews=false", *QUICK)
    assert code == 0, stderr
    assert output.read_bytes()[:8] == PNG_SIGNATURE and load_image(output).shape == (64, 64, 3)
    code, stderr = cli("imitate", f"source={SKIER}", f"reference={WALK}", "max_frames=3", f"output={tmp_path / 'walk.png'}", "previews=false", *QUICK)
    assert code == 2 and "walk.png" in stderr and "3 frames" in stderr
    assert not (tmp_path / "walk.png").exists()
