"""The clothed body: one offset field along the normals (after SMPL+D, Alldieck et al., CVPR 2018) fitted to a person's masks.

After the pose fit, the person's clothes, hair and loose sleeves are what the naked body's
silhouette misses. fit_clothing() moves every free vertex (lwgan.body.clothing.clothing_vertex_mask)
along its posed normal so that the clothed body's silhouette matches each photo's mask, with pose,
shape and camera held at the fit. All photos of one person share the one field (their views
constrain it jointly) and a target pose carries it by the skinning (lwgan.body.clothing).
Objective (Alldieck et al.'s silhouette term with their Laplacian smoothness and offset-size
regularizers, taken on the scalar offsets), minimised with Adam:
    silhouette_loss (mean over the photos with a mask)
    + laplacian_weight * mean_i (L d)_i^2 + magnitude_weight * mean_i d_i^2,
L the uniform graph Laplacian, d the offsets in metres, bounded by a sigmoid and zero on the fixed
vertices. The silhouette is straight-through (soft_silhouette): the soft one's outward bias on a
dense mesh would otherwise shrink a skin-tight person.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from lwgan.body.camera import project
from lwgan.body.clothing import (
    apply_laplacian,
    clothing_vertex_mask,
    uniform_laplacian,
    vertex_normals,
)
from lwgan.body.model import BodyModel
from lwgan.devices import deterministic
from lwgan.recovery.fit_losses import silhouette_loss
from lwgan.recovery.fitting import FitSettings, _targets, crop_coordinates
from lwgan.recovery.observation import FitResult, PersonObservation
from lwgan.render.silhouette import soft_silhouette

logger = logging.getLogger(__name__)


@dataclass
class ClothingSettings:
    """Schedule, bounds and weights of fit_clothing() (offsets in metres; silhouettes in crop pixels).

    Tuned on the COCO skier against its annotated polygon and on the synthetic people of
    tests/recovery/test_clothing_fit.py: 20 steps at 160 px take 0.4 s on 2 CPU threads for one
    photo and raise the skier's IoU from 0.77 (naked) to 0.905-0.908; 25 steps gain 0.001-0.004
    there. A Laplacian weight of 100 lets a skin-tight outline jitter (0.966), 1000 fits the skier's
    hair less (0.906). Photos use 224 px (0.6-0.75 s): a coarser crop loses thin parts such as feet
    in shoes. Against 160 px, the fashion photo's feet have 0.95 of their mask pixels covered (0.85;
    0.92 at 256 px) and her whole outline an IoU of 0.960 (0.948); the tai chi photo 0.976 (0.965);
    the skier 0.915 (0.910; 192 px gained it nothing, but kept a skin-tight synthetic outline better,
    0.981 against 0.974). Videos keep 160 px (video_clothing_settings).
    """

    iterations: int = 20  # Adam steps (one straight-through silhouette per photo each)
    learning_rate: float = 0.25  # per step, on the offsets' sigmoid logits (about 4 mm a step at zero offset)
    min_offset: float = -0.02  # metres: how far inside the naked body the surface may go (a body fitted a little too wide)
    max_offset: float = 0.15  # metres outwards: loose clothes, hair
    laplacian_weight: float = 300.0  # mean squared uniform Laplacian of the offsets (metres^2)
    magnitude_weight: float = 1.0  # mean squared offset (metres^2): skin-tight people keep near-zero offsets
    silhouette_resolution: int = 224  # side of the square silhouette crop in pixels
    silhouette_sigma: float = 0.15  # soft_silhouette's softness in crop pixels (its gradients reach 0.5 px)
    silhouette_margin: float = 0.15  # the crop is the person's box's larger side times (1 + margin)


VIDEO_SILHOUETTE_RESOLUTION = 160
"""The silhouette crop of a video's clothing fit (lwgan preprocess): at 224 px, as photos, lwgan bench fit's video takes 0.31 s
per frame (0.07 of it the clothing), over the 0.3 s target."""


def video_clothing_settings() -> ClothingSettings:
    """ClothingSettings of a video's clothing fit (lwgan preprocess): silhouettes at VIDEO_SILHOUETTE_RESOLUTION."""
    return ClothingSettings(silhouette_resolution=VIDEO_SILHOUETTE_RESOLUTION)


@dataclass(frozen=True)
class _Views:
    """The B photos with a mask, as tensors: the fixed fitted bodies and the masks the offsets are fitted to."""

    vertices: torch.Tensor  # (B, V, 3) posed naked bodies, image orientation, metres
    normals: torch.Tensor  # (B, V, 3) their unit vertex normals
    camera: torch.Tensor  # (B, 3) weak perspective in each image's square frame
    crop_center: torch.Tensor  # (B, 2) the silhouette crop's centre in square-frame NDC
    crop_half_size: torch.Tensor  # (B,) half its side, in the same NDC
    silhouette: torch.Tensor  # (B, R, R) the masks' coverage of the crops' pixels


