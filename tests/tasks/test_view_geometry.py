"""The views' camera turns about the body's vertical axis through the pelvis: the real body model and projection against closed-form geometry.

References: an upright body turned about the image's vertical keeps every image height and the
pelvis where they were; a half turn puts the subject's left on the image's left and the face away
from the camera; a body that a camera looks down on is the upright body turned, then tilted by
that camera's pitch (rotation matrices written out here, applied to the rest body's vertices).
"""

import math

import numpy as np
import pytest
import torch

from lwgan.body.camera import UPRIGHT_ORIENTATION, ndc_to_pixels, project
from lwgan.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from lwgan.body.skeleton import SMPL_JOINT_NAMES
from lwgan.tasks.view import turned_poses, vertical_tilt

IMAGE_SIZE = (256, 256)
CAMERA = np.array([0.9, 0.12, -0.05], np.float32)  # (s, tx, ty): the pelvis sits off the image centre
YAWS = np.array([0.0, 30.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0])
LEFT_SHOULDER, RIGHT_SHOULDER = SMPL_JOINT_NAMES.index("left_shoulder"), SMPL_JOINT_NAMES.index("right_shoulder")
NOSE = 0  # COCO keypoint 0


def about_x(degrees: float) -> np.ndarray:
    """(3, 3) rotation about the camera's x axis (right-handed): y turns towards z."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def about_y(degrees: float) -> np.ndarray:
    """(3, 3) rotation about the camera's y axis (right-handed): z turns towards x."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


UPRIGHT = about_x(180.0)  # UPRIGHT_ORIENTATION = (pi, 0, 0) as a matrix


def rest_pose(orientation: np.ndarray) -> np.ndarray:
    """(24, 3) float32: the body's rest pose under a (3, 3) global orientation."""
    pose = np.zeros((24, 3), np.float32)
    pose[0] = matrix_to_axis_angle(torch.from_numpy(orientation)).numpy()
    return pose


def pixels(body, poses: np.ndarray, camera: np.ndarray = CAMERA):
    """Projected (N, V, 2) vertices, (N, 24, 2) joints and (N, K, 3) keypoints (pixels; keypoints keep depth) of N rest-shape bodies."""
    poses = torch.from_numpy(np.asarray(poses, np.float32))
    cameras = torch.from_numpy(camera).expand(len(poses), 3)
    with torch.no_grad():
        output = body(poses)
        vertices, joints, keypoints = (project(points, cameras) for points in (output.vertices, output.joints, output.keypoints))
    keypoints = torch.cat([ndc_to_pixels(keypoints[..., :2], IMAGE_SIZE), keypoints[..., 2:]], dim=-1)
    return ndc_to_pixels(vertices[..., :2], IMAGE_SIZE).numpy(), ndc_to_pixels(joints[..., :2], IMAGE_SIZE).numpy(), keypoints.numpy()


def test_the_upright_orientation_is_the_matrix_written_here():
    np.testing.assert_allclose(axis_angle_to_matrix(torch.tensor(UPRIGHT_ORIENTATION, dtype=torch.float64)).numpy(), UPRIGHT, atol=1e-12)


def test_an_upright_body_keeps_its_height_and_its_pelvis_in_every_view(anny_body):
    poses = turned_poses(rest_pose(UPRIGHT), YAWS, np.zeros(len(YAWS)))
    vertices, joints, _ = pixels(anny_body, poses)
    # Closed form: the rest body's own extent along y (metres), scaled by s and by half the image's height.
    with torch.no_grad():
        rest = anny_body(torch.zeros(1, 24, 3)).vertices[0].double()
    scale, translation_x, translation_y = CAMERA.astype(np.float64)
    height = float(rest[:, 1].max() - rest[:, 1].min()) * scale * IMAGE_SIZE[0] / 2
    assert height > 150
    np.testing.assert_allclose(vertices[..., 1].max(axis=1) - vertices[..., 1].min(axis=1), height, atol=2e-3)
    # The pelvis (the body's origin) projects to s (tx, ty) in NDC, whatever the view.
    pelvis = ((scale * translation_x + 1) * IMAGE_SIZE[1] / 2, (scale * translation_y + 1) * IMAGE_SIZE[0] / 2)
    np.testing.assert_allclose(joints[:, 0], np.broadcast_to(pelvis, (len(YAWS), 2)), atol=1e-3)


