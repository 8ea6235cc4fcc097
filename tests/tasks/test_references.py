"""Reference motions (lwgan.tasks.references): loading each kind, camera strategies, heading.

Expected values are closed-form (camera algebra, rotations built here with Rodrigues' formula) or
read from the files themselves (the BVH header), never copied from the code's output.
"""

import math
from pathlib import Path

import av
import numpy as np
import pytest

from lwgan.body.camera import yaw_of
from lwgan.io.images import load_image
from lwgan.io.media import write_image
from lwgan.recovery.pose_files import SmplMotion, write_pose_npz, write_pose_shape
from lwgan.tasks.references import (
    ReferenceMotion,
    face_heading,
    load_reference,
    target_cameras,
)

DATA = Path(__file__).resolve().parents[1] / "data"
WALK = DATA / "cmu_mocap" / "131_01.bvh"

UPRIGHT = np.diag([1.0, -1.0, -1.0])  # the rotation by pi about x: y-up body frame -> y-down image frame


def rodrigues(axis_angle: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices (numpy, float64)."""
    vector = np.asarray(axis_angle, np.float64)
    angle = np.linalg.norm(vector, axis=-1, keepdims=True)
    axis = vector / np.where(angle > 1e-12, angle, 1.0)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    cross = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*x.shape, 3, 3)
    angle = angle[..., None]
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def about_vertical(angle: float) -> np.ndarray:
    """Rotation by `angle` about the y axis (same matrix in the y-up and the y-down frame up to the sign of the angle)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def motion(camera=None, translation=None, count=None, fps=30.0, name="ref"):
    count = count or len(camera if camera is not None else translation)
    return ReferenceMotion(np.zeros((count, 24, 3), np.float32), camera, translation, fps, name)


# --- target_cameras ---------------------------------------------------------------------------

SOURCE_CAMERA = np.array([0.9, 0.1, -0.2], np.float32)


def test_source_strategy_keeps_the_source_camera_on_every_frame():
    reference = motion(camera=np.random.default_rng(0).uniform(0.5, 1.5, (5, 3)).astype(np.float32))
    cameras = target_cameras("source", SOURCE_CAMERA, reference)
    assert cameras.shape == (5, 3)
    np.testing.assert_array_equal(cameras, np.tile(SOURCE_CAMERA, (5, 1)))


def test_copy_strategy_takes_the_reference_cameras_and_needs_some():
    reference_cameras = np.random.default_rng(1).uniform(0.5, 1.5, (4, 3)).astype(np.float32)
    np.testing.assert_array_equal(target_cameras("copy", SOURCE_CAMERA, motion(camera=reference_cameras)), reference_cameras)
    no_cameras = motion(translation=np.zeros((4, 3), np.float32), name="walk.bvh")
    with pytest.raises(ValueError, match=r"camera=copy.*walk\.bvh"):
        target_cameras("copy", SOURCE_CAMERA, no_cameras)
    with pytest.raises(ValueError, match="'zoom'"):
        target_cameras("zoom", SOURCE_CAMERA, no_cameras)


def _moving_reference_cameras(progress, s0=1.25, tx0=0.05, ty0=0.1):
    """Reference cameras whose pelvis (at s * t in NDC) moves right by 0.2 * progress and whose scale grows by 10 % * progress."""
    scale = s0 * (1 + 0.1 * progress)
    x = s0 * tx0 + 0.2 * progress
    y = np.full_like(progress, s0 * ty0)
    return np.stack([scale, x / scale, y / scale], -1).astype(np.float32)


def _expected_smooth(progress, s0=1.25):
    """Closed form: the source grows by the same 10 %, its pelvis moves by 0.2 * s_source / s_ref0 in NDC."""
    s, tx, ty = (float(v) for v in SOURCE_CAMERA)
    scale = s * (1 + 0.1 * progress)
    x = s * tx + 0.2 * progress * s / s0
    y = np.full_like(progress, s * ty)
    return scale, x, y


def test_smooth_strategy_follows_the_reference_motion_scaled_to_the_source():
    progress = np.array([0.0, 0.0, 0.25, 0.5, 1.0])  # constant, then moving (under 8 frames: not low-passed)
    cameras = target_cameras("smooth", SOURCE_CAMERA, motion(camera=_moving_reference_cameras(progress)))
    scale, x, y = _expected_smooth(progress)
    np.testing.assert_allclose(cameras[:, 0], scale, rtol=1e-6)
    np.testing.assert_allclose(cameras[:, 0] * cameras[:, 1], x, atol=1e-6)  # the pelvis's NDC position s * t
    np.testing.assert_allclose(cameras[:, 0] * cameras[:, 2], y, atol=1e-6)
    np.testing.assert_allclose(cameras[0], SOURCE_CAMERA, atol=1e-6)


def test_smooth_strategy_on_a_long_track_settles_on_the_closed_form_plateaus():
    # 40 still frames, a 20-frame move, 40 still frames at 30 fps: the 2 Hz low-pass keeps the plateaus.
    progress = np.concatenate([np.zeros(40), np.linspace(0, 1, 20), np.ones(40)])
    cameras = target_cameras("smooth", SOURCE_CAMERA, motion(camera=_moving_reference_cameras(progress)), camera_cutoff_hz=2.0)
    scale, x, y = _expected_smooth(progress)
    plateaus = np.r_[0:15, 85:100]
    np.testing.assert_allclose(cameras[plateaus, 0], scale[plateaus], atol=2e-4)
    np.testing.assert_allclose((cameras[:, 0] * cameras[:, 1])[plateaus], x[plateaus], atol=2e-4)
    np.testing.assert_allclose((cameras[:, 0] * cameras[:, 2])[plateaus], y[plateaus], atol=2e-4)
    # Low-passed: the ramp's corners are rounded (the track starts moving before the reference does) and
    # the steepest step stays near the ramp's (measured 1.095 x: the Butterworth filter's slight ringing).
    position = cameras[:, 0] * cameras[:, 1]
    ramp_step = 0.2 * 0.9 / 1.25 / 19
    assert position[39] - x[39] > 0.2 * ramp_step
    assert np.abs(np.diff(position)).max() <= 1.15 * ramp_step


def test_smooth_strategy_moves_a_short_motion_file_by_its_root_translation():
    translation = np.array([[0.3, 0.1, 2.0], [0.3, 0.1, 2.0], [0.5, 0.0, 1.0], [0.1, 0.4, 3.0]], np.float32)
    cameras = target_cameras("smooth", SOURCE_CAMERA, motion(translation=translation))
    # s * (X + T + t): the body moves by T - T0 metres in the source's camera; depth plays no part.
    expected = np.tile(SOURCE_CAMERA, (4, 1))
    expected[:, 1:] += translation[:, :2] - translation[0, :2]
    np.testing.assert_allclose(cameras, expected, atol=1e-6)


def test_smooth_strategy_follows_a_long_walk_and_shows_its_hops():
    """A 10 s walk of 1 m/s along x with 3 Hz, 5 cm hops: the camera keeps the walker in the picture and shows the hops."""
    fps, seconds = 30.0, 10.0
    time = np.arange(int(fps * seconds)) / fps
    translation = np.stack([1.0 * time, 0.05 * np.sin(2 * math.pi * 3.0 * time), np.zeros_like(time)], axis=1).astype(np.float32)
    cameras = target_cameras("smooth", SOURCE_CAMERA, motion(translation=translation, fps=fps))
    shown = cameras[:, 1:] - SOURCE_CAMERA[1:]
    assert np.abs(shown[:, 0]).max() < 0.05  # 10 m of travel, under 5 cm of it shown
    middle = slice(60, -60)  # away from the filter's ends
    hops = shown[middle, 1] / 0.05
    assert 0.8 < np.abs(hops).max() <= 1.05  # the 3 Hz hops pass the 0.5 Hz follow nearly whole
    assert np.corrcoef(hops, np.sin(2 * math.pi * 3.0 * time[middle]))[0, 1] > 0.99


# --- face_heading ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def walk(anny_body, tmp_path_factory):
    return load_reference(WALK, anny_body, tmp_path_factory.mktemp("work"), 64, fps=15.0)


@pytest.mark.parametrize("yaw", [0.7, -2.5, math.pi - 0.05])
def test_face_heading_turns_the_first_frame_to_the_requested_yaw_and_keeps_the_motion(walk, yaw):
    turned = face_heading(walk, yaw)
    assert yaw_of(turned.pose[0]) == pytest.approx(yaw, abs=1e-4)
    np.testing.assert_array_equal(turned.pose[:, 1:], walk.pose[:, 1:])  # the joints do not change
    before, after = rodrigues(walk.pose[:, 0]), rodrigues(turned.pose[:, 0])
    # One fixed rotation M in front of every global orientation: R_0^T R_i (the motion relative to its
    # first frame, in the body) is unchanged, and M = R'_i R_i^T is the same for all frames.
    np.testing.assert_allclose(after[0].T @ after, before[0].T @ before, atol=1e-5)
    turn = after @ before.transpose(0, 2, 1)
    np.testing.assert_allclose(turn, np.broadcast_to(turn[0], turn.shape), atol=1e-5)
    # M turns about the image's vertical axis by the yaw difference.
    delta = yaw - yaw_of(walk.pose[0])
    np.testing.assert_allclose(turn[0], UPRIGHT @ about_vertical(delta) @ UPRIGHT.T, atol=1e-5)
    # The root translation turns with it: heights kept, horizontal paths rotated by the same M.
    np.testing.assert_allclose(turned.translation, walk.translation @ turn[0].T, atol=1e-4)
    np.testing.assert_allclose(turned.translation[:, 1], walk.translation[:, 1], atol=1e-5)


# --- load_reference ----------------------------------------------------------------------------


def _bvh_header(path):
    text = path.read_text()
    frames = int(text.split("Frames:")[1].split()[0])
    frame_time = float(text.split("Frame Time:")[1].split()[0])
    return frames, frame_time


@pytest.mark.parametrize("fps", [30.0, 24.0])
def test_bvh_reference_is_resampled_to_the_frame_rate(anny_body, tmp_path, fps):
    frames, frame_time = _bvh_header(WALK)
    expected = math.floor((frames - 1) * frame_time * fps + 1e-6) + 1  # frame k at k / fps, up to the clip's end
    reference = load_reference(WALK, anny_body, tmp_path, 64, fps=fps)
    assert len(reference) == expected
    assert reference.pose.shape == (expected, 24, 3) and reference.pose.dtype == np.float32
    assert reference.translation.shape == (expected, 3)
    assert reference.camera is None and reference.fps == fps and reference.name == WALK.name
    # Upright in the image (y down): the walker's head is above (smaller y than) the pelvis, who faces
    # a consistent direction; the CMU pelvis is about 0.9 m over the floor, so translation y < 0.
    assert np.all(reference.translation[:, 1] < -0.5)


def test_npz_reference_round_trip_stands_the_motion_upright(anny_body, tmp_path):
    rng = np.random.default_rng(2)
    pose = rng.normal(0, 0.3, (7, 24, 3)).astype(np.float32)
    translation = rng.normal(0, 1, (7, 3)).astype(np.float32)
    write_pose_npz(tmp_path / "moves.npz", SmplMotion(pose, translation, 25.0))
    reference = load_reference(tmp_path / "moves.npz", anny_body, tmp_path / "work", 64, fps=30.0)
    assert len(reference) == 7 and reference.fps == 25.0 and reference.camera is None  # the file's rate wins
    np.testing.assert_allclose(reference.pose[:, 1:], pose[:, 1:], atol=1e-6)
    np.testing.assert_allclose(rodrigues(reference.pose[:, 0]), UPRIGHT @ rodrigues(pose[:, 0]), atol=1e-5)
    np.testing.assert_allclose(reference.translation, translation * [1, -1, -1], atol=1e-6)


def test_pose_shape_pkl_reference_keeps_poses_and_cameras(anny_body, tmp_path):
    rng = np.random.default_rng(3)
    cams = rng.uniform(0.5, 1.5, (5, 3)).astype(np.float32)
    pose = rng.normal(0, 0.3, (5, 72)).astype(np.float32)
    write_pose_shape(tmp_path / "pose_shape.pkl", cams, pose, rng.uniform(0, 1, (5, 6)))
    reference = load_reference(tmp_path / "pose_shape.pkl", anny_body, tmp_path / "work", 64, fps=24.0)
    assert len(reference) == 5 and reference.fps == 24.0 and reference.translation is None
    np.testing.assert_array_equal(reference.pose, pose.reshape(5, 24, 3))
    np.testing.assert_array_equal(reference.camera, cams)
    cut = reference.cut(3)
    assert len(cut) == 3 and cut.camera.shape == (3, 3)
    assert reference.cut(None) is reference and reference.cut(9) is reference


def test_reference_errors_name_the_path(anny_body, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.bvh"):
        load_reference(tmp_path / "missing.bvh", anny_body, tmp_path / "work", 64)
    (tmp_path / "notes.txt").write_text("a dance")
    with pytest.raises(ValueError, match=r"notes\.txt.*not a supported reference"):
        load_reference(tmp_path / "notes.txt", anny_body, tmp_path / "work", 64)
    folder = tmp_path / "holiday"
    folder.mkdir()
    (folder / "readme.md").write_text("no pictures here")
    with pytest.raises(ValueError, match=r"holiday.*must hold images.*has none"):
        load_reference(folder, anny_body, tmp_path / "work", 64)


def test_a_video_without_frames_is_a_clear_error(anny_body, tmp_path):
    empty = tmp_path / "empty.avi"  # AVI keeps a video stream with no frames (MP4 drops the track)
    with av.open(str(empty), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        container.start_encoding()
    with av.open(str(empty)) as container:
        assert len(container.streams.video) == 1 and not list(container.decode(video=0))
    with pytest.raises(ValueError, match=r"empty\.avi.*no frames"):
        load_reference(empty, anny_body, tmp_path / "work", 64)


def test_max_frames_limits_the_fitting_of_a_frame_folder(anny_body, tmp_path):
    """Only the first frames are read and fitted, into a work folder of their own (a later full run does not reuse it)."""
    photo = load_image(Path(__file__).resolve().parents[1] / "data" / "pexels_lunge" / "pexels-anete-lusina-4793258_512.jpg")
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(5):
        write_image(folder / f"{index:03d}.png", np.roll(photo, 3 * index, axis=1))
    reference = load_reference(folder, anny_body, tmp_path / "work", 64, fitting=None, max_frames=2)
    assert len(reference) == 2 and reference.camera.shape == (2, 3)
    assert sorted(path.name for path in (tmp_path / "work" / "images").iterdir()) == ["frames_first2"]
    assert len(list((tmp_path / "work" / "images" / "frames_first2").iterdir())) == 2
