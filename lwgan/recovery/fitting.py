"""SMPLify-style fitting (Bogo et al., ECCV 2016) of body pose, shape and weak-perspective camera to observations.

Stages (all B observations optimise together, one body forward per step, Adam):
    1. orientation (cold start only): global orientation and camera on the torso keypoints, the body
       held in a relaxed pose. The rotation about the pelvis is applied to precomputed keypoints, so
       this stage costs no body forward; it starts from several headings at once (facing the camera,
       its back, both sides) and keeps, per observation, the one that fits best. That settles front
       versus back: a person seen from behind has the left shoulder on the image's left.
    2. body: pose, global orientation, shape and camera on all keypoints, the 3D bone directions of
       the detector's world landmarks, joint-angle limits and the pose and shape priors.
    3. silhouette: the same plus a soft silhouette against the observed mask, at low resolution in
       a square crop around the person (fewer iterations: it is the costly term; only the faces
       that face the camera are drawn, which cover the same pixels at two thirds of the cost). Weighted strongly,
       since clothes make real masks wider than the body, and mainly a matter of shape and camera:
       the pose moves at a fifth of their rate, as silhouettes say little about depth and a
       fast-moving pose wanders with the rough gradients of a dense mesh's soft silhouette.
A warm start (initial=...) skips stage 1 and runs shorter schedules (FitSettings.warm_*).

track_bodies() fits consecutive video frames after the fits of the frames before them: stage 1
per frame (its own camera and heading, with the previous articulated pose), the limbs turned to
each frame's own 3D landmarks, then stage 2 for all frames together with a temporal term
(keypoint acceleration) and limb labels matched to the body. refit_silhouettes() re-fits each frame
of a smoothed video warm, with a chamfer silhouette term (distances to the mask, no rendering)
instead of the soft one, then polishes the few frames that cover their masks worse than their
neighbours with the soft term.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from lwgan.body.camera import (
    UPRIGHT_ORIENTATION,
    angle_between,
    heading_of,
    heading_of_left_direction,
    root_headings,
    with_heading,
)
from lwgan.body.model import BodyModel
from lwgan.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from lwgan.body.skeleton import BODY_KEYPOINT_NAMES, SMPL_JOINT_NAMES
from lwgan.devices import deterministic
from lwgan.eval.metrics import mask_iou
from lwgan.recovery import fit_losses
from lwgan.recovery.observation import FitResult, PersonObservation, box_side
from lwgan.recovery.preview import fitted_silhouette
from lwgan.render.silhouette import soft_silhouette

logger = logging.getLogger(__name__)

TORSO_KEYPOINTS = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")
"""Keypoints that place the torso in stage 1."""

FACE_KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
"""Keypoints that tell stage 1 which way the head (and so the body) faces when the torso is seen edge-on."""

_LEFT_SIDE = [BODY_KEYPOINT_NAMES.index(name) for name in ("left_hip", "left_shoulder")]
_RIGHT_SIDE = [BODY_KEYPOINT_NAMES.index(name) for name in ("right_hip", "right_shoulder")]

SWAPPABLE_LIMBS = (("knee", "ankle", "heel", "big_toe", "small_toe"), ("elbow", "wrist"))
"""Limbs whose left and right labels a detector confuses (legs seen from the side, crossed arms)."""

ORDERED_LIMBS = SWAPPABLE_LIMBS[:1]
"""The limbs whose labels lwgan.recovery.leg_labels decides over a whole video before tracking: the legs."""

RELABELLED_LIMBS = SWAPPABLE_LIMBS[1:]
"""The limbs that track_bodies matches to the body under whichever labelling lies nearer, per frame and step: the arms
(forearms that cross). Not the legs: the body would keep whatever identity its legs started with. On the turning walk
(seeds 0-6, the legs labelled by an earlier version of leg_labels), matching the legs too, and ordering them from the
previous chunk, left them swapped in 70 of 237 frames with the feet apart and switching 32 times, against 65 and 24
without (MPJPE 144 against 142 mm); with today's leg_labels and without: 22 and 9 (120 mm)."""

MAX_REFIT_TURN = math.pi / 4
"""How far refit_silhouettes may turn the heading of a row it is told to keep facing its way (keep_heading).

lwgan preprocess marks the frames it filled from their neighbours because their own fit faced the other way: their
detection took a front for a back, with its left and right labels and 3D landmarks flipped together, and a re-fit on it
turns back with them while covering the mask as well or better. On lwgan bench fit's clip (a textured body with a blank
face), 3 of its 4 filled frames ended 66-81 degrees off their filled heading, and 2 of them more than 90 degrees off the
truth; within this bound, none is more than 47 degrees off the truth."""

SOFT, CHAMFER = "soft", "chamfer"
"""The silhouette terms of a stage: the soft silhouette against the mask, or the chamfer distances to it (no rendering)."""

BOUNDED_SHAPE_MODELS = ("anny",)
"""Body models whose shape entries live in [0, 1] (Anny's phenotypes): optimised through a sigmoid."""


