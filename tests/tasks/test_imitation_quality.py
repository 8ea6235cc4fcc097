"""Acceptance: a real photo imitating a CMU clip; the person the detector finds in the output sits on the target body."""

from pathlib import Path

import numpy as np

from lwgan.eval.redetect import redetected_mask_iou
from lwgan.tasks.imitate import Imitator

DATA = Path(__file__).resolve().parents[1] / "data"
PHOTO = DATA / "pexels_lunge" / "pexels-anete-lusina-4793258_512.jpg"
HOP = DATA / "cmu_mocap" / "131_03.bvh"


def test_redetected_person_covers_the_target_body(anny_body):
    imitator = Imitator(body=anny_body, image_size=128)
    result = imitator(source=PHOTO, reference=HOP, max_frames=48)
    assert len(result) == 48
    masks = imitator.body_masks(result)
    every_fourth = slice(0, None, 4)
    iou = redetected_mask_iou(result.frames[every_fourth], masks[every_fourth])
    # Measured over these 12 frames: median 0.94, 11 of 12 at 0.93-0.97; in one run one frame scored 0.39
    # because the detector took the cast shadow for a second, larger person (256 px, 60 frames: median 0.93).
    assert np.median(iou) >= 0.7, iou
    assert (iou >= 0.7).mean() >= 0.75, iou
    # The body moves with the clip: its masks differ across the hop.
    assert (masks[0] ^ masks[-1]).sum() > 0.05 * masks[0].sum()
