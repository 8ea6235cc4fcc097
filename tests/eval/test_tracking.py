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
    # Measured: IoU mean 0.819, min 0.746 (frame 9), MPJPE 157 mm. The worst frame moves by 0.03-0.07 between runs
    # that differ only in rounding (thread count, machine). With the polish on the full mesh, 20 steps on at most 5 % of
    # the frames: 0.814 and 0.728 (frame 8; 0.74 with 1 thread, frame 23). With the re-fit's second start
    # (each frame's tracked fit) instead of the soft polish of the frames that dip: 0.816 and 0.730 (0.76 with 1
    # thread); over seeds 0-6 the polish lifts the mean of the worst frames from 0.735 to 0.754 (0.753 to 0.770 with
    # 1 thread). Before the re-fit also started from each frame's tracked fit: 0.81 and 0.745 (0.73 with 1 thread; frame 9, where the detector's face and shoulder
    # keypoints sit 19 and 12 px low), MPJPE 155 mm. With the unsure pixels of a lost head restored but not the face
    # the detector gave up on (under 0.05): 0.69 on this machine (0.72 on another: the detector's masks differ a
    # little between machines). Before the detector's unsure head was restored from the frames around it
    # (steadied_masks): 0.81 and 0.67 (frame 8, its mask below one half over the head before a blue box). Before every
    # frame was re-fitted after the smoothing (only the poorly covered ones, and a chamfer stage in the tracking):
    # 0.78, 0.68, 210 mm. Before the poorly covered frames were re-fitted and keypoints off the person's mask were
    # ignored: 0.77 and 0.63 (frame 24, mid-turn). Before each frame's limbs started from its own 3D landmarks, with the legs' labels kept in
    # order from frame to frame: 0.75 and 0.54. The chunk-start tracking before that gave 0.35 and 0.01 (the mesh
    # stayed behind during the turn).
    assert score.iou.mean() >= 0.80
    assert score.iou.min() >= 0.70
    # The body clothed by the video's offsets (fitted to the detector's masks, as lwgan evaluate and training use it) is
    # nearer the truth than the naked one: measured mean 0.838, min 0.769; with the polish on the full mesh 0.830 and
    # 0.743 (0.83 and 0.73 with 1 thread); with the re-fit's second start 0.833 and 0.759 (0.83 and 0.77 with 1 thread); before it 0.837 and 0.768 (0.835 and 0.750
    # with 1 thread; frame 9).
    print(f"clothed: IoU mean {score.clothed_iou.mean():.3f} min {score.clothed_iou.min():.3f}")
    assert score.clothed_iou.mean() >= score.iou.mean()
    assert score.clothed_iou.min() >= 0.72
    assert score.mpjpe_mm.mean() <= 200.0
    info = json.loads((dataset / "smpls" / "turning_walk" / "info.json").read_text())
    assert info["lost_frames"] == [] and info["frames"] == len(clip.pose)