def test_a_half_turn_shows_the_back_and_a_quarter_turn_faces_the_right(anny_body):
    _, joints, keypoints = pixels(anny_body, turned_poses(rest_pose(UPRIGHT), np.array([0.0, 90.0, 180.0]), np.zeros(3)))
    pelvis_column = joints[0, 0, 0]
    front, quarter, back = range(3)
    # Facing the camera, the subject's left shoulder is on the image's right and the nose nearer than the pelvis.
    assert joints[front, LEFT_SHOULDER, 0] > pelvis_column + 10 > pelvis_column - 10 > joints[front, RIGHT_SHOULDER, 0]
    assert keypoints[front, NOSE, 2] < -0.05
    # Half a turn later the left shoulder is on the image's left, mirrored about the pelvis's column, and the face is turned away.
    np.testing.assert_allclose(joints[back, LEFT_SHOULDER, 0] - pelvis_column, pelvis_column - joints[front, LEFT_SHOULDER, 0], atol=1e-3)
    assert joints[back, RIGHT_SHOULDER, 0] > pelvis_column + 10
    assert keypoints[back, NOSE, 2] == pytest.approx(-keypoints[front, NOSE, 2], abs=1e-5)
    # A positive yaw turns the front towards the image's right: a quarter turn puts the nose right of the pelvis, at the pelvis's depth.
    assert keypoints[quarter, NOSE, 0] > pelvis_column + 5
    assert keypoints[quarter, NOSE, 2] == pytest.approx(0.0, abs=0.03)


@pytest.mark.parametrize("camera_pitch", [-15.0, 12.0])
def test_a_body_seen_from_above_or_below_stays_upright_in_every_view(anny_body, camera_pitch):
    """A standing body whose vertical tilts towards the camera (a camera looking down: positive
    pitch) or away from it: each view is the upright body turned about its vertical, seen by the
    photo's tilted camera. Its vertical stays on the pelvis's column: no view leans."""
    pitches = np.zeros(len(YAWS))
    poses = turned_poses(rest_pose(about_x(camera_pitch) @ UPRIGHT), YAWS, pitches)
    vertices, joints, _ = pixels(anny_body, poses)
    with torch.no_grad():
        upright = anny_body(torch.from_numpy(rest_pose(UPRIGHT))[None]).vertices[0].double().numpy()
    for index, yaw in enumerate(YAWS):
        expected = upright @ (about_x(camera_pitch) @ about_y(-yaw)).T
        expected_pixels = (CAMERA[0] * (expected[:, :2] + CAMERA[1:]) + 1) * np.array(IMAGE_SIZE[::-1]) / 2
        np.testing.assert_allclose(vertices[index], expected_pixels, atol=2e-3, err_msg=f"yaw {yaw}")
    # The body's vertical (the root's up axis, from the pelvis) projects straight up the image in every view.
    orientations = axis_angle_to_matrix(torch.from_numpy(poses[:, 0]).double())
    up = orientations[:, :, 1].numpy()
    np.testing.assert_allclose(up[:, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(up[:, 1], -math.cos(math.radians(camera_pitch)), atol=1e-6)
    np.testing.assert_allclose(joints[:, 0], np.broadcast_to(joints[0, 0], joints[:, 0].shape), atol=1e-3)


def test_the_first_view_is_the_photo_and_pitch_raises_the_camera_after_the_turn(anny_body):
    photo_orientation = about_x(-8.0) @ about_y(35.0) @ UPRIGHT  # the body's top 8 degrees away from the camera, turned 35 degrees
    pose = rest_pose(photo_orientation)
    pose[1:] = np.random.default_rng(0).normal(0.0, 0.2, (23, 3))  # any articulated pose travels unchanged
    poses = turned_poses(pose, np.array([0.0, 90.0]), np.array([0.0, 30.0]))
    np.testing.assert_array_equal(poses[:, 1:], np.broadcast_to(pose[1:], (2, 23, 3)))
    orientations = axis_angle_to_matrix(torch.from_numpy(poses[:, 0]).double()).numpy()
    np.testing.assert_allclose(orientations[0], photo_orientation, atol=1e-6)
    # A quarter turn about the tilted vertical, then the camera rises 30 degrees: the tilt of the
    # photo's camera (-8 degrees, looking up) and the raised camera's add up about the image's x axis.
    np.testing.assert_allclose(orientations[1], about_x(30.0) @ about_x(-8.0) @ about_y(-90.0) @ about_y(35.0) @ UPRIGHT, atol=1e-6)


@pytest.mark.parametrize("body_up", ["upright", "upside down"])
@pytest.mark.parametrize("tilt_degrees", [-40.0, -5.0, 0.0, 20.0])
def test_vertical_tilt_is_the_angle_of_the_body_vertical_out_of_the_image_plane(body_up, tilt_degrees):
    base = UPRIGHT if body_up == "upright" else np.eye(3)  # the identity orientation stands the body on its head in the y-down image
    orientation = about_x(-tilt_degrees) @ about_y(70.0) @ base  # about x by -t: the image's upper end moves t degrees away from the camera
    tilt = vertical_tilt(torch.from_numpy(orientation))
    assert math.degrees(float(tilt)) == pytest.approx(tilt_degrees, abs=1e-9)  # upside down, the feet are the upper end and lean as the head did
