"""Leg labels decided over a whole video: the exact cheapest labelling, and a walker whose detector labels the rear foot left."""

import itertools

import numpy as np
import pytest

from lwgan.body.skeleton import BODY_KEYPOINT_NAMES
from lwgan.recovery import leg_labels
from lwgan.recovery.leg_labels import (
    ERROR_CAP,
    cheapest_labels,
    consistent_leg_labels,
    leg_label_swaps,
    torso_frontality,
)
from lwgan.recovery.video import Detections

LEG_PARTS = ("knee", "ankle", "heel", "big_toe", "small_toe")


def labelling_cost(points, confidence, swap_cost, times, swaps) -> float:
    """The cost cheapest_labels minimises, summed frame by frame for one labelling (T,) of ints."""
    chosen_points = points[np.arange(len(swaps)), swaps]
    chosen_confidence = confidence[np.arange(len(swaps)), swaps]
    total = float(swap_cost[swaps == 1].sum())
    for t in range(1, len(swaps)):
        if t == 1:
            predicted, weight = chosen_points[0], chosen_confidence[0]
        else:
            velocity = (chosen_points[t - 1] - chosen_points[t - 2]) / (times[t - 1] - times[t - 2])
            predicted = chosen_points[t - 1] + velocity * (times[t] - times[t - 1])
            weight = chosen_confidence[t - 1] * chosen_confidence[t - 2]
        misses = np.minimum(((chosen_points[t] - predicted) ** 2).sum(-1), ERROR_CAP)
        total += float((chosen_confidence[t] * weight * misses).sum())
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_cheapest_labelling_is_the_brute_force_minimum(seed):
    """Random tracks of 9 frames at uneven times: the Viterbi labelling costs what the cheapest of all 512 labellings costs."""
    generator = np.random.default_rng(seed)
    count, members = 9, 4
    detected = np.cumsum(generator.normal(0.0, 0.08, (count, members, 2)), axis=0)
    points = np.stack([detected, detected[:, ::-1]], axis=1)  # swapping reverses the members
    detected_confidence = generator.uniform(0.3, 1.0, (count, members))
    confidence = np.stack([detected_confidence, detected_confidence[:, ::-1]], axis=1)
    swap_cost = generator.uniform(0.0, 0.03, count)
    times = np.sort(generator.choice(20, count, replace=False))
    costs = {labels: labelling_cost(points, confidence, swap_cost, times, np.array(labels)) for labels in itertools.product((0, 1), repeat=count)}
    best = min(costs.values())
    found = cheapest_labels(points, confidence, swap_cost, times)
    assert labelling_cost(points, confidence, swap_cost, times, found.astype(int)) == pytest.approx(best, rel=1e-9, abs=1e-12)
    assert len({round(cost, 9) for cost in costs.values()}) > 100  # the labellings do differ


def walker_detections(count: int = 40, frontal_from: int = 30) -> tuple[Detections, np.ndarray]:
    """A walker in profile, then square on from frame `frontal_from`, as a detector that calls the rear foot left in profile reports it.

    Returns the detections and (N,) bool: the frames where that labelling is wrong. The feet take
    turns: a stance foot stays, the swing foot moves forward 2 speed units a frame (lifted by
    0.05), 6 frames a step; the box (200 pixels) moves on 1 unit a frame with the hips.
    """
    index = {name: BODY_KEYPOINT_NAMES.index(name) for name in BODY_KEYPOINT_NAMES}
    speed = 6.0
    feet = np.zeros((count, 2, 2))  # true left, right; x, y (pixels)
    feet[0] = [[64.0, 180.0], [100.0, 180.0]]  # the rear (left) foot swings first
    for t in range(1, count):
        swing = (t - 1) // 6 % 2  # 0: the left foot swings
        feet[t] = feet[t - 1]
        feet[t, swing, 0] += 2 * speed
        feet[t, :, 1] = 180.0
        feet[t, swing, 1] -= 0.05 * 200 * np.sin(np.pi * ((t - 1) % 6 + 1) / 6)
    hips_x = 82.0 + speed * np.arange(count)
    keypoints = np.zeros((count, len(BODY_KEYPOINT_NAMES), 3), np.float32)
    keypoints[..., 2] = 0.9
    half_width = np.where(np.arange(count) >= frontal_from, 22.0, 2.0)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        keypoints[:, index[f"{side}_shoulder"], :2] = np.stack([hips_x + sign * half_width, np.full(count, 40.0)], -1)
        keypoints[:, index[f"{side}_hip"], :2] = np.stack([hips_x + sign * half_width, np.full(count, 100.0)], -1)
    for side, foot in (("left", 0), ("right", 1)):
        ankle = feet[:, foot]
        hip = np.stack([hips_x, np.full(count, 100.0)], -1)
        parts = {"ankle": ankle, "knee": (ankle + hip) / 2 + [4.0, 0.0], "heel": ankle - [6.0, -4.0], "big_toe": ankle + [14.0, 6.0],
                 "small_toe": ankle + [12.0, 5.0]}
        for part, place in parts.items():
            keypoints[:, index[f"{side}_{part}"], :2] = place
    rear_is_right = feet[:, 1, 0] < feet[:, 0, 0]
    mislabelled = rear_is_right & (np.arange(count) < frontal_from)
    detected = keypoints.copy()
    for part in LEG_PARTS:
        left, right = index[f"left_{part}"], index[f"right_{part}"]
        detected[mislabelled, left], detected[mislabelled, right] = keypoints[mislabelled, right], keypoints[mislabelled, left]
    # 3D landmarks: the 2D places, each label's depth on its own side (+z: away from the camera), as BlazePose gives them.
    world = detected.copy()
    world[..., 2] = [0.1 if name.startswith("left_") else -0.1 if name.startswith("right_") else 0.0 for name in BODY_KEYPOINT_NAMES]
    boxes = np.stack([hips_x - 100.0, np.zeros(count), hips_x + 100.0, np.full(count, 200.0)], -1).astype(np.float32)
    masks = [np.ones((4, 4), np.uint8)] * count
    return Detections(np.ones(count, bool), detected, world, boxes, masks, (240, 400)), mislabelled