@dataclass
class FitSettings:
    """Schedules, learning rates and loss weights of fit_bodies() (defaults tuned on synthetic round trips).

    Units: keypoint residuals are fractions of the person's box size (the larger side of
    PersonObservation.box); angles are radians; the camera's translation is in metres.
    """

    orientation_iterations: int = 60  # stage 1 steps (cold start only); cheap, no body forward
    body_iterations: int = 100  # stage 2 steps, cold start
    silhouette_iterations: int = 25  # stage 3 steps, cold start
    warm_body_iterations: int = 35  # stage 2 steps when initial= is given
    warm_silhouette_iterations: int = 0  # stage 3 steps when initial= is given
    # track_bodies' stage 3 steps (the chamfer silhouette term). Off: the re-fit after the smoothing
    # (refit_silhouette_iterations) does this work. With 50 steps here, tools/eval_tracking.py's
    # seeds 0-2 (1 CPU thread) gave worst frames 0.72 / 0.75 / 0.74 against 0.76 / 0.75 / 0.74 without
    # (when the re-fit took each frame's tracked fit as a second start), and lwgan bench fit's video took
    # 0.34 s per frame against 0.27. Before the re-fit took two starts, 50 steps had lifted the worst frames
    # (0.77 / 0.80 / 0.80 against 0.73 / 0.81 / 0.79) and five real videos' mean mask IoU by 0-0.008:
    # the worst frame moves by this much between runs that differ only in rounding.
    track_silhouette_iterations: int = 0
    # track_bodies' landmark stage, before stage 2: each frame's limbs turn towards its own 3D landmarks.
    # Without it every frame of a chunk starts from the previous chunk's last pose, and a leg that has
    # swung since settles in the wrong basin: on the turning walk with exact keypoints and masks,
    # starting from the true poses gives IoU 0.898 / 0.778 (mean / min) against 0.810 / 0.638; 40 steps
    # on landmarks with 8 cm of noise give 0.809 / 0.725 against 0.754 / 0.565 without them. 25 steps
    # save 0.013 s per frame and do as well on the turning walk, but lose 0.7 dB of body PSNR on a
    # real dance video (lwgan evaluate, dance_aerobic: 17.16 -> 16.45) and 0.2 dB on taiji.
    track_landmark_iterations: int = 40
    # refit_silhouettes (lwgan preprocess runs it on every frame after the smoothing when this is > 0):
    # each frame is re-fitted warm (refit_body_iterations keypoint steps, then this many steps of the
    # chamfer silhouette term, no temporal term) and keeps whichever fit covers its mask better. The
    # smoothing averages every frame with its neighbours; this gives each back its own fit. On
    # tools/eval_tracking.py's seeds 0-2: IoU 0.81 / 0.67, 0.84 / 0.74, 0.84 / 0.79 (mean / min),
    # MPJPE 155, 137, 129 mm. Re-fitting only the frames that cover their mask with an IoU under 0.75
    # (30 steps, and track_bodies' own 30 chamfer steps) gave 0.78 / 0.68, 0.81 / 0.74, 0.81 / 0.74
    # and 210, 173, 113 mm, at the same cost on lwgan bench fit's video (0.29 s per frame); runs of
    # one configuration differ by about 0.02 in the minimum. Adding the temporal term to the re-fit,
    # or matching its limb labels to the body as track_bodies does, fitted no better and lost the
    # MPJPE gain (218 and 182 mm on seeds 0 and 1). 0 turns it off.
    refit_silhouette_iterations: int = 50
    refit_body_iterations: int = 15  # the re-fit's keypoint steps before its silhouette steps
    # The polish, refit_silhouettes' last step (coverage_dips): the frames whose coverage of their mask
    # lies polish_dip or more below the median of the frames within polish_window of them (at most
    # polish_fraction of the frames, the deepest dips first) get polish_iterations steps of the soft
    # silhouette term (SOFT, the photos' term, with polish_pose_learning_rate_scale in place of
    # silhouette_pose_learning_rate_scale, which moves the pose too little in 20 steps) and keep
    # that fit when it covers better. The chamfer term can hold a pose that spills off the mask:
    # in tools/eval_tracking.py's seed 3, frame 22 (mid-turn) kept a pelvis turned to the camera under
    # a side-on chest at IoU 0.69, re-fitted with any chamfer or keypoint weight, without landmarks,
    # or from its neighbours' fits or turned 23 degrees either way; 20 soft steps bring it to 0.76.
    # The soft term draws the body's coarse silhouette mesh (body.silhouette_faces), each frame only
    # the faces that face its camera: 20 steps on 6 frames of the turning walk take 0.3 s per frame on
    # 2 CPU threads, against 0.7-0.8 s with the full mesh. On seeds 0-6 (252 frames, 2 CPU threads),
    # frames under IoU 0.75 (and the mean of the seven seeds' worst frames): the full mesh with 20
    # steps and 5 %, 5 (0.754); the coarse mesh, 4 (0.761); with 40 steps, 4 (0.771); with 30 or 40
    # steps and 10 %, 1 (0.778, 0.780; seed 0's frame 9 at 0.746, where the detector puts the face
    # at the collar for two frames). lwgan bench fit's video, whose dips reach the cap, takes 0.26 s
    # per frame with 20 steps and 5 %, 0.29 with 30 steps and 10 % and 0.30-0.32 with 40 steps and
    # 10 %; the full mesh with 20 steps and 5 % took 0.29-0.32 on the same machine. Five real videos
    # dip in fewer than 5 % of their frames: against the full mesh with 20 steps and 5 %, 30 steps and
    # 10 % move their mean mask IoU by 0.003 or less and their worst frame by 0.006 or less.
    polish_fraction: float = 0.1
    polish_dip: float = 0.03  # IoU
    polish_window: int = 4  # frames either side
    polish_iterations: int = 30  # 0 turns the polish off
    polish_pose_learning_rate_scale: float = 0.5
    orientation_candidates: tuple[float, ...] = (0.0, math.pi / 2, math.pi, -math.pi / 2)  # stage 1 start headings (yaw; 0 faces the camera)
    orientation_learning_rate: float = 0.05  # radians per step, global orientation
    pose_learning_rate: float = 0.05  # radians per step, body joints
    shape_learning_rate: float = 0.05  # per step, shape (Anny: sigmoid logits of the phenotypes)
    camera_learning_rate: float = 0.02  # per step, log-scale and translation (metres)
    silhouette_learning_rate_scale: float = 0.5  # stage 3 (a refinement) multiplies the shape's and camera's learning rates by this
    silhouette_pose_learning_rate_scale: float = 0.2  # ... and the pose's and global orientation's by this too (silhouettes hardly constrain depth; a fast pose wanders)
    keypoint_weight: float = 100.0  # 2D keypoints (GMoF of the box-normalised distance)
    face_keypoint_weight: float = 0.3  # stage 1: confidence factor of FACE_KEYPOINTS relative to the torso
    # 3D bone directions against world landmarks (cosine distance). They settle which way limbs point
    # in depth, which the 2D keypoints leave open: on tools/eval_fit_synthetic.py's detector row,
    # weights 1 to 30 give MPJPE 93-98 mm, 0.3 gives 103 mm and 0 gives 158 mm; the fit then follows
    # the depth of BlazePose's landmarks, whose own error (106 mm) bounds it (39 mm with true ones).
    landmark_weight: float = 3.0
    # track_bodies: squared acceleration of the keypoints from frame to frame, in box units (a 2 %
    # keypoint jitter costs about as much as the keypoint term it fights; a walk's own accelerations
    # at 15-30 fps are a few times smaller than that jitter).
    temporal_weight: float = 30.0
    silhouette_weight: float = 30.0  # blurred squared silhouette difference over the crop (strong: clothes widen the mask)
    # Video fits (track_bodies, and fit_bodies with the CHAMFER term: the re-fit and a video's cold
    # start) ignore a keypoint (and its 3D landmark) that lies farther than this, in box sizes,
    # outside its frame's person mask: a detector that loses a leg seen from the side puts both
    # ankles between the legs, where the body would follow them. In track_bodies, on
    # tools/eval_tracking.py, the worst frame of seed 2 went from IoU 0.48 to 0.58 (MPJPE 148 -> 109
    # mm), of seed 1 from 0.62 to 0.68; seed 0 and four real videos were unchanged (lwgan evaluate,
    # within 0.2 dB). In the re-fit too: seed 0's frame 23 rose from 0.73 to 0.75 or more.
    keypoint_mask_tolerance: float = 0.04
    # The CHAMFER silhouette term of videos (refit_silhouettes, the cold start of a video's first
    # frame, track_bodies' stage 3 when it runs; far cheaper than rendering a batch of soft
    # silhouettes): squared distances, in crop half-sides, of the body's vertices outside the mask
    # and of the mask's outline to the nearest vertex. On tools/eval_tracking.py, 30 tracking steps
    # at weight 300 raised the mean IoU of the raw fits from 0.64 to 0.79 (0.68 at weight 30, 0.77 at
    # 1000). In the re-fit, weight 600 gives the seeds' minima 0.69 / 0.74 / 0.79 (MPJPE 3-6 mm
    # higher) against 0.67 / 0.74 / 0.79, and 1000 gives 0.66 / 0.68 / 0.72.
    chamfer_points: int = 256  # points of the mask's outline
    chamfer_vertices: int = 800  # body vertices (every k-th of the mesh) the term uses (1500 fit no better, at 1.5x the cost)
    chamfer_weight: float = 300.0
    joint_limit_weight: float = 1.0  # squared hinge on axis-angle components (radians^2)
    pose_prior_weight: float = 1e-3  # squared norm of the body joints' axis-angles
    shape_prior_weight: float = 1e-3  # squared distance to body.default_shape()
    robust_scale: float = 0.1  # GMoF scale, as a fraction of the box size
    silhouette_resolution: int = 96  # side of the square silhouette crop in pixels
    silhouette_sigma: float = 0.225  # soft_silhouette's softness in crop pixels (a quarter of a percent of the crop)
    silhouette_margin: float = 0.15  # the crop is the box's larger side times (1 + margin)
    use_landmarks: bool = True  # use world_landmarks when the observation has them
    use_silhouette: bool = True  # stage 3 when the observation has a mask
    use_joint_limits: bool = True
    fit_shape: bool = True  # False keeps the shape at its start (default or initial)


@dataclass(frozen=True)
class _Targets:
    """Observations as tensors (B = number of observations), in each image's square-frame NDC."""

    keypoints: torch.Tensor  # (B, 23, 2)
    confidence: torch.Tensor  # (B, 23), 0 where unknown
    box_size: torch.Tensor  # (B,) larger side of the person's box
    box_center: torch.Tensor  # (B, 2)
    landmarks: torch.Tensor  # (B, 23, 3), zeros where unknown
    landmark_confidence: torch.Tensor  # (B, 23), 0 without landmarks
    silhouette: torch.Tensor  # (B, R, R) mask resampled onto the crop, zeros without a mask
    has_mask: torch.Tensor  # (B,) bool, False for every observation when the silhouette is off
    crop_half_size: torch.Tensor  # (B,) the silhouette crop (centred on the box), half its side
    frame_side: torch.Tensor  # (B,) square frame side in pixels
    frame_offset: torch.Tensor  # (B, 2) image offset in the square frame, pixels
    relabel_limbs: bool = False  # match RELABELLED_LIMBS under the nearer labelling (relabel_limbs())
    mask_distances: fit_losses.MaskDistances | None = None  # what the CHAMFER silhouette term and drop_keypoints_off_the_mask need


