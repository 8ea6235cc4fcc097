"""Video and image files: H.264/AAC mp4 through PyAV, GIF, PNG and JPEG through Pillow, always written atomically."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from lwgan.io.atomic_files import atomic_path, umask

_LOG = logging.getLogger(__name__)

# Sample rates the AAC encoder accepts; a reference at another rate is resampled to 48 kHz.
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_AAC_FRAME = 1024  # samples per AAC frame
_FOLDER_FRAME = re.compile(r"^\d{6,}\.png$")  # the names write_frames_folder writes: 000000.png, 000001.png, ...
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
"""Output suffixes that save_frames writes as one picture (a one-frame result): PNG, or JPEG at quality 95."""


def _check_frame(frame: np.ndarray, path: Path, index: int) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"{path}: frame {index} must be uint8 (H, W, 3) RGB, got {got}")


def _checked_frames(frames: Iterable[np.ndarray], path: Path) -> Iterator[np.ndarray]:
    """Yield the frames, checking each (uint8 (H, W, 3), all the size of the first); ValueError on an empty clip."""
    size = None
    for index, frame in enumerate(frames):
        _check_frame(frame, path, index)
        if size is None:
            size = frame.shape[:2]
        elif frame.shape[:2] != size:
            raise ValueError(f"{path}: frame {index} is {frame.shape[:2]}, the first frame was {size}")
        yield frame
    if size is None:
        raise ValueError(f"{path}: no frames to write")


def _ensure_folder(path: Path, folder: Path) -> None:
    """Create `folder` (the place `path` goes) or raise PermissionError/OSError naming `path`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise type(error)(error.errno, f"cannot write {path}: cannot create folder {folder} ({error.strerror})") from error
    if not folder.is_dir():
        raise NotADirectoryError(f"cannot write {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"cannot write {path}: folder {folder} is not writable")


def _open_reference(reference: Path, path: Path) -> av.container.InputContainer:
    if not reference.is_file():
        raise FileNotFoundError(f"{path}: audio reference video not found: {reference}")
    try:
        return av.open(str(reference))
    except av.FFmpegError as error:
        raise ValueError(f"{path}: audio reference {reference} is not a readable video ({error})") from error


class _AudioCarrier:
    """Copies the audio of a reference video, from `start` seconds on, into an output mp4 as AAC.

    Fed as the video frames are written (`feed`), so the two streams interleave and the reference is
    decoded a little at a time; `finish` cuts the audio at the output's last frame and flushes.
    """

    def __init__(self, reference: av.container.InputContainer, start: float, output: av.container.OutputContainer):
        self.output = output
        self.source = reference.streams.audio[0]
        channels = self.source.codec_context.channels or 2
        self.layout = "mono" if channels == 1 else "stereo"
        self.channels = 1 if channels == 1 else 2
        self.rate = self.source.rate if self.source.rate in _AAC_RATES else 48000
        self.stream = output.add_stream("aac", rate=self.rate, layout=self.layout)
        self.stream.bit_rate = 64000 * self.channels
        self.resampler = av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)
        if start > 0:
            reference.seek(int(start / self.source.time_base), stream=self.source)
        self.samples = self._samples(reference, start)
        self.pending: list[np.ndarray] = []
        self.pending_count = 0
        self.written = 0  # samples handed to the encoder

    def _samples(self, reference: av.container.InputContainer, start: float) -> Iterator[np.ndarray]:
        """(channels, n) float32 blocks of the reference's audio starting exactly at `start` seconds."""
        position = None  # output-sample index (0 = `start`) of the next resampled sample
        decoded = reference.decode(self.source)
        for frame in itertools.chain(decoded, [None]):
            if position is None and frame is not None:
                position = round(((frame.time if frame.time is not None else start) - start) * self.rate)
                if position > 0:  # the reference's audio begins after `start`: keep sync with silence
                    yield np.zeros((self.channels, position), np.float32)
            for block in self.resampler.resample(frame):
                array = block.to_ndarray().astype(np.float32, copy=False)
                begin, position = position or 0, (position or 0) + array.shape[1]
                if begin < 0:
                    array = array[:, -begin:]
                if array.shape[1]:
                    yield array

    def _take(self, count: int) -> np.ndarray | None:
        while self.pending_count < count:
            block = next(self.samples, None)
            if block is None:
                break
            self.pending.append(block)
            self.pending_count += block.shape[1]
        if not self.pending_count:
            return None
        joined = np.concatenate(self.pending, axis=1)
        taken, rest = joined[:, :count], joined[:, count:]
        self.pending, self.pending_count = ([rest] if rest.shape[1] else []), rest.shape[1]
        return taken

    def _encode(self, array: np.ndarray | None) -> None:
        frame = None
        if array is not None:
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(array), format="fltp", layout=self.layout)
            frame.sample_rate = self.rate
            frame.pts = self.written
            frame.time_base = Fraction(1, self.rate)
            self.written += array.shape[1]
        for packet in self.stream.encode(frame):
            self.output.mux(packet)

    def feed(self, seconds: float) -> None:
        """Encode whole AAC frames up to `seconds` of output time (or until the reference runs out)."""
        until = round(seconds * self.rate)
        while until - self.written >= _AAC_FRAME:
            block = self._take(_AAC_FRAME)
            if block is None:
                return
            self._encode(block)

    def finish(self, seconds: float) -> None:
        """Encode the rest up to exactly `seconds` of output time and flush the encoder."""
        until = round(seconds * self.rate)
        while until > self.written:
            block = self._take(min(_AAC_FRAME, until - self.written))
            if block is None:
                break
            self._encode(block)
        self._encode(None)


