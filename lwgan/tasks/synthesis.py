"""Making target frames from fitted source photos: texture warping, or a trained generator.

Without a checkpoint, a body pixel of the target takes the colour of the first source that sees
its surface point (warped along the transfer flow); surface no source sees comes from the sources
unwrapped into one UV atlas (filled smoothly); the body goes over the background (the source's,
inpainted, or a user's picture). With a generator, the generator makes the frames from the same
flows (its background stream inpaints), optionally with the front of the face kept from the warp.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lwgan.body.model import BodyModel
from lwgan.flow import transfer_flow, unwrap_to_atlas, warp
from lwgan.flow.inputs import dilate, generator_inputs, posed_vertices_ndc
from lwgan.losses.terms import reconstruction_l1, ssim_loss
from lwgan.media import to_uint8
from lwgan.render import rasterize, render_texture
from lwgan.render.texture import fill_holes, inpaint_background
from lwgan.tasks.people import PhotoPerson
from lwgan.train.step import generate, scaled_hole_dilation

logger = logging.getLogger(__name__)

ATLAS_SIZE = 512
BACKGROUND_HOLE_GROWTH = 0.04
"""The inpainted hole is the person mask and the source mesh grown by this fraction of the image side."""


@dataclass(frozen=True)
class SourceBank:
    """The sources, ready for making frames (torch, on one device).

    images: (S, 3, H, W) float in [0, 1]; vertices: (S, V, 3) the source meshes in NDC;
    masks: (S, H, W) bool, the source meshes' coverage; atlas: (1, 3, T, T) the sources unwrapped
    and fused in UV space; background: (1, 3, H, W) in [0, 1]; offsets: (V,) the person's
    clothing (lwgan.body.clothing), which target meshes carry too.
    """

    images: torch.Tensor
    vertices: torch.Tensor
    masks: torch.Tensor
    atlas: torch.Tensor
    background: torch.Tensor
    offsets: torch.Tensor

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.images.shape[-2:])


def image_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(image).to(device).permute(2, 0, 1).float() / 255.0


def source_meshes(body: BodyModel, people: list[PhotoPerson], shape: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """(S, V, 3) NDC meshes of the people in their own poses and cameras, all with `shape` (K,) and clothing `offsets` (V,)."""
    device = body.faces.device
    pose = torch.from_numpy(np.stack([person.pose for person in people])).to(device)
    camera = torch.from_numpy(np.stack([person.camera for person in people])).to(device)
    return posed_vertices_ndc(body, pose, shape.expand(len(people), -1), camera, offsets)


def build_bank(body: BodyModel, people: list[PhotoPerson], shape: torch.Tensor, background: np.ndarray | None) -> SourceBank:
    """Prepare the sources; `background` (H, W, 3) uint8 replaces the inpainted first source when given."""
    device = body.faces.device
    images = torch.stack([image_tensor(person.image, device) for person in people])
    offsets = torch.from_numpy(people[0].offsets).to(device)  # one field for all photos of the person
    vertices = source_meshes(body, people, shape, offsets)
    size = images.shape[-2:]
    masks = rasterize(vertices, body.faces, size).mask
    textures, seen = unwrap_to_atlas(images, vertices, body.faces, body.uv, body.face_uv, size=ATLAS_SIZE)
    weight = seen.unsqueeze(1).float()
    fused = (textures * weight).sum(0, keepdim=True) / weight.sum(0, keepdim=True).clamp_min(1e-6)
    atlas = fill_holes(fused, seen.any(0, keepdim=True))
    if background is None:
        person = torch.from_numpy(people[0].mask > 0.5).to(device) | masks[0]
        growth = max(3, round(BACKGROUND_HOLE_GROWTH * size[0]) | 1)
        hole = dilate(person[None, None].float(), growth)[:, 0] > 0.5
        return SourceBank(images, vertices, masks, atlas, (inpaint_background(images[:1] * 2 - 1, hole) + 1) / 2, offsets)
    return SourceBank(images, vertices, masks, atlas, image_tensor(background, device)[None], offsets)


def warped_frames(bank: SourceBank, target_vertices: torch.Tensor, body: BodyModel) -> torch.Tensor:
    """Frames by texture warping: (B, V, 3) target meshes in NDC -> (B, 3, H, W) in [0, 1]."""
    batch_size = target_vertices.shape[0]
    colour, known = None, None
    target_fragments = None
    for index in range(bank.images.shape[0]):
        flow = transfer_flow(bank.vertices[index : index + 1].expand(batch_size, -1, -1), target_vertices, body.faces,
                             bank.image_size, body.uv, body.face_uv)
        direct = warp(bank.images[index : index + 1].expand(batch_size, -1, -1, -1), flow.grid, mask=bank.masks[index : index + 1].expand(batch_size, -1, -1))
        if colour is None:
            target_fragments = flow.target_fragments
            colour = render_texture(target_fragments, body.uv, body.face_uv, bank.atlas.expand(batch_size, -1, -1, -1))
            known = torch.zeros_like(flow.visible)
        take = flow.visible & ~known
        colour = torch.where(take.unsqueeze(1), direct, colour)
        known = known | flow.visible
    return torch.where(target_fragments.mask.unsqueeze(1), colour, bank.background.expand(batch_size, -1, -1, -1))


def generated_frames(
    generator: nn.Module, bank: SourceBank, target_vertices: torch.Tensor, body: BodyModel, preserve_face: bool,
    background: torch.Tensor | None = None,
) -> torch.Tensor:
    """Frames by the generator: (B, V, 3) target meshes in NDC -> (B, 3, H, W) in [0, 1].

    `background` (1, 3, H, W) in [0, 1] replaces the generator's own inpainted background, blended
    by its attention mask.

    With preserve_face, target pixels on the front of the face that the first source sees keep
    the warped source colour, the generator's own warped input there (the generator tends to blur faces).
    """
    inputs, flows = _inputs(bank, target_vertices, body)
    with torch.no_grad():
        output = generate(generator, inputs)
    frames = (output.image.clamp(-1, 1) + 1) / 2
    if background is not None:  # a user's picture instead of the generator's inpainted background
        weight = output.background_mask.clamp(0, 1)
        frames = weight * background + (1 - weight) * (output.colour.clamp(-1, 1) + 1) / 2
    if preserve_face:
        flow = flows[0]
        front_face = body.face_masks["front_face"].to(flow.target_fragments.face_index.device)
        on_face = front_face[flow.target_fragments.face_index.clamp_min(0)] & flow.target_mask & flow.visible
        warped = (inputs.transfer_input[:, 0, :3] + 1) / 2  # the first source's masked warp where it sees the point
        frames = torch.where(on_face.unsqueeze(1), warped, frames)
    return frames


def _inputs(bank: SourceBank, target_vertices: torch.Tensor, body: BodyModel):
    """GeneratorInputs (and flows) for B targets from every source of the bank."""
    batch_size = target_vertices.shape[0]
    images = (bank.images * 2 - 1)[None].expand(batch_size, -1, -1, -1, -1)
    sources = bank.vertices[None].expand(batch_size, -1, -1, -1)
    return generator_inputs(images, sources, target_vertices, body, hole_dilation=scaled_hole_dilation(bank.image_size[0]))


def personalize(generator: nn.Module, bank: SourceBank, body: BodyModel, steps: int, learning_rate: float = 2e-5) -> None:
    """Fine-tune `generator` in place for `steps` steps to reconstruct each source photo from the sources (L1 + SSIM).

    The original's personalization: a few hundred steps on the source image(s) adapt the
    generator to this person's appearance before the frames are made.
    """
    if steps <= 0:
        return
    generator.train().requires_grad_(True)
    optimizer = torch.optim.Adam(generator.parameters(), lr=learning_rate, betas=(0.5, 0.999))
    inputs, _ = _inputs(bank, bank.vertices, body)
    target = bank.images * 2 - 1
    for step in range(steps):
        output = generate(generator, inputs)
        loss = reconstruction_l1(output.image, target) + ssim_loss(output.image, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 20 == 0 or step == steps - 1:
            logger.info("personalization step %d/%d: loss %.4f", step + 1, steps, loss.item())
    generator.eval().requires_grad_(False)


def to_frames(images: torch.Tensor) -> list[np.ndarray]:
    """(B, 3, H, W) in [0, 1] -> B (H, W, 3) uint8 arrays."""
    return [to_uint8(image) for image in images]