def relaxed_pose(batch_size: int = 1, dtype=torch.float32, device=None) -> torch.Tensor:
    """(batch_size, 24, 3) the cold start's body pose: arms lowered from the T-pose, elbows a little bent; zero global orientation."""
    pose = torch.zeros(batch_size, len(SMPL_JOINT_NAMES), 3, dtype=dtype, device=device)
    pose[:, SMPL_JOINT_NAMES.index("left_shoulder"), 2] = -1.15
    pose[:, SMPL_JOINT_NAMES.index("right_shoulder"), 2] = 1.15
    pose[:, SMPL_JOINT_NAMES.index("left_elbow"), 1] = -0.25
    pose[:, SMPL_JOINT_NAMES.index("right_elbow"), 1] = 0.25
    return pose


@deterministic
def fit_bodies(
    body: BodyModel,
    observations: list[PersonObservation],
    settings: FitSettings | None = None,
    initial: FitResult | None = None,
    progress: bool = False,
    shape: np.ndarray | None = None,
    silhouette_term: str = SOFT,
) -> FitResult:
    """Fit pose, shape and camera of `body` to each observation (all at once, as one batch).

    Each observation is fitted independently of the others (the batch only shares the work): the
    total loss is a sum of per-observation losses over per-observation parameters, and Adam updates
    each parameter from its own gradient.

    Args:
        body: the body model (its device is used).
        observations: B observations (keypoints; world landmarks and mask when present).
        settings: FitSettings() when None.
        initial: a FitResult of batch B to start from (e.g. the previous video frame's fits): skips
            the orientation stage and runs the warm schedule.
        progress: show a progress bar over the iterations.
        shape: (K,) the person's known shape (e.g. a video's shared_shape) to start from instead of
            body.default_shape(); with settings.fit_shape False it stays fixed. Not with initial=.
        silhouette_term: the silhouette stage's term: SOFT (the soft silhouette of the body's
            coarse silhouette mesh) or CHAMFER (distances between the body's vertices and the
            mask's outline; no rendering, several times cheaper, and as good from most warm starts).
            With CHAMFER, the video's term, keypoints off their mask are ignored, as in
            track_bodies (drop_keypoints_off_the_mask).
    Returns:
        FitResult with pose (B, 24, 3) in the image orientation, shape (B, shape_dim), camera (B, 3)
        in each image's square frame, keypoints_2d (B, 23, 2) image pixels, and losses: the final
        unweighted terms "keypoints", "landmarks", "silhouette", "joint_limits", "pose_prior",
        "shape_prior", their weighted sum "total", and "keypoint_error_px" (confidence-weighted
        mean distance in pixels), each (B,).
    """
    settings = FitSettings() if settings is None else settings
    if not observations:
        raise ValueError("observations is empty")
    device = body.faces.device
    dtype = torch.float32
    batch_size = len(observations)
    silhouette_iterations = settings.silhouette_iterations if initial is None else settings.warm_silhouette_iterations
    use_silhouette = settings.use_silhouette and silhouette_iterations > 0 and any(o.mask is not None for o in observations)
    if silhouette_term not in (SOFT, CHAMFER):
        raise ValueError(f"silhouette_term must be {SOFT!r} or {CHAMFER!r}, got {silhouette_term!r}")
    targets = _targets(observations, settings, device, dtype, use_silhouette)
    if use_silhouette and silhouette_term == CHAMFER:
        targets = _vetted_by_the_masks(targets, settings)
    default_shape = body.default_shape(batch_size).to(device=device, dtype=dtype)

    if initial is None:
        body_pose = relaxed_pose(batch_size, dtype, device)[:, 1:]
        shape = default_shape.clone() if shape is None else torch.as_tensor(shape, dtype=dtype, device=device).expand(batch_size, -1).clone()
        headings = torch.tensor(settings.orientation_candidates, dtype=dtype, device=device)
        upright = axis_angle_to_matrix(torch.tensor(UPRIGHT_ORIENTATION, dtype=dtype, device=device))
        bases = with_heading(upright.expand(len(headings), batch_size, 3, 3), headings[:, None].expand(-1, batch_size))
        orientation, camera = _fit_orientation(body, targets, body_pose, shape, settings, bases)
        iterations = settings.body_iterations
    else:
        if shape is not None:
            raise ValueError("give the shape through initial.shape when initial= is given")
        _check_initial(initial, batch_size, body.shape_dim)
        start_pose = torch.as_tensor(initial.pose, dtype=dtype, device=device)
        body_pose = start_pose[:, 1:]
        orientation = axis_angle_to_matrix(start_pose[:, 0])
        shape = torch.as_tensor(initial.shape, dtype=dtype, device=device)
        camera = torch.as_tensor(initial.camera, dtype=dtype, device=device)
        iterations = settings.warm_body_iterations
    state = _State.start(body, body_pose, orientation, shape, camera, settings.fit_shape)
    schedule = ((iterations, None), (silhouette_iterations if use_silhouette else 0, silhouette_term))
    _optimise(body, state, targets, settings, default_shape, schedule, progress)
    return _result(body, state, targets, settings, default_shape, silhouette_term if use_silhouette else None)


def shared_shape(body: BodyModel, observations: list[PersonObservation], settings: FitSettings | None = None) -> np.ndarray:
    """(K,) one shape for the person seen in `observations` (e.g. frames spread over a video): the median of their independent cold fits' shapes.

    Fitting each frame's shape on its own lets the shape stand in for pose errors (a body shortened
    to match a bent neck), and a video's bodies then change shape from frame to frame; tracking with
    this one shape fixed keeps the person the same. The median ignores the frames where that happened.
    The fits skip the silhouette stage: the keypoints and landmarks settle the proportions, which is
    what tracking needs (the clothing offsets take the person's outline), at a third of the time
    (on tools/eval_tracking.py the tracked IoU is the same with or without it).
    """
    if not observations:
        raise ValueError("observations is empty")
    settings = replace(FitSettings() if settings is None else settings, silhouette_iterations=0)
    return np.median(fit_bodies(body, observations, settings).shape, axis=0).astype(np.float32)


