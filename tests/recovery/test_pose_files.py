"""iPER pose_shape.pkl and SMPL-pose npz files: round trips, validation errors, atomic writes."""

import pickle
import pickletools
from pathlib import Path

import numpy as np
import pytest
import torch

from lwgan.recovery.pose_files import (
    PoseShape,
    SmplMotion,
    read_pose_npz,
    read_pose_shape,
    write_pose_npz,
    write_pose_shape,
)


def sample(frames: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    generator = np.random.default_rng(seed)
    return {
        "cams": generator.normal(size=(frames, 3)).astype(np.float32),
        "pose": generator.normal(scale=0.3, size=(frames, 72)).astype(np.float32),
        "shape": generator.normal(size=(frames, 10)).astype(np.float32),
    }


def write_raw(path: Path, value) -> Path:
    path.write_bytes(pickle.dumps(value, protocol=2))
    return path


def test_round_trip(tmp_path):
    arrays = sample()
    path = tmp_path / "smpls" / "pose_shape.pkl"
    write_pose_shape(path, **arrays)
    loaded = read_pose_shape(path)
    assert isinstance(loaded, PoseShape) and loaded.num_frames == 5
    for key, value in arrays.items():
        assert getattr(loaded, key).dtype == np.float32
        np.testing.assert_array_equal(getattr(loaded, key), value)
    assert sorted(p.name for p in path.parent.iterdir()) == ["pose_shape.pkl"]


def test_torch_and_24x3_inputs(tmp_path):
    arrays = sample(3)
    path = tmp_path / "pose_shape.pkl"
    write_pose_shape(path, torch.from_numpy(arrays["cams"]), torch.from_numpy(arrays["pose"]).reshape(3, 24, 3), arrays["shape"].astype(np.float64))
    np.testing.assert_array_equal(read_pose_shape(path).pose, arrays["pose"])


def test_written_file_is_plain_and_readable_by_numpy_1(tmp_path):
    """A dict of plain numpy arrays, protocol 2, naming numpy by the module path numpy 1.x and 2.x both import."""
    path = tmp_path / "pose_shape.pkl"
    write_pose_shape(path, **sample())
    data = path.read_bytes()
    assert data[:2] == b"\x80\x02"
    globals_named = {argument for opcode, argument, _ in pickletools.genops(data) if opcode.name == "GLOBAL"}
    assert globals_named <= {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype", "_codecs encode"}, globals_named
    with path.open("rb") as handle:
        plain = pickle.load(handle)  # the ordinary unpickler, as the original code reads it
    assert sorted(plain) == ["cams", "pose", "shape"] and all(type(value) is np.ndarray for value in plain.values())


def test_reads_files_written_by_others(tmp_path):
    arrays = sample(4)
    path = write_raw(tmp_path / "other.pkl", {**{key: value.astype(np.float64) for key, value in arrays.items()}, "extra": [1, 2]})
    loaded = read_pose_shape(path)
    np.testing.assert_allclose(loaded.cams, arrays["cams"])


@pytest.mark.parametrize("change, message", [
    (lambda arrays: {key: value for key, value in arrays.items() if key != "cams"}, r"missing key\(s\) \['cams'\]"),
    (lambda arrays: {**arrays, "pose": arrays["pose"][:, :69]}, r"'pose' must have shape \(N, 72\), got \(5, 69\)"),
    (lambda arrays: {**arrays, "shape": arrays["shape"][0]}, r"'shape' must have shape \(N, K\), got \(10,\)"),
    (lambda arrays: {**arrays, "cams": arrays["cams"][:4]}, "same number of frames"),
    (lambda arrays: {**arrays, "pose": np.where(np.arange(72) == 5, np.nan, arrays["pose"])}, "'pose' has NaN"),
    (lambda arrays: {**arrays, "cams": "not numbers"}, "'cams' is not a numeric array"),
    (lambda arrays: [arrays["cams"], arrays["pose"], arrays["shape"]], "expected a dict"),
])
def test_bad_files_name_the_file_and_the_problem(tmp_path, change, message):
    path = write_raw(tmp_path / "bad.pkl", change(sample()))
    with pytest.raises(ValueError, match=message) as error:
        read_pose_shape(path)
    assert str(path) in str(error.value)


def test_unsafe_or_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.pkl"):
        read_pose_shape(tmp_path / "absent.pkl")

    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    path = write_raw(tmp_path / "evil.pkl", {"cams": Evil()})
    with pytest.raises(ValueError, match="print"):
        read_pose_shape(path)


def test_invalid_write_creates_nothing(tmp_path):
    arrays = sample()
    arrays["shape"] = arrays["shape"][:3]  # 3 frames of shape for 5 frames of pose
    with pytest.raises(ValueError, match=r"same number of frames") as error:
        write_pose_shape(tmp_path / "pose_shape.pkl", **arrays)
    assert "pose_shape.pkl" in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "pose_shape.pkl"
    write_pose_shape(path, **sample(seed=1))
    before = path.read_bytes()
    original = Path.write_bytes

    def write_half_then_fail(self, data):
        original(self, data[: len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_bytes", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_pose_shape(path, **sample(seed=2))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["pose_shape.pkl"]


def test_npz_poses(tmp_path):
    generator = np.random.default_rng(3)
    poses = generator.normal(scale=0.2, size=(6, 72))
    trans = generator.normal(size=(6, 3))
    path = tmp_path / "motion.npz"
    np.savez(path, poses=poses, trans=trans, betas=np.arange(16.0), mocap_framerate=np.array(60.0))
    motion = read_pose_npz(path)
    assert isinstance(motion, SmplMotion) and motion.pose.shape == (6, 24, 3) and motion.pose.dtype == np.float32
    np.testing.assert_allclose(motion.pose.reshape(6, 72), poses, rtol=1e-6)
    np.testing.assert_allclose(motion.translation, trans, rtol=1e-6)
    assert motion.fps == 60.0 and motion.shape.shape == (16,)

    np.savez(path, poses=poses.reshape(6, 24, 3))
    minimal = read_pose_npz(path)
    assert minimal.fps == 30.0 and minimal.shape is None
    np.testing.assert_array_equal(minimal.translation, np.zeros((6, 3), np.float32))


def test_npz_round_trip(tmp_path):
    motion = SmplMotion(pose=np.full((4, 24, 3), 0.1, np.float32), translation=np.ones((4, 3), np.float32), fps=24.0, shape=np.arange(10, dtype=np.float32))
    write_pose_npz(tmp_path / "out.npz", motion)
    loaded = read_pose_npz(tmp_path / "out.npz")
    np.testing.assert_array_equal(loaded.pose, motion.pose)
    np.testing.assert_array_equal(loaded.translation, motion.translation)
    np.testing.assert_array_equal(loaded.shape, motion.shape)
    assert loaded.fps == 24.0


@pytest.mark.parametrize("arrays, message", [
    ({"pose": np.zeros((3, 72))}, r"missing key 'poses'"),
    ({"poses": np.zeros((3, 69))}, r"'poses' must have shape \(N, 72\) or \(N, 24, 3\), got \(3, 69\)"),
    ({"poses": np.zeros((3, 72)), "trans": np.zeros((2, 3))}, r"'trans' must have shape \(3, 3\)"),
    ({"poses": np.full((3, 72), np.nan)}, "'poses' has NaN"),
    ({"poses": np.zeros((3, 72)), "fps": np.array(-5.0)}, "positive frame rate"),
    ({"poses": np.array([{"a": 1}], dtype=object)}, "not a readable npz"),
])
def test_bad_npz_name_the_file_and_key(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message) as error:
        read_pose_npz(path)
    assert str(path) in str(error.value)


def test_npz_not_an_archive(tmp_path):
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="text.npz"):
        read_pose_npz(text)
    single = tmp_path / "single.npz"
    with single.open("wb") as handle:
        np.save(handle, np.zeros(3))
    with pytest.raises(ValueError, match="single .npy array"):
        read_pose_npz(single)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        read_pose_npz(tmp_path / "nope.npz")
