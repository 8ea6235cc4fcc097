"""steadied_masks: a part a frame's mask is unsure of comes back when the frames on both sides hold it; nothing else changes."""

import numpy as np

from lwgan.body.skeleton import BODY_KEYPOINT_NAMES
from lwgan.recovery.fitting import TORSO_KEYPOINTS
from lwgan.recovery.observation import PersonObservation
from lwgan.recovery.video import Detections, _compact_mask, _full_mask, steadied_masks

SIZE = (96, 128)
STEP = 3
"""Pixels the person moves right from one frame to the next."""


def person(frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame `frame`'s (H, W) bool body (a box), (H, W) bool head (a disc above it) and (2,) torso centre (x, y)."""
    rows, columns = np.mgrid[: SIZE[0], : SIZE[1]]
    left = 30 + STEP * frame
    body = (rows >= 40) & (rows < 85) & (columns >= left) & (columns < left + 16)
    head = (rows - 31) ** 2 + (columns - (left + 8)) ** 2 <= 7**2
    return body, head & ~body, np.array([left + 8.0, 60.0])


def detections(probabilities: list[np.ndarray]) -> Detections:
    """Detections of frames with these (H, W) mask probabilities, the torso keypoints about person()'s centres and the nose at
    the head's; each box around the keypoints and the mask (> 0.5), as the detector's."""
    count = len(probabilities)
    keypoints = np.zeros((count, len(BODY_KEYPOINT_NAMES), 3), np.float32)
    boxes, masks = [], []
    for frame, probability in enumerate(probabilities):
        centre = person(frame)[2]
        for name in TORSO_KEYPOINTS:  # shoulders and hips, symmetric about the centre
            offset = np.array([-5.0 if name.startswith("left") else 5.0, -12.0 if "shoulder" in name else 12.0])
            keypoints[frame, BODY_KEYPOINT_NAMES.index(name)] = [*(centre + offset), 1.0]
        keypoints[frame, BODY_KEYPOINT_NAMES.index("nose")] = [centre[0], 31.0, 1.0]
        rows, columns = np.nonzero(probability >= 0.5)
        seen = keypoints[frame, keypoints[frame, :, 2] > 0, :2]
        box = np.array([min(columns.min(), seen[:, 0].min()), min(rows.min(), seen[:, 1].min()),
                        max(columns.max() + 1, seen[:, 0].max()), max(rows.max() + 1, seen[:, 1].max())], np.float32)
        boxes.append(box)
        masks.append(_compact_mask(PersonObservation(SIZE, keypoints[frame], None, probability, box)))
    return Detections(np.ones(count, bool), keypoints, np.full((count, len(BODY_KEYPOINT_NAMES), 3), np.nan, np.float32),
                      np.stack(boxes), masks, SIZE)


def clip(unsure_head_frames=(), ring: float = 0.0, stray_blob: bool = False, dark_face: bool = False,
         swung_arm: bool = False) -> tuple[Detections, list[np.ndarray]]:
    """Five frames of the moving person, the head at probability 0.3 in `unsure_head_frames` but for its top two rows (the
    box reaches over the head, as BlazePose's did over the lost head of the turning walk), a ring one pixel wide around the
    person at probability `ring` in frame 2 and 0.6 in the others (their masks a pixel wider), and in frame 2 an unsure blob
    where no other frame has the person.

    dark_face: in `unsure_head_frames` the head's front (its right third) is at probability 0.01, not 0.3.
    swung_arm: an arm (a block before the body) in every frame but 2, where it has swung away: a blurred band of 0.3 along
    its bottom, a third of it, and the edge of its hand are all that is left there.
    """
    probabilities, heads = [], []
    for frame in range(5):
        body, head, centre = person(frame)
        probability = np.where(body, 1.0, 0.0).astype(np.float32)
        probability[head] = 0.3 if frame in unsure_head_frames else 1.0
        if dark_face and frame in unsure_head_frames:
            probability[head & (np.mgrid[: SIZE[0], : SIZE[1]][1] > centre[0] + 2)] = 0.01
        if swung_arm:
            rows, columns = np.mgrid[: SIZE[0], : SIZE[1]]
            arm = (rows >= 50) & (rows < 62) & (columns >= centre[0] + 8) & (columns < centre[0] + 20)
            probability[arm] = 1.0 if frame != 2 else 0.0
            if frame == 2:
                probability[arm & (rows >= 58)] = 0.3
                probability[arm & (columns >= centre[0] + 18)] = 0.6  # the hand's edge: the box still reaches there
        head_rows = np.nonzero(head.any(axis=1))[0]
        probability[head_rows[0] : head_rows[0] + 2][head[head_rows[0] : head_rows[0] + 2]] = 0.6
        outline = np.zeros_like(body)
        outline[1:-1, 1:-1] = (body | head)[:-2, 1:-1] | (body | head)[2:, 1:-1] | (body | head)[1:-1, :-2] | (body | head)[1:-1, 2:]
        probability[outline & ~(body | head)] = ring if frame == 2 else 0.6 if ring else 0.0
        if stray_blob and frame == 2:
            probability[5:12, 100:110] = 0.3
        probabilities.append(probability)
        heads.append(head)
    return detections(probabilities), heads


def test_a_head_unsure_for_two_frames_comes_back_from_the_frames_on_either_side():
    found, heads = clip(unsure_head_frames=(2, 3))
    steadied = steadied_masks(found)
    for frame in (2, 3):
        before, after = _full_mask(found, frame) >= 0.5, _full_mask(steadied, frame) >= 0.5
        assert (before & heads[frame]).sum() < 0.3 * heads[frame].sum()
        assert (after & heads[frame]).sum() > 0.9 * heads[frame].sum(), f"frame {frame}: the head is not back"
        assert not (after & ~before & ~heads[frame]).any(), "only the head is added"
    for frame in (0, 1, 4):
        assert np.array_equal(steadied.masks[frame], found.masks[frame])
        assert np.array_equal(steadied.boxes[frame], found.boxes[frame])


def test_unsure_pixels_held_on_one_side_only_stay_unsure():
    # Frame 1's head is unsure and frame 0's too: on the earlier side no frame holds it (window 2 reaches frame 0 only).
    found, _ = clip(unsure_head_frames=(0, 1))
    steadied = steadied_masks(found)
    assert np.array_equal(steadied.masks[1], found.masks[1])
    # The first and the last frames have no frame on one side: left alone.
    found, _ = clip(unsure_head_frames=(0, 4))
    steadied = steadied_masks(found)
    assert np.array_equal(steadied.masks[0], found.masks[0]) and np.array_equal(steadied.masks[4], found.masks[4])


def test_a_thin_unsure_outline_and_an_unsure_blob_nobody_else_has_are_not_added():
    # Frame 2's outline is unsure where its neighbours' is sure: a ring one pixel wide, too thin to add (its mask would grow
    # by the blur of its edge). The blob: no other frame has the person there.
    found, _ = clip(ring=0.3, stray_blob=True)
    steadied = steadied_masks(found)
    for frame in range(5):
        assert np.array_equal(steadied.masks[frame], found.masks[frame]), f"frame {frame} changed"


def test_a_lost_head_comes_back_whole_with_its_face_the_detector_gave_up_on():
    # The face's pixels are under UNSURE_MASK: they come back with the unsure rest of the head (a part mostly unsure), and
    # the head's hole between them.
    found, heads = clip(unsure_head_frames=(2, 3), dark_face=True)
    steadied = steadied_masks(found)
    for frame in (2, 3):
        after = _full_mask(steadied, frame) >= 0.5
        assert (after & heads[frame]).sum() > 0.9 * heads[frame].sum(), f"frame {frame}: the head is not back whole"
        assert not (after & ~(_full_mask(found, frame) >= 0.5) & ~heads[frame]).any(), "only the head is added"


def test_the_place_an_arm_swung_away_from_is_not_added():
    # The frames on both sides hold the arm where frame 2 has none: a part as large as a head, but two thirds of it the
    # detector is sure is background (only the blur of the arm's edge is unsure).
    found, _ = clip(swung_arm=True)
    steadied = steadied_masks(found)
    assert np.array_equal(steadied.masks[2], found.masks[2])
