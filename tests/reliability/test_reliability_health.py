"""Health warnings: the monitors on synthetic histories, then in real training runs."""
import json
import math

import pytest
import torch

from gankit import resolve
from gankit.engine import Trainer, train
from gankit import health
from gankit.engine.reporting import ProgressSink, Reporter

TINY = ("model.codes=0",  # tiny data: fewer images than the preset's 100 codes
        "model.width_g=8", "model.width_d=8", "model.z_dim=8", "train.batch_size=16", "train.progress=false",
        "train.tensorboard=false", "train.grid_size=16", "objective.penalty=none", "train.log_every=1")


def _history(n, **columns):
    """n rows; each column is a constant or a function of the row index."""
    return [{"step": i + 1, "images": 16 * (i + 1),
             **{k.replace("__", "/"): (v(i) if callable(v) else v) for k, v in columns.items()}} for i in range(n)]


def test_first_nonfinite_names_the_earliest_quantity_of_a_step():
    # in the order a GAN step computes them: D's terms, D's gradient, G's term and gradient, then the weights
    values = {"loss/d": 1.0, "grad_norm/d": math.inf, "loss/g": math.nan, "weight_max/g": math.nan}
    assert health.first_nonfinite(values) == ("grad_norm/d", math.inf)
    assert health.first_nonfinite({"loss/g": math.nan, "grad_norm/d": math.inf}) == ("loss/g", math.nan)
    assert health.first_nonfinite({"loss/d": 1.0, "weight_max/d": 2.0, "speed/x": math.nan}) is None


def test_discriminator_winning_needs_both_rejection_and_a_vanished_gradient():
    winning = _history(8, d__fake=0.01, grad_norm__g=lambda i: 1.0 if i < 3 else 0.05)
    assert health.d_winning(winning, "probability")
    assert not health.d_winning(winning, "real")  # a critic value has no "near 0"
    assert not health.d_winning(_history(8, d__fake=0.01, grad_norm__g=lambda i: 1.0 if i < 3 else 0.5), "probability")
    assert not health.d_winning(_history(8, d__fake=0.2, grad_norm__g=lambda i: 1.0 if i < 3 else 0.05),
                                "probability")
    assert not health.d_winning(winning[:4], "probability")  # fewer than WINDOW logs: no verdict


def test_discriminator_failing_flat_loss_or_undecided_early():
    flat = _history(6, loss__d=1.3862944, d__real=0.7, d__fake=0.3)
    assert health.d_failing(flat, "real", 0.9) and health.d_failing(flat, "probability", 0.9)
    moving = _history(12, loss__d=lambda i: 1.2 + 0.01 * (i % 3), d__real=lambda i: 0.5 + 0.01 * (i % 2),
                      d__fake=0.495)
    assert health.d_failing(moving, "probability", 0.1)
    assert not health.d_failing(moving, "probability", 0.5)  # late: D(x) = D(G(z)) = 1/2 is the equilibrium
    assert not health.d_failing(moving, "real", 0.1)
    assert not health.d_failing(moving[:9], "probability", 0.1)  # D gets 2 x WINDOW logs to start separating
    separating = _history(12, loss__d=lambda i: 1.2 + 0.01 * (i % 3), d__real=0.6, d__fake=0.4)
    assert not health.d_failing(separating, "probability", 0.1)


def test_mode_collapse_from_falling_diversity_or_missing_classes():
    falling = _history(12, samples__diversity=lambda i: 0.9 if i < 6 else 0.2)
    assert health.mode_collapse(falling, 0.1)
    assert not health.mode_collapse(_history(12, samples__diversity=lambda i: 0.9 if i < 6 else 0.6), 0.1)
    assert not health.mode_collapse(_history(12, samples__diversity=lambda i: 0.25 if i < 6 else 0.2), 0.1)
    missing = _history(6, samples__classes_missing=lambda i: 2.0)
    assert health.mode_collapse(missing, 0.5)
    assert not health.mode_collapse(missing, 0.1)  # samples of a barely trained G are not classifiable yet
    assert not health.mode_collapse(_history(6, samples__classes_missing=lambda i: float(i % 2)), 0.5)


def test_messages_when_a_flag_turns_on_then_every_repeat_logs():
    rows = _history(120, **{"health__d_winning": 1.0})
    said = [i for i in range(1, 121) if health.messages(rows[:i])]
    assert said == [1, 1 + health.REPEAT, 1 + 2 * health.REPEAT]
    toggled = _history(4, **{"health__mode_collapse": lambda i: float(i != 1)})
    assert [bool(health.messages(toggled[:i])) for i in range(1, 5)] == [True, False, True, False]
    text = health.messages(_history(1, health__d_failing=1.0, loss__d=1.386))[0]
    assert text.startswith("health: d failing at step 1 (16 images): ") and "loss/d=1.39" in text


