"""Making target frames from fitted source photos: texture warping, or a trained generator.

Without a checkpoint, the frames come from lwgan.flow.texture_warping (trusted source pixels
warped along the transfer flow, the hidden surface from the other side of the body, a feathered
edge over the inpainted background or a user's picture). With a generator, the generator makes
the frames from the same flows (its background stream inpaints), optionally with the front of
the face kept from the warp.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from lwgan.body.model import BodyModel
from lwgan.flow.input_recipes import inputs_for
from lwgan.flow.inputs import posed_vertices_ndc, scaled_hole_dilation
from lwgan.flow.texture_warping import SourceBank, make_bank
from lwgan.image_ranges import signed_to_unit_range
from lwgan.io.media import to_uint8
from lwgan.losses.terms import reconstruction_l1, ssim_loss
from lwgan.models import generate
from lwgan.tasks.people import PhotoPerson

logger = logging.getLogger(__name__)

def image_tensor_unit_range(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(image).to(device).permute(2, 0, 1).float() / 255.0


def source_meshes(body: BodyModel, people: list[PhotoPerson], shape: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """(S, V, 3) NDC meshes of the people in their own poses and cameras, all with `shape` (K,) and clothing `offsets` (V,)."""
    device = body.faces.device
    pose = torch.from_numpy(np.stack([person.pose for person in people])).to(device)
    camera = torch.from_numpy(np.stack([person.camera for person in people])).to(device)
    return posed_vertices_ndc(body, pose, shape.expand(len(people), -1), camera, offsets)


def build_bank(body: BodyModel, people: list[PhotoPerson], shape: torch.Tensor, background: np.ndarray | None,
               layers: list[np.ndarray] | None = None) -> SourceBank:
    """The people's SourceBank (lwgan.flow.texture_warping); `background` (H, W, 3) uint8 replaces the inpainted first source when given.

    `layers`: one (H, W) integer map per person, which layer each pixel shows (skin or garment), or None (make_bank's `layers`).
    """
    device = body.faces.device
    images = torch.stack([image_tensor_unit_range(person.image, device) for person in people])
    offsets = torch.from_numpy(people[0].offsets).to(device)  # one field for all photos of the person
    person_masks = torch.from_numpy(np.stack([person.mask > 0.5 for person in people])).to(device)
    user_background = None if background is None else image_tensor_unit_range(background, device)[None]
    layer_maps = None if layers is None else torch.from_numpy(np.stack(layers).astype(np.int64)).to(device)
    scales = torch.tensor([float(person.camera[0]) for person in people], device=device)
    return make_bank(body, images, source_meshes(body, people, shape, offsets), scales, person_masks, offsets, user_background, layer_maps)


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
    inputs, flows = _inputs(generator, bank, target_vertices, body)
    with torch.no_grad():
        output = generate(generator, inputs)
    frames = signed_to_unit_range(output.image.clamp(-1, 1))
    if background is not None:  # a user's picture instead of the generator's inpainted background
        weight = output.background_mask.clamp(0, 1)
        frames = weight * background + (1 - weight) * signed_to_unit_range(output.colour.clamp(-1, 1))
    if preserve_face:
        flow = flows[0]
        front_face = body.face_masks["front_face"].to(flow.target_fragments.face_index.device)
        on_face = front_face[flow.target_fragments.face_index.clamp_min(0)] & flow.target_mask & flow.visible
        warped = signed_to_unit_range(inputs.transfer_input[:, 0, :3])  # the generator's own warped input where the first source sees the point
        frames = torch.where(on_face.unsqueeze(1), warped, frames)
    return frames


def _inputs(generator: nn.Module, bank: SourceBank, target_vertices: torch.Tensor, body: BodyModel):
    """The generator's inputs (its recipe, lwgan.flow.input_recipes) and flows for B targets from the bank."""
    return inputs_for(generator, bank, target_vertices, body, scaled_hole_dilation(bank.image_size[0]))


def personalize(generator: nn.Module, bank: SourceBank, body: BodyModel, steps: int, learning_rate: float = 2e-5) -> None:
    """Fine-tune `generator` in place for `steps` steps to reconstruct each source photo from the sources (L1 + SSIM).

    The original's personalization: a few hundred steps on the source image(s) adapt the
    generator to this person's appearance before the frames are made.
    """
    if steps <= 0:
        return
    generator.train().requires_grad_(True)
    optimizer = torch.optim.Adam(generator.parameters(), lr=learning_rate, betas=(0.5, 0.999))
    inputs, _ = _inputs(generator, bank, bank.vertices, body)
    target = bank.signed_range_images
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
