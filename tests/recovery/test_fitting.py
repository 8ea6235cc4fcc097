"""SMPLify-style fitting: synthetic round trips (front and back views), batching, warm starts, and the loss terms."""

import logging
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from lwgan.body.camera import (
    camera_to_fit,
    heading_of,
    orient_for_image,
    project,
    with_heading,
    yaw_of,
)
from lwgan.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from lwgan.body.skeleton import BODY_KEYPOINT_NAMES, SMPL_JOINT_NAMES
from lwgan.data.synthetic_people import render_synthetic_person
from lwgan.recovery.bvh import bvh_to_smpl, read_bvh
from lwgan.recovery.fit_losses import (
    BONES,
    bone_direction_loss,
    gmof,
    joint_angle_bounds,
    joint_limit_loss,
    keypoint_loss,
)
from lwgan.recovery.fitting import (
    CHAMFER,
    MAX_REFIT_TURN,
    SOFT,
    FitSettings,
    coverage_dips,
    fit_bodies,
    heading_change,
    polish_settings,
    refit_silhouettes,
    silhouette_coverage,
)
from lwgan.recovery.observation import FitResult

DATA = Path(__file__).resolve().parents[1] / "data" / "cmu_mocap"
CLIPS = (DATA / "131_01.bvh", DATA / "131_03.bvh")
SIDE_PAIRS = [("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"), ("left_elbow", "right_elbow"), ("left_knee", "right_knee")]

# Measured with the default settings on these two renders (ground-truth observations, 256 x 256,
# body about 200 px tall): keypoints within 1.1 px, MPJPE 22 mm (front) and 29 mm (back); without
# the silhouette stage 0.5 px and 20-23 mm (the strong silhouette weight real photos need costs a
# little on perfect data). The bounds leave room for platform differences and stay well under the
# issue's 60 mm target for the detector round trip, which perfect observations must beat clearly.
MAX_KEYPOINT_ERROR_PX = 2.0
MAX_MPJPE_MM = 45.0


@pytest.fixture(scope="module")
def clip_poses(anny_body) -> np.ndarray:
    """(N, 24, 3) y-up SMPL poses of both CMU clips, retargeted onto the body's own rest joints."""
    rest = anny_body(torch.zeros(1, 24, 3)).joints[0].numpy()
    return np.concatenate([bvh_to_smpl(read_bvh(path), fps=30.0, rest_joints=rest).pose for path in CLIPS])


def person(body, pose_y_up: np.ndarray, yaw: float, seed: int, fill: float = 0.8):
    pose = orient_for_image(torch.from_numpy(pose_y_up), yaw)
    with torch.no_grad():
        vertices = body(pose[None]).vertices
    return render_synthetic_person(body, pose, camera_to_fit(vertices, fill)[0], 256, seed=seed)


@pytest.fixture(scope="module")
def front_and_back(anny_body, clip_poses):
    """A walking pose seen from the front (yaw 0.3) and a hop seen from behind (yaw pi + 0.4)."""
    return [person(anny_body, clip_poses[40], 0.3, seed=1), person(anny_body, clip_poses[320], math.pi + 0.4, seed=2)]


@pytest.fixture(scope="module")
def batch_fit(anny_body, front_and_back):
    return fit_bodies(anny_body, [p.observation for p in front_and_back])


def fitted_joints(body, result: FitResult) -> np.ndarray:
    with torch.no_grad():
        return body(torch.from_numpy(result.pose), torch.from_numpy(result.shape)).joints.numpy()


