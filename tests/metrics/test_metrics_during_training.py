"""Evaluation during training (eval.every): logged scores, the best checkpoint, and no effect on training."""
import json

import pytest

from gankit.cli import main
from gankit.run import load_generator

RUN = ["digits-dcgan", "--device", "cpu", "--set", "model.width_g=8", "--set", "model.width_d=8", "--set",
       "model.z_dim=8", "--set", "train.batch_size=16", "--set", "train.progress=false", "--set",
       "train.grid_size=4", "--set", "train.tensorboard=false", "--set", "train.images=480", "--set",
       "train.log_every=5"]
EVAL = ["--set", "eval.every=160", "--set", "eval.n=40", "--set", "eval.metrics=fid,pr,cs"]


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _training_rows(run):
    return [{k: v for k, v in r.items() if k != "speed/images_per_s"} for r in _rows(run)
            if not any(k.startswith("eval/") for k in r)]


def test_scores_are_logged_the_best_is_kept_and_training_is_unchanged(cache, tmp_path, capsys):
    plain, scored = tmp_path / "plain", tmp_path / "scored"
    assert main(["train", *RUN, "--run-dir", str(plain)]) == 0
    assert main(["train", *RUN, *EVAL, "--run-dir", str(scored)]) == 0
    err = capsys.readouterr().err
    evals = [r for r in _rows(scored) if "eval/fid" in r]
    assert [r["images"] for r in evals] == [160, 320, 480]
    assert all(set(r) == {"step", "images", "eval/fid", "eval/precision", "eval/recall", "eval/cs"} for r in evals)
    assert err.count("eval at ") == 3
    assert _training_rows(scored) == _training_rows(plain)  # evaluation draws nothing from training's RNG
    best = json.loads((scored / "best" / "best.json").read_text())
    fids = [r["eval/fid"] for r in evals]
    assert best["key"] == "fid" and best["value"] == min(fids)
    assert best["images"] == evals[fids.index(min(fids))]["images"]
    kept = sorted(p.name for p in (scored / "best").glob("ckpt-*"))
    assert kept == [f"ckpt-{best['images']:012d}.json", f"ckpt-{best['images']:012d}.safetensors"]
    _, meta = load_generator(scored, str(scored / "best" / kept[0]))
    assert meta["progress"]["images"] == best["images"]


def test_resume_keeps_evaluating_and_matches_an_uninterrupted_run(cache, tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert main(["train", *RUN, *EVAL, "--run-dir", str(whole)]) == 0
    first = [a if a != "train.images=480" else "train.images=240" for a in RUN]
    assert main(["train", *first, *EVAL, "--run-dir", str(split)]) == 0
    assert main(["train", "--resume", str(split), "--set", "train.images=480", "--force"]) == 0
    strip = [{k: v for k, v in r.items() if k != "speed/images_per_s"} for r in _rows(whole)]
    assert [{k: v for k, v in r.items() if k != "speed/images_per_s"} for r in _rows(split)] == strip
    assert json.loads((split / "best" / "best.json").read_text()) == json.loads((whole / "best" / "best.json").read_text())


@pytest.mark.parametrize("sets, message", [
    (["eval.best=cs_typo"], "eval.best='cs_typo' is not a headline value"),
    (["eval.metrics=fdi"], 'unknown metric \'fdi\' (did you mean "fid"?)'),
    (["eval.n=3"], "eval.n must be at least 10"),
])
def test_bad_eval_settings_fail_before_training(cache, tmp_path, capsys, sets, message):
    run = tmp_path / "bad"
    args = [a for s in sets for a in ("--set", s)]
    assert main(["train", *RUN, "--set", "eval.every=160", *args, "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (run / "checkpoints").exists()