@deterministic
def fit_clothing(
    body: BodyModel,
    observations: list[PersonObservation],
    fit: FitResult,
    settings: ClothingSettings | None = None,
) -> np.ndarray:
    """One offset field for the person seen in `observations`, fitted to their masks with the fitted bodies held fixed.

    Args:
        body: the body model (its device is used).
        observations: B photos of one person; those without a mask are skipped.
        fit: the FitResult of these B observations (pose, shape and camera stay fixed).
        settings: ClothingSettings() when None.
    Returns:
        (V,) float32 offsets in metres along the posed normals, in [min_offset, max_offset], zero
        outside clothing_vertex_mask(body); all zero (with a warning) when no observation has a mask.
    """
    settings = ClothingSettings() if settings is None else settings
    _check_inputs(observations, fit, body.shape_dim, settings)
    free = clothing_vertex_mask(body)
    rows = [index for index, observation in enumerate(observations) if observation.mask is not None]
    if not rows:
        logger.warning("no observation has a mask: the clothing offsets stay zero")
        return np.zeros(free.shape[0], dtype=np.float32)
    views = _views(body, [observations[row] for row in rows], fit, rows, settings)
    laplacian = uniform_laplacian(body.faces, free.shape[0])

    # offsets = min + (max - min) * sigmoid(logit), every logit starting at zero offset.
    span = settings.max_offset - settings.min_offset
    logit = torch.full((int(free.sum()),), math.log(-settings.min_offset / settings.max_offset),
                       dtype=views.vertices.dtype, device=free.device, requires_grad=True)

    def offsets() -> torch.Tensor:
        return torch.zeros_like(free, dtype=logit.dtype).index_put((free,), settings.min_offset + span * torch.sigmoid(logit))

    optimizer = torch.optim.Adam([logit], lr=settings.learning_rate)
    for _ in range(settings.iterations):
        optimizer.zero_grad(set_to_none=True)
        field = offsets()
        loss = (
            silhouette_loss(_crop_silhouettes(views, field, body.faces, settings), views.silhouette).mean()
            + settings.laplacian_weight * apply_laplacian(laplacian, field).pow(2).mean()
            + settings.magnitude_weight * field.pow(2).mean()
        )
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        field = offsets()
    logger.debug("clothing: %d steps on %d photos, offsets from %.1f to %.1f mm", settings.iterations, len(rows),
                 1000 * field.min().item(), 1000 * field.max().item())
    return field.cpu().numpy().astype(np.float32)


def _views(body: BodyModel, observations: list[PersonObservation], fit: FitResult, rows: list[int], settings: ClothingSettings) -> _Views:
    """The fitted bodies of fit's `rows` posed once, and the observations' masks resampled onto their crops."""
    device, dtype = body.faces.device, torch.float32
    crop = FitSettings(silhouette_resolution=settings.silhouette_resolution, silhouette_margin=settings.silhouette_margin)
    targets = _targets(observations, crop, device, dtype, with_silhouette=True)
    with torch.no_grad():
        vertices = body(torch.as_tensor(fit.pose[rows], device=device), torch.as_tensor(fit.shape[rows], device=device)).vertices.to(dtype)
    return _Views(
        vertices=vertices,
        normals=vertex_normals(vertices, body.faces),
        camera=torch.as_tensor(fit.camera[rows], dtype=dtype, device=device),
        crop_center=targets.box_center,
        crop_half_size=targets.crop_half_size,
        silhouette=targets.silhouette,
    )


def _crop_silhouettes(views: _Views, offsets: torch.Tensor, faces: torch.Tensor, settings: ClothingSettings) -> torch.Tensor:
    """(B, R, R) straight-through silhouettes of the bodies clothed by (V,) offsets, in the crops.

    Each view draws only the faces that face its camera: on a closed mesh the first surface along
    every ray faces the camera, so they cover the same pixels as all faces (but for a pixel or two
    seen through the body's eye and mouth openings, in the fixed face) at about half the cost.
    """
    clothed = views.vertices + offsets[None, :, None] * views.normals
    crop_xy = crop_coordinates(project(clothed, views.camera)[..., :2], views.crop_center, views.crop_half_size)
    crop_ndc = torch.cat([crop_xy, clothed[..., 2:]], dim=-1)
    return soft_silhouette(crop_ndc, faces, settings.silhouette_resolution, sigma=settings.silhouette_sigma, straight_through=True,
                           cull_back_faces=True)


def _check_inputs(observations: list[PersonObservation], fit: FitResult, shape_dim: int, settings: ClothingSettings) -> None:
    """Raise ValueError unless `fit` has one row per observation and the settings' bounds hold zero."""
    if not observations:
        raise ValueError("observations is empty")
    batch_size = len(observations)
    expected = {"pose": (batch_size, 24, 3), "shape": (batch_size, shape_dim), "camera": (batch_size, 3)}
    for name, shape in expected.items():
        actual = np.shape(getattr(fit, name))
        if actual != shape:
            raise ValueError(f"fit.{name} must have shape {shape} (one row per observation), got {actual}")
    if not settings.min_offset < 0.0 < settings.max_offset:
        raise ValueError(f"min_offset < 0 < max_offset must hold, got {settings.min_offset} and {settings.max_offset}")
