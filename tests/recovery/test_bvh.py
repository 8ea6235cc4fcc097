"""BVH reading and retargeting to SMPL-24, checked against forward kinematics written here."""

import logging
import math
from pathlib import Path

import numpy as np
import pytest

from lwgan.body.skeleton import SMPL_JOINT_NAMES, SMPL_PARENTS
from lwgan.recovery.bvh import (
    CMU_JOINT_MAP,
    SMPL_TEMPLATE_JOINTS,
    BvhMotion,
    bvh_to_smpl,
    read_bvh,
)

logger = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parents[1] / "data" / "cmu_mocap"
WALK, HOP = DATA / "131_01.bvh", DATA / "131_03.bvh"

LIMBS = {
    "thigh": [("left_hip", "left_knee"), ("right_hip", "right_knee")],
    "shin": [("left_knee", "left_ankle"), ("right_knee", "right_ankle")],
    "upper arm": [("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow")],
    "forearm": [("left_elbow", "left_wrist"), ("right_elbow", "right_wrist")],
    "hand": [("left_wrist", "left_hand"), ("right_wrist", "right_hand")],
}
SPINE = [("spine1", "spine2"), ("spine2", "spine3"), ("spine3", "neck"), ("neck", "head")]


def rodrigues(axis_angle: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3, 3), written out (R = I + sin K + (1 - cos) K^2)."""
    angle = np.linalg.norm(axis_angle, axis=-1, keepdims=True)
    axis = axis_angle / np.maximum(angle, 1e-12)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    cross = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(*axis.shape[:-1], 3, 3)
    angle = angle[..., None]
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def elementary(axis: str, degrees: np.ndarray) -> np.ndarray:
    """(N,) degrees -> (N, 3, 3) rotations about the named coordinate axis."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    one, zero = np.ones_like(c), np.zeros_like(c)
    rows = {
        "X": [one, zero, zero, zero, c, -s, zero, s, c],
        "Y": [c, zero, s, zero, one, zero, -s, zero, c],
        "Z": [c, -s, zero, s, c, zero, zero, zero, one],
    }[axis]
    return np.stack(rows, axis=-1).reshape(-1, 3, 3)


def positions_by_fk(parents, offsets, rotations, root_positions):
    """(N, J, 3) world joint positions: p_j = p_parent + W_parent offset_j, W_j = W_parent R_j."""
    world = [None] * len(parents)
    positions = [None] * len(parents)
    for joint, parent in enumerate(parents):
        if parent < 0:
            world[joint], positions[joint] = rotations[:, joint], root_positions
        else:
            world[joint] = world[parent] @ rotations[:, joint]
            positions[joint] = positions[parent] + np.einsum("nij,j->ni", world[parent], offsets[joint])
    return np.stack(positions, axis=1)


def bvh_positions(motion: BvhMotion, rest: bool = False) -> np.ndarray:
    rotations = np.broadcast_to(np.eye(3), (1, len(motion.parents), 3, 3)) if rest else motion.rotations
    root = motion.offsets[:1] if rest else motion.root_positions
    return positions_by_fk(motion.parents, motion.offsets, rotations, root)


def smpl_positions(pose: np.ndarray, translation: np.ndarray, rest_joints: np.ndarray) -> np.ndarray:
    offsets = np.array([rest_joints[j] - rest_joints[p] if p >= 0 else np.zeros(3) for j, p in enumerate(SMPL_PARENTS)])
    return positions_by_fk(SMPL_PARENTS, offsets, rodrigues(pose.astype(np.float64)), translation.astype(np.float64))


