"""Every weight loader reports a bad file the same way (lwgan.io.state_dicts): the file, each wrong key with both shapes, every missing and unexpected key; .pth files are read without running code."""

import collections

import original_layouts as layouts
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from lwgan.models import LiquidWarpingGenerator, from_pretrained, save_pretrained
from lwgan.models import original as converter
from lwgan.recovery.hmr import HMR
from lwgan.recovery.hmr_loader import load_hmr


def hmr_file(tmp_path, change):
    """An HMR checkpoint in the original layout (the model's own keys and shapes), after change(state)."""
    state = {key: value for key, value in HMR().state_dict().items() if not key.endswith("num_batches_tracked")}
    change(state)
    path = tmp_path / "hmr_tf2pt.pth"
    torch.save(state, path)
    return path


def original_generator_file(tmp_path, change):
    """An original ICCV generator checkpoint (small, random, with the DataParallel prefix), after change(state)."""
    generator = torch.Generator().manual_seed(0)
    state = collections.OrderedDict((key, torch.randn(shape, generator=generator))
                                    for key, shape in layouts.iccv_original_layout(conv_dim=8, repeat_num=1).items())
    change(state)
    path = tmp_path / "net.pth"
    torch.save({f"module.{key}": value for key, value in state.items()}, path)
    return path


def export_folder(tmp_path, change):
    """An export folder of a small ICCV generator whose model.safetensors holds change(tensors)."""
    folder = save_pretrained(LiquidWarpingGenerator(conv_dim=8, repeat_num=1), tmp_path / "export")
    tensors = load_file(str(folder / "model.safetensors"))
    change(tensors)
    save_file(tensors, str(folder / "model.safetensors"))
    return folder


# loader, file maker, (key with a wrong shape, its wrong shape, the shape the model expects), a missing key, an unexpected key
LOADERS = {
    "hmr": (load_hmr, hmr_file, ("resnet.layer2.1.conv2.weight", (128, 128, 1, 1), (128, 128, 3, 3)),
            "regressor.fc_blocks.fc2.bias", "resnet.layer5.0.conv1.weight"),
    "original_generator": (lambda path: converter.convert_original_generator(path, kind="iccv"), original_generator_file,
                           ("tsf_model.skippers.1.0.weight", (16, 32, 5, 5), (16, 32, 3, 3)),
                           "src_model.attetion_reg.0.weight", "src_model.attention_reg.0.weight"),
    "export": (from_pretrained, export_folder, ("bg_model.model.0.weight", (8, 5, 7, 7), (8, 4, 7, 7)),
               "tsf_model.attetion_reg.0.weight", "tsf_model.extra.weight"),
}


@pytest.mark.parametrize("loader", LOADERS)
def test_key_and_shape_errors_name_the_file_every_key_and_both_shapes(tmp_path, loader):
    load, make_file, (wrong_key, wrong_shape, expected_shape), missing_key, unexpected_key = LOADERS[loader]

    def break_it(state):
        state[wrong_key] = torch.zeros(wrong_shape)
        del state[missing_key]
        state[unexpected_key] = torch.zeros(1, 8, 7, 7)

    path = make_file(tmp_path, break_it)
    with pytest.raises(ValueError) as error:
        load(path)
    message = str(error.value)
    assert str(path) in message
    assert f"{wrong_key!r} has shape {wrong_shape}" in message and f"expects {expected_shape}" in message
    assert f"missing keys (1): {missing_key}" in message
    assert f"unexpected keys (1): {unexpected_key}" in message


class NotATensor:
    pass


@pytest.mark.parametrize("load", [load_hmr, converter.convert_original_generator], ids=["hmr", "original_generator"])
def test_pth_files_are_read_without_running_code(tmp_path, load):
    path = tmp_path / "object.pth"
    torch.save({"object": NotATensor()}, path)
    with pytest.raises(ValueError, match=r"weights_only=True"):
        load(path)
    torch.save({"resnet.conv1.weight": nn.Linear(1, 1)}, path)
    with pytest.raises(ValueError, match=r"weights_only=True"):
        load(path)
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError, match="expected a state dict"):
        load(path)
    with pytest.raises(FileNotFoundError, match="not found"):
        load(tmp_path / "missing.pth")
