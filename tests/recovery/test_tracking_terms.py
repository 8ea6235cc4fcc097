"""The pieces of video tracking: the temporal term, limb relabelling, the chamfer silhouette, unreliable detections."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from lwgan.body.skeleton import BODY_KEYPOINT_NAMES
from lwgan.recovery import fit_losses
from lwgan.recovery.fitting import _Targets, _Temporal, relabel_limbs, temporal_loss
from lwgan.recovery.video import Detections, unreliable_frames


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


def test_swapped_leg_labels_are_matched_to_the_body():
    generator = torch.Generator().manual_seed(1)
    projected = torch.rand(2, 23, 2, generator=generator)
    observed = projected.clone()
    legs = [("left_knee", "right_knee"), ("left_ankle", "right_ankle"), ("left_heel", "right_heel"), ("left_big_toe", "right_big_toe"),
            ("left_small_toe", "right_small_toe")]
    for left, right in legs:  # frame 0: the detector swapped the legs
        a, b = BODY_KEYPOINT_NAMES.index(left), BODY_KEYPOINT_NAMES.index(right)
        observed[0, [a, b]] = projected[0, [b, a]]
    confidence = torch.ones(2, 23)
    targets = _Targets(observed, confidence, torch.ones(2), torch.zeros(2, 2), torch.zeros(2, 23, 3), torch.zeros(2, 23),
                       torch.zeros(2, 4, 4), torch.zeros(2, dtype=torch.bool), torch.ones(2), torch.ones(2), torch.zeros(2, 2))
    relabelled = relabel_limbs(targets, projected)
    assert torch.allclose(relabelled.keypoints, projected)
    assert torch.equal(relabel_limbs(replace(targets, keypoints=projected), projected).keypoints, projected)


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
    """The nearest vertex is picked without gradients; the gradient is still that of the full minimum over vertices."""
    mask = torch.zeros(2, 24, 24)
    mask[0, 4:20, 6:14] = 1.0
    mask[1, 2:10, 2:22] = 1.0
    distances = fit_losses.mask_distances(mask, points=64)
    vertices = (0.8 * torch.rand(2, 150, 2, generator=torch.Generator().manual_seed(5)) - 0.4).requires_grad_(True)
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
