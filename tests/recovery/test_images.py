"""load_image and list_images: colour modes, EXIF orientation, bad files, natural order."""

import numpy as np
import pytest
from PIL import Image

from lwgan.io.images import list_images, load_image


def pattern(height: int = 24, width: int = 36) -> np.ndarray:
    """A uint8 RGB image with no symmetry, so any flip or rotation shows."""
    rows, columns = np.mgrid[0:height, 0:width]
    image = np.stack([rows * 10 % 256, columns * 7 % 256, (rows * columns) % 256], axis=-1).astype(np.uint8)
    image[:4, :4] = (255, 0, 0)  # a red corner at the top left
    return image


def test_rgb_png_round_trip(tmp_path):
    image = pattern()
    Image.fromarray(image).save(tmp_path / "a.png")
    loaded = load_image(tmp_path / "a.png")
    assert loaded.dtype == np.uint8 and loaded.shape == image.shape
    np.testing.assert_array_equal(loaded, image)


@pytest.mark.parametrize("orientation, stored_from_displayed", [
    (3, Image.Transpose.ROTATE_180),  # EXIF 3: the viewer rotates by 180 degrees
    (6, Image.Transpose.ROTATE_90),   # EXIF 6: the viewer rotates 90 degrees clockwise
    (8, Image.Transpose.ROTATE_270),  # EXIF 8: the viewer rotates 90 degrees anticlockwise
    (2, Image.Transpose.FLIP_LEFT_RIGHT),
])
def test_exif_orientation_gives_the_displayed_image(tmp_path, orientation, stored_from_displayed):
    displayed = pattern()
    stored = Image.fromarray(displayed).transpose(stored_from_displayed)
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(tmp_path / "rotated.jpg", exif=exif, quality=98)
    loaded = load_image(tmp_path / "rotated.jpg")
    assert loaded.shape == displayed.shape
    assert np.abs(loaded.astype(int) - displayed).mean() < 6  # JPEG loss only
    assert loaded[1, 1, 0] > 200 and loaded[1, 1, 1] < 60  # the red corner is back at the top left


def test_grayscale_palette_and_cmyk_become_rgb(tmp_path):
    image = pattern()
    grey = Image.fromarray(image).convert("L")
    grey.save(tmp_path / "grey.png")
    loaded = load_image(tmp_path / "grey.png")
    assert loaded.shape == image.shape
    for channel in range(3):
        np.testing.assert_array_equal(loaded[:, :, channel], np.asarray(grey))

    palette = Image.fromarray(image).quantize(colors=16)
    palette.save(tmp_path / "palette.png")
    np.testing.assert_array_equal(load_image(tmp_path / "palette.png"), np.asarray(palette.convert("RGB")))

    Image.fromarray(image).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=98)
    loaded = load_image(tmp_path / "cmyk.jpg")
    assert loaded.shape == image.shape and np.abs(loaded.astype(int) - image).mean() < 10


def test_transparency_is_composited_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., :3] = (200, 40, 0)
    rgba[0, :, 3] = 255   # opaque row: the colour
    rgba[1, :, 3] = 0     # transparent row: white
    rgba[2, :, 3] = 128   # half: halfway between
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    loaded = load_image(tmp_path / "rgba.png").astype(int)
    np.testing.assert_array_equal(loaded[0, 0], (200, 40, 0))
    np.testing.assert_array_equal(loaded[1, 0], (255, 255, 255))
    expected = np.array([200, 40, 0]) * 128 / 255 + 255 * 127 / 255
    assert np.all(np.abs(loaded[2, 0] - expected) <= 1)

    grey_alpha = Image.fromarray(rgba[..., [0, 3]], "LA")
    grey_alpha.save(tmp_path / "la.png")
    loaded = load_image(tmp_path / "la.png").astype(int)
    np.testing.assert_array_equal(loaded[0, 0], (200, 200, 200))
    np.testing.assert_array_equal(loaded[1, 0], (255, 255, 255))


def test_sixteen_bit_grayscale_is_scaled(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I;16")
    loaded = load_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(loaded[0, :, 0], [0, 1, 128, 255])
    np.testing.assert_array_equal(loaded[..., 0], loaded[..., 2])


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        load_image(tmp_path / "missing.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.jpg.*empty"):
        load_image(tmp_path / "empty.jpg")
    (tmp_path / "text.png").write_text("not an image at all")
    with pytest.raises(ValueError, match=r"text\.png.*not an image"):
        load_image(tmp_path / "text.png")
    Image.fromarray(pattern(200, 300)).save(tmp_path / "whole.jpg", quality=95)
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated\.jpg.*(corrupt|truncated)"):
        load_image(tmp_path / "truncated.jpg")
    with pytest.raises(ValueError, match="not a file"):
        load_image(tmp_path)


def test_list_images_natural_order(tmp_path):
    for name in ["frame_10.png", "frame_2.png", "frame_1.JPG", "Frame_3.jpeg", "notes.txt", ".hidden.png", "frame_100.webp"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "folder.png").mkdir()
    names = [path.name for path in list_images(tmp_path)]
    assert names == ["frame_1.JPG", "frame_2.png", "Frame_3.jpeg", "frame_10.png", "frame_100.webp"]
    assert list_images(tmp_path / "folder.png") == []
    with pytest.raises(FileNotFoundError):
        list_images(tmp_path / "nowhere")
    with pytest.raises(NotADirectoryError):
        list_images(tmp_path / "notes.txt")