def has_audio(path: str | os.PathLike) -> bool:
    """Whether a video (or audio) file has at least one audio stream.

    FileNotFoundError when it is missing, ValueError (naming it) when it is not a readable media file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video not found: {path}")
    try:
        with av.open(str(path)) as container:
            return len(container.streams.audio) > 0
    except av.FFmpegError as error:
        raise ValueError(f"{path}: not a readable video ({error})") from error


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float,
    crf: int = 18,
    audio_from: str | os.PathLike | None = None,
    audio_start_seconds: float = 0.0,
) -> Path:
    """Write uint8 (H, W, 3) RGB frames as an H.264 mp4 (yuv420p, plays everywhere).

    frames: any iterable (a generator is consumed once, frame by frame) of uint8 (H, W, 3) RGB
    arrays, all the same size. Odd frame sizes are padded by one pixel (H.264 with 4:2:0 needs even
    sizes). crf: x264 quality (lower is better, 18 is visually lossless).

    audio_from: a reference video whose first audio stream is carried over, re-encoded as AAC
    (mono stays mono, anything else becomes stereo; 128 kbit/s stereo), taken from
    `audio_start_seconds` into the reference and cut at the output's duration (frame count / fps).
    If the reference's audio ends first, the output's audio simply ends early. A reference with no
    audio stream (or none left after audio_start_seconds) gives a silent video, logged at INFO.
    A missing reference is a FileNotFoundError, an unreadable one a ValueError, both naming it.

    Errors name `path` (and the frame index for bad frames): ValueError for no frames, frames that
    are not uint8 (H, W, 3) or differ in size from the first, and fps <= 0; PermissionError/OSError
    when the folder cannot be written. The file appears only once complete: a failed write leaves
    no file (and an existing file at `path` untouched). Returns the path.
    """
    path = Path(path)
    if fps <= 0:
        raise ValueError(f"{path}: fps must be positive, got {fps}")
    if audio_start_seconds < 0:
        raise ValueError(f"{path}: audio_start_seconds must be >= 0, got {audio_start_seconds}")
    with contextlib.ExitStack() as stack:
        reference = None
        if audio_from is not None:
            reference = stack.enter_context(_open_reference(Path(audio_from), path))
            if not reference.streams.audio:
                _LOG.info("%s has no audio stream: %s will be silent", audio_from, path)
                reference = None
            elif reference.duration is not None and audio_start_seconds >= reference.duration / av.time_base:
                _LOG.info(
                    "%s ends before audio_start_seconds=%.3f: %s will be silent", audio_from, audio_start_seconds, path
                )
                reference = None
        _ensure_folder(path, path.parent)
        temporary = stack.enter_context(atomic_path(path))
        container = stack.enter_context(av.open(str(temporary), mode="w", format="mp4"))
        stream = audio = None
        count, rate = 0, Fraction(fps).limit_denominator(1001)  # the container's exact frame rate
        for count, frame in enumerate(_checked_frames(frames, path), start=1):
            if stream is None:
                height, width = frame.shape[:2]
                stream = container.add_stream("libx264", rate=rate)
                stream.width, stream.height = width + width % 2, height + height % 2
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(crf)}
                if reference is not None:  # every stream must exist before the first packet is muxed
                    audio = _AudioCarrier(reference, audio_start_seconds, container)
            padded = np.pad(frame, ((0, stream.height - height), (0, stream.width - width), (0, 0)), mode="edge")
            for packet in stream.encode(av.VideoFrame.from_ndarray(padded, format="rgb24")):
                container.mux(packet)
            if audio is not None:
                audio.feed(float(count / rate))
        for packet in stream.encode():
            container.mux(packet)
        if audio is not None:
            audio.finish(float(count / rate))
    return path


def write_gif(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float) -> Path:
    """Write uint8 (H, W, 3) RGB frames as an animated GIF that loops forever (Pillow).

    Each frame gets its own 256-colour adaptive palette, so colours are approximate. GIF delays are
    in 1/100 s: per-frame delays are rounded so that the total stays on the true clip length
    (e.g. 30 fps alternates 30 and 40 ms). Pillow merges consecutive identical frames into one
    (adding their delays), so a reader may see fewer frames than were written, with the same timing.
    All frames are held in memory (GIF is for short clips). Errors as write_video; a failed write
    leaves no file. Returns the path.
    """
    path = Path(path)
    if fps <= 0:
        raise ValueError(f"{path}: fps must be positive, got {fps}")
    images = [Image.fromarray(frame) for frame in _checked_frames(frames, path)]
    # Delays in ms, multiples of 10, whose running sum tracks index / fps.
    ends = [round(100 * (index + 1) / fps) * 10 for index in range(len(images))]
    durations = [end - begin for begin, end in zip([0] + ends[:-1], ends, strict=True)]
    durations = [max(duration, 10) for duration in durations]
    _ensure_folder(path, path.parent)
    with atomic_path(path) as temporary:
        images[0].save(
            temporary,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=durations if len(images) > 1 else durations[0],
            loop=0,
        )
    return path


def _foreign_entries(folder: Path) -> list[str]:
    """Names in `folder` that write_frames_folder would not have written."""
    return sorted(entry.name for entry in folder.iterdir() if not (_FOLDER_FRAME.match(entry.name) and entry.is_file()))


def write_frames_folder(folder: str | os.PathLike, frames: Iterable[np.ndarray]) -> Path:
    """Write uint8 (H, W, 3) RGB frames as PNGs 000000.png, 000001.png, ... in `folder`.

    The frames go to a temporary sibling folder (.<name>.*.tmp) that is renamed to `folder` once
    all are written, so a failure leaves no folder (and an existing one untouched).

    Overwriting: `folder` may already exist if it is empty or holds only files named like ours
    (six or more digits + .png, i.e. a previous write_frames_folder output); such a folder is
    replaced as a whole, so no stale frames from a longer earlier clip remain. A folder holding
    anything else is refused with FileExistsError naming it (we never delete files we did not
    write); a file at `folder` is refused with FileExistsError too. Replacing an existing folder is
    two renames: for an instant neither the old nor the new folder is at `folder`.
    Frame errors as write_video (ValueError naming the folder and frame index). Returns the folder.
    """
    folder = Path(folder)
    if folder.exists() or folder.is_symlink():
        if not folder.is_dir() or folder.is_symlink():
            raise FileExistsError(f"cannot write frames to {folder}: it exists and is not a folder")
        foreign = _foreign_entries(folder)
        if foreign:
            raise FileExistsError(
                f"cannot write frames to {folder}: the folder holds files other than numbered PNG frames "
                f"(e.g. {foreign[0]}); choose an empty or new folder"
            )
    parent = folder.parent
    _ensure_folder(folder, parent)
    temporary = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=parent))
    temporary.chmod(0o777 & ~umask())  # mkdtemp makes it private; give it a plain mkdir's permissions
    try:
        for index, frame in enumerate(_checked_frames(frames, folder)):
            Image.fromarray(frame).save(temporary / f"{index:06d}.png", format="PNG")
        try:
            os.rename(temporary, folder)  # atomic; works when `folder` is missing or an empty folder
        except OSError:
            if not folder.is_dir() or _foreign_entries(folder):
                raise FileExistsError(f"cannot write frames to {folder}: it changed while writing") from None
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=parent))
            os.rename(folder, old / "frames")
            os.rename(temporary, folder)
            shutil.rmtree(old)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)
    return folder


def _check_frame_count(path: Path, count: int) -> None:
    """ValueError naming `path` when it is an image (IMAGE_SUFFIXES) and `count` is not one frame."""
    if path.suffix.lower() in IMAGE_SUFFIXES and count != 1:
        raise ValueError(f"{path}: a {path.suffix} file holds one picture, this result has {count} frames; use a folder "
                         f"(output={path.with_suffix('')}, numbered PNG frames), .mp4 or .gif")


def check_output(path: str | os.PathLike, frame_count: int | None = None) -> Path:
    """Fail before any work: `path` names a kind save_frames writes and its folder can be made and written.

    Creates nothing: the nearest existing folder above `path` must be a writable folder. Raises
    ValueError for an unsupported suffix, or for an image path (.png, .jpg) when `frame_count`
    (the result's, where known before the work) is not 1; NotADirectoryError or PermissionError
    naming the path.
    """
    path = Path(path)
    if path.suffix.lower() not in ("", ".mp4", ".gif", *IMAGE_SUFFIXES):
        raise ValueError(f"{path}: unsupported output kind {path.suffix!r}; use .mp4 (video), .gif, no suffix (a folder of PNG "
                         f"frames), or .png/.jpg (one frame)")
    if frame_count is not None:
        _check_frame_count(path, frame_count)
    existing = path.absolute().parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(f"cannot write {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK):
        raise PermissionError(f"cannot write {path}: folder {existing} is not writable")
    return path


def save_frames(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float,
    audio_from: str | os.PathLike | None = None,
) -> Path:
    """Write uint8 (H, W, 3) RGB frames in the kind the path's suffix names; returns the written path.

    .mp4 -> write_video (with the audio of `audio_from`, if given), .gif -> write_gif, no suffix ->
    write_frames_folder (a folder of numbered PNGs), .png/.jpg/.jpeg -> write_image of the one
    frame (more than one frame is a ValueError naming the path and the kinds that hold several,
    raised before anything is written). GIFs, PNG folders and images carry no audio: an
    audio_from is then ignored (logged at INFO). Any other suffix is a ValueError naming the path
    and the supported kinds (a folder name must therefore have no dot-suffix).
    """
    path = check_output(path)
    suffix = path.suffix.lower()
    if suffix == ".mp4":
        return write_video(path, frames, fps, audio_from=audio_from)
    if audio_from is not None:
        _LOG.info("%s: %s output carries no audio; the audio of %s is not used", path, suffix or "PNG folder", audio_from)
    if suffix == ".gif":
        return write_gif(path, frames, fps)
    if suffix in IMAGE_SUFFIXES:
        frames = list(_checked_frames(frames, path))
        _check_frame_count(path, len(frames))
        return write_image(path, frames[0], jpeg_quality=95)
    return write_frames_folder(path, frames)


@contextlib.contextmanager
def _open_video(path: Path) -> Iterator[av.container.InputContainer]:
    """The open container of a video file; FileNotFoundError, or ValueError naming the file for what FFmpeg cannot read."""
    if not path.is_file():
        raise FileNotFoundError(f"video not found: {path}")
    try:
        with av.open(str(path)) as container:
            yield container
    except (av.FFmpegError, IndexError) as error:
        raise ValueError(f"{path}: not a readable video ({error})") from error


def _decoded_frames(container: av.container.InputContainer, path: Path) -> Iterator[av.VideoFrame]:
    """The video stream's frames in order. A file whose later part cannot be decoded (damaged, or cut short)
    ends at its last decodable frame, with a warning that says how many there are; one whose first frame
    cannot be decoded is a ValueError naming it."""
    count = 0
    try:
        for frame in container.decode(container.streams.video[0]):
            count += 1
            yield frame
    except (av.FFmpegError, IndexError) as error:
        if count == 0:
            raise ValueError(f"{path}: not a readable video ({error})") from error
        _LOG.warning("%s: the video is damaged or cut short after frame %d (%s); using its %d decodable frames", path, count, error, count)


def check_video(path: str | os.PathLike) -> Path:
    """Fail before any work on a video that cannot be used: FileNotFoundError, or ValueError naming the
    file when FFmpeg cannot open it (a truncated mp4 loses its index) or decode its first frame."""
    path = Path(path)
    with _open_video(path) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: has no video stream")
        if next(_decoded_frames(container, path), None) is None:
            raise ValueError(f"{path}: the video has no frames")
    return path


def video_info(path: str | os.PathLike) -> tuple[float, int]:
    """(frame rate, frame count) of a video; the count is the container's, 0 when it does not say."""
    with _open_video(Path(path)) as container:
        stream = container.streams.video[0]
        return float(stream.average_rate or stream.guessed_rate or 0), int(stream.frames or 0)


def iter_video(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Decode a video frame by frame: (H, W, 3) uint8 RGB arrays, without holding the whole clip.

    A damaged or cut-short end stops the clip at its last decodable frame, with a warning (how many).
    """
    with _open_video(Path(path)) as container:
        for frame in _decoded_frames(container, Path(path)):
            yield frame.to_ndarray(format="rgb24")


def read_video(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """Read every frame of a video: (N, H, W, 3) uint8 RGB and the frame rate (a damaged end: as iter_video)."""
    path = Path(path)
    with _open_video(path) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        frames = [frame.to_ndarray(format="rgb24") for frame in _decoded_frames(container, path)]
    if not frames:
        raise ValueError(f"{path}: the video has no frames")
    return np.stack(frames), fps


def write_image(path: str | os.PathLike, image: np.ndarray, jpeg_quality: int | None = None) -> Path:
    """Write a uint8 (H, W, 3) RGB or (H, W) grey image atomically; the format follows the suffix (PNG when Pillow knows none).

    jpeg_quality: for JPEG files, 1-95 (None: Pillow's default, 75).
    """
    path = Path(path)
    kind = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    options = {"quality": jpeg_quality} if kind == "JPEG" and jpeg_quality is not None else {}
    with atomic_path(path) as temporary:
        Image.fromarray(image).save(temporary, format=kind, **options)
    return path


def to_uint8(image) -> np.ndarray:
    """(3, H, W) or (H, W, 3) float tensor/array in [0, 1] -> (H, W, 3) uint8."""
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if array.ndim == 3 and array.shape[0] == 3 and array.shape[2] != 3:
        array = array.transpose(1, 2, 0)
    return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
