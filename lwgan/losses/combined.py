"""Generator and discriminator losses of Liquid Warping GAN training, returning named terms and their total.

Default weights are the original's (impersonator scripts/train_iPER.sh with its option defaults;
iPERCore train_aug_bg.toml agrees except mask 5):

    reconstruction 10  L1 between the source reconstruction and the source image (lambda_rec)
    perceptual     10  VGG19 perceptual L1 between the transferred and the target image (lambda_tsf)
    face            5  SphereFace-20 feature L1 between head crops of the two (lambda_face: 5 in both
                       released training set-ups; impersonator's option default is 1)
    mask            1  BCE of the attention masks against the background masks (lambda_mask, --mask_bce)
    mask_smooth     1  TV-L1 of the attention masks (lambda_mask_smooth)
    adversarial     1  LSGAN, generator target 0; discriminator targets real 1, fake -1 (lambda_D_prob)

Two terms of ours, off by default (lwgan train turns them on, see TrainConfig):
    body            L1 between the transferred and the target image over the target body's pixels
                    (the body is a small part of the picture; the whole-image terms under-weigh it)
    background      L1 between the background stream's image and the target over the target's
                    background pixels (static camera: where the target shows background, the
                    inpainted background must match it; without this only the composite is judged)
Without a VGG19 weights file the perceptual term is replaced by "l1" (L1) and "ssim" (kornia SSIM
loss) between the transferred and the target image, each with weight 10; without a SphereFace-20
weights file the face term is off.
"""

from __future__ import annotations

import logging
import math
import os

import torch
from torch import nn

from lwgan.checks import check_shape
from lwgan.losses.sphereface import FACE_CONFIG_KEY, face_crop, load_sphereface
from lwgan.losses.terms import (
    Logits,
    face_identity_loss,
    lsgan_discriminator_fake,
    lsgan_discriminator_real,
    lsgan_generator,
    mask_bce,
    masked_l1,
    perceptual_loss,
    reconstruction_l1,
    ssim_loss,
    total_variation,
)
from lwgan.losses.vgg import VGG19_CONFIG_KEY, load_vgg19_features

logger = logging.getLogger(__name__)


def _check_weights(weights: dict[str, float]) -> None:
    for name, weight in weights.items():
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"the weight of term {name!r} must be a finite number >= 0, got {weight!r}")


