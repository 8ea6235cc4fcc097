"""Imitator, Viewer and Swapper on real photos, SynthesisResult.save, and the CLI's handling of bad inputs.

References are independent of the code under test: the photo itself (a body re-posed in its own
fitted pose and camera must reproduce it), closed-form geometry (a 180 degree turn about the
vertical mirrors x and depth about the pelvis), the body's own part labels rasterized here.
"""

import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from media_helpers import write_test_video

from lwgan.body.camera import project
from lwgan.body.clothing import clothed_vertices
from lwgan.body.model import PART_NAMES
from lwgan.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from lwgan.cli import main
from lwgan.io.images import load_image
from lwgan.io.media import has_audio, read_video, write_image
from lwgan.recovery.fitting import FitSettings
from lwgan.recovery.pose_files import write_pose_shape
from lwgan.render import rasterize
from lwgan.render.inpaint import background_hole
from lwgan.tasks.imitate import Imitator
from lwgan.tasks.people import fit_photos
from lwgan.tasks.result import SynthesisResult
from lwgan.tasks.swap import Swapper, chosen_parts
from lwgan.tasks.view import Viewer, view_angles

DATA = Path(__file__).resolve().parents[1] / "data"
SKIER = DATA / "coco_skier" / "000000000785.jpg"
LUNGE = DATA / "pexels_lunge" / "pexels-anete-lusina-4793258_512.jpg"
WALK = DATA / "cmu_mocap" / "131_01.bvh"
SIZE = 128
QUICK_FIT = FitSettings(orientation_iterations=10, body_iterations=10, silhouette_iterations=0)
"""A rough fit (about 1 s instead of 10 s) for tests where only the plumbing matters."""


def psnr(image, reference, where):
    error = np.mean((image.astype(np.float64) - reference.astype(np.float64))[where] ** 2)
    return np.inf if error == 0 else 10 * np.log10(255.0**2 / error)


def posed(body, pose, shape, camera, offsets=None):
    """(N, V, 3) NDC vertices, (N, 24, 3) joints and (N, K, 3) keypoints (body frame) of N bodies (clothed by (V,) offsets when given)."""
    pose = torch.as_tensor(np.asarray(pose, np.float32)).reshape(-1, 24, 3)
    shape = torch.as_tensor(np.asarray(shape, np.float32)).reshape(1, -1).expand(len(pose), -1)
    with torch.no_grad():
        output = body(pose, shape)
        vertices = output.vertices if offsets is None else clothed_vertices(output.vertices, body.faces, torch.from_numpy(offsets))
        camera = torch.as_tensor(np.asarray(camera, np.float32)).reshape(-1, 3)
        return project(vertices, camera), output.joints, output.keypoints, vertices


def mesh_mask(body, pose, shape, camera, size=SIZE, offsets=None):
    """(N, H, W) bool coverage and (N, H, W) face index of the rasterized bodies."""
    fragments = rasterize(posed(body, pose, shape, camera, offsets)[0], body.faces, (size, size))
    return fragments.mask.numpy(), fragments.face_index.numpy()


@pytest.fixture(scope="module")
def skier(anny_body):
    """The skier photo fitted once with the default settings: [PhotoPerson] at SIZE."""
    return Imitator(image_size=SIZE, body=anny_body).fit_sources(SKIER)


@pytest.fixture(scope="module")
def skier_body(skier, anny_body):
    person = skier[0]
    return mesh_mask(anny_body, person.pose, person.shape, person.camera, offsets=person.offsets)[0][0]


# --- identity: the person in their own pose reproduces the photo ------------------------------


