"""Anny's forward kinematics in closed form, for poses whose bones all rotate in world-aligned axes (the SMPL retarget).

Anny's own forward_kinematic (its "local-ref" parameterization) composes each bone's pose with its
parent's, one batched 4 x 4 product per level of its 17-level, 104-bone tree. With the notation of
its docstring (rest pose [R_c | h_c], reference orientation U_c, delta D_c, parent p) the posed
pose is W_c = [V_c | w_c] with

    V_c = U_0^T G_c U_c,    w_c = w_p + U_0^T G_p A_p (h_c - h_p),    w_0 = 0,

where G_c = D_0 D_1 ... D_c is the bone's world rotation (what SmplToAnnyRetarget.bone_world_rotations
gives, since its deltas are D_c = G_p^T G_c), A_p = U_p R_p^T for p > 0 and A_0 = I. The
skinning transform is T_c = W_c [R_c | h_c]^-1 = [U_0^T G_c U_c R_c^T | w_c - U_0^T G_c U_c R_c^T h_c].
So every rotation comes from its own G_c, and every head is a sum over the bone's ancestors of
terms that each need only its parent's G: one (J, J) product with the ancestry matrix replaces
the chain. Only translation-free deltas: the retarget has none.
"""

from __future__ import annotations

from dataclasses import dataclass

import roma
import torch


@dataclass(frozen=True)
class RestBones:
    """What posed_bones needs of a shape's rest skeleton, J bones, leading dimension 1 or B.

    heads: (1 or B, J, 3) rest heads h_c; alignment: (1 or B, J, 3, 3) U_c R_c^T, from the rest to
    the reference orientation; offsets: (1 or B, J, 3) A_p (h_c - h_p), the head's offset from its
    parent's in the parent's reference orientation (0 for the root); root_turn: (1 or B, 1, 3, 3) U_0^T.
    """

    heads: torch.Tensor
    alignment: torch.Tensor
    offsets: torch.Tensor
    root_turn: torch.Tensor


def rest_bones(heads: torch.Tensor, orientations: torch.Tensor, reference_orientations: torch.Tensor | None, parents: torch.Tensor) -> RestBones:
    """RestBones of (1 or B, J, 3) rest heads and (1 or B, J, 3, 3) rest orientations R_c.

    reference_orientations: (J, 3, 3) U_c, or None for the rest orientations themselves;
    parents: (J,) int64, the root its own parent.
    """
    identity = torch.eye(3, dtype=orientations.dtype, device=orientations.device).expand_as(orientations)
    references = orientations if reference_orientations is None else reference_orientations.expand_as(orientations)
    alignment = identity if reference_orientations is None else references @ orientations.transpose(-1, -2)
    parent_alignment = torch.cat([identity[:, :1], alignment[:, 1:]], dim=1)[:, parents]
    offsets = (parent_alignment @ (heads - heads[:, parents])[..., None])[..., 0]
    return RestBones(heads=heads, alignment=alignment, offsets=offsets, root_turn=references[:, :1].transpose(-1, -2))


def bone_ancestry(parents: torch.Tensor) -> torch.Tensor:
    """(J, J) float32: row c holds 1 at bone c and at each of its ancestors (parents (J,), the root its own parent)."""
    count = len(parents)
    ancestry = torch.zeros(count, count)
    for bone in range(count):
        ancestor = bone
        while True:
            ancestry[bone, ancestor] = 1.0
            if parents[ancestor] == ancestor:
                break
            ancestor = int(parents[ancestor])
    return ancestry


def posed_bones(world_rotations: torch.Tensor, rest: RestBones, parents: torch.Tensor, ancestry: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Skinning transforms and posed heads of (B, J, 3, 3) bone world rotations G_c (see the module's docstring).

    Args:
        rest: the shape's RestBones; parents: (J,) int64, the root its own parent; ancestry: bone_ancestry(parents).
    Returns:
        (B, J, 4, 4) transforms T_c from the rest to the posed pose, and (B, J, 3) the posed heads w_c.
    """
    rotations = rest.root_turn @ world_rotations @ rest.alignment
    steps = (rest.root_turn @ world_rotations[:, parents] @ rest.offsets[..., None])[..., 0]
    heads = torch.einsum("cn,bnd->bcd", ancestry.to(steps.dtype), steps)
    translations = heads - (rotations @ rest.heads[..., None])[..., 0]
    return roma.Rigid(linear=rotations, translation=translations).to_homogeneous(), heads
