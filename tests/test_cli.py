"""The gankit command, run in-process: train on a tiny image folder, sample, and clear errors."""
import numpy as np
import pytest

from gankit.cli import main

from conftest import write_image_folder

TINY = ["--set", "data.name=folder", "--set", "model.codes=0",
        "--set", "model.width_g=8", "--set", "model.width_d=8", "--set",
        "model.z_dim=8", "--set", "train.batch_size=8", "--set", "train.progress=false", "--set", "train.grid_size=4"]


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "imgs"
    write_image_folder(folder, 16)
    return folder


def test_train_then_sample(tmp_path, image_folder, capsys):
    run = tmp_path / "run"
    assert main(["train", "mnist-dcgan", "--data-dir", str(image_folder), "--run-dir", str(run), "--epochs", "1",
                 "--device", "cpu", *TINY]) == 0
    assert main(["sample", str(run), "--n", "10", "--out", str(tmp_path / "s.npz"), "--seed", "3"]) == 0
    with np.load(tmp_path / "s.npz") as f:
        images = f["images"]
    assert images.shape == (10, 28, 28) and images.dtype == np.uint8
    assert main(["sample", str(run), "--n", "3", "--out", str(tmp_path / "pngs")]) == 0
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == ["00000.png", "00001.png", "00002.png",
                                                                     "manifest.jsonl"]
    # the same seed gives the same images
    assert main(["sample", str(run), "--n", "10", "--out", str(tmp_path / "t.npz"), "--seed", "3"]) == 0
    with np.load(tmp_path / "t.npz") as f:
        assert (f["images"] == images).all()


def test_dry_run_prints_resolved_config(capsys):
    assert main(["train", "mnist-dcgan", "--dry-run", "--set", "objective.name=hinge"]) == 0
    out = capsys.readouterr().out
    assert "name: hinge" in out and "batch_size:" in out


@pytest.mark.parametrize("argv,fragment", [
    (["train", "mnist-dcgn"], 'did you mean "mnist-dcgan"'),
    (["train", "mnist-dcgan", "--set", "train.bacth_size=3"], 'did you mean "batch_size"'),
    (["train", "mnist-dcgan", "--data-dir", "/nonexistent/dir", "--device", "cpu"], "--data-dir"),
    (["train", "mnist-dcgan", "--device", "tpu"], "unknown device"),
    (["sample", "/nonexistent/run", "--out", "x.npz"], "does not exist"),
    (["train", "--resume", "/nonexistent/run"], "not a gankit run folder"),
])
def test_errors_are_one_line_with_exit_2(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gankit: error:") and fragment in err and "\n" not in err
