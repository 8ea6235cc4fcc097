"""The synthetic iPER-format generator and the dataset reader: exact fits, sampling, clear errors."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from lwgan.body.camera import project
from lwgan.data.iper import IperDataset
from lwgan.recovery.pose_files import read_pose_shape, write_pose_shape
from lwgan.render import rasterize


def test_splits_hold_out_whole_subjects(dataset_root):
    train = (dataset_root / "train.txt").read_text().split()
    val = (dataset_root / "val.txt").read_text().split()
    assert len(train) == 4 and len(val) == 2
    assert {name.split("_")[0] for name in train}.isdisjoint({name.split("_")[0] for name in val})


def test_stored_fits_reproduce_the_rendered_masks(dataset_root, anny_body):
    dataset = IperDataset(dataset_root, "val", image_size=64)
    for video in dataset.videos:
        with torch.no_grad():
            vertices = anny_body(torch.from_numpy(video.poses).float(), torch.from_numpy(video.shapes).float()).vertices
        masks = rasterize(project(vertices, torch.from_numpy(video.cameras).float()), anny_body.faces, 64).mask.numpy()
        stored = np.stack([np.asarray(Image.open(path)) > 127 for path in video.masks])
        assert np.array_equal(masks, stored)


def test_the_frames_own_size_is_read_when_no_size_is_given(dataset_root):
    dataset = IperDataset(dataset_root, "val", image_size=None)
    assert dataset.image_size == 64 and dataset[0]["target_image"].shape == (3, 64, 64)


def test_items_are_reproducible_sets_of_one_video(dataset_root):
    dataset = IperDataset(dataset_root, "train", image_size=32, num_sources=2, seed=3)
    item = dataset[5]
    assert item["source_images"].shape == (2, 3, 32, 32) and item["target_image"].shape == (3, 32, 32)
    assert item["source_poses"].shape == (2, 24, 3) and item["target_shape"].shape == (6,)
    assert item["target_frame"] not in item["source_frames"].tolist()
    assert -1 <= item["target_image"].min() and item["target_image"].max() <= 1
    again = dataset[5]
    assert torch.equal(item["source_images"], again["source_images"]) and item["target_frame"] == again["target_frame"]
    video = dataset.videos[5 % len(dataset.videos)]
    assert item["video"] == video.name
    assert torch.allclose(item["target_pose"], torch.from_numpy(video.poses[item["target_frame"]]).float())


def test_missing_frame_folder_names_the_video(broken_dataset):
    root, name = broken_dataset
    shutil.rmtree(root / "images" / name)
    with pytest.raises(FileNotFoundError, match=f"video {name}"):
        IperDataset(root, "train")


def test_frame_count_disagreeing_with_the_pkl_names_the_video(broken_dataset):
    root, name = broken_dataset
    fits = read_pose_shape(root / "smpls" / name / "pose_shape.pkl")
    write_pose_shape(root / "smpls" / name / "pose_shape.pkl", cams=fits.cams[:-1], pose=fits.pose[:-1], shape=fits.shape[:-1])
    with pytest.raises(ValueError, match=f"video {name}: .*5 rows but .* 6 frames"):
        IperDataset(root, "train")


def test_unreadable_image_names_the_video(broken_dataset):
    root, name = broken_dataset
    (root / "images" / name / "000003.jpg").write_bytes(b"not a jpeg")
    dataset = IperDataset(root, "train", image_size=64)
    with pytest.raises(ValueError, match=f"video {name}: .*000003.jpg"):
        for index in range(len(dataset)):
            dataset[index]


def test_missing_split_file_and_pkl(broken_dataset):
    root, name = broken_dataset
    (root / "smpls" / name / "pose_shape.pkl").unlink()
    with pytest.raises(FileNotFoundError, match="pose_shape.pkl"):
        IperDataset(root, "train")
    with pytest.raises(FileNotFoundError, match="test.txt"):
        IperDataset(root, "test")
