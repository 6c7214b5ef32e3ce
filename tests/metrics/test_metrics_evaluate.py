"""End to end on tiny data: registry, evaluate_images with floor and provenance, the CLI, and Inception offline.

A randomly initialised classifier is put in a temporary cache as the 'digits' extractor, so nothing is trained
or downloaded; the bundled digits dataset is the reference.
"""
import json

import numpy as np
import pytest
import torch

from gankit.cli import main
from gankit.errors import GankitError
from gankit.metrics import DEFAULT_METRICS, evaluate_images, get_metrics

from conftest import make_tiny_images

TINY_RUN = ["--set", "model.width_g=8", "--set", "model.width_d=8", "--set", "model.z_dim=8", "--set",
            "train.batch_size=16", "--set", "train.progress=false", "--set", "train.grid_size=4", "--set",
            "train.tensorboard=false"]


def test_unknown_metric_names_the_close_one():
    with pytest.raises(GankitError, match='did you mean "fid"'):
        get_metrics(["fdi"])
    assert [m.name for m in get_metrics(DEFAULT_METRICS)] == list(DEFAULT_METRICS)


def test_evaluate_images_reports_values_floor_and_provenance(cache):
    images = make_tiny_images(120, seed=1)
    out = evaluate_images(images, "digits", n_boot=10)
    for key in ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "cs", "classes_present",
                "kl_to_uniform", "memorisation", "fid_ci_low", "coverage_ci_high"):
        assert isinstance(out[key], (float, int)) and np.isfinite(out[key]), key
        assert key in out["floor"]
    p = out["provenance"]
    assert p["extractor"] == "gankit-digits-classifier-v2" and len(p["extractor_hash"]) == 64
    assert (p["n_generated"], p["n_reference"], p["reference_split"]) == (120, 180, "test")
    assert p["floor"] == {"real_split": "train", "n": 120, "reference_split": "test", "seed": 0}
    assert "Inception-v3 weights not available" in out["notes"][0]
    # squares on a black background are far from digits; real training digits are close to the test digits
    assert out["fid"] > 5 * out["floor"]["fid"] and out["coverage"] < out["floor"]["coverage"]
    assert 0.7 < out["floor"]["memorisation"] < 1.3
    floors = list((cache / "floors").glob("*.json"))
    assert len(floors) == 1
    again = evaluate_images(images, "digits", n_boot=10)  # the floor now comes from the cache
    assert again["floor"] == out["floor"] and again["fid"] == out["fid"]


def test_too_few_or_wrongly_shaped_images_are_one_line_errors(cache):
    with pytest.raises(GankitError, match="at least 10 images"):
        evaluate_images(make_tiny_images(5), "digits")
    with pytest.raises(GankitError, match="expects"):
        evaluate_images(make_tiny_images(20, size=16), "digits")


def test_cli_evaluates_a_run_and_writes_eval_json(cache, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "digits-dcgan", "--run-dir", str(run), "--epochs", "0.02", "--device", "cpu",
                 *TINY_RUN]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--n", "100", "--metrics", "fid,pr,cs,modes", "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["provenance"]["metrics"] == ["fid", "pr", "cs", "modes"] and "memorisation" not in result
    written = list((run / "eval").glob("*.json"))
    assert len(written) == 1 and json.loads(written[0].read_text())["fid"] == result["fid"]
    assert "-n100-seed0-" in written[0].name  # the sample count is part of the name
    assert "note: Inception-v3 weights not available" in captured.err
    assert main(["evaluate", str(run), "--n", "50", "--metrics", "fid,modes", "--no-floor"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:3] == ["metric", "value", "95%"] and "fid" in table


def test_the_first_evaluation_of_a_run_trains_the_missing_classifier(tmp_path, monkeypatch, capsys):
    """evaluate_run samples under torch.no_grad(); a fresh machine's first `gankit evaluate RUN` trains the
    dataset's classifier inside it (this crashed: 'element 0 of tensors does not require grad')."""
    from gankit.metrics.classifier import RECIPE

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))  # empty: no classifier yet
    monkeypatch.setitem(RECIPE, "min_steps", 0)  # the recipe's 3 epochs (36 steps), not its 1,400 steps
    run = tmp_path / "run"
    assert main(["train", "digits-dcgan", "--run-dir", str(run), "--epochs", "0.02", "--device", "cpu",
                 *TINY_RUN]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--n", "100", "--metrics", "fid,cs", "--no-floor", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert np.isfinite(result["fid"]) and 1 <= result["cs"] <= 10
    assert (tmp_path / "cache" / "classifiers" / "digits-v2.safetensors").is_file()


def test_cli_evaluates_an_npz_of_images(cache, tmp_path, capsys):
    np.savez(tmp_path / "s.npz", images=make_tiny_images(60))
    assert main(["evaluate", "--images", str(tmp_path / "s.npz"), "--dataset", "digits", "--metrics", "kid,dc",
                 "--extractor", "domain", "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["provenance"]["n_images"] == 60 and result["notes"] == [] and "note:" not in captured.err


@pytest.mark.parametrize("argv,fragment", [
    (["--metrics", "fid,recal"], "unknown metric 'recal'"),
    (["--extractor", "inception"], "needs local weights"),
    (["--inception-weights", "/nonexistent/w.pth"], "not found"),
])
def test_cli_errors_are_one_line(cache, tmp_path, capsys, argv, fragment):
    np.savez(tmp_path / "s.npz", images=make_tiny_images(20))
    assert main(["evaluate", "--images", str(tmp_path / "s.npz"), "--dataset", "digits", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gankit: error:") and fragment in err and "\n" not in err


def test_inception_features_from_local_weights_never_download(tmp_path, monkeypatch):
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    from gankit.metrics.extractors import resolve_extractor

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download Inception weights")

    monkeypatch.setattr(tfi, "load_state_dict_from_url", no_download)
    # random weights in the right format stand in for the real file
    with monkeypatch.context() as m:
        m.setattr(tfi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
        m.setattr(tfi.torch, "load", lambda *a, **k: {})
        state = tfi.FeatureExtractorInceptionV3("x", ["2048"], feature_extractor_weights_path="unused").state_dict()
    torch.save(state, tmp_path / "inception.pth")
    monkeypatch.setenv("GANKIT_INCEPTION_WEIGHTS", str(tmp_path / "inception.pth"))
    ext, note = resolve_extractor("mnist")
    assert note is None and ext.name.startswith("inception-v3") and len(ext.hash) == 64
    x = torch.from_numpy(make_tiny_images(2)).float()[:, None] / 127.5 - 1
    fs = ext(x)
    assert fs.features.shape == (2, 2048) and fs.logits is None and torch.isfinite(fs.features).all()
    (tmp_path / "bad.pth").write_bytes(b"not a state dict")
    monkeypatch.setenv("GANKIT_INCEPTION_WEIGHTS", str(tmp_path / "bad.pth"))
    with pytest.raises(GankitError, match="not a torch-fidelity Inception-v3 state dict"):
        resolve_extractor("mnist")