def assert_reproduces_the_photo(frame: np.ndarray, person, body_mask: np.ndarray, exact_fraction: float = 0.8) -> None:
    """The photo's person in its own pose: exact where the source pixels are trusted.

    That is 3 px inside the person and the mesh, off the occlusion edges (the skier's arms in front
    of the jacket, and their band: measured 15% of that interior); the band along the outline and
    those edges take the colour of the trusted pixels around them, faded into the background at the outline.
    """
    assert body_mask.sum() > 0.08 * SIZE**2
    person_and_body = (body_mask & (person.mask > 0.5)).astype(np.uint8)
    interior = cv2.distanceTransform(person_and_body, cv2.DIST_L2, 5) > 3
    assert interior.sum() > 0.5 * person_and_body.sum()
    exact = np.abs(frame.astype(int) - person.image.astype(int)).max(-1) <= 2
    assert exact[interior].mean() > exact_fraction


def test_imitating_its_own_pose_and_camera_reproduces_the_photo(skier, skier_body, anny_body, tmp_path, monkeypatch):
    person = skier[0]
    write_pose_shape(tmp_path / "pose_shape.pkl", person.camera[None], person.pose[None], person.shape[None])
    imitator = Imitator(image_size=SIZE, body=anny_body)
    monkeypatch.setattr(imitator, "fit_sources", lambda source: skier)  # the fit is the fixture's
    result = imitator(source=SKIER, reference=tmp_path / "pose_shape.pkl", camera="copy", smooth_poses=False)
    assert len(result) == 1 and result.frames[0].shape == (SIZE, SIZE, 3)
    frame, photo = result.frames[0], person.image
    assert_reproduces_the_photo(frame, person, skier_body)
    # Off the body, the background is the photo's, inpainted only in the hole (lwgan.render.inpaint.background_hole:
    # the person and the mesh grown by 3% of the person's height, and the ground band under the feet).
    person_or_body = skier_body | (person.mask > 0.5)
    distance = cv2.distanceTransform((~person_or_body).astype(np.uint8), cv2.DIST_L2, 5)
    hole = background_hole(torch.from_numpy(person.mask > 0.5)[None], torch.from_numpy(skier_body)[None])[0].numpy()
    far = (distance > 8) & ~hole
    assert far.sum() > 0.5 * SIZE**2
    np.testing.assert_array_equal(frame[far], photo[far])
    # Where the photo shows the person but the clothed mesh does not (the skis' boots; 55 px, 200
    # with the naked body), the person is gone: the inpainted colour is close to the snow around.
    uncovered = (person.mask > 0.5) & ~skier_body
    naked = mesh_mask(anny_body, person.pose, person.shape, person.camera)[0][0]
    assert 30 < uncovered.sum() < 0.5 * ((person.mask > 0.5) & ~naked).sum()  # the clothing covers most of what the naked body missed
    snow = np.median(photo[(distance > 8) & (distance < 16)].astype(float), axis=0)
    assert np.abs(photo[uncovered] - snow).mean() > 100
    assert np.abs(frame[uncovered] - snow).mean() < 45


# --- Viewer -------------------------------------------------------------------------------------


