"""Test videos made with PyAV (shared by the media and the synthesis tests)."""

from fractions import Fraction

import av
import numpy as np


def write_test_video(path, frames, fps, tone_hz=None, rate=44100):
    """An H.264 mp4 of uint8 (H, W, 3) RGB frames (even H and W), with a mono AAC sine tone as long as the video when tone_hz is given."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=rate, layout="mono") if tone_hz is not None else None
        for frame in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if audio is not None:
            total = round(len(frames) / fps * rate)
            for begin in range(0, total, 1024):
                t = np.arange(begin, min(begin + 1024, total)) / rate
                block = av.AudioFrame.from_ndarray((0.5 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)[None], format="fltp", layout="mono")
                block.sample_rate, block.pts, block.time_base = rate, begin, Fraction(1, rate)
                for packet in audio.encode(block):
                    container.mux(packet)
            for packet in audio.encode():
                container.mux(packet)
    return path