@deterministic
def track_bodies(
    body: BodyModel,
    observations: list[PersonObservation],
    previous: FitResult,
    frames: Sequence[int],
    previous_frames: Sequence[int],
    settings: FitSettings | None = None,
    progress: bool = False,
) -> FitResult:
    """Fit B consecutive video frames, each starting from its own evidence, after the fits of earlier frames.

    Every frame starts with the articulated pose and shape of the last previous fit (the shape stays
    fixed with settings.fit_shape False, as lwgan preprocess tracks a video's shared_shape), but with its
    own camera and heading: the orientation stage runs per frame with the articulated pose, from
    candidate headings around the previous heading (it, a quarter turn either way, a half turn)
    and the heading of the frame's own 3D landmarks (their hip and shoulder lines) when it has
    them, and keeps the best; its closed-form camera start comes from that frame's keypoints. Each
    frame's limbs then turn towards the bone directions of its own 3D landmarks
    (settings.track_landmark_iterations steps), so that a leg that has swung since the previous
    chunk does not start from where it was. Then the warm body stage refines all frames together
    with a temporal term: the squared acceleration of the body's keypoints in the camera's space
    (the previous fits anchor the first frames), between frames whose indices follow each other.
    The arms' left and right labels (RELABELLED_LIMBS) are matched to the body whichever way lies
    nearer, per frame and step; the legs follow their labels, which lwgan preprocess first makes
    consistent over the whole video (lwgan.recovery.leg_labels). With masks (settings.use_silhouette), keypoints farther than
    settings.keypoint_mask_tolerance outside their frame's person mask are ignored first
    (drop_keypoints_off_the_mask), and settings.track_silhouette_iterations steps of the chamfer
    silhouette term follow stage 2 (none by default).

    Args:
        observations: B observations of frames `frames` (B increasing indices).
        previous: fits of earlier frames (1 or more rows; the last rows anchor the temporal term),
            at frame indices `previous_frames`.
        settings: FitSettings() when None; uses warm_body_iterations and temporal_weight.
    Returns:
        FitResult as fit_bodies(); losses gain "temporal".
    """
    settings = FitSettings() if settings is None else settings
    if not observations:
        raise ValueError("observations is empty")
    if len(frames) != len(observations) or len(previous_frames) != len(previous.pose):
        raise ValueError(f"frames ({len(frames)}) and previous_frames ({len(previous_frames)}) must match the observations "
                         f"({len(observations)}) and previous fits ({len(previous.pose)})")
    device = body.faces.device
    dtype = torch.float32
    batch_size = len(observations)
    use_masks = settings.use_silhouette and any(o.mask is not None for o in observations)
    use_silhouette = use_masks and settings.track_silhouette_iterations > 0
    targets = _targets(observations, settings, device, dtype, use_masks)
    targets = replace(targets, relabel_limbs=True)
    if use_masks:
        targets = _vetted_by_the_masks(targets, settings)
    anchors = _camera_points_of(body, previous, device, dtype)[-2:]
    default_shape = body.default_shape(batch_size).to(device=device, dtype=dtype)
    last = torch.as_tensor(previous.pose[-1], dtype=dtype, device=device)
    body_pose = last[1:].expand(batch_size, -1, -1).clone()
    shape = torch.as_tensor(previous.shape[-1], dtype=dtype, device=device).expand(batch_size, -1).clone()
    previous_orientation = axis_angle_to_matrix(last[0]).expand(batch_size, 3, 3)
    bases = with_heading(previous_orientation.expand(5, -1, -1, -1), _candidate_headings(previous_orientation, targets))
    orientation, camera = _fit_orientation(body, targets, body_pose, shape, settings, bases)
    state = _State.start(body, body_pose, orientation, shape, camera, settings.fit_shape)
    if settings.use_landmarks:
        _turn_limbs_to_landmarks(body, state, targets, settings, settings.track_landmark_iterations)
    temporal = _Temporal(anchors, torch.as_tensor([*previous_frames[-2:], *frames], device=device))
    schedule = ((settings.warm_body_iterations, None), (settings.track_silhouette_iterations if use_silhouette else 0, CHAMFER))
    _optimise(body, state, targets, settings, default_shape, schedule, progress, temporal)
    return _result(body, state, targets, settings, default_shape, CHAMFER if use_silhouette else None, temporal)


@deterministic
def refit_silhouettes(body: BodyModel, observations: list[PersonObservation], fits: FitResult, settings: FitSettings | None = None,
                      batch_size: int = 128, keep_heading: np.ndarray | None = None) -> FitResult:
    """`fits` re-fitted on their keypoints and masks, each frame keeping whichever fit covers its mask best.

    lwgan preprocess runs it on the frames of a video (the rows, in order) after the smoothing, which
    leaves the fits complete and smooth but averages each frame with its neighbours. The re-fit is
    fit_bodies' warm start from each frame's fit: settings.refit_body_iterations keypoint steps,
    then settings.refit_silhouette_iterations steps of the chamfer silhouette term (CHAMFER),
    batch_size frames at a time. Then the polish: the frames whose coverage dips below their
    neighbours' (coverage_dips) get settings.polish_iterations steps of the soft silhouette term
    (SOFT) from their kept fit. A frame keeps a re-fit when it covers the mask better than the fit
    it started from. The coverage is the IoU of the fitted (naked) body's silhouette with the
    observation's mask (silhouette_coverage). Frames without a mask keep their fit. The rows of
    keep_heading ((N,) bool) keep a re-fit only when its heading stays within MAX_REFIT_TURN of the
    heading of the fit it started from.

    Returns a FitResult like `fits`: its losses keep their keys (a re-fitted frame's come from its
    last kept re-fit, 0 where that has none; a polished frame's "silhouette" is the soft term's) and
    gain "coverage", the kept fit's (NaN without a mask).
    """
    settings = FitSettings() if settings is None else settings
    if settings.refit_silhouette_iterations <= 0:
        return fits
    masked = np.array([row for row, observation in enumerate(observations) if observation.mask is not None], dtype=int)
    refit = replace(settings, warm_body_iterations=settings.refit_body_iterations, warm_silhouette_iterations=settings.refit_silhouette_iterations)
    keep_heading = np.zeros(len(observations), dtype=bool) if keep_heading is None else np.asarray(keep_heading, dtype=bool)
    kept = _keep_the_better_covering(body, observations, fits, silhouette_coverage(body, observations, fits), masked, refit, CHAMFER, batch_size,
                                     keep_heading)
    coverage = kept.losses["coverage"]
    return _keep_the_better_covering(body, observations, kept, coverage, coverage_dips(coverage, settings), polish_settings(settings), SOFT,
                                     batch_size, keep_heading)


def polish_settings(settings: FitSettings) -> FitSettings:
    """The warm fit_bodies settings of refit_silhouettes' polish: no keypoint steps, settings.polish_iterations silhouette steps at the polish's pose learning-rate scale."""
    return replace(settings, warm_body_iterations=0, warm_silhouette_iterations=settings.polish_iterations,
                   silhouette_pose_learning_rate_scale=settings.polish_pose_learning_rate_scale)


def coverage_dips(coverage: np.ndarray, settings: FitSettings) -> np.ndarray:
    """Sorted rows of `coverage` (N,) (a video's frames in order, NaN without a mask) that refit_silhouettes polishes.

    A row dips when its coverage lies settings.polish_dip or more below the median coverage of the
    rows within settings.polish_window of it (itself included, NaN left out). The deepest dips
    come first, at most settings.polish_fraction of the rows with a coverage (rounded up); none
    when settings.polish_iterations is 0. A stretch of frames that all cover their masks worse
    (loose clothes, say) does not dip.
    """
    known = np.isfinite(coverage)
    if settings.polish_iterations <= 0 or not known.any():
        return np.zeros(0, dtype=int)
    window = settings.polish_window
    depth = np.array([np.nanmedian(coverage[max(0, row - window) : row + window + 1]) - coverage[row] if known[row] else -np.inf
                      for row in range(len(coverage))])
    deepest = np.argsort(-depth, kind="stable")[: math.ceil(settings.polish_fraction * known.sum())]
    return np.sort(deepest[depth[deepest] >= settings.polish_dip])


def _keep_the_better_covering(body: BodyModel, observations: list[PersonObservation], fits: FitResult, coverage: np.ndarray, rows: np.ndarray,
                              settings: FitSettings, silhouette_term: str, batch_size: int, keep_heading: np.ndarray) -> FitResult:
    """`fits` with each of `rows` re-fitted (fit_bodies from its fit, `silhouette_term`, batch_size rows at a time) where the re-fit covers its mask better than `coverage` (N,) says the fit does.

    A row of keep_heading (N,) bool keeps its re-fit only if it turned by MAX_REFIT_TURN or less.

    Returns a FitResult like `fits`, its losses from the kept re-fits (0 for terms a re-fit lacks)
    and "coverage" (N,), the kept fits'.
    """
    names = ("pose", "shape", "camera", "keypoints_2d")
    merged = {name: getattr(fits, name).copy() for name in names}
    losses = {name: values.copy() for name, values in fits.losses.items() if name != "coverage"}
    coverage = coverage.copy()
    for first in range(0, len(rows), batch_size):
        chunk = rows[first : first + batch_size]
        batch = [observations[row] for row in chunk]
        refits = fit_bodies(body, batch, settings, initial=FitResult(*(merged[name][chunk] for name in names), {}), silhouette_term=silhouette_term)
        covered = silhouette_coverage(body, batch, refits)
        turned = keep_heading[chunk] & (heading_change(merged["pose"][chunk], refits.pose) > MAX_REFIT_TURN)
        better = (covered > coverage[chunk]) & ~turned
        chosen, replaced = chunk[better], np.flatnonzero(better)
        coverage[chosen] = covered[better]
        for name, values in merged.items():
            values[chosen] = getattr(refits, name)[replaced]
        for name, values in losses.items():
            values[chosen] = refits.losses[name][replaced] if name in refits.losses else 0.0
        logger.debug("re-fitted %d frames (%s), %d cover their masks better", len(chunk), silhouette_term, int(better.sum()))
    return FitResult(**merged, losses={**losses, "coverage": coverage.astype(np.float32)})


