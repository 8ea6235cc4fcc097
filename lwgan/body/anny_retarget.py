"""Retarget SMPL-24 axis-angle poses onto Anny's 104-bone rig, calibrated so the zero pose is a T-pose.

Recipe: forward kinematics over the SMPL tree gives each SMPL
joint's world rotation G_s relative to SMPL's T-pose. Each Anny bone b copies the rotation of the
SMPL joint that drives it, after a fixed T-pose calibration T_b that turns Anny's reference A-pose
into SMPL's T-pose: G_b = G_s[driver(b)] T_b, in world axes. Anny's "local-ref" pose
parameterization takes each bone's rotation relative to its parent in world-aligned axes, so the
delta of bone b is D_b = G_parent(b)^T G_b (the root's is G_root). Identity deltas give Anny's
reference pose, whatever the phenotypes.
"""

from __future__ import annotations

import roma
import torch
from torch import nn
from torch.nn import functional

from lwgan.body.rotations import axis_angle_to_matrix
from lwgan.body.skeleton import SMPL_JOINT_NAMES, SMPL_PARENTS
from lwgan.checks import check_shape

ANNY_TO_SMPL = ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (0.0, 1.0, 0.0))
"""Frame change of row vectors, v_smpl = v_anny @ ANNY_TO_SMPL (Anny: z up, facing -y; SMPL: y up,
facing +z; x is the subject's left in both). A rotation converts as R_anny = C R_smpl C^T."""

_SIDE_SUFFIX = {"left": ".L", "right": ".R"}

_DRIVER_BY_BONE = {
    "root": "pelvis", "pelvis": "pelvis", "spine05": "pelvis",
    "spine04": "spine1", "spine03": "spine1", "spine02": "spine2", "spine01": "spine3",
    "neck01": "neck", "neck02": "neck", "neck03": "neck", "head": "head", "eye": "head",
    "upperleg01": "hip", "upperleg02": "hip", "lowerleg01": "knee", "lowerleg02": "knee", "foot": "ankle",
    "clavicle": "collar", "shoulder01": "collar", "upperarm01": "shoulder", "upperarm02": "shoulder",
    "lowerarm01": "elbow", "lowerarm02": "elbow", "wrist": "wrist",
}
"""SMPL joint (without side) whose rotation drives each Anny bone (without side suffix)."""

_DRIVER_BY_PREFIX = {"toe": "foot", "metacarpal": "wrist", "finger": "hand"}
"""Drivers of the bone families: toes follow SMPL's foot (toe-base) joint, the palm the wrist, the
fingers SMPL's hand joint (at the knuckles)."""

_JOINT_BONES = {
    "pelvis": ("root",), "hip": ("upperleg01",), "knee": ("lowerleg01",), "ankle": ("foot",),
    "foot": ("toe1-1", "toe2-1", "toe3-1", "toe4-1", "toe5-1"),
    "spine1": ("spine04",), "spine2": ("spine02",), "spine3": ("spine01",), "neck": ("neck01",),
    "collar": ("clavicle",), "head": ("head",), "shoulder": ("upperarm01",), "elbow": ("lowerarm01",),
    "wrist": ("wrist",), "hand": ("finger2-1", "finger3-1", "finger4-1", "finger5-1"),
}
"""Anny bones whose heads, averaged, place each SMPL joint (without side)."""

_CALIBRATED_FAMILY = {
    "upperarm01": "upper_arm", "upperarm02": "upper_arm", "lowerarm01": "forearm", "lowerarm02": "forearm",
    "wrist": "hand", "upperleg01": "thigh", "upperleg02": "thigh", "lowerleg01": "shin", "lowerleg02": "shin",
}
"""The T-pose calibration each limb bone takes (metacarpals and fingers take the hand's; others none)."""


def _split_bone_label(label: str) -> tuple[str, str]:
    """'upperarm01.L' -> ('upperarm01', '.L'); 'spine01' -> ('spine01', '')."""
    if label.endswith((".L", ".R")):
        return label[:-2], label[-2:]
    return label, ""


def _split_joint_name(name: str) -> tuple[str, str]:
    """'left_hip' -> ('hip', '.L'); 'spine1' -> ('spine1', '')."""
    for side, suffix in _SIDE_SUFFIX.items():
        if name.startswith(side + "_"):
            return name[len(side) + 1:], suffix
    return name, ""


def _driver_base(base: str) -> str:
    if base in _DRIVER_BY_BONE:
        return _DRIVER_BY_BONE[base]
    for prefix, joint in _DRIVER_BY_PREFIX.items():
        if base.startswith(prefix):
            return joint
    raise ValueError(f"no SMPL driver known for Anny bone {base!r}")


def bone_drivers(bone_labels: list[str] | tuple[str, ...]) -> torch.Tensor:
    """(N,) int64 index of the SMPL joint that drives each of the N Anny bones."""
    drivers = []
    for label in bone_labels:
        base, suffix = _split_bone_label(label)
        joint = _driver_base(base)
        if joint not in SMPL_JOINT_NAMES:  # a sided joint: take the bone's side
            joint = {".L": "left_", ".R": "right_"}[suffix] + joint
        drivers.append(SMPL_JOINT_NAMES.index(joint))
    return torch.tensor(drivers, dtype=torch.int64)


