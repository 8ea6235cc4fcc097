"""Evaluation: image metrics (SSIM, PSNR, body-region variants, mask IoU, LPIPS), the warping baseline, the self-imitation protocol."""

from lwgan.eval.baseline import WarpingResult, inpaint_background, texture_warping
from lwgan.eval.metrics import (
    LearnedPerceptualSimilarity,
    load_lpips,
    mask_iou,
    psnr,
    ssim,
)

__all__ = ["LearnedPerceptualSimilarity", "WarpingResult", "inpaint_background", "load_lpips", "mask_iou", "psnr", "ssim", "texture_warping"]
