"""Does the made person look like a person in the right place? Re-detect them and compare with the target body."""

from __future__ import annotations

import numpy as np
import torch

from lwgan.eval.metrics import mask_iou
from lwgan.recovery.detector import NoPersonError, PoseDetector


def redetected_mask_iou(frames: list[np.ndarray], target_masks: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Intersection over union of the person mask the detector finds in each frame and the target body's mask.

    Each frame is searched on its own (photo mode, no tracking), so one frame's result does not lean on another's.

    Args:
        frames: N (H, W, 3) uint8 RGB frames (e.g. SynthesisResult.frames).
        target_masks: (N, H, W) bool, where each frame's target mesh covers the picture.
        threshold: the detector's mask (probabilities) is cut here.
    Returns:
        (N,) float64 IoU; 0 where the detector finds nobody.
    """
    if len(frames) != len(target_masks):
        raise ValueError(f"{len(frames)} frames but {len(target_masks)} target masks")
    found = np.zeros(target_masks.shape, bool)
    with PoseDetector() as detector:
        for index, frame in enumerate(frames):
            try:
                observation = detector.detect(frame, name=f"frame {index}")
            except NoPersonError:
                continue
            if observation.mask is not None:
                found[index] = observation.mask > threshold
    return mask_iou(torch.from_numpy(found), torch.from_numpy(target_masks)).double().numpy()
