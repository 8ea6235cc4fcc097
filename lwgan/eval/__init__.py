"""Evaluation: image metrics (SSIM, PSNR, body-region variants, mask IoU, LPIPS) and the self-imitation protocol."""

from lwgan.eval.metrics import (
    LearnedPerceptualSimilarity,
    load_lpips,
    mask_iou,
    psnr,
    ssim,
)

__all__ = ["LearnedPerceptualSimilarity", "load_lpips", "mask_iou", "psnr", "ssim"]
