"""From fitted bodies and images to the generator's inputs (LWGAN §3.3), batched on any device.

    background input (B, 4, H, W): the source image with the body region (dilated) blanked, and
        the background mask (1 = background, 0 = the hole the background stream must fill); a
        refining generator takes it with the hole filled classically (prefilled, OpenCV's Telea),
        done here while the inputs are built so that the networks' forward is pure torch;
    source input (B, 6, H, W): the source image with the background removed (body mask slightly
        dilated), and the source condition map;
    transfer input (B, 6, H, W): the source image warped to the target pose (hidden surface from
        the source's UV atlas, warped_source), and the target condition map;
    grid (B, H, W, 2): the transfer flow, for warping features inside the generator.

Several sources per target are the leading S dimension of (B, S, ...) tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import kornia
import torch

from lwgan.body.camera import project
from lwgan.body.clothing import clothed_vertices
from lwgan.body.model import BodyModel
from lwgan.flow.atlas import unwrap_to_atlas
from lwgan.flow.transfer import TransferFlow, transfer_flow
from lwgan.flow.warp import warp
from lwgan.render.inpaint import inpaint
from lwgan.render.texture import render_texture


@dataclass(frozen=True)
class GeneratorInputs:
    """Inputs for S sources and one target per batch item (shapes in the module docstring, with S)."""

    background_input: torch.Tensor  # (B, S, 4, H, W)
    source_input: torch.Tensor  # (B, S, 6, H, W)
    transfer_input: torch.Tensor  # (B, S, 6, H, W)
    grid: torch.Tensor  # (B, S, H, W, 2)
    source_background_mask: torch.Tensor  # (B, S, 1, H, W): 1 where the source mesh is not
    target_background_mask: torch.Tensor  # (B, 1, H, W): 1 where the target mesh is not
    visible: torch.Tensor  # (B, S, H, W) bool: target pixels whose surface point source s sees

    @cached_property
    def prefilled_background_input(self) -> torch.Tensor:
        """(B, 4, H, W) the first source's background input (the one both generators take) with its hole prefilled: what a refining generator's background stream corrects; made once, when first asked for."""
        return prefilled(self.background_input[:, 0])


PREFILL_METHOD = "telea"
PREFILL_RADIUS = 5.0
"""The classical fill a refining background stream corrects: Telea at radius 5, not lwgan.render.inpaint's default, because it is the fill trained generators learnt to correct."""


def prefilled(background_input: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) [image * known, known, ...] in [-1, 1] -> the same with the image's hole (known < 0.5) filled by OpenCV (PREFILL_METHOD at PREFILL_RADIUS).

    A refining generator's background stream starts from this fill and predicts a correction
    (lwgan.models.blocks.background_stream). The fill is 8-bit inside the hole (lwgan.render.inpaint.inpaint)
    and has no gradient there; pixels outside the hole are unchanged.
    """
    hole = background_input[:, 3] < 0.5
    return torch.cat([inpaint(background_input[:, :3], hole, method=PREFILL_METHOD, radius=PREFILL_RADIUS), background_input[:, 3:]], dim=1)


def posed_vertices_ndc(body: BodyModel, pose: torch.Tensor, shape: torch.Tensor, camera: torch.Tensor,
                       offsets: torch.Tensor | None = None) -> torch.Tensor:
    """(B, 24, 3) pose, (B, K) shape, (B, 3) camera -> (B, V, 3) vertices in NDC with depth.

    offsets: (V,) or (B, V) the person's clothing along the posed normals (lwgan.body.clothing,
    carried into every pose by the skinning), or None for the naked body.
    """
    vertices = body(pose, shape).vertices
    if offsets is not None:
        vertices = clothed_vertices(vertices, body.faces, offsets)
    return project(vertices, camera)


def dilate(mask: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 1, H, W) float mask grown by a size x size square (size 1 or less: unchanged)."""
    if size <= 1:
        return mask
    return kornia.morphology.dilation(mask, torch.ones(size, size, device=mask.device, dtype=mask.dtype))