def heading_change(pose: np.ndarray, other: np.ndarray) -> np.ndarray:
    """(B,) the angle in radians, in [0, pi], between the headings (camera.heading_of) of two (B, 24, 3) image-oriented poses' roots."""
    return angle_between(root_headings(pose[:, 0]), root_headings(other[:, 0]))


def silhouette_coverage(body: BodyModel, observations: list[PersonObservation], fits: FitResult, batch_size: int = 32) -> np.ndarray:
    """(B,) IoU of each fitted body's silhouette with its observation's mask (thresholded at one half), NaN without a mask.

    The silhouettes of observations of one image size are rendered batch_size at a time.
    """
    device = body.faces.device
    coverage = np.full(len(observations), np.nan)
    rows = [row for row, observation in enumerate(observations) if observation.mask is not None]
    faces = body.faces.cpu()
    for size in {observations[row].image_size for row in rows}:
        same_size = [row for row in rows if observations[row].image_size == size]
        for start in range(0, len(same_size), batch_size):
            chunk = same_size[start : start + batch_size]
            with torch.no_grad():
                vertices = body(torch.as_tensor(fits.pose[chunk], device=device), torch.as_tensor(fits.shape[chunk], device=device)).vertices.cpu()
            drawn = torch.from_numpy(fitted_silhouette(size, vertices, faces, torch.as_tensor(fits.camera[chunk]), max_render_size=128))
            masks = torch.from_numpy(np.stack([observations[row].mask > 0.5 for row in chunk]))
            coverage[chunk] = mask_iou(drawn, masks).numpy()
    return coverage


def _candidate_headings(previous_orientation: torch.Tensor, targets: _Targets) -> torch.Tensor:
    """(5, B) start headings of track_bodies' orientation stage: the previous heading, a quarter turn either way, a half turn, and the landmarks' heading (the previous one without landmarks)."""
    previous = heading_of(previous_orientation)
    left = targets.landmarks[:, _LEFT_SIDE].sum(1) - targets.landmarks[:, _RIGHT_SIDE].sum(1)  # hip and shoulder lines, (B, 3)
    known = (targets.landmark_confidence[:, _LEFT_SIDE + _RIGHT_SIDE] > 0).all(-1)
    landmark_heading = torch.where(known, heading_of_left_direction(left), previous)
    return torch.stack([previous, previous + math.pi / 2, previous - math.pi / 2, previous + math.pi, landmark_heading])


def _turn_limbs_to_landmarks(body, state: _State, targets: _Targets, settings: FitSettings, iterations: int) -> None:
    """track_bodies' landmark stage: Adam on the body pose alone (in place), on the 3D bone directions and joint limits.

    The bone directions' cosine distance has one minimum per bone, so every frame's limbs reach the
    directions of its own landmarks (depth included) whatever pose they start from; stage 2 then
    refines them on the 2D keypoints from there. No pose prior: Adam would take full-size steps
    towards the zero pose on joints that no bone constrains. Joints without a gradient, and frames
    without landmarks, keep their start pose.
    """
    optimizer = torch.optim.Adam([state.body_pose], lr=settings.pose_learning_rate)
    for _ in range(iterations):
        optimizer.zero_grad(set_to_none=True)
        pose = state.full_pose()
        output = body.skeleton(pose, state.shape())
        keypoints = _orient(output.keypoints, state.orientation(), output.joints[:, :1])
        total = (settings.landmark_weight * fit_losses.bone_direction_loss(keypoints, targets.landmarks, targets.landmark_confidence)
                 + settings.joint_limit_weight * fit_losses.joint_limit_loss(pose))
        total.sum().backward()
        optimizer.step()


def _optimise(body, state: _State, targets: _Targets, settings: FitSettings, default_shape, schedule, progress: bool,
              temporal: _Temporal | None = None) -> None:
    """Stages 2 and 3: Adam on `state` in place, for each (iterations, silhouette term: None, SOFT or CHAMFER) of `schedule`."""
    schedule = tuple((count, silhouette) for count, silhouette in schedule if count > 0)
    # One Adam for stages 2 and 3, so the silhouette stage keeps the moment estimates (a fresh Adam
    # would take a full-size first step on every parameter, however small its gradient).
    base_rates = (settings.pose_learning_rate, settings.orientation_learning_rate,
                  settings.shape_learning_rate, settings.camera_learning_rate)
    optimizer = torch.optim.Adam([
        {"params": [state.body_pose]}, {"params": [state.rotation]}, {"params": [state.shape_parameter]},
        {"params": [state.log_scale, state.translation]},
    ], lr=settings.pose_learning_rate)
    with tqdm(total=sum(count for count, _ in schedule), desc="fitting bodies", unit="step", disable=not progress) as bar:
        for iterations, silhouette in schedule:
            # The soft silhouette's gradients are rough (see FitSettings); the chamfer term's are not and runs at full rates.
            slowed = silhouette == SOFT
            scale = settings.silhouette_learning_rate_scale if slowed else 1.0
            pose_scale = scale * settings.silhouette_pose_learning_rate_scale if slowed else 1.0
            for group, rate, group_scale in zip(optimizer.param_groups, base_rates, (pose_scale, pose_scale, scale, scale)):
                group["lr"] = rate * group_scale
            for _ in range(iterations):
                optimizer.zero_grad(set_to_none=True)
                terms = _terms(body, state, targets, settings, default_shape, silhouette, temporal=temporal)
                _weighted_total(terms, settings, silhouette).sum().backward()
                optimizer.step()
                bar.update(1)
            logger.debug("stage with %d steps (silhouette term %s) done", iterations, silhouette)


def _result(body, state: _State, targets: _Targets, settings: FitSettings, default_shape, silhouette: str | None,
            temporal: _Temporal | None = None) -> FitResult:
    """The FitResult of the optimised `state`, with its final loss terms (those of the last stage's silhouette term)."""
    with torch.no_grad():
        terms = _terms(body, state, targets, settings, default_shape, silhouette, need_projection=True, temporal=temporal)
        total = _weighted_total(terms, settings, silhouette)
        projected = terms.pop("projected")
        if targets.relabel_limbs:
            targets = relabel_limbs(targets, projected)
        pose = state.full_pose()
        pose[:, 0] = matrix_to_axis_angle(state.orientation())
        pixels = (projected + 1.0) * (targets.frame_side[:, None, None] / 2.0) - targets.frame_offset[:, None, :]
        observed_pixels = (targets.keypoints + 1.0) * (targets.frame_side[:, None, None] / 2.0) - targets.frame_offset[:, None, :]
        distance = torch.where(targets.confidence > 0, (pixels - observed_pixels).norm(dim=-1), torch.zeros_like(targets.confidence))
        error_px = (targets.confidence * distance).sum(-1) / targets.confidence.sum(-1).clamp_min(1e-8)
    losses = {name: value.cpu().numpy().astype(np.float32) for name, value in terms.items()}
    losses["total"] = total.cpu().numpy().astype(np.float32)
    losses["keypoint_error_px"] = error_px.cpu().numpy().astype(np.float32)
    return FitResult(
        pose=pose.cpu().numpy().astype(np.float32),
        shape=state.shape().detach().cpu().numpy().astype(np.float32),
        camera=state.camera().detach().cpu().numpy().astype(np.float32),
        keypoints_2d=pixels.cpu().numpy().astype(np.float32),
        losses=losses,
    )


