"""BVH motion files: a reader, forward kinematics, and retargeting of the CMU skeleton to SMPL-24 poses.

Facts about the CMU BVH release used in tests/data/cmu_mocap ("cmuconvert-max", 31 joints): with
every channel at zero the skeleton stands with y up, facing +z, its left on +x (LeftHip has x > 0,
the toes point +z): the axes of SMPL's body frame. Unlike SMPL's T-pose, the arms hang down
(LeftElbow offset (0, -4.25, 0)) and the legs are splayed by about 20 degrees; bvh_to_smpl()
calibrates these rest directions away. Lengths are in the release's own unit (about 5.6 cm).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lwgan.body.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    slerp_matrices,
)
from lwgan.body.skeleton import SMPL_JOINT_NAMES, SMPL_PARENTS
from lwgan.recovery.pose_files import SmplMotion

logger = logging.getLogger(__name__)

CMU_JOINT_MAP = {
    "pelvis": "Hips", "left_hip": "LeftHip", "right_hip": "RightHip", "spine1": "lowerback",
    "left_knee": "LeftKnee", "right_knee": "RightKnee", "spine2": "Chest",
    "left_ankle": "LeftAnkle", "right_ankle": "RightAnkle", "spine3": "Chest2",
    "left_foot": "LeftToe", "right_foot": "RightToe", "neck": "Neck",
    "left_collar": "LeftCollar", "right_collar": "RightCollar", "head": "Head",
    "left_shoulder": "LeftShoulder", "right_shoulder": "RightShoulder",
    "left_elbow": "LeftElbow", "right_elbow": "RightElbow", "left_wrist": "LeftWrist",
    "right_wrist": "RightWrist", "left_hand": "LFingers", "right_hand": "RFingers",
}
"""SMPL joint -> the CMU BVH joint at the same place (joint names of the cmuconvert-max release).

CMU's LHipJoint/RHipJoint, lowerneck, lhand/rhand and thumbs have no SMPL counterpart. Their
rotations are absorbed: each SMPL joint takes the world rotation of the CMU joint that moves its
SMPL child (e.g. spine3 takes lowerneck, the bone from Chest2 up to Neck; the wrist takes lhand).
"""

SMPL_TEMPLATE_JOINTS = np.array([
    [-0.0018, -0.2233, 0.0282], [0.0695, -0.3142, 0.0239], [-0.0677, -0.3145, 0.0214],
    [-0.0025, -0.1089, 0.0013], [0.1040, -0.6756, 0.0150], [-0.1055, -0.6828, 0.0181],
    [0.0054, 0.0247, 0.0302], [0.0911, -1.0880, -0.0255], [-0.0920, -1.0950, -0.0216],
    [0.0022, 0.0732, 0.0326], [0.1157, -1.1430, 0.0975], [-0.1152, -1.1438, 0.0998],
    [-0.0002, 0.2876, -0.0115], [0.0811, 0.1947, -0.0063], [-0.0791, 0.1928, -0.0107],
    [0.0050, 0.3523, 0.0401], [0.1726, 0.2259, -0.0174], [-0.1730, 0.2250, -0.0197],
    [0.4320, 0.2131, -0.0424], [-0.4303, 0.2085, -0.0359], [0.6820, 0.2221, -0.0418],
    [-0.6762, 0.2152, -0.0389], [0.769, 0.212, -0.057], [-0.765, 0.207, -0.049],
])
"""(24, 3) rest joints of the neutral SMPL body (T-pose, metres, approximate); the default retarget target."""

DRIVING_CHILD = {"spine3": "neck"}
"""For SMPL joints with several children, the child whose BVH bone drives the joint's rotation.