def test_sample_statistics_against_the_data():
    x = torch.randn(200, 1, 6, 6)
    y = torch.arange(200) % 5
    ref = health.Reference.of(x, y)
    assert ref.n_classes == 5
    same = health.sample_stats(x[:100], ref)
    assert 0.95 < same["samples/diversity"] < 1.05
    assert same["samples/classes_missing"] == 0.0
    one = health.sample_stats(x[y == 2].repeat(3, 1, 1, 1) * 1.0001, ref)
    assert one["samples/classes_missing"] == 4.0
    assert health.sample_stats(x[:1].expand(20, -1, -1, -1), ref)["samples/diversity"] == 0.0
    assert "samples/classes_missing" not in health.sample_stats(x[:99], ref)  # < 20 samples per class


def _run(tmp_path, tiny_data, *extra, epochs=10):
    t = train(resolve("mnist-dcgan", TINY + extra, **{"train.epochs": float(epochs)}), tmp_path / "r",
              data=tiny_data)
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    return t, rows, (tmp_path / "r" / "log.txt").read_text()


def test_a_winning_discriminator_is_reported(tmp_path, tiny_data):
    _, rows, log = _run(tmp_path, tiny_data, "objective.name=minimax", "optim.lr_d=0.01", "optim.lr_g=1e-6")
    flagged = [r["step"] for r in rows if r["health/d_winning"] == 1.0]
    assert flagged and flagged[0] <= 15 and flagged[-1] == rows[-1]["step"]
    assert rows[-1]["d/fake"] < 0.05
    assert f"health: d winning at step {flagged[0]} " in log
    assert not any(r["health/d_failing"] for r in rows)


def test_a_discriminator_that_cannot_learn_is_reported(tmp_path, tiny_data):
    _, rows, log = _run(tmp_path, tiny_data, "objective.clip=1e-9")  # D's weights pinned near 0
    assert all(r["health/d_failing"] == 1.0 for r in rows[5:]) and not any(r["health/d_failing"] for r in rows[:5])
    assert "health: d failing at step 6 (96 images)" in log
    assert not any(r["health/d_winning"] for r in rows)


def test_a_healthy_run_raises_no_flag(tmp_path, tiny_data):
    _, rows, log = _run(tmp_path, tiny_data)
    assert not any(r[f] for r in rows for f in health.FLAGS)
    assert "health:" not in log


def test_a_collapsed_generator_on_labelled_data_is_reported(tmp_path, tiny_data):
    t = Trainer(resolve("mnist-dcgan", TINY + ("optim.lr_g=1e-12",), **{"train.epochs": 8.0}), tmp_path / "r",
                data=tiny_data)
    with torch.no_grad():  # every z gives the same image: one mode
        last = [m for m in t.parts.modules["G"].modules() if isinstance(m, torch.nn.ConvTranspose2d)][-1]
        last.weight.zero_()
    t.run()
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["samples/classes_missing"] == 3.0 for r in rows)  # 4 labels, all samples nearest one image
    assert all(r["samples/diversity"] < 1e-3 for r in rows)
    first = next(r["step"] for r in rows if r["health/mode_collapse"])
    assert first == 9  # the first log after a quarter of the 32 steps
    assert f"health: mode collapse at step {first} " in (tmp_path / "r" / "log.txt").read_text()


def test_the_progress_bar_shows_warnings_and_messages(capsys):
    bar = ProgressSink(100)
    reporter = Reporter([bar])
    reporter.scalars(1, 10, {"loss/d": 1.0, "health/d_winning": 1.0, "health/d_failing": 0.0})
    assert bar.bar.postfix.endswith("warn=d_winning")
    reporter.message("health: d winning at step 1")
    reporter.close()
    assert "health: d winning at step 1" in capsys.readouterr().err


def test_messages_go_to_stderr_without_a_progress_bar(tmp_path, capsys):
    from gankit.engine.reporting import LogSink

    reporter = Reporter([LogSink(tmp_path / "log.txt")])
    reporter.message("health: something")
    reporter.close()
    assert capsys.readouterr().err == "health: something\n"
    assert (tmp_path / "log.txt").read_text().endswith(" health: something\n")


@pytest.mark.parametrize("objective", ["wasserstein", "hinge"])
def test_a_flat_critic_loss_is_reported_for_real_valued_critics(tmp_path, tiny_data, objective):
    _, rows, log = _run(tmp_path, tiny_data, f"objective.name={objective}", "objective.clip=1e-9", epochs=3)
    assert all(r["health/d_failing"] == 1.0 for r in rows[5:]) and not any(r["health/d_failing"] for r in rows[:5])
    assert "health: d failing at step 6 " in log