def test_viewer_front_view_is_the_photo_and_the_back_view_is_its_mirror(skier, skier_body, anny_body, monkeypatch):
    person = skier[0]
    viewer = Viewer(image_size=SIZE, body=anny_body)
    monkeypatch.setattr(viewer, "fit_sources", lambda source: skier)
    result = viewer(source=SKIER, yaw=[0, 180])
    assert len(result) == 2
    front, back = result.frames
    assert_reproduces_the_photo(front, person, skier_body)

    # A 180 degree turn about an axis through the pelvis that projects onto the image's vertical (the
    # body's vertical, tilted towards the camera as in the photo): p -> 2 (p . a) a - p with a in the
    # y-z plane, so x mirrors about the pelvis and every p + p' lies along that one axis a.
    _, joints, keypoints, body_frame = posed(anny_body, result.pose, result.shape, result.camera)
    pelvis = joints[:, :1]
    front_points, back_points = (body_frame[0] - pelvis[0]).double(), (body_frame[1] - pelvis[1]).double()
    np.testing.assert_allclose(back_points[:, 0].numpy(), -front_points[:, 0].numpy(), atol=2e-5)
    sums = (front_points + back_points)[:, 1:]
    axis = sums[sums.norm(dim=-1).argmax()] / sums.norm(dim=-1).max()
    np.testing.assert_allclose((sums[:, 0] * axis[1] - sums[:, 1] * axis[0]).numpy(), 0.0, atol=5e-5)  # parallel to a
    assert float(axis[0].abs()) > 0.95  # a is near the image's vertical
    nose_depth = (keypoints[:, 0, 2] - pelvis[:, 0, 2]).numpy()  # COCO keypoint 0
    assert nose_depth[0] < -0.05 and nose_depth[1] > 0.05  # the face turned away

    # The picture: x mirrors about the pelvis's column, so the back view's silhouette covers the
    # front one's columns mirrored (its rows shift a little with the tilt towards the camera).
    masks = mesh_mask(anny_body, result.pose, result.shape, result.camera, offsets=result.offsets)[0]
    np.testing.assert_array_equal(masks[0], skier_body)
    pelvis_x = float(result.camera[0, 0] * result.camera[0, 1])  # NDC x of the pelvis: s * (0 + tx)
    columns = (2 * np.arange(SIZE) + 1) / SIZE - 1
    source_columns = np.clip(np.round(((2 * pelvis_x - columns) + 1) * SIZE / 2 - 0.5).astype(int), 0, SIZE - 1)
    mirrored_columns = skier_body.any(axis=0)[source_columns]
    assert (mirrored_columns != masks[1].any(axis=0)).sum() <= 2  # rounding to whole pixels at the two ends
    # Outside both silhouettes both views show the same background; where only the back view's body is, it differs.
    grow = np.ones((3, 3), np.uint8)
    neither = ~cv2.dilate((masks[0] | masks[1]).astype(np.uint8), grow).astype(bool)
    np.testing.assert_array_equal(back[neither], front[neither])
    only_back = cv2.erode((masks[1] & ~masks[0]).astype(np.uint8), grow).astype(bool)
    assert only_back.sum() > 50
    assert np.abs(back[only_back].astype(int) - front[only_back]).mean() > 30


def test_viewer_turn_and_angle_errors(skier, anny_body, monkeypatch):
    viewer = Viewer(image_size=SIZE, body=anny_body)
    monkeypatch.setattr(viewer, "fit_sources", lambda source: skier)
    result = viewer(source=SKIER, turn=3)
    assert len(result) == 3 and result.frames[0].shape == (SIZE, SIZE, 3)
    # Each frame turns the body by 120 degrees about one axis (the body's vertical: no x component,
    # near the image's upward direction), right-handed, so the front turns towards the image's right.
    orientations = axis_angle_to_matrix(torch.from_numpy(result.pose[:, 0]).double())
    steps = matrix_to_axis_angle(orientations[1:] @ orientations[:-1].transpose(-1, -2))
    np.testing.assert_allclose(steps.norm(dim=-1).numpy(), np.radians([120, 120]), atol=1e-5)
    axes = (steps / steps.norm(dim=-1, keepdim=True)).numpy()
    np.testing.assert_allclose(axes[1], axes[0], atol=1e-5)
    assert abs(axes[0, 0]) < 1e-5 and axes[0, 1] < -0.95
    with pytest.raises(ValueError, match="either yaw"):
        viewer(source=SKIER, yaw=[0, 90], turn=4)
    with pytest.raises(ValueError, match="turn must be a positive"):
        viewer(source=SKIER, turn=0)
    with pytest.raises(ValueError, match=r"pitch must be one angle or one per view \(3\), got 2"):
        viewer(source=SKIER, yaw=[0, 90, 180], pitch=[0, 10])
    yaws, pitches = view_angles(None, 15.0, None)
    assert list(yaws) == [0, 45, 90, 135, 180, 225, 270, 315] and list(pitches) == [15.0] * 8


# --- Swapper ------------------------------------------------------------------------------------