def cosines(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    return (first * second).sum(-1) / (np.linalg.norm(first, axis=-1) * np.linalg.norm(second, axis=-1))


def hand_made_t_pose() -> np.ndarray:
    """(24, 3) an SMPL-ordered T-pose built here: legs straight down, arms straight out along x, torso up, feet forward."""
    points = {
        "pelvis": (0, 0, 0), "spine1": (0, 0.1, 0), "spine2": (0, 0.22, 0), "spine3": (0, 0.28, 0),
        "neck": (0, 0.5, 0), "head": (0, 0.6, 0.02),
    }
    for side, sign in (("left", 1), ("right", -1)):
        points.update({
            f"{side}_hip": (sign * 0.08, -0.08, 0), f"{side}_knee": (sign * 0.08, -0.48, 0),
            f"{side}_ankle": (sign * 0.08, -0.88, 0), f"{side}_foot": (sign * 0.08, -0.93, 0.12),
            f"{side}_collar": (sign * 0.07, 0.4, 0), f"{side}_shoulder": (sign * 0.17, 0.42, 0),
            f"{side}_elbow": (sign * 0.45, 0.42, 0), f"{side}_wrist": (sign * 0.7, 0.42, 0),
            f"{side}_hand": (sign * 0.78, 0.42, 0),
        })
    return np.array([points[name] for name in SMPL_JOINT_NAMES], dtype=np.float64)


@pytest.fixture(scope="module")
def walk() -> BvhMotion:
    return read_bvh(WALK)


@pytest.fixture(scope="module")
def hop() -> BvhMotion:
    return read_bvh(HOP)


# (a) parsing

@pytest.mark.parametrize("path, frames", [(WALK, 994), (HOP, 1102)])
def test_parse_cmu_files(path, frames):
    motion = read_bvh(path)
    assert motion.num_frames == frames and motion.fps == 120.0
    assert math.isclose(motion.frame_time, 1 / 120, rel_tol=1e-4)
    assert len(motion.joint_names) == 31 and motion.joint_names[0] == "Hips"
    assert motion.channels[0] == ("Xposition", "Yposition", "Zposition", "Zrotation", "Yrotation", "Xrotation")
    assert sum(len(channels) for channels in motion.channels) == 96
    assert motion.rotations.shape == (frames, 31, 3, 3) and motion.root_positions.shape == (frames, 3)
    np.testing.assert_allclose(motion.rotations @ np.swapaxes(motion.rotations, -1, -2), np.broadcast_to(np.eye(3), motion.rotations.shape), atol=1e-12)
    assert all(parent < joint for joint, parent in enumerate(motion.parents))
    names = motion.joint_names
    # The rest pose: y up, facing +z, the subject's left on +x (the axes of SMPL's body frame).
    assert motion.offsets[names.index("LeftHip")][0] > 0 and motion.offsets[names.index("RightHip")][0] < 0
    assert motion.end_sites[names.index("LeftToe")][2] > 0 and motion.offsets[names.index("LeftToe")][2] > 0
    assert motion.end_sites[names.index("Head")][1] > 0
    # Arms hang down in this release's rest pose, unlike SMPL's T-pose.
    assert motion.offsets[names.index("LeftElbow")][1] < -4


def test_channel_order_matches_the_file_text(walk):
    """The parsed local rotation equals the product of elementary rotations in the listed channel order."""
    lines = WALK.read_text().splitlines()
    first_frame = np.array(lines[lines.index("MOTION") + 3].split(), dtype=np.float64)
    start = 0
    for joint, channels in enumerate(walk.channels):
        values = first_frame[start:start + len(channels)]
        start += len(channels)
        expected = np.eye(3)
        for channel, value in zip(channels, values):
            if channel.endswith("rotation"):
                expected = expected @ elementary(channel[0], np.array([value]))[0]
        np.testing.assert_allclose(walk.rotations[0, joint], expected, atol=1e-12)
    np.testing.assert_allclose(walk.root_positions[0], first_frame[:3])
    assert walk.channels[walk.joint_names.index("LeftShoulder")] == ("Zrotation", "Xrotation", "Yrotation")


# (b) retargeting: every limb of the SMPL skeleton points where the BVH limb points

@pytest.mark.parametrize("target", ["bvh_rest", "t_pose"])
@pytest.mark.parametrize("name", ["walk", "hop"])
def test_retargeted_bone_directions_match(request, name, target):
    motion = request.getfixturevalue(name)
    mapped = [motion.joint_names.index(CMU_JOINT_MAP[joint]) for joint in SMPL_JOINT_NAMES]
    rest = bvh_positions(motion, rest=True)[0][mapped] if target == "bvh_rest" else hand_made_t_pose()
    smpl = bvh_to_smpl(motion, fps=motion.fps, rest_joints=rest)
    assert smpl.pose.shape == (motion.num_frames, 24, 3) and smpl.pose.dtype == np.float32
    posed = smpl_positions(smpl.pose, smpl.translation, rest)
    source = bvh_positions(motion)[:, mapped]
    bones = dict(LIMBS, spine=SPINE) if target == "bvh_rest" else LIMBS
    for limb, pairs in bones.items():
        for parent, child in pairs:
            i, j = SMPL_JOINT_NAMES.index(parent), SMPL_JOINT_NAMES.index(child)
            cosine = cosines(posed[:, j] - posed[:, i], source[:, j] - source[:, i])
            logger.info("%s %s %s %s->%s: min cosine %.6f", name, target, limb, parent, child, cosine.min())
            assert cosine.min() > 0.99, (limb, parent, child, cosine.min())


def test_t_pose_target_keeps_the_torso_upright(walk):
    """The torso, neck and head are not calibrated: the first frame's spine stays near vertical (CMU stands upright)."""
    smpl = bvh_to_smpl(walk, fps=30.0, rest_joints=hand_made_t_pose())
    posed = smpl_positions(smpl.pose, smpl.translation, hand_made_t_pose())
    index = SMPL_JOINT_NAMES.index
    spine = posed[0, index("neck")] - posed[0, index("pelvis")]
    assert cosines(spine, np.array([0.0, 1.0, 0.0])) > 0.95


def test_rest_pose_retargets_to_zero_limb_rotations_on_bvh_rest(walk):
    """A BVH frame with every channel zero retargets to the identity on its own rest skeleton."""
    still = BvhMotion(
        joint_names=walk.joint_names, parents=walk.parents, offsets=walk.offsets, channels=walk.channels,
        frame_time=walk.frame_time, rotations=np.broadcast_to(np.eye(3), (2, len(walk.parents), 3, 3)).copy(),
        root_positions=np.zeros((2, 3)),
    )
    mapped = [walk.joint_names.index(CMU_JOINT_MAP[joint]) for joint in SMPL_JOINT_NAMES]
    smpl = bvh_to_smpl(still, fps=120.0, rest_joints=bvh_positions(walk, rest=True)[0][mapped])
    np.testing.assert_allclose(smpl.pose, 0.0, atol=1e-6)
    default = bvh_to_smpl(still, fps=120.0)
    left_shoulder = default.pose[0, SMPL_JOINT_NAMES.index("left_shoulder")]
    assert np.degrees(np.linalg.norm(left_shoulder)) > 80  # the T-pose arm is lowered to hang like CMU's


# (c) the walk, units, frame rate

def test_walk_moves_forward_a_plausible_distance(walk):
    smpl = bvh_to_smpl(walk, fps=30.0)
    displacement = smpl.translation[-1] - smpl.translation[0]
    horizontal = np.hypot(displacement[0], displacement[2])
    assert 1.0 < horizontal < 6.0
    assert displacement[2] > 3 * abs(displacement[0])  # mostly along +z
    pelvis_height = np.median(smpl.translation[:, 1])
    assert 0.75 < pelvis_height < 1.05  # metres: a standing adult's pelvis
    # While walking fast, the body faces where it goes (+z rotated by the global orientation).
    velocity = np.gradient(smpl.translation, axis=0) * smpl.fps
    speed = np.hypot(velocity[:, 0], velocity[:, 2])
    facing = rodrigues(smpl.pose[:, 0].astype(np.float64))[:, :, 2]
    walking = speed > 0.8
    assert walking.sum() > 10
    agreement = cosines(facing[walking][:, [0, 2]], velocity[walking][:, [0, 2]])
    assert np.median(agreement) > 0.9


def test_leg_length_scale(walk):
    smpl = bvh_to_smpl(walk, fps=30.0)
    unit = bvh_to_smpl(walk, fps=30.0, metres_per_unit=1.0)
    ratio = smpl.translation[10] / unit.translation[10]
    assert np.allclose(ratio, ratio[0]) and 0.045 < ratio[0] < 0.065  # CMU's unit is about 5.6 cm
    np.testing.assert_allclose(smpl.pose, unit.pose)


def test_resampling_to_30_fps(walk):
    native = bvh_to_smpl(walk, fps=120.0)
    slow = bvh_to_smpl(walk, fps=30.0)
    assert native.num_frames == 994 and slow.num_frames == 249 and slow.fps == 30.0
    assert abs(slow.num_frames - walk.num_frames / 4) < 2
    np.testing.assert_allclose(rodrigues(slow.pose), rodrigues(native.pose[::4]), atol=1e-5)
    np.testing.assert_allclose(slow.translation, native.translation[::4], atol=1e-6)


def test_resampling_between_frames_is_slerp_and_linear(hop):
    native = bvh_to_smpl(hop, fps=120.0)
    resampled = bvh_to_smpl(hop, fps=50.0)
    assert resampled.num_frames == math.floor((hop.num_frames - 1) / 120 * 50) + 1

    def angle(first, second):
        relative = np.swapaxes(first, -1, -2) @ second
        return np.arccos(np.clip((np.trace(relative, axis1=-2, axis2=-1) - 1) / 2, -1, 1))

    for frame in (1, 7, 100, 333):
        position = frame * 120 / 50
        lower, weight = int(position), position - int(position)
        before, after, between = (rodrigues(pose.astype(np.float64)) for pose in (native.pose[lower], native.pose[lower + 1], resampled.pose[frame]))
        total = angle(before, after)
        np.testing.assert_allclose(angle(before, between), weight * total, atol=2e-5)
        np.testing.assert_allclose(angle(between, after), (1 - weight) * total, atol=2e-5)
        expected = (1 - weight) * native.translation[lower] + weight * native.translation[lower + 1]
        np.testing.assert_allclose(resampled.translation[frame], expected, atol=1e-5)


# (d) malformed files

def broken_copy(tmp_path, edit) -> Path:
    lines = WALK.read_text().splitlines()
    path = tmp_path / "broken.bvh"
    path.write_text("\n".join(edit(lines)) + "\n")
    return path


@pytest.mark.parametrize("edit, message, line", [
    (lambda lines: lines[:-10], "truncated: the header declares 994 frames, the file has 984", None),
    (lambda lines: lines[:200] + [lines[200] + " 1.0"] + lines[201:], "frame 13 has 97 values", 201),
    (lambda lines: lines[:190] + [lines[190].replace("0.0000", "abc", 1)] + lines[191:], "not a number: 'abc'", 191),
    (lambda lines: [line for line in lines if line.strip() != "MOTION"], "no MOTION section", None),
    (lambda lines: lines[:4] + [lines[4].replace("CHANNELS 6", "CHANNELS 6x")] + lines[5:], "channel count", 5),
    (lambda lines: lines[:7] + ["\t\tOFFSET 1.0 two 3.0"] + lines[8:], "expected a number", 8),
    (lambda lines: lines[:6] + ["\t\tSPINE {"] + lines[7:], "expected '{', found 'SPINE'", 7),
    (lambda lines: lines[:8] + ["\t\tSPINE 3"] + lines[9:], "unexpected 'SPINE' in joint 'LHipJoint'", 9),
    (lambda lines: lines[:185] + ["Frames: many"] + lines[186:], "frame count", 186),
    (lambda lines: lines[:186] + ["Frame Time: -1"] + lines[187:], "frame time", 187),
    (lambda lines: lines[:186] + lines[187:], "expected 'Frame Time: ...'", 187),
])
def test_malformed_files_name_the_file_and_line(tmp_path, edit, message, line):
    path = broken_copy(tmp_path, edit)
    with pytest.raises(ValueError, match=message) as error:
        read_bvh(path)
    assert str(error.value).startswith(f"{path}:")
    if line is not None:
        assert str(error.value).startswith(f"{path}:{line}:")


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.bvh"):
        read_bvh(tmp_path / "missing.bvh")
    binary = tmp_path / "binary.bvh"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 20)
    with pytest.raises(ValueError, match="binary.bvh"):
        read_bvh(binary)


def test_unknown_skeleton_needs_a_joint_map(walk):
    renamed = BvhMotion(
        joint_names=tuple(name.replace("Left", "L_") for name in walk.joint_names), parents=walk.parents,
        offsets=walk.offsets, channels=walk.channels, frame_time=walk.frame_time,
        rotations=walk.rotations[:5], root_positions=walk.root_positions[:5],
    )
    with pytest.raises(ValueError, match="joint_map") as error:
        bvh_to_smpl(renamed)
    assert "LeftHip" in str(error.value)
    joint_map = {smpl: bvh.replace("Left", "L_") for smpl, bvh in CMU_JOINT_MAP.items()}
    np.testing.assert_allclose(bvh_to_smpl(renamed, joint_map=joint_map).pose, bvh_to_smpl(walk, fps=30.0).pose[:2], atol=1e-6)
    with pytest.raises(ValueError, match="rest_joints"):
        bvh_to_smpl(walk, rest_joints=SMPL_TEMPLATE_JOINTS[:20])
