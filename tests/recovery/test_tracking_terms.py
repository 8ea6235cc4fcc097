"""The pieces of video tracking: the temporal term, limb relabelling, the chamfer silhouette, unreliable detections."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from lwgan.body.camera import orient_for_image
from lwgan.body.rotations import axis_angle_to_matrix
from lwgan.body.skeleton import BODY_KEYPOINT_NAMES
from lwgan.recovery import fit_losses
from lwgan.recovery.bvh import bvh_to_smpl, read_bvh
from lwgan.recovery.fitting import (
    FitSettings,
    _orient,
    _State,
    _Targets,
    _Temporal,
    _turn_limbs_to_landmarks,
    drop_keypoints_off_the_mask,
    relabel_limbs,
    temporal_loss,
)
from lwgan.recovery.video import Detections, unreliable_frames

CMU_WALK = Path(__file__).resolve().parents[1] / "data" / "cmu_mocap" / "131_01.bvh"


def keypoint_targets(keypoints: torch.Tensor, confidence: torch.Tensor, landmarks: torch.Tensor | None = None,
                     landmark_confidence: torch.Tensor | None = None) -> _Targets:
    """_Targets of B frames with these (B, 23, 2) keypoints and (B, 23) confidences (and landmarks when given); box size 1, no mask."""
    count = len(keypoints)
    landmarks = torch.zeros(count, 23, 3) if landmarks is None else landmarks
    landmark_confidence = torch.zeros(count, 23) if landmark_confidence is None else landmark_confidence
    return _Targets(keypoints, confidence, torch.ones(count), torch.zeros(count, 2), landmarks, landmark_confidence,
                    torch.zeros(count, 4, 4), torch.zeros(count, dtype=torch.bool), torch.ones(count), torch.ones(count), torch.zeros(count, 2))


def test_temporal_loss_is_the_squared_acceleration_of_consecutive_frames():
    generator = torch.Generator().manual_seed(0)
    anchors = torch.randn(2, 23, 3, generator=generator)
    points = torch.randn(4, 23, 3, generator=generator)
    frames = torch.tensor([3, 4, 5, 6, 8, 9])  # a gap between frames 6 and 8
    box = torch.tensor([0.5, 1.0, 2.0, 1.0])
    loss = temporal_loss(points, _Temporal(anchors, frames), box)
    sequence = torch.cat([anchors, points])
    for row in range(4):
        index = row + 2
        if frames[index] - frames[index - 1] == 1 and frames[index - 1] - frames[index - 2] == 1:
            acceleration = (sequence[index] - 2 * sequence[index - 1] + sequence[index - 2]) / box[row]
            assert float(loss[row]) == pytest.approx(float(acceleration.pow(2).sum(-1).mean()), rel=1e-5)
        else:
            assert float(loss[row]) == 0.0
    assert float(loss[2]) == 0.0 and float(loss[3]) == 0.0  # frames 8 and 9 follow the gap
    steady = anchors[-1:] + torch.arange(1, 5).view(4, 1, 1) * (anchors[-1:] - anchors[:1])  # constant velocity
    assert torch.allclose(temporal_loss(steady, _Temporal(anchors, torch.arange(6)), torch.ones(4)), torch.zeros(4), atol=1e-9)


def test_swapped_arm_labels_are_matched_to_the_body_and_the_legs_keep_theirs():
    """Frame 0: the detector swapped both the arms and the legs. relabel_limbs matches the arms to the body; the legs' labels, decided over the whole video before (leg_labels), stay."""
    generator = torch.Generator().manual_seed(1)
    projected = torch.rand(2, 23, 2, generator=generator)
    observed = projected.clone()
    arms = [("left_elbow", "right_elbow"), ("left_wrist", "right_wrist")]
    legs = [("left_knee", "right_knee"), ("left_ankle", "right_ankle"), ("left_heel", "right_heel"), ("left_big_toe", "right_big_toe"),
            ("left_small_toe", "right_small_toe")]
    for left, right in arms + legs:
        a, b = BODY_KEYPOINT_NAMES.index(left), BODY_KEYPOINT_NAMES.index(right)
        observed[0, [a, b]] = projected[0, [b, a]]
    confidence = torch.ones(2, 23)
    targets = keypoint_targets(observed, confidence)
    relabelled = relabel_limbs(targets, projected).keypoints
    leg_indices = [BODY_KEYPOINT_NAMES.index(name) for pair in legs for name in pair]
    others = [index for index in range(23) if index not in leg_indices]
    assert torch.allclose(relabelled[:, others], projected[:, others])
    assert torch.equal(relabelled[:, leg_indices], observed[:, leg_indices])
    assert torch.equal(relabel_limbs(replace(targets, keypoints=projected), projected).keypoints, projected)


