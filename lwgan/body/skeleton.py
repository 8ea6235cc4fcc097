"""SMPL-24 skeleton and COCO-17 keypoint tables shared by every body model and motion file."""

from __future__ import annotations

SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)
"""The 24 SMPL joints in SMPL order; joint 0's rotation is the global orientation."""

SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
"""Parent of each SMPL joint (SMPL's kintree_table row 0, root = -1)."""

COCO17_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
"""COCO keypoint order; every BodyModel returns these first in BodyOutput.keypoints."""


def _mirror_permutation(names: tuple[str, ...]) -> tuple[int, ...]:
    """Index of each name's left/right partner (itself for names on the midline)."""
    def partner(name: str) -> str:
        if name.startswith("left_"):
            return "right_" + name[len("left_"):]
        if name.startswith("right_"):
            return "left_" + name[len("right_"):]
        return name
    return tuple(names.index(partner(name)) for name in names)


SMPL_MIRROR = _mirror_permutation(SMPL_JOINT_NAMES)
COCO17_MIRROR = _mirror_permutation(COCO17_NAMES)

FOOT_KEYPOINT_NAMES = ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel")
"""Foot keypoints in COCO-WholeBody's order."""

BODY_KEYPOINT_NAMES = COCO17_NAMES + FOOT_KEYPOINT_NAMES
"""The 23 keypoints every BodyModel returns in BodyOutput.keypoints, in this order."""