def joint_regressor(bone_labels: list[str] | tuple[str, ...]) -> torch.Tensor:
    """(24, N) float32 weights (rows sum to 1) that place each SMPL joint as a mean of Anny bone heads."""
    index = {label: position for position, label in enumerate(bone_labels)}
    weights = torch.zeros(len(SMPL_JOINT_NAMES), len(bone_labels))
    for joint, name in enumerate(SMPL_JOINT_NAMES):
        base, suffix = _split_joint_name(name)
        bones = [index[bone + suffix] for bone in _JOINT_BONES[base]]
        weights[joint, bones] = 1.0 / len(bones)
    return weights


def _smpl_levels() -> list[torch.Tensor]:
    """SMPL joints grouped by depth in the kinematic tree (root level excluded)."""
    depth = [0] * len(SMPL_PARENTS)
    for joint, parent in enumerate(SMPL_PARENTS[1:], start=1):
        depth[joint] = depth[parent] + 1
    return [
        torch.tensor([joint for joint in range(len(depth)) if depth[joint] == level])
        for level in range(1, max(depth) + 1)
    ]


_SMPL_LEVELS = _smpl_levels()
_SMPL_PARENT_TENSOR = torch.tensor([max(parent, 0) for parent in SMPL_PARENTS])


def smpl_world_rotations(pose: torch.Tensor) -> torch.Tensor:
    """Forward kinematics of rotations: (B, 24, 3) SMPL axis-angle -> (B, 24, 3, 3) world rotations.

    G_j = G_parent(j) R_j, one batched product per depth level of the SMPL tree.
    """
    check_shape("pose", pose, (None, len(SMPL_JOINT_NAMES), 3))
    world = axis_angle_to_matrix(pose)
    local = world
    world = world.clone()
    for joints in _SMPL_LEVELS:
        joints = joints.to(pose.device)
        parents = _SMPL_PARENT_TENSOR.to(pose.device)[joints]
        world[:, joints] = world[:, parents] @ local[:, joints]
    return world