def root_aligned_errors_mm(joints: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(B, 24) per-joint distances in mm after moving both pelvises to the origin."""
    return 1000 * np.linalg.norm((joints - joints[:, :1]) - (truth - truth[:, :1]), axis=-1)


def truth_of(people) -> FitResult:
    return FitResult(
        pose=np.stack([p.pose for p in people]), shape=np.stack([p.shape for p in people]),
        camera=np.stack([p.camera for p in people]), keypoints_2d=np.stack([p.keypoints_2d for p in people]), losses={},
    )


def test_synthetic_person_is_consistent(anny_body, front_and_back):
    for sample in front_and_back:
        observation = sample.observation
        assert sample.image.shape == (256, 256, 3) and sample.image.dtype == np.uint8
        np.testing.assert_allclose(observation.keypoints[:, :2], sample.keypoints_2d)
        hips = [BODY_KEYPOINT_NAMES.index("left_hip"), BODY_KEYPOINT_NAMES.index("right_hip")]
        np.testing.assert_allclose(observation.world_landmarks[hips].mean(axis=0), 0.0, atol=1e-6)
        # The pelvis and the hips project inside the mask; the mask's box holds every keypoint.
        for point in sample.keypoints_2d[hips]:
            assert observation.mask[int(point[1]), int(point[0])] == 1.0
        x0, y0, x1, y1 = observation.box
        assert np.all((sample.keypoints_2d >= [x0 - 2, y0 - 2]) & (sample.keypoints_2d <= [x1 + 2, y1 + 2]))
    assert abs(yaw_of(front_and_back[0].pose) - 0.3) < 1e-4
    assert abs(abs(yaw_of(front_and_back[1].pose)) - (math.pi - 0.4)) < 1e-4


def test_fit_recovers_front_and_back_views(anny_body, front_and_back, batch_fit):
    truth = np.stack([p.joints_3d for p in front_and_back])
    keypoint_error = np.linalg.norm(batch_fit.keypoints_2d - np.stack([p.keypoints_2d for p in front_and_back]), axis=-1).mean(axis=1)
    joints = fitted_joints(anny_body, batch_fit)
    mpjpe = root_aligned_errors_mm(joints, truth).mean(axis=1)
    logging.getLogger(__name__).info("front/back: keypoint error %s px, MPJPE %s mm", keypoint_error, mpjpe)
    assert np.all(keypoint_error < MAX_KEYPOINT_ERROR_PX), keypoint_error
    assert np.all(mpjpe < MAX_MPJPE_MM), mpjpe
    # Not mirrored: the fitted heading matches, and every left-right joint pair points the same way in 3D.
    for sample, pose in zip(front_and_back, batch_fit.pose):
        difference = math.remainder(yaw_of(pose) - yaw_of(sample.pose), 2 * math.pi)
        assert abs(difference) < math.radians(20), math.degrees(difference)
    for left, right in SIDE_PAIRS:
        fitted = joints[:, SMPL_JOINT_NAMES.index(left)] - joints[:, SMPL_JOINT_NAMES.index(right)]
        expected = truth[:, SMPL_JOINT_NAMES.index(left)] - truth[:, SMPL_JOINT_NAMES.index(right)]
        cosine = (fitted * expected).sum(-1) / np.linalg.norm(fitted, axis=-1) / np.linalg.norm(expected, axis=-1)
        assert np.all(cosine > 0.8), (left, cosine)


def test_fit_result_is_self_consistent(anny_body, front_and_back, batch_fit):
    """keypoints_2d is the fitted body posed by result.pose, projected with result.camera, in image pixels."""
    with torch.no_grad():
        keypoints = anny_body(torch.from_numpy(batch_fit.pose), torch.from_numpy(batch_fit.shape)).keypoints
        ndc = project(keypoints, torch.from_numpy(batch_fit.camera))[..., :2].numpy()
    for index, sample in enumerate(front_and_back):
        pixels = sample.observation.square_frame.ndc_to_pixels(ndc[index])
        np.testing.assert_allclose(pixels, batch_fit.keypoints_2d[index], atol=0.05)
    assert set(batch_fit.losses) >= {"keypoints", "landmarks", "silhouette", "joint_limits", "pose_prior", "shape_prior", "total"}
    assert all(value.shape == (2,) for value in batch_fit.losses.values())
    assert np.all((batch_fit.shape >= 0) & (batch_fit.shape <= 1))


def test_batch_equals_separate_fits_without_the_silhouette_stage(anny_body, front_and_back):
    """Observations of a batch do not interact: the loss is a sum over them and Adam works per parameter."""
    settings = FitSettings(silhouette_iterations=0)  # measured: under 0.001 px and 0.01 mm apart
    together = fit_bodies(anny_body, [p.observation for p in front_and_back], settings)
    for index, sample in enumerate(front_and_back):
        alone = fit_bodies(anny_body, [sample.observation], settings)
        np.testing.assert_allclose(alone.keypoints_2d[0], together.keypoints_2d[index], atol=0.05)
        joint_difference = root_aligned_errors_mm(fitted_joints(anny_body, alone), fitted_joints(anny_body, together)[index : index + 1])
        assert joint_difference.max() < 1.0, joint_difference.max()


def test_fits_in_a_batch_are_as_good_as_fits_alone(anny_body, front_and_back, batch_fit):
    # With the silhouette stage, float rounding that differs between batch sizes is amplified
    # (soft silhouettes of a dense mesh have rough gradients; measured: up to 0.8 px and 13 mm
    # apart), so the claim tested is the one that matters: a fit in a batch meets the same accuracy
    # bounds against the ground truth as a fit alone, and both land close together in the image.
    for index, sample in enumerate(front_and_back):
        alone = fit_bodies(anny_body, [sample.observation])
        keypoint_error = np.linalg.norm(alone.keypoints_2d[0] - sample.keypoints_2d, axis=-1).mean()
        mpjpe = root_aligned_errors_mm(fitted_joints(anny_body, alone), sample.joints_3d[None]).mean()
        assert keypoint_error < MAX_KEYPOINT_ERROR_PX and mpjpe < MAX_MPJPE_MM, (keypoint_error, mpjpe)
        assert np.abs(alone.keypoints_2d[0] - batch_fit.keypoints_2d[index]).mean() < 1.0


def test_warm_start_stays_at_the_truth_and_runs_the_short_schedule(anny_body, front_and_back, caplog):
    settings = FitSettings()
    with caplog.at_level(logging.DEBUG, logger="lwgan.recovery.fitting"):
        result = fit_bodies(anny_body, [p.observation for p in front_and_back], settings, initial=truth_of(front_and_back))
    messages = [record.getMessage() for record in caplog.records]
    assert not any("orientation stage" in message for message in messages), messages
    assert any(f"stage with {settings.warm_body_iterations} steps" in message for message in messages), messages
    assert not any(f"stage with {settings.body_iterations} steps" in message for message in messages), messages
    keypoint_error = np.linalg.norm(result.keypoints_2d - np.stack([p.keypoints_2d for p in front_and_back]), axis=-1).mean(axis=1)
    mpjpe = root_aligned_errors_mm(fitted_joints(anny_body, result), np.stack([p.joints_3d for p in front_and_back])).mean(axis=1)
    # Measured: 0.6-0.7 px and 11-15 mm (the pose prior pulls joints the keypoints do not see, e.g. the wrists, a little).
    assert np.all(keypoint_error < 1.0), keypoint_error
    assert np.all(mpjpe < 20.0), mpjpe


def test_observation_without_mask_or_landmarks_still_fits(anny_body, front_and_back):
    sample = front_and_back[0]
    bare = replace(sample.observation, mask=None, world_landmarks=None)
    result = fit_bodies(anny_body, [bare], FitSettings(orientation_iterations=30, body_iterations=40))
    assert result.losses["silhouette"][0] == 0.0 and result.losses["landmarks"][0] == 0.0
    keypoint_error = np.linalg.norm(result.keypoints_2d[0] - sample.keypoints_2d, axis=-1).mean()
    assert keypoint_error < 3.0, keypoint_error  # measured 1.5 px after this short schedule


def test_joint_limits_allow_natural_poses_and_reject_impossible_ones(clip_poses):
    assert float(joint_limit_loss(torch.from_numpy(clip_poses)).max()) == 0.0
    impossible = {
        ("left_knee", 0): -0.5,  # knee bent backwards
        ("right_knee", 2): 0.6,  # knee bent sideways
        ("left_elbow", 1): 0.8,  # left elbow flexes with -y: +y bends it backwards
        ("right_elbow", 1): -0.8,  # right elbow flexes with +y
        ("spine2", 1): 1.2,  # spine twisted too far
    }
    for (joint, axis), value in impossible.items():
        pose = torch.zeros(1, 24, 3)
        pose[0, SMPL_JOINT_NAMES.index(joint), axis] = value
        assert float(joint_limit_loss(pose)) > 0.0, joint
    flexed = torch.zeros(1, 24, 3)
    flexed[0, SMPL_JOINT_NAMES.index("left_knee"), 0] = 1.5
    flexed[0, SMPL_JOINT_NAMES.index("left_elbow"), 1] = -1.5
    flexed[0, SMPL_JOINT_NAMES.index("right_elbow"), 1] = 1.5
    assert float(joint_limit_loss(flexed)) == 0.0
    low, high = joint_angle_bounds()
    assert torch.isinf(low[0]).all() and torch.isinf(high[0]).all()  # the global orientation is free


def test_gmof_matches_its_closed_form_and_is_bounded_and_monotonic():
    scale = 0.1
    residual = torch.linspace(0, 10, 2001, dtype=torch.float64)
    value = gmof(residual**2, scale)
    torch.testing.assert_close(value, scale**2 * residual**2 / (scale**2 + residual**2))
    assert torch.all(value < scale**2) and torch.all(value.diff() > 0)
    small = torch.tensor([1e-4], dtype=torch.float64)
    torch.testing.assert_close(gmof(small**2, scale), small**2, rtol=1e-5, atol=0)


def test_zero_confidence_keypoints_have_no_effect():
    generator = torch.Generator().manual_seed(0)
    predicted = torch.randn(2, 23, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    observed = torch.randn(2, 23, 2, generator=generator, dtype=torch.float64)
    confidence = torch.rand(2, 23, generator=generator, dtype=torch.float64)
    confidence[:, [3, 17]] = 0.0
    box = torch.tensor([0.8, 1.2], dtype=torch.float64)
    loss = keypoint_loss(predicted, observed, confidence, box, 0.1)
    loss.sum().backward()
    assert torch.all(predicted.grad[:, [3, 17]] == 0)
    moved = observed.clone()
    moved[:, [3, 17]] = torch.tensor([float("nan"), 1e6], dtype=torch.float64)
    torch.testing.assert_close(keypoint_loss(predicted, moved, confidence, box, 0.1), loss)

    keypoints = torch.randn(1, 23, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    landmarks = torch.randn(1, 23, 3, generator=generator, dtype=torch.float64)
    landmark_confidence = torch.ones(1, 23, dtype=torch.float64)
    wrist = BODY_KEYPOINT_NAMES.index("left_wrist")
    landmark_confidence[0, wrist] = 0.0
    bone_direction_loss(keypoints, landmarks, landmark_confidence).sum().backward()
    assert torch.all(keypoints.grad[0, wrist] == 0)
    assert any("left_wrist" in bone[2] for bone in BONES)


def test_fit_checks_the_initial_batch(anny_body, front_and_back):
    truth = truth_of(front_and_back)
    with pytest.raises(ValueError, match="initial.pose"):
        fit_bodies(anny_body, [front_and_back[0].observation], initial=truth)
    with pytest.raises(ValueError, match="silhouette_term"):
        fit_bodies(anny_body, [front_and_back[0].observation], silhouette_term="outline")


def test_the_refit_brings_a_frame_back_onto_its_mask_and_no_frame_covers_it_worse(anny_body, front_and_back):
    """Four fits of one render: three true, one with a thigh swung far off, one frame without a mask; batches of two."""
    walker = front_and_back[0]
    truth = truth_of([walker] * 4)
    swung = truth.pose.copy()
    swung[1, SMPL_JOINT_NAMES.index("right_hip"), 0] -= 1.2  # the thigh lifted forward
    start = FitResult(swung, truth.shape, truth.camera, truth.keypoints_2d, {"total": np.ones(4, np.float32)})
    observations = [walker.observation] * 3 + [replace(walker.observation, mask=None)]
    settings = replace(FitSettings(), refit_silhouette_iterations=30, fit_shape=False)
    before = silhouette_coverage(anny_body, observations, start)
    assert before[0] == before[2] > 0.9 and before[1] < before[0] - 0.1 and np.isnan(before[3])
    refitted = refit_silhouettes(anny_body, observations, start, settings, batch_size=2)
    after = silhouette_coverage(anny_body, observations, refitted)
    assert after[1] > 0.88 and after[1] > before[1] + 0.05
    assert (after[[0, 2]] >= before[[0, 2]]).all()
    # Without a mask, the frame keeps its fit and its losses.
    np.testing.assert_array_equal(refitted.pose[3], start.pose[3])
    assert refitted.losses["total"][3] == 1.0 and refitted.losses["total"][1] != 1.0
    # Off, nothing changes.
    assert refit_silhouettes(anny_body, observations, start, replace(settings, refit_silhouette_iterations=0)) is start


def test_a_row_kept_facing_its_way_does_not_take_a_refit_that_turns_round(anny_body, front_and_back):
    """The hop seen from behind, started half a turn round (facing the camera): its re-fit turns towards its evidence and covers the mask better; marked keep_heading, the row keeps its start instead."""
    hop = front_and_back[1]
    truth = truth_of([hop])
    orientation = axis_angle_to_matrix(torch.from_numpy(truth.pose[:, 0]).double())
    turned = truth.pose.copy()
    turned[:, 0] = matrix_to_axis_angle(with_heading(orientation, heading_of(orientation) + math.pi)).numpy()
    start = FitResult(turned, truth.shape, truth.camera, truth.keypoints_2d, {})
    settings = replace(FitSettings(), fit_shape=False)
    assert heading_change(truth.pose, turned)[0] == pytest.approx(math.pi, abs=1e-4)

    free = refit_silhouettes(anny_body, [hop.observation], start, settings)
    assert heading_change(turned, free.pose)[0] > MAX_REFIT_TURN  # measured 61 degrees
    assert free.losses["coverage"][0] > silhouette_coverage(anny_body, [hop.observation], start)[0] + 0.1  # 0.75 against 0.47

    kept = refit_silhouettes(anny_body, [hop.observation], start, settings, keep_heading=np.array([True]))
    np.testing.assert_array_equal(kept.pose, start.pose)


def test_coverage_dips_are_frames_below_their_neighbours_deepest_first():
    """Dips against the median of the frames within the window: a lone low frame dips, a low stretch does not; rows without a mask never count."""
    coverage = np.full(60, 0.80)
    coverage[5] = 0.70  # 0.10 below its neighbours
    coverage[12] = 0.78  # 0.02: too shallow
    coverage[20] = 0.75  # 0.05
    coverage[30:45] = 0.60  # a stretch of poorly covered frames (loose clothes, say): its own median
    coverage[50] = np.nan  # no mask
    coverage[51] = 0.76  # 0.04, next to the row without a mask
    settings = replace(FitSettings(), polish_fraction=0.1, polish_dip=0.03, polish_window=4)
    np.testing.assert_array_equal(coverage_dips(coverage, settings), [5, 20, 51])
    # At most polish_fraction of the 59 rows with a mask, rounded up, the deepest first.
    np.testing.assert_array_equal(coverage_dips(coverage, replace(settings, polish_fraction=0.03)), [5, 20])
    np.testing.assert_array_equal(coverage_dips(coverage, replace(settings, polish_fraction=0.01)), [5])
    # A shallower threshold takes the 0.02 dip too; the stretch's edge rows (four 0.80 frames in their window, five 0.60) still do not dip.
    assert coverage_dips(coverage, replace(settings, polish_dip=0.01)).tolist() == [5, 12, 20, 51]
    assert coverage_dips(coverage, replace(settings, polish_iterations=0)).size == 0
    assert coverage_dips(np.full(4, np.nan), settings).size == 0


def test_the_polish_refits_a_frame_that_dips_with_the_soft_term(anny_body, front_and_back):
    """Three fits of one render, the middle one with its left arm raised: after the chamfer re-fit it still covers its mask worst, and the soft polish covers it better.

    The polished frame's coverage is recomputed from fit_bodies' own soft fit; the other frames keep
    the chamfer re-fit's fits.
    """
    walker = front_and_back[0]
    truth = truth_of([walker] * 3)
    raised = truth.pose.copy()
    raised[1, SMPL_JOINT_NAMES.index("left_shoulder"), 2] += 0.9
    start = FitResult(raised, truth.shape, truth.camera, truth.keypoints_2d, {})
    observations = [walker.observation] * 3
    settings = replace(FitSettings(), fit_shape=False, polish_fraction=0.3, polish_dip=0.01)  # one frame of three
    chamfer_only = refit_silhouettes(anny_body, observations, start, replace(settings, polish_iterations=0))
    polished = refit_silhouettes(anny_body, observations, start, settings)

    before = chamfer_only.losses["coverage"]
    assert before[1] < np.median(before) - 0.01  # the middle frame dips
    np.testing.assert_array_equal(polished.pose[[0, 2]], chamfer_only.pose[[0, 2]])
    np.testing.assert_array_equal(polished.losses["coverage"][[0, 2]], before[[0, 2]])
    middle = FitResult(*(values[1:2] for values in (chamfer_only.pose, chamfer_only.shape, chamfer_only.camera, chamfer_only.keypoints_2d)), {})
    soft = silhouette_coverage(anny_body, observations[1:2], fit_bodies(anny_body, observations[1:2], polish_settings(settings), initial=middle, silhouette_term=SOFT))[0]
    assert soft > before[1] + 0.005  # the soft term covers the mask better than the chamfer term left it (0.918 against 0.899)
    assert polished.losses["coverage"][1] == pytest.approx(soft, abs=1e-6)
    assert silhouette_coverage(anny_body, observations, polished)[1] == pytest.approx(soft, abs=1e-6)


def test_a_chamfer_fit_ignores_a_keypoint_off_the_mask(anny_body, front_and_back):
    """The video's fits (the CHAMFER term) drop a keypoint outside the person's mask, as track_bodies does.

    The true fit of one render is re-fitted warm with its left wrist's keypoint moved to 6 % of the
    box beyond the box's side, out of the mask. The fit is the one of the same photo without that
    keypoint (its confidence 0, nothing dropped), not the one that keeps it. Where the wrist then
    lands is no test: from the true pose, starts 1e-5 rad apart end 0.3-2.6 % of the box from the
    true wrist with the keypoint and without it alike (the robust loss already discounts it).
    """
    walker = front_and_back[0]
    truth = truth_of([walker])
    wrist = BODY_KEYPOINT_NAMES.index("left_wrist")
    keypoints = walker.observation.keypoints.copy()
    x0, y0, x1, y1 = walker.observation.box
    box_size = max(x1 - x0, y1 - y0)
    keypoints[wrist, 0] = (x1 if keypoints[wrist, 0] > (x0 + x1) / 2 else x0) + np.sign(keypoints[wrist, 0] - (x0 + x1) / 2) * box_size * 0.06
    stray = replace(walker.observation, keypoints=keypoints)
    unseen = keypoints.copy()
    unseen[wrist, 2] = 0.0
    settings = replace(FitSettings(), warm_body_iterations=15, warm_silhouette_iterations=20, fit_shape=False)

    def fitted_pose(observation, tolerance: float) -> np.ndarray:
        return fit_bodies(anny_body, [observation], replace(settings, keypoint_mask_tolerance=tolerance), initial=truth, silhouette_term=CHAMFER).pose

    dropped = fitted_pose(stray, settings.keypoint_mask_tolerance)
    np.testing.assert_allclose(dropped, fitted_pose(replace(stray, keypoints=unseen), 10.0), atol=1e-6)
    assert np.abs(dropped - fitted_pose(stray, 10.0)).max() > 1e-3