def test_keypoints_off_the_person_mask_are_dropped_with_their_landmarks():
    """A rectangular mask: keypoints farther outside it than the tolerance (closed-form distance) lose their confidence; a frame without a mask keeps all."""
    resolution, tolerance = 256, 0.04
    mask = torch.zeros(resolution, resolution)
    mask[24:232, 64:192] = 1.0  # x in [-0.5, 0.5], y in [-0.8125, 0.8125] of the crop
    points = torch.tensor([[0.0, 0.0], [0.505, 0.3], [-0.5, -0.815], [0.5467, 0.0], [0.7, 0.0], [-0.6, 0.2], [0.0, 0.95], [0.6, 0.9], [0.3, -0.81]])
    distance = torch.stack([(points[:, 0].abs() - 0.5).clamp_min(0), (points[:, 1].abs() - 0.8125).clamp_min(0)], -1).norm(dim=-1)
    # The crop's half side is 1.5 square-frame units and the box's size 2: a crop unit is 0.75 box sizes.
    far = distance * 0.75 > tolerance
    assert far.tolist() == [False, False, False, False, True, True, True, True, False]  # the fourth is 0.035 box sizes out
    keypoints = torch.zeros(2, 23, 2)
    keypoints[:, : len(points)] = points * 1.5
    targets = keypoint_targets(keypoints, torch.ones(2, 23), torch.randn(2, 23, 3), torch.ones(2, 23))
    silhouette = torch.stack([mask, mask])
    targets = replace(targets, box_size=torch.full((2,), 2.0), crop_half_size=torch.full((2,), 1.5), silhouette=silhouette,
                      has_mask=torch.tensor([True, False]), mask_distances=fit_losses.mask_distances(silhouette, 64))
    vetted = drop_keypoints_off_the_mask(targets, tolerance)
    expected = torch.ones(23)
    expected[: len(points)][far] = 0.0
    torch.testing.assert_close(vetted.confidence[0], expected)
    torch.testing.assert_close(vetted.landmark_confidence[0], expected)
    torch.testing.assert_close(vetted.confidence[1], torch.ones(23))
    torch.testing.assert_close(vetted.keypoints, targets.keypoints)


def test_chamfer_silhouette_against_brute_force():
    resolution = 32
    mask = torch.zeros(1, resolution, resolution)
    mask[0, 8:24, 10:20] = 1.0
    distances = fit_losses.mask_distances(mask, points=1000)
    centres = (2 * torch.arange(resolution) + 1) / resolution - 1
    inside_x, inside_y = centres[10:20], centres[8:24]
    # Vertices covering the mask's pixel centres exactly: nothing outside, every outline point on a vertex.
    grid = torch.stack(torch.meshgrid(inside_x, inside_y, indexing="xy"), dim=-1).reshape(1, -1, 2)
    assert float(fit_losses.chamfer_silhouette_loss(grid, distances)) == pytest.approx(0.0, abs=1e-6)
    # One vertex far outside: its squared distance to the mask over V, within OpenCV's distance approximation.
    outside_point = torch.tensor([[[centres[28], centres[16]]]])
    moved = torch.cat([grid, outside_point], dim=1)
    expected = float(centres[28] - centres[19]) ** 2 / moved.shape[1]
    assert float(fit_losses.chamfer_silhouette_loss(moved, distances)) == pytest.approx(expected, rel=0.05)
    # The body shrunk to its left half: the outline points of the right half are uncovered.
    half = grid[:, grid[0, :, 0] < centres[15]]
    real = distances.outline[0, distances.outline_weight[0] > 0]
    brute = torch.stack([(half[0] - point).pow(2).sum(-1).min() for point in real]).mean()
    assert float(fit_losses.chamfer_silhouette_loss(half, distances)) == pytest.approx(float(brute), rel=1e-5)


def test_chamfer_silhouette_gradient_against_brute_force():
    """The nearest vertex is picked without gradients; the gradient is still that of the full minimum over vertices.

    Eleven frames: the nearest vertices are ranked NEAREST_VERTEX_FRAMES frames at a time, the last group partly filled.
    """
    count = 11
    assert fit_losses.NEAREST_VERTEX_FRAMES < count and count % fit_losses.NEAREST_VERTEX_FRAMES
    mask = torch.zeros(count, 24, 24)
    mask[0::2, 4:20, 6:14] = 1.0
    mask[1::2, 2:10, 2:22] = 1.0
    distances = fit_losses.mask_distances(mask, points=64)
    vertices = (0.8 * torch.rand(count, 150, 2, generator=torch.Generator().manual_seed(5)) - 0.4).requires_grad_(True)
    fit_losses.chamfer_silhouette_loss(vertices, distances).sum().backward()
    reference = vertices.detach().clone().requires_grad_(True)
    outside = torch.nn.functional.grid_sample(distances.outside[:, None], reference[:, None], align_corners=False, padding_mode="border")
    nearest = torch.cdist(distances.outline, reference).amin(-1)
    weight = distances.outline_weight
    (outside[:, 0, 0].pow(2).mean(-1) + (weight * nearest.pow(2)).sum(-1) / weight.sum(-1)).sum().backward()
    torch.testing.assert_close(vertices.grad, reference.grad, atol=1e-6, rtol=1e-4)