def rotation_between(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) smallest rotation taking direction `source` (..., 3) to direction `target` (..., 3).

    Rodrigues' formula R = I + [w]x + [w]x^2 / (1 + c), w = s x t, c = s . t (s, t unit); not for
    opposite directions.
    """
    source = functional.normalize(source, dim=-1)
    target = functional.normalize(target, dim=-1)
    cross = torch.linalg.cross(source, target, dim=-1)
    cosine = (source * target).sum(-1)
    zero = torch.zeros_like(cosine)
    skew = torch.stack([
        torch.stack([zero, -cross[..., 2], cross[..., 1]], dim=-1),
        torch.stack([cross[..., 2], zero, -cross[..., 0]], dim=-1),
        torch.stack([-cross[..., 1], cross[..., 0], zero], dim=-1),
    ], dim=-2)
    identity = torch.eye(3, dtype=source.dtype, device=source.device).expand_as(skew)
    return identity + skew + skew @ skew / (1.0 + cosine)[..., None, None]


def _frame(axis: torch.Tensor, secondary: torch.Tensor) -> torch.Tensor:
    """(3, 3) orthonormal frame with columns axis, secondary made orthogonal to it, and their cross product."""
    first = functional.normalize(axis, dim=-1)
    second = functional.normalize(secondary - (secondary * first).sum(-1, keepdim=True) * first, dim=-1)
    return torch.stack([first, second, torch.linalg.cross(first, second, dim=-1)], dim=-1)


def align_frames(
    source_axis: torch.Tensor, source_secondary: torch.Tensor, target_axis: torch.Tensor, target_secondary: torch.Tensor
) -> torch.Tensor:
    """(3, 3) rotation taking `source_axis` exactly to `target_axis` (each (3,)), and the part of
    `source_secondary` orthogonal to it to the part of `target_secondary` orthogonal to the target."""
    return _frame(target_axis, target_secondary) @ _frame(source_axis, source_secondary).transpose(-1, -2)


def _calibrated_family(base: str) -> str | None:
    if base.startswith(("metacarpal", "finger")):
        return "hand"
    return _CALIBRATED_FAMILY.get(base)


def _side_calibration(heads: dict[str, torch.Tensor], sign: float) -> dict[str, torch.Tensor]:
    """(3, 3) calibration of each limb family of one side, from its (3,) reference bone heads by base name.

    sign is +1 for the left side (limbs toward +x) and -1 for the right.
    """
    x_axis, y_axis, z_axis = torch.eye(3, dtype=heads["wrist"].dtype)
    upper_arm = heads["lowerarm01"] - heads["upperarm01"]
    forearm = heads["wrist"] - heads["lowerarm01"]
    hinge = torch.linalg.cross(upper_arm, forearm, dim=-1)
    arm_direction, hinge_direction = sign * x_axis, -sign * y_axis  # forearm bends toward +z about the hinge
    knuckles = torch.stack([heads[f"finger{finger}-1"] for finger in range(2, 6)]).mean(0)
    return {
        "upper_arm": align_frames(upper_arm, hinge, arm_direction, hinge_direction),
        "forearm": align_frames(forearm, hinge, arm_direction, hinge_direction),
        "hand": align_frames(knuckles - heads["wrist"], heads["finger2-1"] - heads["finger5-1"], arm_direction, z_axis),
        "thigh": rotation_between(heads["lowerleg01"] - heads["upperleg01"], -y_axis),
        "shin": rotation_between(heads["foot"] - heads["lowerleg01"], -y_axis),
    }


def tpose_calibration(reference_heads: torch.Tensor, bone_labels: list[str] | tuple[str, ...]) -> torch.Tensor:
    """World rotations, SMPL frame, that turn Anny's reference A-pose into SMPL's T-pose.

    Args:
        reference_heads: (N, 3) Anny bone heads in the reference pose (identity deltas), SMPL frame.
        bone_labels: the N Anny bone labels.
    Returns:
        (N, 3, 3) rotation T_b per bone, dtype of reference_heads: the identity except for
        - upper arm and forearm bones: the bone axis goes to +x (left) / -x (right) and the elbow's
          hinge axis (upper arm x forearm) to vertical, so the elbow bends forward about y as in SMPL;
        - wrist, palm and finger bones: the hand's axis (wrist to mean knuckle) goes to +-x and the
          index-to-little-finger knuckle line to +z: palms down, thumbs forward;
        - thigh and shin bones: the smallest rotation that makes them vertical (legs straight).
        Spine, head, clavicles and feet keep their reference orientation.
    """
    check_shape("reference_heads", reference_heads, (len(bone_labels), 3))
    heads = reference_heads.detach().double()
    sides = {}
    for suffix, sign in ((".L", 1.0), (".R", -1.0)):
        side_heads = {
            _split_bone_label(label)[0]: heads[position]
            for position, label in enumerate(bone_labels) if label.endswith(suffix)
        }
        sides[suffix] = _side_calibration(side_heads, sign)
    calibration = torch.eye(3, dtype=torch.float64).repeat(len(bone_labels), 1, 1)
    for position, label in enumerate(bone_labels):
        base, suffix = _split_bone_label(label)
        family = _calibrated_family(base)
        if family is not None and suffix:
            calibration[position] = sides[suffix][family]
    return calibration.to(reference_heads.dtype)


class SmplToAnnyRetarget(nn.Module):
    """SMPL-24 axis-angle -> Anny "local-ref" pose deltas, as a module so its tables follow .to(device).

    Buffers: drivers (N,) SMPL joint per bone; parents (N,) parent bone (root: itself);
    calibration (N, 3, 3) T-pose calibration in Anny's frame; frame (3, 3) = C of ANNY_TO_SMPL.
    """

    def __init__(self, bone_labels: list[str] | tuple[str, ...], bone_parents: list[int], calibration: torch.Tensor) -> None:
        """bone_labels, bone_parents: Anny's rig (root first, parent -1); calibration: (N, 3, 3) from tpose_calibration."""
        super().__init__()
        check_shape("calibration", calibration, (len(bone_labels), 3, 3))
        if bone_parents[0] >= 0 or min(bone_parents[1:]) < 0:
            raise ValueError("expected the root bone first, and only there a negative parent")
        frame = torch.tensor(ANNY_TO_SMPL, dtype=calibration.dtype)
        self.register_buffer("drivers", bone_drivers(bone_labels), persistent=False)
        self.register_buffer("parents", torch.tensor([max(parent, 0) for parent in bone_parents]), persistent=False)
        self.register_buffer("frame", frame, persistent=False)
        self.register_buffer("calibration", frame @ calibration @ frame.T, persistent=False)

    def bone_world_rotations(self, pose: torch.Tensor) -> torch.Tensor:
        """(B, 24, 3) SMPL axis-angle -> (B, N, 3, 3) each Anny bone's world rotation G_b from the reference pose, in Anny's frame."""
        anny_world = self.frame @ smpl_world_rotations(pose) @ self.frame.T
        return anny_world[:, self.drivers] @ self.calibration

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        """(B, 24, 3) SMPL axis-angle -> (B, N, 4, 4) Anny local-ref deltas (rotations, zero translation).

        What Anny's own forward takes as pose_parameters. AnnyBody poses its bones from
        bone_world_rotations in closed form instead (lwgan.body.anny_kinematics); its tests compare
        the two.
        """
        bone_world = self.bone_world_rotations(pose)
        deltas = bone_world[:, self.parents].transpose(-1, -2) @ bone_world
        deltas = torch.cat([bone_world[:, :1], deltas[:, 1:]], dim=1)
        return roma.Rigid(linear=deltas, translation=deltas.new_zeros(deltas.shape[:-1])).to_homogeneous()