The pelvis takes the rotation of its own mapped joint (the root); joints with one child use that child.
"""

CALIBRATED_JOINTS = (
    "left_hip", "right_hip", "left_knee", "right_knee", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)
"""SMPL joints whose rest bone direction is calibrated onto the BVH's: the limbs, where the two rest
poses differ in posture (CMU: arms hanging, legs splayed; SMPL: T-pose). The torso, collars, neck,
head and feet stand upright with flat feet in both rest poses; their bone directions differ there
because the skeletons place joints differently (SMPL's head joint sits in front of its neck joint),
so they are not calibrated."""


@dataclass(frozen=True, eq=False)
class BvhMotion:
    """The contents of a BVH file (numpy float64, the file's length unit, angles as matrices).

    joint_names: (J,) names in file order (parents before children); joint 0 is the root.
    parents: (J,) index of each joint's parent, -1 for the root.
    offsets: (J, 3) rest offset of each joint from its parent (the root's from the origin).
    channels: (J,) channel names of each joint, e.g. ("Zrotation", "Yrotation", "Xrotation").
    frame_time: seconds per frame, as written in the file.
    rotations: (N, J, 3, 3) local rotation of each joint: the product of its rotation channels in
        the listed order (intrinsic), R = R_Z @ R_Y @ R_X for "Zrotation Yrotation Xrotation".
    root_positions: (N, 3) root position per frame (root offset plus its position channels).
    end_sites: joint index -> (3,) offset of the End Site under that joint.
    """

    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    channels: tuple[tuple[str, ...], ...]
    frame_time: float
    rotations: np.ndarray
    root_positions: np.ndarray
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return self.rotations.shape[0]

    @property
    def fps(self) -> float:
        """Frame rate; snapped to the nearest integer when within 0.01% (files write 1/120 s as .0083333)."""
        rate = 1.0 / self.frame_time
        return float(round(rate)) if abs(rate - round(rate)) < 1e-4 * rate else rate


class _Tokens:
    """Whitespace-separated tokens of the HIERARCHY section with their line numbers, for error messages."""

    def __init__(self, lines: list[str], source: str) -> None:
        self.items = [(token, number) for number, line in enumerate(lines, start=1) for token in line.split()]
        self.position = 0
        self.source = source
        self.last_line = len(lines)

    def error(self, message: str, line: int | None = None) -> ValueError:
        if line is None:
            line = self.items[self.position][1] if self.position < len(self.items) else self.last_line
        return ValueError(f"{self.source}:{line}: {message}")

    def peek(self) -> str | None:
        return self.items[self.position][0] if self.position < len(self.items) else None

    def next(self, what: str) -> tuple[str, int]:
        if self.position >= len(self.items):
            raise self.error(f"unexpected end of file, expected {what}")
        item = self.items[self.position]
        self.position += 1
        return item

    def expect(self, keyword: str) -> int:
        token, line = self.next(repr(keyword))
        if token != keyword:
            raise self.error(f"expected {keyword!r}, found {token!r}", line)
        return line

    def number(self, what: str) -> float:
        token, line = self.next(what)
        try:
            value = float(token)
        except ValueError:
            raise self.error(f"expected a number for {what}, found {token!r}", line) from None
        if not math.isfinite(value):
            raise self.error(f"{what} is not finite: {token!r}", line)
        return value

    def rest_of_line(self, line: int) -> str:
        words = []
        while self.position < len(self.items) and self.items[self.position][1] == line:
            words.append(self.items[self.position][0])
            self.position += 1
        return " ".join(words)


_AXES = {"X": 0, "Y": 1, "Z": 2}


def _parse_hierarchy(tokens: _Tokens) -> tuple[list[str], list[int], list[list[float]], list[tuple[str, ...]], dict[int, np.ndarray]]:
    """Parse HIERARCHY up to (not including) MOTION: names, parents, offsets, channels, end sites."""
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []
    end_sites: dict[int, np.ndarray] = {}

    def offset(what: str) -> list[float]:
        tokens.expect("OFFSET")
        return [tokens.number(f"the {axis} offset of {what}") for axis in "xyz"]

    def joint(parent: int, keyword_line: int) -> None:
        name = tokens.rest_of_line(keyword_line)
        if not name:
            raise tokens.error("a joint needs a name", keyword_line)
        if name in names:
            raise tokens.error(f"joint name {name!r} appears twice", keyword_line)
        index = len(names)
        names.append(name)
        parents.append(parent)
        channels.append(())
        tokens.expect("{")
        offsets.append(offset(name))
        while True:
            token, line = tokens.next(f"CHANNELS, JOINT, End Site or '}}' in joint {name!r}")
            if token == "CHANNELS":
                count_text, count_line = tokens.next("the channel count")
                if not count_text.isdigit():
                    raise tokens.error(f"expected a channel count, found {count_text!r}", count_line)
                names_of_channels = tuple(tokens.next("a channel name")[0] for _ in range(int(count_text)))
                for channel in names_of_channels:
                    if len(channel) != 9 or channel[0] not in _AXES or channel[1:] not in ("rotation", "position"):
                        raise tokens.error(f"unknown channel {channel!r} in joint {name!r}", line)
                    if channel.endswith("position") and parent != -1:
                        raise tokens.error(f"position channels are only supported on the root, found {channel!r} in joint {name!r}", line)
                channels[index] = names_of_channels
            elif token == "JOINT":
                joint(index, line)
            elif token == "End":
                tokens.expect("Site")
                tokens.expect("{")
                end_sites[index] = np.array(offset(f"the End Site of {name!r}"))
                tokens.expect("}")
            elif token == "}":
                return
            else:
                raise tokens.error(f"unexpected {token!r} in joint {name!r}", line)

    tokens.expect("HIERARCHY")
    root_line = tokens.expect("ROOT")
    joint(-1, root_line)
    if tokens.peek() == "ROOT":
        raise tokens.error("only one ROOT per file is supported")
    return names, parents, offsets, channels, end_sites


def _channel_rotations(values: np.ndarray, channels: tuple[str, ...]) -> torch.Tensor:
    """(N, C) degrees of one joint's channels -> (N, 3, 3) product of its rotations in listed order."""
    rotation = torch.eye(3, dtype=torch.float64).expand(values.shape[0], 3, 3)
    for column, channel in enumerate(channels):
        if channel.endswith("rotation"):
            axis_angle = torch.zeros(values.shape[0], 3, dtype=torch.float64)
            axis_angle[:, _AXES[channel[0]]] = torch.from_numpy(np.radians(values[:, column]))
            rotation = rotation @ axis_angle_to_matrix(axis_angle)
    return rotation


def read_bvh(path: str | os.PathLike) -> BvhMotion:
    """Read a BVH motion file.

    Supports one ROOT, any rotation channel order per joint (applied intrinsically in the listed
    order), position channels on the root only, End Sites, and one frame per line.

    Returns:
        BvhMotion with rotations (N, J, 3, 3) and root_positions (N, 3), float64.
    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable text, malformed hierarchy, missing MOTION section, bad frame count or
            frame time, a frame with the wrong number of values, a value that is not a number; the
            message is "<file>:<line>: what is wrong".
    """
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise FileNotFoundError(f"{source}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, IsADirectoryError, OSError) as error:
        raise ValueError(f"{source}: not a readable BVH text file ({type(error).__name__}: {error})") from error
    lines = text.splitlines()
    motion_line = next((index for index, line in enumerate(lines) if line.strip() == "MOTION"), None)
    if motion_line is None:
        raise ValueError(f"{source}:{len(lines)}: no MOTION section")
    tokens = _Tokens(lines[:motion_line], source)
    names, parents, offsets, channels, end_sites = _parse_hierarchy(tokens)
    if tokens.peek() is not None:
        raise tokens.error(f"unexpected {tokens.peek()!r} after the hierarchy")

    def header(index: int, label: str) -> str:
        if index >= len(lines) or not lines[index].strip().startswith(label):
            found = lines[index].strip() if index < len(lines) else "end of file"
            raise ValueError(f"{source}:{index + 1}: expected '{label} ...' after MOTION, found {found!r}")
        return lines[index].strip()[len(label):].strip()

    frames_text = header(motion_line + 1, "Frames:")
    if not frames_text.isdigit() or int(frames_text) == 0:
        raise ValueError(f"{source}:{motion_line + 2}: the frame count must be a positive integer, found {frames_text!r}")
    num_frames = int(frames_text)
    frame_time_text = header(motion_line + 2, "Frame Time:")
    try:
        frame_time = float(frame_time_text)
    except ValueError:
        frame_time = float("nan")
    if not (math.isfinite(frame_time) and frame_time > 0):
        raise ValueError(f"{source}:{motion_line + 3}: the frame time must be a positive number of seconds, found {frame_time_text!r}")

    num_values = sum(len(joint_channels) for joint_channels in channels)
    values = np.empty((num_frames, num_values))
    frame = 0
    for number in range(motion_line + 4, len(lines) + 1):
        words = lines[number - 1].split()
        if not words:
            continue
        if frame == num_frames:
            raise ValueError(f"{source}:{number}: more frame lines than the {num_frames} frames the header declares")
        if len(words) != num_values:
            raise ValueError(f"{source}:{number}: frame {frame} has {len(words)} values, the hierarchy has {num_values} channels")
        try:
            values[frame] = np.array(words, dtype=np.float64)
        except ValueError:
            bad = next(word for word in words if not _is_number(word))
            raise ValueError(f"{source}:{number}: frame {frame} has a value that is not a number: {bad!r}") from None
        if not np.isfinite(values[frame]).all():
            raise ValueError(f"{source}:{number}: frame {frame} has a value that is not finite")
        frame += 1
    if frame < num_frames:
        raise ValueError(f"{source}:{len(lines)}: truncated: the header declares {num_frames} frames, the file has {frame}")

    rotations = torch.empty(num_frames, len(names), 3, 3, dtype=torch.float64)
    offsets_array = np.array(offsets, dtype=np.float64)
    root_positions = np.repeat(offsets_array[:1], num_frames, axis=0)
    start = 0
    for index, joint_channels in enumerate(channels):
        joint_values = values[:, start:start + len(joint_channels)]
        rotations[:, index] = _channel_rotations(joint_values, joint_channels)
        for column, channel in enumerate(joint_channels):
            if channel.endswith("position"):
                root_positions[:, _AXES[channel[0]]] += joint_values[:, column]
        start += len(joint_channels)
    return BvhMotion(
        joint_names=tuple(names), parents=tuple(parents), offsets=offsets_array, channels=tuple(channels),
        frame_time=frame_time, rotations=rotations.numpy(), root_positions=root_positions, end_sites=end_sites,
    )


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def forward_kinematics(
    parents: tuple[int, ...] | list[int],
    offsets: np.ndarray,
    rotations: np.ndarray,
    root_positions: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """World rotations and positions of a skeleton whose parents come before their children.

    Args:
        parents: (J,) parent index, -1 for the root.
        offsets: (J, 3) rest offset of each joint from its parent (ignored for the root).
        rotations: (N, J, 3, 3) local rotations.
        root_positions: (N, 3) root positions.
    Returns:
        world_rotations (N, J, 3, 3) and world_positions (N, J, 3), float64.
    """
    num_frames, num_joints = rotations.shape[:2]
    if offsets.shape != (num_joints, 3) or root_positions.shape != (num_frames, 3) or len(parents) != num_joints:
        raise ValueError(
            f"forward_kinematics: shapes disagree: {len(parents)} parents, offsets {offsets.shape}, "
            f"rotations {rotations.shape}, root_positions {root_positions.shape}"
        )
    world_rotations = np.empty((num_frames, num_joints, 3, 3))
    world_positions = np.empty((num_frames, num_joints, 3))
    for joint, parent in enumerate(parents):
        if parent < 0:
            world_rotations[:, joint] = rotations[:, joint]
            world_positions[:, joint] = root_positions
        else:
            world_rotations[:, joint] = world_rotations[:, parent] @ rotations[:, joint]
            world_positions[:, joint] = world_positions[:, parent] + world_rotations[:, parent] @ offsets[joint]
    return world_rotations, world_positions


def rest_positions(motion: BvhMotion) -> np.ndarray:
    """(J, 3) joint positions of the BVH skeleton with every channel at zero (root at its offset)."""
    identity = np.broadcast_to(np.eye(3), (1, len(motion.parents), 3, 3))
    _, positions = forward_kinematics(motion.parents, motion.offsets, identity, motion.offsets[:1])
    return positions[0]


def _minimal_rotation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(3, 3) rotation by the smallest angle that turns unit vector `source` onto unit vector `target`."""
    axis = np.cross(source, target)
    sine, cosine = np.linalg.norm(axis), float(np.dot(source, target))
    if sine < 1e-9:
        if cosine > 0:
            return np.eye(3)
        helper = np.eye(3)[np.argmin(np.abs(source))]  # opposite vectors: half turn about any perpendicular
        axis, sine = np.cross(source, helper), 1.0
        axis = axis / np.linalg.norm(axis) * math.pi
        return axis_angle_to_matrix(torch.from_numpy(axis)).numpy()
    axis = axis / sine * math.atan2(sine, cosine)
    return axis_angle_to_matrix(torch.from_numpy(axis)).numpy()


def _leg_length(points: np.ndarray, names: tuple[str, ...] = SMPL_JOINT_NAMES) -> float:
    """Mean over both legs of |hip - knee| + |knee - ankle| for (24, 3) SMPL-ordered joint positions."""
    lengths = []
    for side in ("left", "right"):
        hip, knee, ankle = (points[names.index(f"{side}_{part}")] for part in ("hip", "knee", "ankle"))
        lengths.append(np.linalg.norm(knee - hip) + np.linalg.norm(ankle - knee))
    return float(np.mean(lengths))


def _resample(rotations: torch.Tensor, translation: np.ndarray, source_fps: float, fps: float) -> tuple[torch.Tensor, np.ndarray]:
    """Resample (N, K, 3, 3) rotations (slerp) and (N, 3) positions (linear) from source_fps to fps."""
    num_frames = rotations.shape[0]
    duration = (num_frames - 1) / source_fps
    num_output = int(math.floor(duration * fps + 1e-6)) + 1
    source_index = np.arange(num_output) * (source_fps / fps)
    lower = np.minimum(np.floor(source_index + 1e-9).astype(np.int64), num_frames - 1)
    upper = np.minimum(lower + 1, num_frames - 1)
    weight = np.clip(source_index - lower, 0.0, 1.0)
    weight[weight < 1e-9] = 0.0
    joints = rotations.shape[1]
    weight_tensor = torch.from_numpy(weight).to(rotations.dtype)[:, None].expand(num_output, joints)
    resampled = slerp_matrices(rotations[lower], rotations[upper], weight_tensor)
    positions = translation[lower] * (1 - weight[:, None]) + translation[upper] * weight[:, None]
    return resampled, positions


def bvh_to_smpl(
    motion: BvhMotion,
    fps: float = 30.0,
    joint_map: dict[str, str] | None = None,
    rest_joints: np.ndarray | None = None,
    metres_per_unit: float | None = None,
) -> SmplMotion:
    """Retarget a BVH motion (CMU skeleton by default) to SMPL-24 axis-angle poses at `fps`.

    Every SMPL joint j gets a world rotation W_j = W_bvh[d(j)] @ C_j, where d(j) is the BVH joint
    that moves j's SMPL child (the BVH parent of the child's mapped joint; the mapped joint itself
    for the pelvis and for leaves). C_j is a rest calibration for the limbs (CALIBRATED_JOINTS):
    the smallest rotation turning the target's rest bone direction (rest_joints[child] -
    rest_joints[j]) onto the BVH rest bone direction, so thighs, shins, upper arms, forearms and
    hands point where the BVH bones point in every frame although the BVH rest pose (arms down,
    legs splayed) differs from SMPL's T-pose; C_j is the identity for the torso, collars, neck,
    head and feet (upright in both rest poses). Local rotations are W_parent^T @ W_j, so rotations
    of BVH joints without an SMPL counterpart are absorbed.

    Args:
        motion: from read_bvh().
        fps: output frame rate; rotations are resampled by slerp, translations linearly. Frame k is
            time k / fps; the last frame is at or before the end of the clip.
        joint_map: SMPL joint name -> BVH joint name for all 24 joints; CMU_JOINT_MAP when None.
        rest_joints: (24, 3) rest joints (T-pose, facing +z) of the body the poses are meant for,
            e.g. a BodyModel's zero-pose joints; SMPL_TEMPLATE_JOINTS when None.
        metres_per_unit: scale of the BVH length unit. When None it is the ratio of the leg lengths
            (hip-knee-ankle) of rest_joints and of the BVH rest skeleton, so the motion fits the
            target's legs: about 0.055 m per unit for the CMU clips and the SMPL template (whose
            0.78 m legs belong to a person of about 1.7 m). With rest_joints in BVH units it is 1.
    Returns:
        SmplMotion: pose (N', 24, 3) float32 axis-angle, pose[:, 0] the global orientation in the
        y-up SMPL body frame (not flipped for images: lwgan.body.camera's upright (pi, 0, 0) flip is
        applied by the camera code); translation (N', 3) float32 metres, the BVH root (pelvis)
        position in the capture's world frame (floor at y = 0 for CMU); fps.
    Raises:
        ValueError: a joint of joint_map is not in the file, or rest_joints has the wrong shape.
    """
    joint_map = CMU_JOINT_MAP if joint_map is None else joint_map
    rest_joints = SMPL_TEMPLATE_JOINTS if rest_joints is None else np.asarray(rest_joints, dtype=np.float64)
    if rest_joints.shape != (24, 3):
        raise ValueError(f"rest_joints must have shape (24, 3), got {rest_joints.shape}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    missing_smpl = [name for name in SMPL_JOINT_NAMES if name not in joint_map]
    missing_bvh = sorted({joint_map[name] for name in SMPL_JOINT_NAMES if name in joint_map} - set(motion.joint_names))
    if missing_smpl or missing_bvh:
        raise ValueError(
            f"cannot retarget: joint_map lacks SMPL joints {missing_smpl} and names BVH joints {missing_bvh} "
            f"that the file does not have (its joints: {list(motion.joint_names)}); pass joint_map for this skeleton"
        )
    mapped = [motion.joint_names.index(joint_map[name]) for name in SMPL_JOINT_NAMES]
    world_rotations, world_positions = forward_kinematics(motion.parents, motion.offsets, motion.rotations, motion.root_positions)
    bvh_rest = rest_positions(motion)

    def is_ancestor(ancestor: int, joint: int) -> bool:
        while joint >= 0:
            if joint == ancestor:
                return True
            joint = motion.parents[joint]
        return False

    children = {index: [child for child, parent in enumerate(SMPL_PARENTS) if parent == index] for index in range(24)}
    drivers, calibrations = [], []
    for index, name in enumerate(SMPL_JOINT_NAMES):
        child_name = DRIVING_CHILD.get(name)
        if child_name is None and len(children[index]) == 1:
            child_name = SMPL_JOINT_NAMES[children[index][0]]
        if child_name is None:
            drivers.append(mapped[index])
            calibrations.append(np.eye(3))
            continue
        child = SMPL_JOINT_NAMES.index(child_name)
        driver = motion.parents[mapped[child]]
        if driver < 0 or not is_ancestor(mapped[index], driver):
            raise ValueError(
                f"cannot retarget: BVH joint {joint_map[child_name]!r} (SMPL {child_name}) is not below "
                f"{joint_map[name]!r} (SMPL {name}) in the hierarchy"
            )
        target_bone = rest_joints[child] - rest_joints[index]
        bvh_bone = bvh_rest[mapped[child]] - bvh_rest[driver]
        if name not in CALIBRATED_JOINTS:
            calibration = np.eye(3)
        elif np.linalg.norm(target_bone) < 1e-8 or np.linalg.norm(bvh_bone) < 1e-8:
            logger.debug("no rest calibration for SMPL %s: zero-length bone", name)
            calibration = np.eye(3)
        else:
            calibration = _minimal_rotation(target_bone / np.linalg.norm(target_bone), bvh_bone / np.linalg.norm(bvh_bone))
        drivers.append(driver)
        calibrations.append(calibration)

    smpl_world = torch.from_numpy(world_rotations[:, drivers] @ np.stack(calibrations))
    parents = list(SMPL_PARENTS)
    parents[0] = 0
    local = smpl_world[:, parents].transpose(-1, -2) @ smpl_world
    local[:, 0] = smpl_world[:, 0]

    if metres_per_unit is None:
        metres_per_unit = _leg_length(rest_joints) / _leg_length(bvh_rest[mapped])
    translation = world_positions[:, mapped[0]] * metres_per_unit
    local, translation = _resample(local, translation, motion.fps, fps)
    pose = matrix_to_axis_angle(local).numpy().astype(np.float32)
    return SmplMotion(pose=pose, translation=translation.astype(np.float32), fps=float(fps))