def _detections(boxes, torso_confidence):
    count = len(boxes)
    keypoints = np.zeros((count, 23, 3), np.float32)
    keypoints[..., 2] = 0.9
    for name in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"):
        keypoints[:, BODY_KEYPOINT_NAMES.index(name), 2] = torso_confidence
    found = ~np.isnan(boxes).any(axis=1)
    return Detections(found, keypoints, np.full((count, 23, 3), np.nan, np.float32), boxes.astype(np.float32),
                      [np.zeros((0, 0), np.uint8)] * count, (480, 640))


def test_unreliable_detections_are_named_and_a_steady_walk_is_not():
    count = 12
    x = np.arange(count) * 25.0  # a fast walker: a quarter of the box height per frame
    boxes = np.stack([x, np.full(count, 100.0), x + 50, np.full(count, 200.0)], axis=1)
    confidence = np.full(count, 0.9)
    assert unreliable_frames(_detections(boxes, confidence)) == {}
    boxes[4] += [200, 0, 200, 0]  # another thing detected far away
    boxes[7, [1, 3]] = [50.0, 250.0]  # a box twice as tall, about the same centre
    boxes[9] = np.nan  # nobody
    confidence[2] = 0.1
    reasons = unreliable_frames(_detections(boxes, confidence))
    assert sorted(reasons) == [2, 4, 7, 9]
    assert reasons[9] == "no person"
    assert "torso" in reasons[2] and "jumps" in reasons[4] and "size" in reasons[7]


LIMB_BONES = [bone for bone in fit_losses.BONES if bone[0].endswith(("upper_arm", "forearm", "thigh", "shin"))]


def _bone_cosines(keypoints: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
    """(B, N) cosine between each LIMB_BONES bone of two (B, 23, 3) keypoint sets."""
    names = list(BODY_KEYPOINT_NAMES)
    def directions(points):
        return torch.stack([points[:, names.index(end[0])] - points[:, names.index(start[0])] for _, start, end in LIMB_BONES], dim=1)
    return torch.nn.functional.cosine_similarity(directions(keypoints), directions(landmarks), dim=-1)


def test_the_landmark_stage_turns_each_frames_limbs_to_its_own_landmarks(anny_body):
    """From one standing start, two walking frames reach their own limb directions; a frame without landmarks keeps the start."""
    motion = bvh_to_smpl(read_bvh(CMU_WALK), fps=30.0, rest_joints=anny_body(torch.zeros(1, 24, 3)).joints[0].numpy())
    truth = torch.stack([orient_for_image(torch.from_numpy(motion.pose[frame]), yaw) for frame, yaw in ((40, 0.4), (55, -1.2), (70, 2.0))])
    with torch.no_grad():
        landmarks = anny_body(truth).keypoints  # (3, 23, 3) in the camera axes, as the detector's world landmarks
    orientation = axis_angle_to_matrix(truth[:, 0])
    start = torch.zeros(3, 23, 3)
    landmark_confidence = torch.ones(3, 23)
    landmark_confidence[2] = 0.0  # frame 2: no landmarks
    targets = keypoint_targets(torch.zeros(3, 23, 2), torch.ones(3, 23), landmarks, landmark_confidence)
    state = _State.start(anny_body, start, orientation, anny_body.default_shape(3), torch.tensor([[1.0, 0.0, 0.0]] * 3), fit_shape=False)

    def cosines():
        with torch.no_grad():
            output = anny_body.skeleton(state.full_pose(), state.shape())
            return _bone_cosines(_orient(output.keypoints, state.orientation(), output.joints[:, :1]), landmarks)

    assert float(cosines()[:2].min()) < 0.9  # the standing start is far from the walking limbs
    _turn_limbs_to_landmarks(anny_body, state, targets, FitSettings(), 40)
    assert float(cosines()[:2].min()) > 0.98  # within 11 degrees
    assert torch.equal(state.body_pose.detach()[2], start[2])