def _total(terms: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    return torch.stack([weights[name] * value for name, value in terms.items()]).sum()


class GeneratorLoss(nn.Module):
    """The generator's training loss: named, unweighted terms and their weighted sum "total".

    A term whose weight is 0 is neither computed nor returned. The frozen VGG19 and SphereFace-20
    networks are submodules, so `.to(device)` moves them with the loss.

    Args (keyword only; defaults as in the module docstring):
        reconstruction_weight, perceptual_weight, l1_weight, ssim_weight, face_weight, mask_weight,
            mask_smooth_weight, adversarial_weight, body_weight, background_weight: weights >= 0 of the terms. perceptual_weight is
            used with vgg_path, l1_weight and ssim_weight without it.
        vgg_path: torchvision-format VGG19 weights (`vgg19-dcbb9e9d.pth`), or None for L1 + SSIM
            (a warning is logged once, here).
        face_path: SphereFace-20 weights (`sphere20a_20171020.pth`), or None for no face term.
        vgg_imagenet_normalization: see VGG19Features (False = the original's behaviour).
    Attributes:
        weights: term name -> weight of every term forward returns (besides "total").
    """

    def __init__(
        self,
        *,
        reconstruction_weight: float = 10.0,
        perceptual_weight: float = 10.0,
        l1_weight: float = 10.0,
        ssim_weight: float = 10.0,
        face_weight: float = 5.0,
        mask_weight: float = 1.0,
        mask_smooth_weight: float = 1.0,
        adversarial_weight: float = 1.0,
        body_weight: float = 0.0,
        background_weight: float = 0.0,
        vgg_path: str | os.PathLike | None = None,
        face_path: str | os.PathLike | None = None,
        vgg_imagenet_normalization: bool = False,
    ) -> None:
        super().__init__()
        weights = {
            "reconstruction": reconstruction_weight, "perceptual": perceptual_weight, "l1": l1_weight,
            "ssim": ssim_weight, "face": face_weight, "mask": mask_weight, "mask_smooth": mask_smooth_weight,
            "adversarial": adversarial_weight, "body": body_weight, "background": background_weight,
        }
        _check_weights(weights)
        unused = {"l1", "ssim"} if vgg_path is not None else {"perceptual"}
        if face_path is None:
            unused.add("face")
        self.weights = {name: float(weight) for name, weight in weights.items() if weight > 0 and name not in unused}
        if not self.weights:
            raise ValueError("every loss term has weight 0: nothing to train")

        self.vgg_network = None
        if "perceptual" in self.weights:
            self.vgg_network = load_vgg19_features(vgg_path, imagenet_normalization=vgg_imagenet_normalization)
        elif "l1" in self.weights or "ssim" in self.weights:
            logger.warning(
                "no VGG19 weights configured (%s): the transferred image is compared with L1 + SSIM "
                "instead of the original's VGG19 perceptual loss", VGG19_CONFIG_KEY,
            )
        self.face_network = None
        if "face" in self.weights:
            self.face_network = load_sphereface(face_path)
        elif face_path is None and face_weight > 0:
            logger.info("no SphereFace-20 weights configured (%s): the face identity loss is off", FACE_CONFIG_KEY)

    def forward(
        self,
        *,
        reconstruction: torch.Tensor,
        source: torch.Tensor,
        transfer: torch.Tensor,
        target: torch.Tensor,
        masks: torch.Tensor,
        background_masks: torch.Tensor,
        fake_logits: Logits,
        head_boxes: torch.Tensor | None = None,
        body_masks: torch.Tensor | None = None,
        background: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The generator's loss terms for one batch.

        Args:
            reconstruction: (B, 3, H, W) generated reconstruction of the source image, [-1, 1].
            source: (B, 3, H, W) the source image, [-1, 1].
            transfer: (T, 3, H, W) generated image of the source person in the target pose, [-1, 1].
            target: (T, 3, H, W) the real target image, [-1, 1].
            masks: (N, 1, H, W) the generator's attention masks in [0, 1], 1 = background (e.g. the
                source and transfer masks concatenated along the batch, as in the original).
            background_masks: (N, 1, H, W) their targets, 1 on the background.
            fake_logits: the discriminator's logits for `transfer` (a tensor, or one per head).
            head_boxes: (T, 4) NDC head boxes (x0, y0, x1, y1) in the target image
                (head_boxes_from_keypoints); both transfer and target are cropped with them. Needed
                when the face term is on.
            body_masks: (T, 1, H, W) 1 on the target body; needed by the body and background terms.
            background: (T, 3, H, W) the background stream's image, [-1, 1]; needed by the background term.
        Returns:
            dict of scalars: the active terms among "reconstruction", "perceptual" | "l1", "ssim",
            "face", "mask", "mask_smooth", "adversarial", "body", "background" (unweighted), and "total" = sum of
            weights[name] * term.
        """
        check_shape("transfer", transfer, (None, 3, None, None))
        check_shape("masks", masks, (None, 1, None, None))
        terms: dict[str, torch.Tensor] = {}
        if "reconstruction" in self.weights:
            terms["reconstruction"] = reconstruction_l1(reconstruction, source)
        if "perceptual" in self.weights:
            terms["perceptual"] = perceptual_loss(self.vgg_network, transfer, target)
        if "l1" in self.weights:
            terms["l1"] = reconstruction_l1(transfer, target)
        if "ssim" in self.weights:
            terms["ssim"] = ssim_loss(transfer, target)
        if "face" in self.weights:
            if head_boxes is None:
                raise ValueError("the face identity term is on (face_path is set): pass head_boxes")
            generated_faces, target_faces = face_crop(transfer, head_boxes), face_crop(target, head_boxes)
            terms["face"] = face_identity_loss(self.face_network, generated_faces, target_faces)
        if "mask" in self.weights:
            terms["mask"] = mask_bce(masks, background_masks)
        if "mask_smooth" in self.weights:
            terms["mask_smooth"] = total_variation(masks)
        if "adversarial" in self.weights:
            terms["adversarial"] = lsgan_generator(fake_logits)
        if ("body" in self.weights or "background" in self.weights) and body_masks is None:
            raise ValueError("the body and background terms need body_masks")
        if "body" in self.weights:
            terms["body"] = masked_l1(transfer, target, body_masks)
        if "background" in self.weights:
            if background is None:
                raise ValueError("the background term needs the background stream's image (background=)")
            terms["background"] = masked_l1(background, target, 1 - body_masks)
        terms["total"] = _total(terms, self.weights)
        return terms


class DiscriminatorLoss(nn.Module):
    """The discriminator's least-squares GAN loss (targets: real 1, generated -1), as named terms.

    Args:
        adversarial_weight: weight of both terms (the original's lambda_D_prob, 1).
    """

    def __init__(self, *, adversarial_weight: float = 1.0) -> None:
        super().__init__()
        _check_weights({"adversarial": adversarial_weight})
        self.weights = {"real": float(adversarial_weight), "fake": float(adversarial_weight)}

    def forward(self, *, real_logits: Logits, fake_logits: Logits) -> dict[str, torch.Tensor]:
        """Terms for one batch.

        Args:
            real_logits: the discriminator's logits for real images (a tensor, or one per head).
            fake_logits: its logits for generated images, computed from detached images.
        Returns:
            {"real": mean((D(real) - 1)^2), "fake": mean((D(fake) + 1)^2),
             "total": weights["real"] * real + weights["fake"] * fake}.
        """
        terms = {"real": lsgan_discriminator_real(real_logits), "fake": lsgan_discriminator_fake(fake_logits)}
        terms["total"] = _total(terms, self.weights)
        return terms