def warped_source(image: torch.Tensor, source_vertices: torch.Tensor, flow: TransferFlow, body: BodyModel) -> torch.Tensor:
    """The source image warped to the target body, (B, 3, H, W), 0 off the target mesh.

    Where the source sees the target's surface point: the source's body pixels sampled along the
    flow (lwgan.flow.warp with the source mesh mask, so no background bleeds in at the silhouette).
    Where it does not: the source unwrapped into the body's UV atlas (at the image's height) with
    the unseen texels filled smoothly (lwgan.flow.atlas), so a hidden point takes the colour of
    the surface around it on the body rather than of whatever hides it.

    Args:
        image: (B, 3, H, W); source_vertices: (B, V, 3) the source mesh in NDC; flow: the
            TransferFlow from that mesh to the target; body: gives faces and UVs.
    """
    direct = warp(image, flow.grid, mask=flow.source_fragments.mask)
    texture, _ = unwrap_to_atlas(image, source_vertices, body.faces, body.uv, body.face_uv, size=image.shape[-2])
    from_atlas = render_texture(flow.target_fragments, body.uv, body.face_uv, texture)
    return torch.where(flow.visible.unsqueeze(1), direct, from_atlas)


def generator_inputs(
    source_images: torch.Tensor,
    source_vertices: torch.Tensor,
    target_vertices: torch.Tensor,
    body: BodyModel,
    hole_dilation: int = 15,
    body_dilation: int = 3,
    encoding: str = "uv_seg",
) -> tuple[GeneratorInputs, list[TransferFlow]]:
    """Build the generator's inputs for B targets, each from S sources.

    Args:
        source_images: (B, S, 3, H, W) in [-1, 1].
        source_vertices: (B, S, V, 3) source meshes in NDC (posed_vertices_ndc).
        target_vertices: (B, V, 3) target mesh in NDC: the source shape in the reference pose.
        body: gives faces and UVs.
        hole_dilation: the background hole is the source body grown by this many pixels (the
            original uses 15 in training and bg_ks = 11-13 at test time).
        body_dilation: the source body crop keeps this many pixels around the mesh (original 3).
    Returns:
        GeneratorInputs, and the S TransferFlow objects (batched over B) for callers that need
        fragments or visibility.
    """
    source_count, height, width = source_images.shape[1], *source_images.shape[-2:]
    flows, background_inputs, source_inputs, transfer_inputs = [], [], [], []
    for index in range(source_count):  # S is small (1 to 8): one batched flow per source
        flow = transfer_flow(source_vertices[:, index], target_vertices, body.faces, (height, width), body.uv, body.face_uv, encoding=encoding)
        image = source_images[:, index]
        hole = dilate(flow.source_fragments.mask.unsqueeze(1).to(image.dtype), hole_dilation)
        background_inputs.append(torch.cat([image * (1 - hole), 1 - hole], dim=1))
        source_inputs.append(source_stream_input(image, flow, body_dilation))
        warped = warped_source(image, source_vertices[:, index], flow, body)
        transfer_inputs.append(torch.cat([warped, flow.target_condition.to(image.dtype)], dim=1))
        flows.append(flow)
    return stacked_inputs(background_inputs, source_inputs, transfer_inputs, flows), flows


def source_stream_input(image: torch.Tensor, flow: TransferFlow, body_dilation: int) -> torch.Tensor:
    """(B, 6, H, W) the source stream's input: the (B, 3, H, W) source image kept on its mesh grown by body_dilation pixels ⊕ its condition map."""
    kept_body = dilate(flow.source_fragments.mask.unsqueeze(1).to(image.dtype), body_dilation)
    return torch.cat([image * kept_body, flow.source_condition.to(image.dtype)], dim=1)


def stacked_inputs(background_inputs: list[torch.Tensor], source_inputs: list[torch.Tensor], transfer_inputs: list[torch.Tensor],
                   flows: list[TransferFlow]) -> GeneratorInputs:
    """GeneratorInputs from S per-source lists of (B, C, H, W) stream inputs and the S flows (the masks and grids come from the flows)."""
    dtype = source_inputs[0].dtype
    return GeneratorInputs(
        background_input=torch.stack(background_inputs, dim=1),
        source_input=torch.stack(source_inputs, dim=1),
        transfer_input=torch.stack(transfer_inputs, dim=1),
        grid=torch.stack([flow.grid for flow in flows], dim=1),
        source_background_mask=torch.stack([1 - flow.source_fragments.mask.unsqueeze(1).to(dtype) for flow in flows], dim=1),
        target_background_mask=1 - flows[0].target_mask.unsqueeze(1).to(dtype),
        visible=torch.stack([flow.visible for flow in flows], dim=1),
    )


HOLE_DILATION_AT_256 = 15
"""The original's background hole dilation in training (pixels at 256 x 256); scaled with the image size."""


def scaled_hole_dilation(image_size: int) -> int:
    """The background hole dilation for an image side: 15 px at 256 scaled, rounded to the nearest odd size (7 at 128, 3 at 64)."""
    scaled = HOLE_DILATION_AT_256 * image_size / 256
    return max(1, 2 * math.floor((scaled - 1) / 2 + 0.5) + 1)
