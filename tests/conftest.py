"""Shared pytest fixtures: one AnnyBody per test session (the first ever also builds Anny's cache, ~1-2 min),
one small synthetic iPER-format dataset, and `cli` to run `lwgan ...` in this process with that body."""

import os
import shutil

import pytest

# PyTorch's OpenMP threads spin while they wait; on a shared 2-core machine that makes tests many
# times slower. Passive waiting must be chosen before torch starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def anny_body():
    """The default AnnyBody (cache in $LWGAN_CACHE_DIR or ~/.cache/lwgan), built once per session."""
    from lwgan.body.anny_body import AnnyBody

    return AnnyBody()


@pytest.fixture(scope="session")
def dataset_root(tmp_path_factory, anny_body):
    """A synthetic iPER-format dataset (lwgan make-dataset): 3 subjects (1 held out) x 2 clips x 6 frames at 64 x 64. Read-only."""
    from lwgan.config import compose
    from lwgan.data.synthetic import run as make_dataset

    root = tmp_path_factory.mktemp("synthetic")
    make_dataset(compose("make-dataset", [f"output={root}", "subjects=3", "val_subjects=1", "clips_per_subject=2",
                                          "frames_per_clip=6", "image_size=64", "texture_size=128"]))
    return root


@pytest.fixture
def broken_dataset(dataset_root, tmp_path):
    """(root, name): a copy of dataset_root for a test to damage, and its first training video's name."""
    root = tmp_path / "broken"
    shutil.copytree(dataset_root, root)
    return root, (root / "train.txt").read_text().split()[0]


@pytest.fixture
def cli(anny_body, monkeypatch, capsys):
    """Run `lwgan ...` in this process (the body model built once): (exit code, stderr)."""
    from lwgan.cli import main

    monkeypatch.setattr("lwgan.tasks.pipeline.build_body_model", lambda config: anny_body)

    def run(*arguments):
        code = main([str(argument) for argument in arguments])
        return code, capsys.readouterr().err

    return run
