"""iPER-format datasets: frames of videos with their fitted bodies, served as (sources, target) sets.

Layout (what `lwgan preprocess` and `lwgan make-dataset` write, and iPER's own release):

    ROOT/images/<video>/<frame>.jpg|png    frames, sorted by name (natural order)
    ROOT/smpls/<video>/pose_shape.pkl      cams (N, 3), pose (N, 72), shape (N, K), one row per frame
    ROOT/masks/<video>/<frame>.png         optional person masks (same names as the frames)
    ROOT/train.txt, ROOT/val.txt           one <video> per line; <video> may be nested ("001/9/1")

Bodies are built and flows computed in the training step (batched, on the training device), so
an item only holds images and parameters.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from lwgan.io.atomic_files import atomic_path
from lwgan.io.images import list_images, load_image
from lwgan.recovery.pose_files import read_pose_shape

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Video:
    """One video of the dataset: its frame files, fitted bodies, optional masks and clothing offsets."""

    name: str
    frames: tuple[Path, ...]
    cameras: np.ndarray  # (N, 3)
    poses: np.ndarray  # (N, 24, 3)
    shapes: np.ndarray  # (N, K)
    masks: tuple[Path, ...] | None
    offsets: np.ndarray | None = None  # (V,) the person's clothing (smpls/<video>/offsets.npy, lwgan.body.clothing), None: naked


def read_split(root: Path, split: str) -> list[str]:
    """Video names listed in ROOT/<split>.txt (blank lines and # comments skipped)."""
    path = root / f"{split}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{root}: no {split}.txt listing the {split} videos")
    names = [line.strip() for line in path.read_text().splitlines()]
    names = [name for name in names if name and not name.startswith("#")]
    if not names:
        raise ValueError(f"{path}: lists no videos")
    return names


def load_video(root: Path, name: str) -> Video:
    """Check and index one video; errors name the video and the file at fault."""
    image_folder = root / "images" / name
    if not image_folder.is_dir():
        raise FileNotFoundError(f"video {name}: frame folder {image_folder} is missing")
    frames = tuple(list_images(image_folder))
    if not frames:
        raise ValueError(f"video {name}: {image_folder} holds no images")
    fits = read_pose_shape(root / "smpls" / name / "pose_shape.pkl")
    if len(fits.cams) != len(frames):
        raise ValueError(
            f"video {name}: {root / 'smpls' / name / 'pose_shape.pkl'} has {len(fits.cams)} rows but {image_folder} has {len(frames)} frames"
        )
    mask_folder = root / "masks" / name
    masks = None
    if mask_folder.is_dir():
        masks = tuple(mask_folder / f"{frame.stem}.png" for frame in frames)
        missing = [path.name for path in masks if not path.is_file()]
        if missing:
            raise ValueError(f"video {name}: {len(missing)} mask(s) missing in {mask_folder}, e.g. {missing[0]}")
    return Video(name, frames, fits.cams, fits.pose.reshape(-1, 24, 3), fits.shape, masks, read_offsets(root / "smpls" / name / OFFSETS_FILE))


OFFSETS_FILE = "offsets.npy"
"""A video's clothing offsets beside its pose_shape.pkl: (V,) float32 metres along the body's normals."""


def write_offsets(path: Path, offsets: np.ndarray) -> None:
    """Write (V,) clothing offsets as a .npy file, atomically."""
    with atomic_path(path) as temporary:
        np.save(temporary, offsets)


def read_offsets(path: Path) -> np.ndarray | None:
    """A video's (V,) clothing offsets, or None when the file does not exist; errors name the file."""
    if not path.is_file():
        return None
    try:
        offsets = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a numpy .npy file of clothing offsets ({error})") from error
    if offsets.ndim != 1 or not np.issubdtype(offsets.dtype, np.floating) or not np.isfinite(offsets).all():
        raise ValueError(f"{path}: clothing offsets must be one finite float per body vertex, shape (V,), got {offsets.shape} {offsets.dtype}")
    return offsets.astype(np.float32)


def load_frame(path: Path, video: str) -> np.ndarray:
    """A video's frame as (S, S, 3) uint8 RGB; ValueError naming the video and the file when it is unreadable or not square."""
    try:
        image = load_image(path)
    except (ValueError, FileNotFoundError) as error:
        raise ValueError(f"video {video}: {error}") from error
    if image.shape[0] != image.shape[1]:
        raise ValueError(f"video {video}: {path} is {image.shape[1]}x{image.shape[0]}; iPER frames are square")
    return image


