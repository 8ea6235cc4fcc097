"""Filling lost frames and zero-phase smoothing against closed forms."""

import math

import numpy as np
import pytest
import torch

from lwgan.body.camera import UPRIGHT_ORIENTATION, with_heading
from lwgan.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from lwgan.recovery.smoothing import (
    fill_missing,
    flipped_headings,
    low_pass,
    smooth_motion,
)


def rotation_about_z(angles: np.ndarray) -> np.ndarray:
    """(N,) angles -> (N, 24, 3) poses with every joint rotated about z by the angle."""
    pose = np.zeros((len(angles), 24, 3), np.float32)
    pose[..., 2] = angles[:, None]
    return pose


def test_missing_frames_are_slerped_and_ends_are_held():
    angles = np.array([0.0, 9, 9, 9, 1.0, 9, 1.5])  # 9 marks lost frames
    found = np.array([True, False, False, False, True, False, True])
    pose, camera = fill_missing(rotation_about_z(angles), np.stack([angles] * 3, -1), found)
    assert np.allclose(pose[:, 0, 2], [0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5], atol=1e-6)
    assert np.allclose(camera[:, 0], [0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5], atol=1e-6)
    leading = fill_missing(rotation_about_z(np.array([9, 9, 0.3])), np.zeros((3, 3)), np.array([False, False, True]))[0]
    assert np.allclose(leading[:, 5, 2], 0.3, atol=1e-6)
    with pytest.raises(ValueError, match="no frame"):
        fill_missing(rotation_about_z(np.zeros(2)), np.zeros((2, 3)), np.zeros(2, bool))


def test_low_pass_removes_high_frequencies_without_lag():
    fps = 30.0
    time = np.arange(300) / fps
    slow = np.sin(2 * math.pi * 0.5 * time)  # 0.5 Hz: passes a 4 Hz filter
    fast = 0.3 * np.sin(2 * math.pi * 12 * time)  # 12 Hz: removed
    filtered = low_pass(slow + fast, fps, cutoff_hz=4.0)
    assert np.abs(filtered - slow)[20:-20].max() < 0.01
    # Zero phase: the filtered slow wave peaks where the input peaks.
    assert abs(np.argmax(filtered[:60]) - np.argmax(slow[:60])) <= 1
    assert low_pass(slow, fps, cutoff_hz=20.0) is slow  # above Nyquist: unchanged


def test_smooth_motion_denoises_rotations():
    rng = np.random.default_rng(0)
    fps = 30.0
    clean_angles = 0.8 * np.sin(2 * math.pi * 0.4 * np.arange(120) / fps)
    noisy = rotation_about_z(clean_angles + rng.normal(0, 0.05, 120))
    camera = np.stack([np.ones(120), 0.1 * np.sin(np.arange(120) / 20), np.zeros(120)], -1) + rng.normal(0, 0.01, (120, 3))
    pose, smoothed_camera = smooth_motion(noisy, camera, fps, pose_cutoff_hz=3.0, camera_cutoff_hz=2.0)
    error_before = np.abs(noisy[:, 3, 2] - clean_angles).mean()
    error_after = np.abs(pose[:, 3, 2] - clean_angles).mean()
    # White noise keeps 3 / 15 of its power below 3 Hz at 30 fps: its size drops to sqrt(0.2) = 0.45.
    assert error_after < 0.6 * error_before
    assert np.abs(pose[..., :2]).max() < 1e-5  # still rotations about z only
    assert smoothed_camera.shape == (120, 3) and np.abs(smoothed_camera[:, 0] - 1).mean() < 0.01


def upright_poses(headings_degrees: np.ndarray) -> np.ndarray:
    """(N, 24, 3) poses standing upright in the image at these headings (lwgan.body.camera's convention), other joints zero."""
    upright = axis_angle_to_matrix(torch.tensor(UPRIGHT_ORIENTATION, dtype=torch.float64))
    roots = with_heading(upright.expand(len(headings_degrees), 3, 3), torch.from_numpy(np.radians(headings_degrees)))
    pose = np.zeros((len(headings_degrees), 24, 3))
    pose[:, 0] = matrix_to_axis_angle(roots).numpy()
    return pose


def test_fits_turned_half_round_against_their_neighbours_are_found():
    """A turn at 15 degrees per frame (a walker's U-turn at 15 fps is 23 at most) with fits turned half round in frames
    10-12 and 25, one fit sideways (frame 18) and one frame not found (30): only the half turns are flagged."""
    headings = 15.0 * np.arange(40)
    headings[[10, 11, 12, 25]] += 180.0
    headings[18] += 90.0
    pose = upright_poses(headings)
    pose[30] = np.nan
    found = np.ones(40, dtype=bool)
    found[30] = False
    assert np.flatnonzero(flipped_headings(pose, found)).tolist() == [10, 11, 12, 25]
    # The same turn without the flips: nothing, even where a window spans 120 degrees of it.
    assert not flipped_headings(upright_poses(15.0 * np.arange(40)), np.ones(40, dtype=bool)).any()
    # Five frames one way, two missing, one more the first way, then six the other way: the two ways are nearly
    # even around the gap, and nothing tells which is right, so nothing is flagged.
    even = np.array([0.0] * 5 + [0.0] * 2 + [0.0] + [180.0] * 6)
    found = np.ones(len(even), dtype=bool)
    found[5:7] = False
    assert not flipped_headings(upright_poses(even), found).any()


def test_a_longer_run_turned_half_round_is_found_by_its_jumps():
    """`lwgan bench fit`'s clip: the tracked fits of frames 62-65 turned about 150 degrees and back (at 30 fps), too long a
    run for a window of 9. Here a slow turn (2 degrees a frame) with 6 frames turned 160 degrees (a gap of one lost frame
    inside), a 5-frame run turned sideways (90 degrees: left alone) and, at the end, a last stretch that turns round
    for good (nothing comes back: left alone)."""
    headings = 2.0 * np.arange(60)
    headings[10:17] += 160.0
    headings[25:30] += 90.0
    headings[50:] += 180.0
    found = np.ones(60, dtype=bool)
    found[13] = False
    pose = upright_poses(headings)
    turned = [10, 11, 12, 14, 15, 16]
    assert np.flatnonzero(flipped_headings(pose, found)).tolist() == turned
    # The same run with lost frames before it: across them the person may really have turned, so nothing is flagged.
    found[8:10] = False
    assert not flipped_headings(pose, found)[10:17].any()
    # A run turned half round for longer than the frames on one side of it is the majority there: not flagged.
    headings = np.zeros(30)
    headings[4:20] = 180.0
    assert not flipped_headings(upright_poses(headings), np.ones(30, dtype=bool))[4:20].any()
