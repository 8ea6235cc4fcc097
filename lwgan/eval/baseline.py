"""The texture-warping baseline of the evaluation: no learned network, just the flow and OpenCV inpainting.

For a source image and the transfer flow to a target body:
    body: the source image warped along the flow, normalised over the source body pixels
        (lwgan.flow.warp with mask = the source mesh mask), on the pixels the target mesh covers;
        points the source does not see take the colour of whatever the source shows there (no hallucination);
    background: the source image with its body hole (the source mesh mask grown by hole_dilation
        pixels) filled by OpenCV's Telea inpainting (cv2.inpaint, INPAINT_TELEA);
    image: the body composited over the background with the target mesh mask.
It shows what the generator must beat: the warp is exact where the fits are and the surface is
visible; the generator's job is the rest (hidden surface, silhouette, background, shading).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lwgan.checks import check_shape
from lwgan.flow.inputs import dilate
from lwgan.flow.transfer import TransferFlow
from lwgan.flow.warp import warp
from lwgan.render.texture import inpaint_background


@dataclass(frozen=True)
class WarpingResult:
    """image: (B, 3, H, W) in [-1, 1]; body_mask: (B, H, W) bool (the target mesh); background: (B, 3, H, W) in [-1, 1]."""

    image: torch.Tensor
    body_mask: torch.Tensor
    background: torch.Tensor


def texture_warping(source_images: torch.Tensor, flow: TransferFlow, hole_dilation: int, inpaint_radius: float = 5.0) -> WarpingResult:
    """The baseline's target image from one source per target (see the module docstring).

    Args:
        source_images: (B, 3, H, W) in [-1, 1].
        flow: the TransferFlow from each source to its target (batched over B, same H, W).
        hole_dilation: pixels by which the source body hole grows before inpainting.
        inpaint_radius: cv2.inpaint's radius.
    """
    check_shape("source_images", source_images, (flow.grid.shape[0], 3, flow.grid.shape[1], flow.grid.shape[2]))
    source_mask = flow.source_fragments.mask
    body = warp(source_images, flow.grid, mask=source_mask)
    hole = dilate(source_mask.unsqueeze(1).to(source_images.dtype), hole_dilation)[:, 0] > 0.5
    background = inpaint_background(source_images, hole, inpaint_radius)
    target_mask = flow.target_mask
    image = torch.where(target_mask.unsqueeze(1), body, background)
    return WarpingResult(image=image, body_mask=target_mask, background=background)
