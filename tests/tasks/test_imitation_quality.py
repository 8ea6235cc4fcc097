"""Acceptance: a real photo imitating a CMU clip; the person the detector finds in the output sits on the target body."""

from pathlib import Path

import numpy as np

from lwgan.eval.redetect import redetected_mask_iou
from lwgan.tasks.imitate import Imitator

DATA = Path(__file__).resolve().parents[1] / "data"
PHOTO = DATA / "pexels_lunge" / "pexels-anete-lusina-4793258_512.jpg"
HOP = DATA / "cmu_mocap" / "131_03.bvh"


def test_redetected_person_covers_the_target_body(anny_body):
    imitator = Imitator(body=anny_body, image_size=256)
    result = imitator(source=PHOTO, reference=HOP, max_frames=48)
    assert len(result) == 48
    masks = imitator.body_masks(result)
    every_fourth = slice(0, None, 4)
    iou = redetected_mask_iou(result.frames[every_fourth], masks[every_fourth])
    # Measured over these 12 frames: 0.91-0.96, median 0.92 (all 276 frames of the clip: median 0.93).
    # Before the detector told a painted-over silhouette plus its cast shadow from a second person,
    # 2 of the 12 frames scored 0.2-0.4.
    assert np.median(iou) >= 0.7, iou
    assert (iou >= 0.7).mean() >= 0.75, iou
    # The body moves with the clip: its masks differ across the hop.
    assert (masks[0] ^ masks[-1]).sum() > 0.05 * masks[0].sum()