def test_swapping_with_oneself_reproduces_the_photo(skier, skier_body, anny_body):
    person = skier[0]
    result = Swapper(image_size=SIZE, body=anny_body).swap_people(skier, skier, chosen_parts("whole"))
    assert len(result) == 1
    assert_reproduces_the_photo(result.frames[0], person, skier_body, exact_fraction=0.75)  # no colour from within 10 px of the hands
    beyond = cv2.dilate((skier_body | (person.mask > 0.5)).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    np.testing.assert_array_equal(result.frames[0][~beyond], person.image[~beyond])


def test_swapping_the_upper_body_changes_only_torso_and_arms(skier, skier_body, anny_body):
    person = skier[0]
    donors = fit_photos([LUNGE], anny_body, SIZE, 1.3, QUICK_FIT)
    result = Swapper(image_size=SIZE, body=anny_body).swap_people(skier, donors, chosen_parts("upper"))
    frame = result.frames[0]
    # The swapped region: the upper parts of the body clothed as the swap's target (the person's or the donor's clothes, whichever reach further).
    clothed, face_index = mesh_mask(anny_body, person.pose, person.shape, person.camera, offsets=result.offsets)
    upper = [PART_NAMES.index(name) for name in ("torso", "left_arm", "right_arm")]
    on_upper = clothed[0] & np.isin(anny_body.face_part.numpy()[np.clip(face_index[0], 0, None)], upper)
    # The old garment beyond the mesh (the person's mask on the upper parts) and a 2 px fringe are repainted too.
    old_garment = cv2.dilate(((person.mask > 0.5) & ~clothed[0]).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    changed = on_upper | old_garment
    assert on_upper.sum() > 0.03 * SIZE**2
    # Head, legs and background untouched, up to 8-bit rounding, but for the few inpainted pixels of the old
    # garment's fringe that the 2 px margin misses (measured 44 of 44034).
    unchanged = np.abs(frame[~changed].astype(int) - person.image[~changed].astype(int)).max(-1) <= 2
    assert unchanged.mean() > 0.995
    # The donor wears a black tank top and has bare arms: the skier's red torso turns dark (measured mean
    # RGB 124, 42, 51 -> 57, 49, 46) and the red sleeves turn skin-coloured (127, 16, 32 -> 174, 135, 117).
    part = anny_body.face_part.numpy()[np.clip(face_index[0], 0, None)]
    torso = skier_body & (part == PART_NAMES.index("torso"))
    arms = skier_body & np.isin(part, [PART_NAMES.index("left_arm"), PART_NAMES.index("right_arm")])
    torso_before, torso_after = person.image[torso].mean(0), frame[torso].mean(0)
    arms_before, arms_after = person.image[arms].mean(0), frame[arms].mean(0)
    assert torso_before[0] > 100 and torso_after[0] < 80 and torso_after.max() < 80, (torso_before, torso_after)
    assert arms_before[1] < 40 and arms_after[1] > 90, (arms_before, arms_after)
    assert arms_after[0] > arms_after[1] > arms_after[2]  # skin: red > green > blue


def test_swapper_rejects_unknown_parts_naming_them(anny_body):
    swapper = Swapper(image_size=64, body=anny_body)
    with pytest.raises(ValueError, match="unknown part 'tail'"):
        swapper(source=SKIER, reference=LUNGE, parts=["torso", "tail"])
    assert chosen_parts(["upper", "torso", "head"]) == ("torso", "left_arm", "right_arm", "head")


# --- several sources ----------------------------------------------------------------------------


def test_two_sources_are_accepted_and_nine_are_refused(skier, anny_body, tmp_path):
    photo = load_image(SKIER)
    imitator = Imitator(image_size=64, body=anny_body, fitting=QUICK_FIT)
    result = imitator(source=[photo, photo[:, ::-1]], reference=WALK, max_frames=3)  # a mirrored view, not contiguous
    assert len(result) == 3 and len(result.sources) == 2 and result.frames[0].shape == (64, 64, 3)
    with pytest.raises(ValueError, match="at most 8 photos, got 9"):
        imitator(source=[SKIER] * 9, reference=WALK)
    with pytest.raises(ValueError, match="at most 8 photos, got 9"):
        Viewer(image_size=64, body=anny_body)(source=[SKIER] * 9, yaw=[0])
    # The same photo twice adds nothing: the views equal the single-source ones, also where the
    # back comes from the texture atlas.
    viewer = Viewer(image_size=SIZE, body=anny_body)
    angles = np.array([0.0, 120.0, 180.0]), np.zeros(3)
    one = viewer.view_people(skier, *angles).frames
    two = viewer.view_people(skier * 2, *angles).frames
    for single, double in zip(one, two, strict=True):
        assert np.abs(single.astype(int) - double).max() <= 1


# --- audio --------------------------------------------------------------------------------------


def _dancing_video(path, photo, frames=6, fps=10, rate=44100):
    """An mp4 of the photo shifted 3 px a frame (a person the detector finds) with a 440 Hz tone."""
    height, width = 256, 170
    small = cv2.resize(photo, (width + 3 * frames, height + 2), interpolation=cv2.INTER_AREA)
    shifted = [small[:height, 3 * index : 3 * index + width] for index in range(frames)]
    return write_test_video(path, shifted, fps, tone_hz=440.0, rate=rate)


def test_a_reference_videos_audio_is_kept_unless_turned_off(anny_body, tmp_path):
    reference = _dancing_video(tmp_path / "dance.mp4", load_image(LUNGE))
    assert has_audio(reference)
    imitator = Imitator(image_size=64, body=anny_body, fitting=QUICK_FIT)
    work = tmp_path / "work"  # the second call reuses the fitted reference
    with_audio = imitator(source=SKIER, reference=reference, work_folder=work)
    assert len(with_audio) == 6 and with_audio.fps == pytest.approx(10)
    assert len(with_audio.references) == 6 and with_audio.references[0].shape == (64, 64, 3)
    # The reference's fit preview is written beside its crops, and side-by-side videos show it: the mesh over the crop.
    assert (work / "previews" / "dance.mp4").exists()
    crop = load_image(work / "images" / "dance" / "000000.jpg")
    assert np.abs(with_audio.references[0].astype(float) - crop.astype(float)).mean() > 3.0
    saved = with_audio.save(tmp_path / "with.mp4")
    assert has_audio(saved)
    with av.open(str(saved)) as container:
        stream = container.streams.audio[0]
        assert float(stream.duration * stream.time_base) == pytest.approx(0.6, abs=0.1)
    without = imitator(source=SKIER, reference=reference, work_folder=work, audio=False)
    assert not has_audio(without.save(tmp_path / "without.mp4"))
    assert len(read_video(tmp_path / "without.mp4")[0]) == 6


# --- SynthesisResult ----------------------------------------------------------------------------


def _result(count=4, size=64, sources=None, references=()):
    frames = [np.full((size, size, 3), (40 * index, 90, 200 - 30 * index), np.uint8) for index in range(count)]
    return SynthesisResult(frames, 8.0, np.zeros((count, 24, 3), np.float32), np.zeros(6, np.float32),
                           np.tile([1.0, 0.0, 0.0], (count, 1)).astype(np.float32), sources=sources or [], references=list(references))


def test_result_saves_videos_gifs_and_frame_folders(tmp_path):
    result = _result()
    video, fps = read_video(result.save(tmp_path / "out.mp4"))
    assert video.shape == (4, 64, 64, 3) and fps == pytest.approx(8)
    assert np.abs(video.astype(int) - np.stack(result.frames)).mean() < 3
    gif = result.save(tmp_path / "out.gif")
    assert gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    folder = result.save(tmp_path / "frames")
    assert sorted(path.name for path in folder.iterdir()) == [f"{index:06d}.png" for index in range(4)]
    np.testing.assert_array_equal(load_image(folder / "000002.png"), result.frames[2])
    with pytest.raises(ValueError, match=r"out\.avi.*unsupported output kind"):
        result.save(tmp_path / "out.avi")
    assert not (tmp_path / "out.avi").exists()


def test_side_by_side_puts_source_reference_and_result_at_the_frames_height():
    rng = np.random.default_rng(4)
    source = rng.integers(0, 256, (128, 128, 3), np.uint8)
    reference = rng.integers(0, 256, (32, 48, 3), np.uint8)
    result = _result(count=3, sources=[source], references=[reference, None])
    rows = result.side_by_side()
    # source 128 -> 64 x 64; reference 32 x 48 -> 64 x 96; the frame 64 x 64; no reference from frame 1 on.
    assert [row.shape for row in rows] == [(64, 224, 3), (64, 128, 3), (64, 128, 3)]
    np.testing.assert_array_equal(rows[0][:, -64:], result.frames[0])
    halved = source.reshape(64, 2, 64, 2, 3).mean(axis=(1, 3))  # INTER_AREA at exactly half: 2 x 2 means
    assert np.abs(rows[0][:, :64].astype(float) - halved).max() <= 1
    assert [row.shape for row in _result(count=2).side_by_side()] == [(64, 64, 3)] * 2  # nothing to put beside


# --- the command line ---------------------------------------------------------------------------


def _listing(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def test_cli_missing_source_is_a_clear_error(tmp_path):
    output = tmp_path / "out" / "result.mp4"
    completed = subprocess.run([sys.executable, "-m", "lwgan.cli", "imitate", f"source={tmp_path / 'nobody.jpg'}",
                                f"reference={WALK}", f"output={output}", "image_size=64"], check=False, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2, completed.stderr
    assert "nobody.jpg" in completed.stderr and "Traceback" not in completed.stderr
    assert not output.parent.exists() or _listing(output.parent) == []


@pytest.fixture
def cli(anny_body, monkeypatch, capsys):
    """Run `lwgan ...` in this process (the body model built once): (exit code, stderr)."""
    monkeypatch.setattr("lwgan.tasks.pipeline.build_body_model", lambda config: anny_body)

    def run(*arguments):
        code = main(list(arguments))
        return code, capsys.readouterr().err

    return run


QUICK = ["image_size=64", "fitting.orientation_iterations=10", "fitting.body_iterations=10", "fitting.silhouette_iterations=0"]


def test_cli_source_without_a_person_is_a_clear_error(cli, tmp_path):
    gray = write_image(tmp_path / "gray.png", np.full((96, 96, 3), 128, np.uint8))
    output = tmp_path / "out" / "result.mp4"
    code, stderr = cli("imitate", f"source={gray}", f"reference={WALK}", f"output={output}", *QUICK)
    assert code == 2 and "gray.png" in stderr and "Traceback" not in stderr
    assert _listing(tmp_path) == ["gray.png"]


def test_cli_unsupported_reference_is_a_clear_error(cli, tmp_path):
    notes = tmp_path / "moves.txt"
    notes.write_text("step left, step right")
    output = tmp_path / "out" / "result.mp4"
    code, stderr = cli("imitate", f"source={SKIER}", f"reference={notes}", f"output={output}", *QUICK)
    assert code == 2 and "moves.txt" in stderr and "not a supported reference" in stderr
    assert _listing(tmp_path) == ["moves.txt"]


def test_cli_output_inside_a_file_is_a_clear_error(cli, tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("a file where the output folder should be")
    code, stderr = cli("imitate", f"source={SKIER}", f"reference={WALK}", f"output={blocker / 'run.mp4'}", "max_frames=2", *QUICK)
    assert code == 2 and "results" in stderr and "Traceback" not in stderr
    assert _listing(tmp_path) == ["results"] and blocker.read_text().startswith("a file")
