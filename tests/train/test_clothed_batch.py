"""prepare_batch carries each item's clothing offsets into its sources and its target: the clothed masks grow around the
naked ones, item by item, and zero offsets change nothing; offsets for another body are an error naming the file."""

import numpy as np
import torch

from lwgan.body.clothing import clothing_vertex_mask
from lwgan.cli import main
from lwgan.data.iper import IperDataset
from lwgan.flow.inputs import scaled_hole_dilation
from lwgan.train.step import prepare_batch

SIZE = 64


def test_offsets_grow_the_masks_of_their_own_items_sources_and_target(dataset_root, anny_body):
    dataset = IperDataset(dataset_root, "val", image_size=SIZE, num_sources=2, seed=1)
    item = next(iter(torch.utils.data.DataLoader(dataset, batch_size=2)))
    assert "offsets" not in item and item["source_images"].shape[:2] == (2, 2)
    free = clothing_vertex_mask(anny_body)
    # Item 0 wears 3 cm on every free vertex, item 1 nothing: a mix-up of items and sources shows.
    clothed = torch.stack([0.03 * free.float(), torch.zeros(len(free))])
    device, dilation = torch.device("cpu"), scaled_hole_dilation(SIZE)
    naked = prepare_batch(item, anny_body, device, dilation)
    zero = prepare_batch({**item, "offsets": torch.zeros_like(clothed)}, anny_body, device, dilation)
    dressed = prepare_batch({**item, "offsets": clothed}, anny_body, device, dilation)

    assert torch.equal(zero.target_mask, naked.target_mask)
    assert torch.equal(zero.inputs.source_background_mask, naked.inputs.source_background_mask)
    assert torch.equal(zero.inputs.grid, naked.inputs.grid)

    # The target: item 0 grows by about a pixel all round (3 cm is about a pixel at 64 px: measured 431 -> 599 pixels),
    # and still covers the naked body; item 1 is unchanged.
    naked_pixels, dressed_pixels = naked.target_mask.flatten(1).sum(1), dressed.target_mask.flatten(1).sum(1)
    assert dressed_pixels[0] > 1.2 * naked_pixels[0], (naked_pixels, dressed_pixels)
    assert (naked.target_mask[0] & ~dressed.target_mask[0]).sum() <= 2
    assert torch.equal(dressed.target_mask[1], naked.target_mask[1])
    # The sources: both of item 0's bodies grow (their background shrinks), item 1's keep the naked outline.
    naked_body = naked.inputs.source_background_mask[:, :, 0] < 0.5  # (B, S, H, W)
    dressed_body = dressed.inputs.source_background_mask[:, :, 0] < 0.5
    for source in range(2):
        assert dressed_body[0, source].sum() > 1.2 * naked_body[0, source].sum()
        assert (naked_body[0, source] & ~dressed_body[0, source]).sum() <= 2
    assert torch.equal(dressed_body[1], naked_body[1])
    # The target condition map is drawn on the clothed target too.
    assert not torch.equal(dressed.target_condition[0], naked.target_condition[0])
    assert torch.equal(dressed.target_condition[1], naked.target_condition[1])


def test_offsets_for_another_body_fail_training_naming_the_file(broken_dataset, tmp_path, capsys):
    root, name = broken_dataset
    np.save(root / "smpls" / name / "offsets.npy", np.zeros(6890, np.float32))  # SMPL's vertex count, not Anny's
    assert main(["train", f"data={root}", f"output={tmp_path / 'run'}", f"image_size={SIZE}", "batch_size=2", "workers=0",
                 "iterations=1"]) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error
    assert "offsets.npy" in error and name in error, error
