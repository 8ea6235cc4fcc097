"""One training step: a dataset batch -> bodies, flows and generator inputs on the device; the G step; the D step; EMA.

The discriminator judges only the transferred image, conditioned on the target condition map
(D input = image ⊕ target condition, 6 channels), as in the original (ICCV §3.4).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from lwgan.body.camera import project
from lwgan.body.model import BodyModel
from lwgan.checks import check_shape
from lwgan.flow.inputs import GeneratorInputs, generator_inputs, posed_vertices_ndc
from lwgan.losses import DiscriminatorLoss, GeneratorLoss, head_boxes_from_keypoints
from lwgan.models import GeneratorOutput, generate
from lwgan.train.distributed import unwrap_model


@dataclass(frozen=True)
class TrainingBatch:
    """A batch on the training device, ready for the generator.

    source_images: (B, S, 3, H, W) in [-1, 1]; target_image: (B, 3, H, W) in [-1, 1].
    inputs: the generator's inputs ((B, S, ...) tensors, lwgan.flow.inputs).
    target_condition: (B, 3, H, W) the target condition map (D's condition).
    target_mask: (B, H, W) bool, the target mesh covers the pixel.
    head_boxes: (B, 4) NDC head boxes of the target (for the face term), or None.
    """

    source_images: torch.Tensor
    target_image: torch.Tensor
    inputs: GeneratorInputs
    target_condition: torch.Tensor
    target_mask: torch.Tensor
    head_boxes: torch.Tensor | None


def prepare_batch(
    item: dict,
    body: BodyModel,
    device: torch.device,
    hole_dilation: int,
    with_head_boxes: bool = False,
) -> TrainingBatch:
    """Move a collated IperDataset batch to `device` and compute bodies, flows and generator inputs (no gradients).

    Args:
        item: collated IperDataset items: source_images (B, S, 3, H, W), target_image (B, 3, H, W),
            source_cameras (B, S, 3), source_poses (B, S, 24, 3), source_shapes (B, S, K),
            target_camera (B, 3), target_pose (B, 24, 3), target_shape (B, K); offsets (B, V) when
            the dataset has clothing offsets (the video's person: its sources and target carry them).
        body: the body model the fits belong to, on `device`.
        hole_dilation: pixels by which the background hole grows around the source body.
        with_head_boxes: also compute the target's head boxes (needed by the face term).
    The target mesh is the target frame's own fit (in self-imitation the shape is the subject's).
    """
    source_images = item["source_images"].to(device, non_blocking=True)
    target_image = item["target_image"].to(device, non_blocking=True)
    check_shape("source_images", source_images, (None, None, 3, None, None))
    batch_size, source_count, _, height, width = source_images.shape
    check_shape("target_image", target_image, (batch_size, 3, height, width))
    with torch.no_grad():
        # One body forward for the B * S sources and the B targets.
        poses = torch.cat([item["source_poses"].flatten(0, 1), item["target_pose"]]).to(device)
        shapes = torch.cat([item["source_shapes"].flatten(0, 1), item["target_shape"]]).to(device)
        cameras = torch.cat([item["source_cameras"].flatten(0, 1), item["target_camera"]]).to(device)
        offsets = item.get("offsets")
        if offsets is not None:
            offsets = torch.cat([offsets.repeat_interleave(source_count, dim=0), offsets]).to(device)
        vertices = posed_vertices_ndc(body, poses, shapes, cameras, offsets)
        source_vertices = vertices[: batch_size * source_count].unflatten(0, (batch_size, source_count))
        target_vertices = vertices[batch_size * source_count :]
        inputs, flows = generator_inputs(source_images, source_vertices, target_vertices, body, hole_dilation=hole_dilation)
        head_boxes = head_boxes_of(body, poses[-batch_size:], shapes[-batch_size:], cameras[-batch_size:], (height, width)) if with_head_boxes else None
    return TrainingBatch(
        source_images=source_images,
        target_image=target_image,
        inputs=inputs,
        target_condition=flows[0].target_condition.to(source_images.dtype),
        target_mask=flows[0].target_mask,
        head_boxes=head_boxes,
    )


def head_boxes_of(body: BodyModel, pose: torch.Tensor, shape: torch.Tensor, camera: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, 4) NDC head boxes (the face term's crops) of bodies in (B, 24, 3) poses, (B, K) shapes, seen by (B, 3) cameras in (H, W) images."""
    keypoints = project(body(pose, shape).keypoints, camera)
    return head_boxes_from_keypoints(keypoints[..., :2], size)



def discriminator_input(images: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) image ⊕ (B, 3, H, W) condition map -> (B, 6, H, W)."""
    return torch.cat([images, condition.to(images.dtype)], dim=1)


def autocast(device: torch.device, enabled: bool):
    """float16 autocast on CUDA when enabled; a no-op context elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def generator_step(
    generator: nn.Module,
    discriminator: nn.Module,
    loss: GeneratorLoss,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    batch: TrainingBatch,
    amp: bool = False,
) -> tuple[dict[str, torch.Tensor], GeneratorOutput]:
    """One generator update: forward, the named loss terms, backward, optimizer step.

    Terms (lwgan.losses.GeneratorLoss): reconstruction of the sources, transfer vs target (VGG
    perceptual, or L1 + SSIM), masks (the source and transfer attention masks against their mesh
    background masks, concatenated along the batch), adversarial from D(transfer ⊕ target condition).
    D's parameters are frozen meanwhile and its bare module is called (no DDP bookkeeping).
    Returns the detached terms (incl. "total") and the generator's output (for the D step and pictures).
    """
    judge = unwrap_model(discriminator)
    judge.requires_grad_(False)
    device = batch.target_image.device
    with autocast(device, amp):
        output = generate(generator, batch.inputs)
        fake_logits = judge(discriminator_input(output.image, batch.target_condition))
    height, width = batch.target_image.shape[-2:]
    inputs = batch.inputs
    masks = torch.cat([output.source_background_mask.reshape(-1, 1, height, width), output.background_mask]).float()
    background_masks = torch.cat([inputs.source_background_mask.reshape(-1, 1, height, width), inputs.target_background_mask])
    terms = loss(
        reconstruction=output.source_reconstruction.reshape(-1, 3, height, width).float(),
        source=batch.source_images.reshape(-1, 3, height, width),
        transfer=output.image.float(),
        target=batch.target_image,
        masks=masks,
        background_masks=background_masks,
        fake_logits=fake_logits.float(),
        head_boxes=batch.head_boxes,
        body_masks=1 - inputs.target_background_mask,
        background=output.background.float(),
    )
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(terms["total"]).backward()
    scaler.step(optimizer)
    scaler.update()
    judge.requires_grad_(True)
    return {name: value.detach() for name, value in terms.items()}, output


def discriminator_step(
    discriminator: nn.Module,
    loss: DiscriminatorLoss,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    batch: TrainingBatch,
    fake_image: torch.Tensor,
    amp: bool = False,
) -> dict[str, torch.Tensor]:
    """One discriminator update on the real target and the detached generated image, both ⊕ target condition.

    Real and fake go through D in one call of 2B images (D's instance norm is per image, so this
    equals two calls, and DDP sees one forward per backward). Returns the detached terms
    "real", "fake", "total" (lwgan.losses.DiscriminatorLoss).
    """
    images = torch.cat([batch.target_image, fake_image.detach().to(batch.target_image.dtype)])
    condition = torch.cat([batch.target_condition, batch.target_condition])
    with autocast(batch.target_image.device, amp):
        logits = discriminator(discriminator_input(images, condition)).float()
    real_logits, fake_logits = logits.chunk(2)
    terms = loss(real_logits=real_logits, fake_logits=fake_logits)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(terms["total"]).backward()
    scaler.step(optimizer)
    scaler.update()
    return {name: value.detach() for name, value in terms.items()}


def ema_decay_at(step: int, decay: float) -> float:
    """The EMA decay used after `step` updates: min(decay, (1 + step) / (10 + step)).

    The warm-up (as in TensorFlow's ExponentialMovingAverage with num_updates) lets the average
    follow the fast early changes, so short runs export a usable model.
    """
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema_parameters <- decay * ema_parameters + (1 - decay) * parameters; buffers are copied."""
    for averaged, current in zip(ema.parameters(), unwrap_model(model).parameters()):
        averaged.lerp_(current.detach().to(averaged.dtype), 1.0 - decay)
    for averaged, current in zip(ema.buffers(), unwrap_model(model).buffers()):
        averaged.copy_(current)

