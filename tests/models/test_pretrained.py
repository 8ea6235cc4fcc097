"""Export checkpoints: exact round trips and errors that name the folder and file (key and shape errors: tests/test_state_dicts.py)."""

import json

import pytest
import torch

from lwgan.models import (
    AttentionalLiquidWarpingGenerator,
    LiquidWarpingGenerator,
    PatchDiscriminator,
    from_pretrained,
    save_pretrained,
)

SIZE = 32


def run(model, seed=0):
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.rand(*shape, generator=generator) * 2 - 1

    with torch.no_grad():
        if isinstance(model, LiquidWarpingGenerator):
            return model(rand(1, 4, SIZE, SIZE), rand(1, 6, SIZE, SIZE), rand(1, 6, SIZE, SIZE), rand(1, SIZE, SIZE, 2)).image
        if isinstance(model, AttentionalLiquidWarpingGenerator):
            return model(rand(1, 4, SIZE, SIZE), rand(1, 2, 6, SIZE, SIZE), rand(1, 6, SIZE, SIZE), rand(1, 2, SIZE, SIZE, 2)).image
        return model(rand(1, 6, 64, 64))


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = LiquidWarpingGenerator(conv_dim=8, repeat_num=1).eval()
    folder = save_pretrained(model, tmp_path / "export")
    return model, folder


@pytest.mark.parametrize("model", [
    LiquidWarpingGenerator(conv_dim=8, repeat_num=2),
    AttentionalLiquidWarpingGenerator.preset("small", mask_unseen_sources=False),
    PatchDiscriminator.preset("small"),
], ids=["iccv", "attention", "discriminator"])
def test_round_trip_gives_identical_outputs(tmp_path, model):
    model.eval()
    folder = save_pretrained(model, tmp_path / "export")
    assert sorted(path.name for path in folder.iterdir()) == ["config.json", "model.safetensors"]  # no temporary files left
    loaded = from_pretrained(folder)
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.config == model.config
    assert torch.equal(run(loaded), run(model))
    description = json.loads((folder / "config.json").read_text())
    assert description["class_name"] == type(model).__name__


def test_saving_again_replaces_the_export(saved):
    _, folder = saved
    other = LiquidWarpingGenerator(conv_dim=8, repeat_num=1)
    save_pretrained(other, folder)
    assert torch.equal(from_pretrained(folder).state_dict()["bg_model.model.0.weight"], other.state_dict()["bg_model.model.0.weight"])


def test_missing_folder_and_files_are_named(saved, tmp_path):
    _, folder = saved
    with pytest.raises(FileNotFoundError, match="export folder not found: .*nowhere"):
        from_pretrained(tmp_path / "nowhere")
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors not found"):
        from_pretrained(folder)
    (folder / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"export.config\.json not found"):
        from_pretrained(folder)


def test_bad_configs_are_reported_with_the_file(saved):
    _, folder = saved
    config_path = folder / "config.json"
    description = json.loads(config_path.read_text())
    config_path.write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON"):
        from_pretrained(folder)
    config_path.write_text(json.dumps({**description, "class_name": "Teleporter"}))
    with pytest.raises(ValueError, match=r"config\.json names the unknown model class 'Teleporter'"):
        from_pretrained(folder)
    config_path.write_text(json.dumps({**description, "config": {**description["config"], "colour_depth": 3}}))
    with pytest.raises(ValueError, match=r"config\.json: cannot build LiquidWarpingGenerator.*colour_depth"):
        from_pretrained(folder)


def test_corrupt_weights_are_named(saved):
    _, folder = saved
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match=r"model\.safetensors is not a readable safetensors file"):
        from_pretrained(folder)


def test_only_known_classes_can_be_exported(tmp_path):
    with pytest.raises(TypeError, match="cannot export a Linear"):
        save_pretrained(torch.nn.Linear(2, 2), tmp_path)
