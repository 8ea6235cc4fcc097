"""Hydra composition: the conf/ groups, a user's config folder, --cfg for every command, quoting hints, sweeps' outputs, the wheel's configs."""

import dataclasses
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from omegaconf import MISSING

from lwgan.cli import check_sweep_outputs, main
from lwgan.config import COMMANDS, compose, load_command

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def test_the_training_presets_are_yaml_files_of_the_experiment_group():
    assert sorted(path.stem for path in (CONF / "experiment").glob("*.yaml")) == ["iper_impersonator", "synthetic_full_256", "synthetic_small"]
    for path in (CONF / "experiment").glob("*.yaml"):
        assert path.read_text().startswith("# @package _global_\n"), path  # presets set the command's own keys
        values = {key: value for key, value in yaml.safe_load(path.read_text()).items() if key != "defaults"}
        config = compose("train", [f"experiment={path.stem}", "data=d", "output=o"])
        assert {key: getattr(config, key) for key in values} == values and config.experiment == path.stem


def test_a_users_own_preset_in_a_config_dir_works_like_the_shipped_ones(tmp_path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "my_run.yaml").write_text("# @package _global_\ndefaults:\n  - override /model: attention_small\n"
                                                        "iterations: 7\nnum_sources: 2\n")
    config = compose("train", ["experiment=my_run", "data=d", "output=o", "iterations=9"], config_dir=tmp_path)
    assert (config.experiment, config.generator, config.num_sources, config.iterations) == ("my_run", "attention", 2, 9)
    with pytest.raises(FileNotFoundError, match="config folder not found: .*nowhere"):
        compose("train", ["data=d", "output=o"], config_dir=tmp_path / "nowhere")


def test_groups_switch_whole_blocks():
    smpl = compose("fit", ["image=a.jpg", "body=smpl", "body.model_path=SMPL_NEUTRAL.pkl"]).body
    assert (smpl.kind, smpl.model_path) == ("smpl", "SMPL_NEUTRAL.pkl")
    assert compose("fit", ["image=a.jpg"]).body.kind == "anny"
    for model in ("iccv_small", "iccv_original", "attention_small", "attention_original"):
        config = compose("train", [f"model={model}", "data=d", "output=o"])
        assert f"{config.generator}_{config.preset}" == model


@pytest.mark.parametrize("name", list(COMMANDS))
def test_cfg_prints_every_commands_config_with_question_marks_for_required_values(name, capsys):
    assert main([*name.split(), "--cfg"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    config_class, _ = load_command(name)
    assert set(printed) == {field.name for field in dataclasses.fields(config_class)}
    required = {field.name for field in dataclasses.fields(config_class) if field.default is MISSING}
    assert {key for key, value in printed.items() if value == "???"} == required


def test_an_unquoted_value_hydra_cannot_read_says_how_to_quote_it(tmp_path, capsys):
    assert main(["swap", "source=a.jpg", "reference=dance clip (1).mp4", f"output={tmp_path / 'x.png'}"]) == 2
    error = capsys.readouterr().err
    assert "cannot read 'reference=dance clip (1).mp4'" in error and "Traceback" not in error
    assert """reference='dance clip (1).mp4', and quote that for the shell: lwgan ... "reference='dance clip (1).mp4'\"""" in error
    # The quoted form is what the hint says it is: the path with its spaces and parentheses.
    assert compose("imitate", ["source=a.jpg", "reference='dance clip (1).mp4'", "output=o.mp4"]).reference == "dance clip (1).mp4"


def test_a_sweep_needs_one_output_per_job_except_over_shards(capsys):
    assert main(["train", "-m", "adversarial_weight=0.1,1", "data=d", "output=o"]) == 2
    assert "needs one output per job" in capsys.readouterr().err
    check_sweep_outputs("train", ["adversarial_weight=0.1,1", "data=d", "output=runs/aw_${adversarial_weight}"])
    check_sweep_outputs("train", ["adversarial_weight=0.1,1", "data=d", "output=runs/a,runs/b"])
    check_sweep_outputs("preprocess", ["input=videos", "output=data", "shard=0/4,1/4,2/4,3/4"])
    with pytest.raises(ValueError, match="a multirun over image_size"):
        check_sweep_outputs("preprocess", ["input=videos", "output=data", "shard=0/2,1/2", "image_size=256,512"])


def test_the_wheel_carries_the_configs_and_hydra_finds_them_there(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("lwgan", "conf"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist")],
                   check=True, capture_output=True, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("lwgan-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"lwgan/conf/{path.relative_to(CONF)}" for path in CONF.rglob("*.yaml")}
    assert len(shipped) >= 10 and shipped <= names
    zipfile.ZipFile(wheel).extractall(tmp_path / "installed")
    probe = "from lwgan.config import compose; import lwgan; print(lwgan.__file__, compose('train', ['experiment=synthetic_small', 'data=d', 'output=o']).image_size)"
    printed = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path,
                             env={"PYTHONPATH": str(tmp_path / "installed"), "PATH": ""}).stdout.split()
    assert printed == [str(tmp_path / "installed" / "lwgan" / "__init__.py"), "128"]