@dataclass(frozen=True)
class _Temporal:
    """track_bodies' temporal term: anchors (A, K, 3) camera-space keypoints of earlier fits (constants), frame_index (A + B,) of anchors then rows."""

    anchors: torch.Tensor
    frame_index: torch.Tensor


def _camera_points(keypoints: torch.Tensor, log_scale: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """(B, K, 3) oriented body points -> (B, K, 3) in the camera's space: NDC x, y and the depth at the same scale."""
    offset = torch.cat([translation, torch.zeros_like(translation[:, :1])], dim=-1)
    return log_scale.exp()[:, None] * (keypoints + offset[:, None])


def _camera_points_of(body, fits: FitResult, device, dtype) -> torch.Tensor:
    """(N, K, 3) camera-space keypoints of fitted bodies (constants)."""
    with torch.no_grad():
        pose = torch.as_tensor(fits.pose, dtype=dtype, device=device)
        camera = torch.as_tensor(fits.camera, dtype=dtype, device=device)
        keypoints = body.skeleton(pose, torch.as_tensor(fits.shape, dtype=dtype, device=device)).keypoints
        return _camera_points(keypoints, camera[:, :1].log(), camera[:, 1:])


def temporal_loss(points: torch.Tensor, temporal: _Temporal, box_size: torch.Tensor) -> torch.Tensor:
    """(B,) squared acceleration of each row's camera-space keypoints, in units of its box size, mean over keypoints.

    Row b's acceleration is p[b] - 2 p[b-1] + p[b-2] over the sequence anchors + rows; it is 0
    where the three frames do not follow each other or where fewer than two frames precede it.
    """
    sequence = torch.cat([temporal.anchors, points])
    frames = temporal.frame_index
    acceleration = sequence[2:] - 2 * sequence[1:-1] + sequence[:-2]
    consecutive = ((frames[2:] - frames[1:-1]) == 1) & ((frames[1:-1] - frames[:-2]) == 1)
    anchor_count = temporal.anchors.shape[0]
    rows = torch.arange(points.shape[0], device=points.device) + anchor_count - 2  # the triple that ends at each row
    valid = rows >= 0
    index = rows.clamp_min(0)
    penalty = (acceleration[index] / box_size[:, None, None]).pow(2).sum(-1).mean(-1)
    return torch.where(valid & consecutive[index], penalty, torch.zeros_like(penalty))


class _State:
    """The optimised leaf tensors of a batch and the quantities derived from them.

    body_pose (B, 23, 3) axis-angle of joints 1..23; rotation (B, 3) axis-angle applied on top of
    base_orientation (B, 3, 3) (the start orientation; the rotation stays small); shape_parameter (B, D)
    (sigmoid logits for bounded shapes; a constant when the shape is not fitted, which lets the body
    build one rest mesh for all rows); log_scale (B, 1) and translation (B, 2) of the camera.
    """

    def __init__(self, body_pose, base_orientation, shape_parameter, bounded_shape, log_scale, translation, fit_shape: bool = True):
        self.body_pose = body_pose.detach().clone().requires_grad_(True)
        self.base_orientation = base_orientation.detach().clone()
        self.rotation = torch.zeros_like(body_pose[:, 0]).requires_grad_(True)
        self.shape_parameter = shape_parameter.detach().clone().requires_grad_(fit_shape)
        self.bounded_shape = bounded_shape
        self.log_scale = log_scale.detach().clone().requires_grad_(True)
        self.translation = translation.detach().clone().requires_grad_(True)

    @staticmethod
    def start(body: BodyModel, body_pose, orientation, shape, camera, fit_shape: bool = True) -> _State:
        bounded = body.name in BOUNDED_SHAPE_MODELS and fit_shape
        shape_parameter = torch.logit(shape.clamp(1e-3, 1 - 1e-3)) if bounded else shape
        return _State(body_pose, orientation, shape_parameter, bounded, camera[:, :1].clamp_min(1e-6).log(), camera[:, 1:], fit_shape)

    def orientation(self) -> torch.Tensor:
        """(B, 3, 3) global orientation."""
        return axis_angle_to_matrix(self.rotation) @ self.base_orientation

    def shape(self) -> torch.Tensor:
        return torch.sigmoid(self.shape_parameter) if self.bounded_shape else self.shape_parameter

    def camera(self) -> torch.Tensor:
        return torch.cat([self.log_scale.exp(), self.translation], dim=-1)

    def full_pose(self) -> torch.Tensor:
        """(B, 24, 3) with a zero global orientation (applied separately by _orient())."""
        return torch.cat([torch.zeros_like(self.body_pose[:, :1]), self.body_pose], dim=1)


def _orient(points: torch.Tensor, orientation: torch.Tensor, pivot: torch.Tensor) -> torch.Tensor:
    """Rotate (B, N, 3) body points by (B, 3, 3) about (B, 1, 3) pivots (the pelvis joint).

    Equals posing the body with that global orientation: SMPL-style models rotate the whole body
    about the pelvis joint, which the body pose does not move.
    """
    return (points - pivot) @ orientation.transpose(1, 2) + pivot


def _project(points: torch.Tensor, log_scale: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """(B, N, 3) -> (B, N, 2) weak-perspective NDC x, y (lwgan.body.camera.project)."""
    return log_scale.exp()[:, None] * (points[..., :2] + translation[:, None])


def crop_coordinates(xy: torch.Tensor, box_center: torch.Tensor, crop_half_size: torch.Tensor) -> torch.Tensor:
    """(B, N, 2) NDC x, y -> the same points in each row's square crop, -1 to 1 across it (grid_sample's and the silhouettes' frame).

    box_center: (B, 2) the crops' centres in NDC; crop_half_size: (B,) their half sides in NDC.
    """
    return (xy - box_center[:, None]) / crop_half_size[:, None, None]


def _terms(
    body: BodyModel,
    state: _State,
    targets: _Targets,
    settings: FitSettings,
    default_shape: torch.Tensor,
    silhouette: str | None,
    need_projection: bool = False,
    temporal: _Temporal | None = None,
) -> dict[str, torch.Tensor]:
    """Every loss term for the current state, each (B,) (zeros for terms that are off); `silhouette` picks the silhouette term (None, SOFT, CHAMFER)."""
    pose = state.full_pose()
    shape = state.shape()
    # The mesh only for the silhouette: the coarse silhouette mesh for the soft silhouette, a sample of the vertices for the chamfer term.
    if silhouette == CHAMFER:
        vertex_count = len(body.mirror_vertices)
        sample = torch.arange(0, vertex_count, max(1, vertex_count // settings.chamfer_vertices), device=pose.device)
        output = body.skeleton(pose, shape, vertex_indices=sample)
    else:
        output = body.skeleton(pose, shape, vertex_indices=body.silhouette_vertices if silhouette == SOFT else None)
    orientation = state.orientation()
    pivot = output.joints[:, :1]
    keypoints = _orient(output.keypoints, orientation, pivot)
    projected = _project(keypoints, state.log_scale, state.translation)
    if targets.relabel_limbs:
        targets = relabel_limbs(targets, projected.detach())
    zeros = projected.new_zeros(projected.shape[0])
    terms = {
        "keypoints": fit_losses.keypoint_loss(projected, targets.keypoints, targets.confidence, targets.box_size, settings.robust_scale),
        "landmarks": fit_losses.bone_direction_loss(keypoints, targets.landmarks, targets.landmark_confidence)
        if settings.use_landmarks else zeros,
        "silhouette": zeros,
        "joint_limits": fit_losses.joint_limit_loss(pose) if settings.use_joint_limits else zeros,
        "pose_prior": fit_losses.pose_prior_loss(pose),
        "shape_prior": fit_losses.shape_prior_loss(shape, default_shape),
        "temporal": zeros if temporal is None else temporal_loss(_camera_points(keypoints, state.log_scale, state.translation), temporal, targets.box_size),
    }
    if silhouette is not None:
        rows = targets.has_mask.nonzero().squeeze(1)
        vertices = _orient(output.vertices[rows], orientation[rows], pivot[rows])
        crop_xy = crop_coordinates(_project(vertices, state.log_scale[rows], state.translation[rows]), targets.box_center[rows], targets.crop_half_size[rows])
        crop_ndc = torch.cat([crop_xy, vertices[..., 2:]], dim=-1)
        if silhouette == SOFT:
            drawn = soft_silhouette(crop_ndc, body.silhouette_faces, settings.silhouette_resolution, sigma=settings.silhouette_sigma, cull_back_faces=True)
            loss = fit_losses.silhouette_loss(drawn, targets.silhouette[rows])
        else:
            loss = fit_losses.chamfer_silhouette_loss(crop_xy, targets.mask_distances.select(rows))
        terms["silhouette"] = zeros.index_put((rows,), loss)
    if need_projection:
        terms["projected"] = projected
    return terms


@lru_cache(maxsize=4)
def limb_permutations(names: tuple[str, ...] = BODY_KEYPOINT_NAMES) -> tuple[tuple[list[int], list[int]], ...]:
    """For each of SWAPPABLE_LIMBS: (the permutation of `names` that swaps its left and right keypoints, the indices of those keypoints); cached, do not modify."""
    pairs = []
    for limb in SWAPPABLE_LIMBS:
        permutation = list(range(len(names)))
        members = []
        for part in limb:
            left, right = names.index(f"left_{part}"), names.index(f"right_{part}")
            permutation[left], permutation[right] = right, left
            members += [left, right]
        pairs.append((permutation, members))
    return tuple(pairs)


def relabel_limbs(targets: _Targets, projected: torch.Tensor) -> _Targets:
    """`targets` with the left and right labels of each RELABELLED_LIMBS pair swapped in the frames where the swapped labels lie nearer `projected` (B, K, 2).

    Nearness is the confidence-weighted squared distance over the pair's keypoints; the world
    landmarks follow the keypoints' labels.
    """
    return _with_swaps(targets, _limb_swaps(targets.keypoints, targets.confidence, projected))


def _vetted_by_the_masks(targets: _Targets, settings: FitSettings) -> _Targets:
    """`targets` with their masks' distances (what the CHAMFER term needs) and without the keypoints off their masks (settings.keypoint_mask_tolerance)."""
    with_distances = replace(targets, mask_distances=fit_losses.mask_distances(targets.silhouette, settings.chamfer_points))
    return drop_keypoints_off_the_mask(with_distances, settings.keypoint_mask_tolerance)


def drop_keypoints_off_the_mask(targets: _Targets, tolerance: float) -> _Targets:
    """`targets` without the keypoints (and their 3D landmarks) farther than `tolerance` box sizes outside their frame's person mask.

    Needs targets.mask_distances; frames without a mask keep all their keypoints.
    """
    crop_xy = crop_coordinates(targets.keypoints, targets.box_center, targets.crop_half_size)
    outside = F.grid_sample(targets.mask_distances.outside[:, None], crop_xy[:, None], align_corners=False, padding_mode="border")[:, 0, 0]
    off = (outside * (targets.crop_half_size / targets.box_size)[:, None] > tolerance) & targets.has_mask[:, None]
    logger.debug("dropped %d keypoints off the mask", int(off.sum()))
    return replace(targets, confidence=targets.confidence.masked_fill(off, 0.0), landmark_confidence=targets.landmark_confidence.masked_fill(off, 0.0))


def _limb_swaps(keypoints: torch.Tensor, confidence: torch.Tensor, reference: torch.Tensor) -> list[torch.Tensor]:
    """For each SWAPPABLE_LIMBS pair, (B,) bool: True where it is one of RELABELLED_LIMBS and its swapped labels lie nearer `reference` (B, K, 2) than its own labels.

    Nearness: the confidence-weighted squared distance over the pair's keypoints (the pairs share
    no keypoint, so each is judged on its own).
    """
    swaps = []
    for limb, (permutation, members) in zip(SWAPPABLE_LIMBS, limb_permutations()):
        if limb not in RELABELLED_LIMBS:
            swaps.append(torch.zeros(len(keypoints), dtype=torch.bool, device=keypoints.device))
            continue
        def distance(points, weights):
            return (weights[:, members] * (reference[:, members] - points[:, members]).pow(2).sum(-1)).sum(-1)
        swaps.append(distance(keypoints[:, permutation], confidence[:, permutation]) < distance(keypoints, confidence))
    return swaps


def _swapped(values: torch.Tensor, swaps: list[torch.Tensor]) -> torch.Tensor:
    """(B, K, ...) per-keypoint values with each SWAPPABLE_LIMBS pair's labels swapped in the rows of its (B,) flags in `swaps`."""
    for (permutation, _), swap in zip(limb_permutations(), swaps):
        values = torch.where(swap.view(-1, *[1] * (values.dim() - 1)), values[:, permutation], values)
    return values


def _with_swaps(targets: _Targets, swaps: list[torch.Tensor]) -> _Targets:
    """`targets` with the limb swaps of `swaps` (as _limb_swaps) applied to its keypoints and landmarks and their confidences."""
    return replace(targets, **{name: _swapped(getattr(targets, name), swaps)
                               for name in ("keypoints", "confidence", "landmarks", "landmark_confidence")})


def _weighted_total(terms: dict[str, torch.Tensor], settings: FitSettings, silhouette: str | None) -> torch.Tensor:
    """(B,) the weighted sum of the loss terms (the silhouette term weighted as the `silhouette` kind)."""
    return (
        settings.keypoint_weight * terms["keypoints"]
        + settings.landmark_weight * terms["landmarks"]
        + (settings.chamfer_weight if silhouette == CHAMFER else settings.silhouette_weight) * terms["silhouette"]
        + settings.joint_limit_weight * terms["joint_limits"]
        + settings.pose_prior_weight * terms["pose_prior"]
        + settings.shape_prior_weight * terms["shape_prior"]
        + settings.temporal_weight * terms["temporal"]
    )


def _fit_orientation(
    body: BodyModel, targets: _Targets, body_pose: torch.Tensor, shape: torch.Tensor, settings: FitSettings, bases: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage 1: (B, 3, 3) global orientation and (B, 3) camera from the torso (and face) keypoints.

    bases (C, B, 3, 3) holds C start orientations per observation; each runs as its own batch row
    with the body pose `body_pose` (B, 23, 3) held fixed, and each observation keeps the start
    whose final loss is lowest.
    """
    count, batch_size = bases.shape[:2]
    if count == 0:
        raise ValueError("no start orientation (settings.orientation_candidates is empty?)")
    with torch.no_grad():
        output = body.skeleton(torch.cat([torch.zeros_like(body_pose[:, :1]), body_pose], dim=1), shape)
    # Rows are candidate-major: row c * B + b is candidate c of observation b.
    rest_keypoints = output.keypoints.repeat(count, 1, 1)
    pivot = output.joints[:, :1].repeat(count, 1, 1)
    base = bases.reshape(count * batch_size, 3, 3)

    weight = torch.zeros(len(BODY_KEYPOINT_NAMES), dtype=body_pose.dtype, device=body_pose.device)
    weight[[BODY_KEYPOINT_NAMES.index(name) for name in TORSO_KEYPOINTS]] = 1.0
    weight[[BODY_KEYPOINT_NAMES.index(name) for name in FACE_KEYPOINTS]] = settings.face_keypoint_weight
    confidence = (targets.confidence * weight).repeat(count, 1)
    observed = targets.keypoints.repeat(count, 1, 1)
    box_size = targets.box_size.repeat(count)
    landmarks = targets.landmarks.repeat(count, 1, 1)
    landmark_confidence = targets.landmark_confidence.repeat(count, 1)
    torso_bones = tuple(bone for bone in fit_losses.BONES if bone[0] in fit_losses.TORSO_BONES)

    start_keypoints = _orient(rest_keypoints, base, pivot)
    log_scale, translation = _initial_camera(start_keypoints, observed, confidence, targets.box_size.repeat(count), targets.box_center.repeat(count, 1))
    rotation = torch.zeros(count * batch_size, 3, dtype=body_pose.dtype, device=body_pose.device, requires_grad=True)
    log_scale.requires_grad_(True)
    translation.requires_grad_(True)
    optimizer = torch.optim.Adam([
        {"params": [rotation], "lr": settings.orientation_learning_rate},
        {"params": [log_scale, translation], "lr": settings.camera_learning_rate},
    ])

    def loss() -> torch.Tensor:
        orientation = axis_angle_to_matrix(rotation) @ base
        keypoints = _orient(rest_keypoints, orientation, pivot)
        projected = _project(keypoints, log_scale, translation)
        total = settings.keypoint_weight * fit_losses.keypoint_loss(projected, observed, confidence, box_size, settings.robust_scale)
        if settings.use_landmarks:
            total = total + settings.landmark_weight * fit_losses.bone_direction_loss(keypoints, landmarks, landmark_confidence, torso_bones)
        return total

    for _ in range(settings.orientation_iterations):
        optimizer.zero_grad(set_to_none=True)
        loss().sum().backward()
        optimizer.step()
    with torch.no_grad():
        final = loss().view(count, batch_size)
        best = final.argmin(dim=0)  # (B,)
        rows = best * batch_size + torch.arange(batch_size, device=best.device)
        orientation = (axis_angle_to_matrix(rotation) @ base)[rows]
        camera = torch.cat([log_scale.exp(), translation], dim=-1)[rows]
    logger.debug("orientation stage: starts %s chosen, losses %s", best.tolist(), final.min(dim=0).values.tolist())
    return orientation, camera


def _initial_camera(
    points: torch.Tensor, observed: torch.Tensor, confidence: torch.Tensor, box_size: torch.Tensor, box_center: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form (B, 1) log-scale and (B, 2) translation that best overlay (B, K, 3) body points on (B, K, 2) observed ones.

    The scale is the ratio of the two point sets' confidence-weighted spreads (independent of any
    rotation between them), the translation matches their weighted centres. Without two seen
    keypoints it falls back to the box: the points' height spans the box, centred on it.
    """
    weight = confidence / confidence.sum(-1, keepdim=True).clamp_min(1e-8)
    xy = points[..., :2]
    body_center = (weight[..., None] * xy).sum(1)
    observed = torch.where(confidence[..., None] > 0, observed, torch.zeros_like(observed))
    observed_center = (weight[..., None] * observed).sum(1)
    body_spread = (weight * (xy - body_center[:, None]).pow(2).sum(-1)).sum(-1)
    observed_spread = (weight * (observed - observed_center[:, None]).pow(2).sum(-1)).sum(-1)
    seen = (confidence > 0).sum(-1) >= 2
    usable = seen & (body_spread > 1e-8) & (observed_spread > 1e-10)
    scale = torch.sqrt(observed_spread / body_spread.clamp_min(1e-8))
    height = (xy[..., 1].amax(-1) - xy[..., 1].amin(-1)).clamp_min(1e-3)
    box_scale = box_size / height
    scale = torch.where(usable, scale, box_scale)
    box_body_center = (xy.amax(1) + xy.amin(1)) / 2.0
    translation = torch.where(usable[:, None], observed_center / scale[:, None] - body_center, box_center / scale[:, None] - box_body_center)
    return scale.log()[:, None].detach().clone(), translation.detach().clone()


def _check_initial(initial: FitResult, batch_size: int, shape_dim: int) -> None:
    expected = {"pose": (batch_size, 24, 3), "shape": (batch_size, shape_dim), "camera": (batch_size, 3)}
    for name, shape in expected.items():
        actual = np.shape(getattr(initial, name))
        if actual != shape:
            raise ValueError(f"initial.{name} must have shape {shape} (one row per observation), got {actual}")


def _targets(observations: list[PersonObservation], settings: FitSettings, device, dtype, with_silhouette: bool) -> _Targets:
    """Stack the observations into tensors in their square frames' NDC; resample masks onto the silhouette crops when with_silhouette."""
    keypoints, confidence, box_size, box_center, landmarks, landmark_confidence = [], [], [], [], [], []
    sides, offsets = [], []
    for observation in observations:
        frame = observation.square_frame
        points = np.asarray(observation.keypoints, dtype=np.float64)
        seen = np.isfinite(points).all(axis=1) & (points[:, 2] > 0)
        keypoints.append(np.where(seen[:, None], frame.pixels_to_ndc(np.nan_to_num(points[:, :2])), 0.0))
        confidence.append(np.where(seen, np.clip(points[:, 2], 0.0, 1.0), 0.0))
        box = np.asarray(observation.box, dtype=np.float64)
        box_size.append(max(box_side(box), 1.0) * 2.0 / frame.side)
        box_center.append(frame.pixels_to_ndc((box[:2] + box[2:]) / 2.0))
        if observation.world_landmarks is not None:
            world = np.asarray(observation.world_landmarks, dtype=np.float64)
            known = seen & np.isfinite(world).all(axis=1)
            landmarks.append(np.where(known[:, None], world, 0.0))
            landmark_confidence.append(np.where(known, confidence[-1], 0.0))
        else:
            landmarks.append(np.zeros((len(BODY_KEYPOINT_NAMES), 3)))
            landmark_confidence.append(np.zeros(len(BODY_KEYPOINT_NAMES)))
        sides.append(frame.side)
        offsets.append((frame.offset_x, frame.offset_y))

    def tensor(values) -> torch.Tensor:
        return torch.as_tensor(np.asarray(values), dtype=dtype, device=device)

    box_size_t, box_center_t = tensor(box_size), tensor(box_center)
    crop_half_size = box_size_t * (1.0 + settings.silhouette_margin) / 2.0
    silhouettes, has_mask = [], []
    for index, observation in enumerate(observations):
        has_mask.append(with_silhouette and observation.mask is not None)
        if not has_mask[-1]:
            silhouettes.append(torch.zeros(settings.silhouette_resolution, settings.silhouette_resolution, dtype=dtype, device=device))
        else:
            silhouettes.append(_resample_mask(
                tensor(observation.mask), observation.square_frame, box_center_t[index], crop_half_size[index], settings.silhouette_resolution
            ))
    return _Targets(
        keypoints=tensor(keypoints),
        confidence=tensor(confidence),
        box_size=box_size_t,
        box_center=box_center_t,
        landmarks=tensor(landmarks),
        landmark_confidence=tensor(landmark_confidence),
        silhouette=torch.stack(silhouettes),
        has_mask=torch.tensor(has_mask, device=device),
        crop_half_size=crop_half_size,
        frame_side=tensor(sides),
        frame_offset=tensor(offsets),
    )


def _resample_mask(mask: torch.Tensor, frame, center: torch.Tensor, half_size: torch.Tensor, resolution: int, supersampling: int = 4) -> torch.Tensor:
    """(H, W) mask -> (R, R) its coverage of each pixel of the square crop (center, half_size in square-frame NDC).

    Each crop pixel averages supersampling^2 bilinear samples of the mask; outside the image is 0.
    """
    height, width = mask.shape
    fine = resolution * supersampling
    steps = (2 * torch.arange(fine, dtype=mask.dtype, device=mask.device) + 1) / fine - 1
    grid_y, grid_x = torch.meshgrid(steps, steps, indexing="ij")
    square_ndc = center + half_size * torch.stack([grid_x, grid_y], dim=-1)  # (fine, fine, 2)
    offset = mask.new_tensor([frame.offset_x, frame.offset_y])
    pixels = (square_ndc + 1.0) * (frame.side / 2.0) - offset
    image_ndc = pixels * mask.new_tensor([2.0 / width, 2.0 / height]) - 1.0
    samples = F.grid_sample(mask[None, None], image_ndc[None], mode="bilinear", padding_mode="zeros", align_corners=False)
    return F.avg_pool2d(samples, supersampling)[0, 0]
