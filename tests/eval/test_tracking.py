"""Tracking a walker who crosses the frame and turns around: `lwgan preprocess` against the rendered truth."""

import json

import numpy as np
import pytest

from lwgan.config import compose
from lwgan.data import preprocess
from lwgan.eval.tracking import make_turning_walk, score_tracking


@pytest.fixture(scope="module")
def turning_walk(tmp_path_factory, anny_body):
    folder = tmp_path_factory.mktemp("turning_walk")
    clip = make_turning_walk(anny_body, folder, size=256, fps=15.0, seed=0)
    preprocess.run(compose("preprocess", [f"input={clip.video}", f"output={folder / 'dataset'}", "image_size=256", "preview=false"]))
    return clip, folder / "dataset"


def test_the_clip_crosses_the_frame_and_turns_around(turning_walk):
    clip, _ = turning_walk
    two_seconds = round(2 * clip.fps) + 1
    centres = np.array([np.nonzero(mask)[1].mean() for mask in clip.masks[:two_seconds]])
    assert (centres.max() - centres.min()) / clip.masks.shape[2] >= 0.6
    assert np.degrees(clip.heading[-1] - clip.heading[0]) == pytest.approx(180.0)


def test_the_fitted_body_follows_the_walker_in_every_frame(turning_walk, anny_body):
    clip, dataset = turning_walk
    score = score_tracking(anny_body, clip, dataset)
    print(f"turning walk: IoU mean {score.iou.mean():.3f} min {score.iou.min():.3f}; MPJPE mean {score.mpjpe_mm.mean():.0f} mm max {score.mpjpe_mm.max():.0f} mm")
    # Measured: IoU mean 0.83, min 0.78 (frame 9), MPJPE 121 mm, the legs swapped in 1 frame of 34 with the feet apart.
    # The clip renders a little differently with the number of cores (the renderer's rounding), and the worst frame
    # moves with it: 0.763 with OMP_NUM_THREADS=1, 0.761 on one core (taskset -c 0). Before the legs' labels were decided
    # over the whole video (lwgan.recovery.leg_labels): 0.82 and 0.75, 157 mm, the legs swapped in 10 frames and
    # switching 5 times, as the detector's labels did. Earlier figures are in git history; the chunk-start tracking of
    # the first version gave 0.35 and 0.01 (the mesh stayed behind during the turn).
    assert score.iou.mean() >= 0.80
    assert score.iou.min() >= 0.75
    # The body clothed by the video's offsets (fitted to the detector's masks, as lwgan evaluate and training use it) is
    # nearer the truth than the naked one: measured mean 0.85, min 0.79 (0.772 and 0.783 with one thread, one core).
    print(f"clothed: IoU mean {score.clothed_iou.mean():.3f} min {score.clothed_iou.min():.3f}")
    assert score.clothed_iou.mean() >= score.iou.mean()
    assert score.clothed_iou.min() >= 0.75
    # The legs keep one identity: in profile the detector calls the rear foot left or right in runs of 2-8 frames, and
    # the fit used to follow it (the legs switching 5 times). Which identity the 22 profile frames take is decided
    # across the turn, where the evidence is weak: on one core (taskset -c 0) the clip renders a few pixels
    # differently, and they take the wrong one (21 of 34 frames swapped, 1 switch, MPJPE 182 mm); with two, 1 frame
    # swapped, 2 switches, 121 mm.
    print(f"legs swapped in {score.legs_swapped.sum()} of {score.feet_apart.sum()} frames, {score.identity_switches()} switches")
    assert score.identity_switches() <= 2
    assert score.mpjpe_mm.mean() <= 200.0
    info = json.loads((dataset / "smpls" / "turning_walk" / "info.json").read_text())
    assert info["lost_frames"] == [] and info["frames"] == len(clip.pose)