def image_tensor_signed_range(path: Path, size: int, video: str) -> torch.Tensor:
    """(3, size, size) float in [-1, 1] from a frame file (load_frame; resized when needed)."""
    image = load_frame(path, video)
    tensor = torch.tensor(image).permute(2, 0, 1).float() / 127.5 - 1.0
    if image.shape[0] != size:
        tensor = torch.nn.functional.interpolate(tensor[None], size=(size, size), mode="area" if image.shape[0] > size else "bilinear", align_corners=None if image.shape[0] > size else False)[0]
    return tensor


class IperDataset(Dataset):
    """(sources, target) sets of frames from one video of an iPER-format dataset.

    Frames are served at image_size x image_size (None: the first video's own frame size, read once
    here). Item i picks video i mod V; `num_sources` source frames (from the first `source_window`
    frames when given, as the original draws sources from the A-pose start, else from the whole
    video) and one target frame, all distinct when the video is long enough. Random with a
    per-item generator (seed + index), so items are reproducible.

    An item is a dict:
        source_images (S, 3, H, W), target_image (3, H, W): float in [-1, 1];
        source_cameras (S, 3), source_poses (S, 24, 3), source_shapes (S, K), and target_camera,
        target_pose, target_shape likewise; video (str) and frame indices; offsets (V,), the
        video's clothing (lwgan.body.clothing; zeros for a video without offsets.npy), present
        when any video of the split has clothing offsets.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        image_size: int | None = 256,
        num_sources: int = 1,
        source_window: int | None = None,
        items_per_epoch: int | None = None,
        seed: int = 0,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"dataset folder not found: {self.root}")
        self.videos = [load_video(self.root, name) for name in read_split(self.root, split)]
        self.offsets = _video_offsets(self.videos)
        self.image_size = load_frame(self.videos[0].frames[0], self.videos[0].name).shape[0] if image_size is None else image_size
        self.num_sources = num_sources
        self.source_window = source_window
        self.items_per_epoch = items_per_epoch or sum(len(video.frames) for video in self.videos)
        self.seed = seed
        logger.info("%s/%s: %d videos, %d frames", self.root, split, len(self.videos), sum(len(v.frames) for v in self.videos))

    def __len__(self) -> int:
        return self.items_per_epoch

    def check_offsets(self, body) -> None:
        """ValueError naming the file when a video's clothing offsets do not have one value per vertex of `body` (made for another body)."""
        vertex_count = len(body.mirror_vertices)
        for video in self.videos:
            if video.offsets is not None and len(video.offsets) != vertex_count:
                raise ValueError(f"{self.root / 'smpls' / video.name / OFFSETS_FILE}: {len(video.offsets)} clothing offsets, but the "
                                 f"{body.name} body has {vertex_count} vertices (made for another body? preprocess again with this one)")

    def pick_frames(self, video: Video, generator: np.random.Generator) -> tuple[list[int], int]:
        """Source frame indices and a target frame index for one item."""
        count = len(video.frames)
        window = min(self.source_window or count, count)
        sources = generator.choice(window, size=self.num_sources, replace=self.num_sources > window).tolist()
        choices = [index for index in range(count) if index not in sources] or list(range(count))
        return sources, int(generator.choice(choices))

    def __getitem__(self, index: int) -> dict:
        video = self.videos[index % len(self.videos)]
        generator = np.random.default_rng([self.seed, index])
        sources, target = self.pick_frames(video, generator)
        load = lambda frame: image_tensor_signed_range(video.frames[frame], self.image_size, video.name)  # noqa: E731
        as_tensor = lambda array: torch.from_numpy(np.ascontiguousarray(array)).float()  # noqa: E731
        return {
            "video": video.name,
            "source_frames": torch.tensor(sources),
            "target_frame": target,
            "source_images": torch.stack([load(frame) for frame in sources]),
            "target_image": load(target),
            "source_cameras": as_tensor(video.cameras[sources]),
            "source_poses": as_tensor(video.poses[sources]),
            "source_shapes": as_tensor(video.shapes[sources]),
            "target_camera": as_tensor(video.cameras[target]),
            "target_pose": as_tensor(video.poses[target]),
            "target_shape": as_tensor(video.shapes[target]),
            **({} if self.offsets is None else {"offsets": torch.from_numpy(self.offsets[video.name])}),
        }


def _video_offsets(videos: list[Video]) -> dict[str, np.ndarray] | None:
    """Each video's clothing offsets (zeros where it has none), or None when no video has any; all must be the same length."""
    lengths = {len(video.offsets) for video in videos if video.offsets is not None}
    if not lengths:
        return None
    if len(lengths) > 1:
        raise ValueError(f"the videos' {OFFSETS_FILE} files disagree on the vertex count: {sorted(lengths)}")
    count = lengths.pop()
    return {video.name: np.zeros(count, np.float32) if video.offsets is None else video.offsets for video in videos}
