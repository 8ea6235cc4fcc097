"""The converter of original checkpoints, on state dicts built in the original layout (tests/original_layouts.py)."""

import collections
import importlib.util
import math
from pathlib import Path

import original_layouts as layouts
import pytest
import torch

from lwgan.models import (
    AttentionalLiquidWarpingGenerator,
    LiquidWarpingGenerator,
    from_pretrained,
)
from lwgan.models import original as converter
from lwgan.tasks.pipeline import load_generator

REPOSITORY = Path(__file__).resolve().parents[2]


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load_module("convert_original_checkpoint", REPOSITORY / "tools" / "convert_original_checkpoint.py")


def original_file(path, layout, seed=0, prefix="module."):
    """Write random tensors with the layout's shapes as an original checkpoint (DataParallel prefix) and return them."""
    generator = torch.Generator().manual_seed(seed)
    tensors = collections.OrderedDict((prefix + key, torch.randn(shape, generator=generator)) for key, shape in layout.items())
    torch.save(tensors, path)
    return {key.removeprefix(prefix): value for key, value in tensors.items()}


def test_iccv_conversion_infers_the_architecture_and_keeps_every_tensor(tmp_path):
    path = tmp_path / "net_epoch_30_id_G.pth"
    tensors = original_file(path, layouts.iccv_original_layout(conv_dim=8, repeat_num=2))
    model = converter.convert_original_generator(path, kind="iccv")
    assert isinstance(model, LiquidWarpingGenerator) and not model.training
    assert model.config == {"background_channels": 4, "source_channels": 6, "transfer_channels": 6, "conv_dim": 8, "repeat_num": 2, "n_down": 3,
                            "keep_known_background": False, "refine": False, "inputs": "warped"}
    state = model.state_dict()
    assert state.keys() == tensors.keys()
    assert all(torch.equal(state[key], tensors[key]) for key in tensors)


def test_attention_conversion_infers_the_architecture_and_keeps_every_tensor(tmp_path):
    path = tmp_path / "AttLWB-SPADE_id_G_2020-05-18.pth"
    layout = layouts.attention_original_layout(filters=(8, 16, 32), res_blocks=2, background_filters=(8, 16, 16, 32),
                                               background_res_blocks=3, spade_hidden=12)
    tensors = original_file(path, layout, prefix="")
    model = converter.convert_original_generator(path, kind="attention")
    assert isinstance(model, AttentionalLiquidWarpingGenerator)
    assert model.config == {
        "background_channels": 4, "source_channels": 6, "transfer_channels": 6,
        "source_filters": (8, 16, 32), "transfer_filters": (8, 16, 32), "res_blocks": 2,
        "background_filters": (8, 16, 16, 32), "background_res_blocks": 3, "spade_hidden": 12,
        "mask_unseen_sources": False,  # the original attention, for the original weights
        "keep_known_background": False,
        "refine": False,
        "inputs": "warped",
    }
    state = model.state_dict()
    assert state.keys() == tensors.keys()
    assert all(torch.equal(state[key], tensors[key]) for key in tensors)


def test_full_size_layouts_give_the_original_presets():
    iccv = {key: torch.empty(shape, device="meta") for key, shape in layouts.iccv_original_layout().items()}
    attention = {key: torch.empty(shape, device="meta") for key, shape in layouts.attention_original_layout().items()}
    with torch.device("meta"):
        assert converter.infer_iccv_config(iccv, "file") == {**LiquidWarpingGenerator.preset("original").config, "keep_known_background": False, "refine": False}
        expected = {**AttentionalLiquidWarpingGenerator.preset("original").config, "mask_unseen_sources": False, "keep_known_background": False, "refine": False}
        assert AttentionalLiquidWarpingGenerator(**converter.infer_attention_config(attention, "file")).config == expected


def test_the_wrong_kind_is_named(tmp_path):
    path = tmp_path / "net.pth"
    original_file(path, layouts.iccv_original_layout(conv_dim=8, repeat_num=1))
    with pytest.raises(ValueError, match=r"no key 'bg_net\.main\.0\.weight'.*not an original 'attention' generator.*is it 'iccv'"):
        converter.convert_original_generator(path, kind="attention")


def test_command_line_writes_an_export_folder(tmp_path):
    path = tmp_path / "net_epoch_30_id_G.pth"
    tensors = original_file(path, layouts.iccv_original_layout(conv_dim=8, repeat_num=1))
    assert tool.main([str(path), str(tmp_path / "export"), "--kind", "iccv"]) == 0
    model = from_pretrained(tmp_path / "export")
    assert all(torch.equal(model.state_dict()[key], tensors[key]) for key in tensors)
    assert sum(p.numel() for p in model.parameters()) == sum(math.prod(t.shape) for t in tensors.values())
    assert tool.main([str(tmp_path / "missing.pth"), str(tmp_path / "other")]) == 1
    assert not (tmp_path / "other").exists()


def test_the_kind_is_told_from_the_keys_and_pipelines_load_original_files(tmp_path):
    iccv_path, attention_path = tmp_path / "net_epoch_30_id_G.pth", tmp_path / "AttLWB-SPADE_id_G.pth"
    original_file(iccv_path, layouts.iccv_original_layout(conv_dim=8, repeat_num=1))
    original_file(attention_path, layouts.attention_original_layout(filters=(8, 16, 32), res_blocks=1, background_filters=(8, 16, 16, 32),
                                                                    background_res_blocks=1, spade_hidden=12), prefix="")
    assert isinstance(converter.convert_original_generator(iccv_path), LiquidWarpingGenerator)
    assert isinstance(converter.convert_original_generator(attention_path), AttentionalLiquidWarpingGenerator)
    # checkpoint= of imitate/swap/view: an original file converts on loading; an export folder loads as saved.
    assert isinstance(load_generator(attention_path, torch.device("cpu")), AttentionalLiquidWarpingGenerator)
    assert tool.main([str(iccv_path), str(tmp_path / "export")]) == 0
    assert isinstance(load_generator(tmp_path / "export", torch.device("cpu")), LiquidWarpingGenerator)
    junk = tmp_path / "junk.pth"
    torch.save({"layer.weight": torch.zeros(2)}, junk)
    with pytest.raises(ValueError, match=r"junk\.pth is neither original generator"):
        converter.convert_original_generator(junk)
