"""Image files for recovery: load any photo as uint8 RGB in its displayed orientation; list a folder's frames."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
"""File name endings (lower case) that list_images() picks up; load_image() reads whatever Pillow reads."""

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as it is displayed: uint8 (H, W, 3) RGB.

    - EXIF orientation is applied (Pillow's ImageOps.exif_transpose), so a phone photo stored
      sideways with an orientation tag comes out upright, as image viewers show it.
    - Grayscale, palette, CMYK, YCbCr and other colour modes are converted to RGB.
    - Images with transparency (RGBA, LA, palette with a transparent colour) are composited over a
      white background: what a viewer shows, and a plain background the person detector ignores.
    - 16-bit grayscale (Pillow mode I;16) is scaled to 8 bits (value / 257, rounded); 32-bit integer
      images (mode I) are taken as 16-bit when any value exceeds 255, else as 8-bit; float images
      (mode F) are taken as [0, 1] when no value exceeds 1, else as [0, 255]. 16-bit RGB files are
      reduced to 8 bits by Pillow itself.

    Raises FileNotFoundError when `path` does not exist, and ValueError naming the file when it is a
    folder, empty (0 bytes), not an image, corrupt or truncated, or has zero width or height.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    if not path.is_file():
        raise ValueError(f"{path}: not a file (an image file is needed)")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty (0 bytes)")
    try:
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except UnidentifiedImageError as error:
        raise ValueError(f"{path}: not an image file that Pillow can read") from error
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"{path}: corrupt or truncated image ({error})") from error
    if image.width == 0 or image.height == 0:
        raise ValueError(f"{path}: the image has zero size ({image.width}x{image.height})")
    return _to_rgb(image)


def _to_rgb(image: Image.Image) -> np.ndarray:
    """Any Pillow image -> uint8 (H, W, 3) RGB (rules in load_image's docstring)."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        values = np.asarray(image).astype(np.float64)
        if mode in _SIXTEEN_BIT_MODES or (mode == "I" and values.max(initial=0) > 255):
            values = values / 257.0
        elif mode == "F" and values.max(initial=0) <= 1.0:
            values = values * 255.0
        grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def _natural_key(name: str) -> list:
    """Sort key that orders digit runs by value: frame_2 before frame_10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name.lower()) if part]


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly inside `folder` (IMAGE_EXTENSIONS, any case), in natural order.

    Natural order compares digit runs by value (frame_2.png before frame_10.png). Hidden files
    (names starting with a dot) are skipped. The list may be empty. Raises FileNotFoundError when
    the folder does not exist and NotADirectoryError when it is a file.
    """
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"image folder not found: {folder}")
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: not a folder")
    files = [
        path for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS
    ]
    return sorted(files, key=lambda path: (_natural_key(path.name), path.name))