def test_a_walker_keeps_his_legs_through_the_profile_frames_and_the_square_on_frames_name_them():
    detections, mislabelled = walker_detections()
    assert 10 <= mislabelled.sum() <= 20  # in profile the detector's labels are wrong in every other step
    frontality = torso_frontality(detections.keypoints[..., :2] / 200.0, detections.keypoints[..., 2])
    # Width over height times the least confidence: (4 / 60) * 0.9 in profile, (44 / 60) * 0.9 square on.
    np.testing.assert_allclose(frontality[:30], 0.06, atol=1e-5)
    np.testing.assert_allclose(frontality[30:], 0.66, atol=1e-5)
    swaps = leg_label_swaps(detections)
    np.testing.assert_array_equal(swaps, mislabelled)
    relabelled = consistent_leg_labels(detections)
    truth, _ = walker_detections(frontal_from=0)  # the same keypoints with every label right, but square on
    legs = [BODY_KEYPOINT_NAMES.index(f"{side}_{part}") for side in ("left", "right") for part in LEG_PARTS]
    np.testing.assert_array_equal(relabelled.keypoints[:, legs], truth.keypoints[:, legs])
    # The landmarks move with the labels in the picture and keep their sides in depth.
    np.testing.assert_array_equal(relabelled.world_landmarks[..., :2], relabelled.keypoints[..., :2])
    np.testing.assert_array_equal(relabelled.world_landmarks[..., 2], detections.world_landmarks[..., 2])
    np.testing.assert_array_equal(detections.keypoints, walker_detections()[0].keypoints)  # the input is left alone


def test_the_square_on_frames_name_the_legs_whichever_way_the_profile_frames_began():
    """The same walk with every label swapped in profile: the square-on frames still decide."""
    detections, mislabelled = walker_detections()
    legs = [(BODY_KEYPOINT_NAMES.index(f"left_{part}"), BODY_KEYPOINT_NAMES.index(f"right_{part}")) for part in LEG_PARTS]
    keypoints = detections.keypoints.copy()
    for left, right in legs:
        keypoints[:30, [left, right]] = keypoints[:30, [right, left]]
    flipped = Detections(detections.found, keypoints, keypoints.copy(), detections.boxes, detections.masks, detections.image_size)
    expected = np.arange(40) < 30
    expected[:30] ^= mislabelled[:30]
    np.testing.assert_array_equal(leg_label_swaps(flipped), expected)


def test_frames_without_a_person_restart_the_motion_and_are_never_swapped():
    detections, _ = walker_detections()
    found = np.ones(40, bool)
    found[[0, 17, 18]] = False
    keypoints = detections.keypoints.copy()
    keypoints[~found] = np.nan
    boxes = detections.boxes.copy()
    boxes[~found] = np.nan
    gapped = Detections(found, keypoints, keypoints.copy(), boxes, detections.masks, detections.image_size)
    swaps = leg_label_swaps(gapped)
    assert not swaps[~found].any()
    # Each run is labelled on its own: the same as the run alone.
    alone = Detections(np.ones(21, bool), keypoints[19:], keypoints[19:].copy(), boxes[19:], detections.masks[19:], detections.image_size)
    np.testing.assert_array_equal(swaps[19:], leg_label_swaps(alone))


def test_a_frame_with_both_legs_in_the_middle_does_not_break_a_legs_identity(monkeypatch):
    """The detector puts both legs halfway between the feet for two frames with the feet far apart: those frames are left out of the motion, and the labels on both sides stay right."""
    detections, mislabelled = walker_detections()
    keypoints = detections.keypoints.copy()
    for frame in (9, 10):
        for part in LEG_PARTS:
            left, right = BODY_KEYPOINT_NAMES.index(f"left_{part}"), BODY_KEYPOINT_NAMES.index(f"right_{part}")
            keypoints[frame, [left, right], :2] = (keypoints[frame, left, :2] + keypoints[frame, right, :2]) / 2.0
    garbled = Detections(detections.found, keypoints, keypoints.copy(), detections.boxes, detections.masks, detections.image_size)
    others = np.setdiff1d(np.arange(40), [9, 10])
    np.testing.assert_array_equal(leg_label_swaps(garbled)[others], mislabelled[others])
    # Kept in the motion, the two frames cut the chain: the profile frames before them take the wrong identity.
    monkeypatch.setattr(leg_labels, "MIN_SEPARATION", 0.0)
    assert (leg_label_swaps(garbled)[:9] != mislabelled[:9]).all()
