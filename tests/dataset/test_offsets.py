"""Clothing offsets in the dataset: smpls/<video>/offsets.npy is read, served with every item of its video (zeros for a
video without one), and a damaged or disagreeing file is a clear error naming it."""

import shutil

import numpy as np
import pytest
import torch

from lwgan.data.iper import IperDataset, load_video, read_offsets


@pytest.fixture
def clothed_dataset(dataset_root, tmp_path):
    """(root, clothed, naked, offsets): a copy of dataset_root whose first val video has offsets.npy (float64 on disk)."""
    root = tmp_path / "clothed"
    shutil.copytree(dataset_root, root)
    clothed, naked = (root / "val.txt").read_text().split()
    offsets = np.random.default_rng(0).uniform(-0.01, 0.05, 500)  # any length: the dataset does not know the body
    np.save(root / "smpls" / clothed / "offsets.npy", offsets)
    return root, clothed, naked, offsets


def test_load_video_reads_the_offsets_as_float32(clothed_dataset):
    root, clothed, naked, offsets = clothed_dataset
    video = load_video(root, clothed)
    assert video.offsets.dtype == np.float32 and video.offsets.shape == (500,)
    np.testing.assert_array_equal(video.offsets, offsets.astype(np.float32))
    assert load_video(root, naked).offsets is None


def test_items_carry_their_videos_offsets_and_zeros_for_a_naked_video(clothed_dataset):
    root, clothed, naked, offsets = clothed_dataset
    dataset = IperDataset(root, "val", image_size=32, num_sources=2)
    expected = {clothed: torch.from_numpy(offsets.astype(np.float32)), naked: torch.zeros(500)}
    seen = set()
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["offsets"].dtype == torch.float32
        assert torch.equal(item["offsets"], expected[item["video"]]), item["video"]
        seen.add(item["video"])
    assert seen == {clothed, naked}
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=2)))
    assert batch["offsets"].shape == (2, 500)
    # No training video has offsets.npy: train items keep their old keys.
    assert "offsets" not in IperDataset(root, "train", image_size=32)[0]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda path: path.write_text("0.01 0.02 0.03\n"), id="text"),
        pytest.param(lambda path: np.save(path, np.zeros((10, 3), np.float32)), id="2d"),
        pytest.param(lambda path: np.save(path, np.array([0.01, np.nan, 0.0], np.float32)), id="nan"),
        pytest.param(lambda path: np.save(path, np.array([0.01, np.inf, 0.0])), id="inf"),
        pytest.param(lambda path: np.save(path, np.zeros(10, np.int64)), id="integers"),
        pytest.param(lambda path: np.save(path, np.array([{"offsets": 1.0}], dtype=object), allow_pickle=True), id="pickle"),
        pytest.param(lambda path: np.save(path, np.float32(0.01)), id="scalar"),
    ],
)
def test_a_damaged_offsets_file_is_a_value_error_naming_it(clothed_dataset, damage):
    root, clothed, _, _ = clothed_dataset
    path = root / "smpls" / clothed / "offsets.npy"
    damage(path)
    with pytest.raises(ValueError, match="offsets.npy") as error:
        IperDataset(root, "val")
    assert str(path) in str(error.value)
    with pytest.raises(ValueError, match="offsets.npy"):
        read_offsets(path)


def test_videos_disagreeing_on_the_vertex_count_are_an_error(clothed_dataset):
    root, _, naked, _ = clothed_dataset
    np.save(root / "smpls" / naked / "offsets.npy", np.zeros(499, np.float32))
    with pytest.raises(ValueError, match=r"offsets\.npy files disagree on the vertex count: \[499, 500\]"):
        IperDataset(root, "val")


def test_a_missing_offsets_file_means_naked(dataset_root):
    assert read_offsets(dataset_root / "smpls" / "nowhere" / "offsets.npy") is None
    assert all(video.offsets is None for video in IperDataset(dataset_root, "val").videos)
    assert "offsets" not in IperDataset(dataset_root, "val", image_size=32)[0]
