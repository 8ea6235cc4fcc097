"""Outputs written atomically get the permissions a plain open()/mkdir() would give, not mkstemp's private 0600."""

import os

import numpy as np

from lwgan.io.atomic_files import write_bytes_atomic
from lwgan.io.media import write_frames_folder


def test_atomic_files_and_frame_folders_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        path = write_bytes_atomic(tmp_path / "a.txt", b"x")
        folder = write_frames_folder(tmp_path / "frames", [np.zeros((4, 4, 3), np.uint8)])
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644
    assert folder.stat().st_mode & 0o777 == 0o755
    assert (folder / "000000.png").stat().st_mode & 0o777 == 0o644
