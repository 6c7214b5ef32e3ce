"""``gankit dynamics ...`` through `add_dynamics_parser`, as the main CLI will wire it."""
import argparse
import json

import pytest

from gankit.dynamics.cli import add_dynamics_parser
from gankit.errors import GankitError


def run(argv, capsys):
    parser = argparse.ArgumentParser(prog="gankit")
    add_dynamics_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    return code, capsys.readouterr().out


def run_json(argv, capsys):
    code, out = run(argv + ["--json"], capsys)
    assert code == 0
    return json.loads(out)


def test_field_json_minimax(capsys):
    out = run_json(["dynamics", "field", "--objective", "minimax", "--pd", "0.2"], capsys)
    (rest,) = out["rest_points"]
    assert rest["point"] == pytest.approx([0.5, 0.2], abs=1e-12)
    assert sorted(im for _, im in rest["eigenvalues"]) == pytest.approx([-1.833030, 1.833030], abs=1e-6)
    assert rest["classification"] == "stable focus" and rest["correct"] is True


def test_field_with_expressions_starting_with_a_dash_and_a_plot(capsys, tmp_path):
    png = tmp_path / "field.png"
    out = run_json(["dynamics", "field", "--f1", "-0.5*d**2", "--f2", "d", "--f3", "-d", "--domain", "real",
                    "--pd", "0.2", "--plot", str(png), "--start", "2,0.8"], capsys)
    assert out["d0"] == pytest.approx(1.0, abs=1e-12)
    assert out["rest_points"][0]["classification"] == "stable focus"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_trajectory_text_and_json(capsys, tmp_path):
    code, text = run(["dynamics", "trajectory", "--objective", "wasserstein", "--start", "0.75,0.9", "--lr", "1e-3",
                      "--steps", "2000", "--method", "simultaneous", "--plot", str(tmp_path / "t.png")], capsys)
    assert code == 0 and "cycles" in text and (tmp_path / "t.png").stat().st_size > 1000
    out = run_json(["dynamics", "trajectory", "--objective", "minimax", "--method", "ode", "--t-end", "60",
                    "--lyapunov", "linearised"], capsys)
    assert out["final"] == pytest.approx([0.5, 0.2], abs=1e-8)
    assert out["lyapunov"]["decreasing"] is True


def test_stepsize_json(capsys, tmp_path):
    out = run_json(["dynamics", "stepsize", "--objective", "minimax", "--pd", "0.2",
                    "--plot", str(tmp_path / "lr.png")], capsys)
    assert out["simultaneous"]["largest_stable_lr"] == pytest.approx(0.4, abs=1e-9)
    out = run_json(["dynamics", "stepsize", "--system", "dirac", "--objective", "wasserstein"], capsys)
    assert out["simultaneous"]["largest_stable_lr"] is None
    assert out["alternating"]["largest_bounded_lr"] == pytest.approx(2.0, abs=1e-8)


def test_dirac_json_r1_alternating(capsys):
    out = run_json(["dynamics", "dirac", "--objective", "non-saturating", "--reg", "r1", "--gamma", "0.3",
                    "--method", "alternating", "--lr", "0.2", "--steps", "500"], capsys)
    assert out["outcome"] == "converges"
    assert [re for re, _ in out["equilibrium"]["eigenvalues"]] == pytest.approx([-0.15, -0.15], abs=1e-10)


def test_kernel_toy_json(capsys, tmp_path):
    out = run_json(["dynamics", "kernel", "--toy", "--points", "16", "--width", "4",
                    "--plot", str(tmp_path / "k.png")], capsys)
    assert out["n_points"] == 16 and out["step_check"]["relative_error"] == pytest.approx(0.0, abs=0.05)
    assert (tmp_path / "k.png").exists()


def test_circling_json_short(capsys):
    out = run_json(["dynamics", "circling", "--steps", "20", "--norm", "batch", "--activation", "relu"], capsys)
    assert out["config"]["norm"] == "batch" and len(out["probes"]) == 6 and "record" not in out


@pytest.mark.parametrize("argv,match", [
    (["dynamics", "field", "--objective", "minimax", "--f1", "d"], "either"),
    (["dynamics", "field", "--f1", "d", "--f2", "-d"], "all three"),
    (["dynamics", "field", "--f1", "__import__('os')", "--f2", "d", "--f3", "d"], "not allowed"),
    (["dynamics", "trajectory", "--start", "0.5"], "two numbers"),
    (["dynamics", "trajectory", "--objective", "minimaxx"], "did you mean"),
    (["dynamics", "kernel"], "run folder or --toy"),
    (["dynamics", "kernel", "/nonexistent/run"], "does not exist"),
    (["dynamics", "circling", "--norm", "group", "--steps", "2"], "normalisation"),
])
def test_bad_input_raises_gankit_error(argv, match, capsys):
    with pytest.raises(GankitError, match=match):
        run(argv, capsys)


@pytest.mark.parametrize("command", ["field", "trajectory", "stepsize", "dirac", "kernel", "circling"])
def test_every_command_has_examples_in_its_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        run(["dynamics", command, "--help"], capsys)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"gankit dynamics {command}" in out and "--json" in out
