"""Helpers of the dynamics CLI: argument parsing, JSON/text output, and the two longer commands.

Kept apart from `cli.py` so that the parser definitions stay readable. The
kernel and circling commands gather several library results into one report;
they still only call the computing modules and `plots`.
"""
from __future__ import annotations

import json
import math

import numpy as np

from ..errors import GankitError


def pair(text: str, flag: str) -> tuple:
    """'0.75,0.9' -> (0.75, 0.9); `GankitError` naming ``flag`` otherwise."""
    try:
        a, b = (float(v) for v in str(text).split(","))
    except ValueError:
        raise GankitError(f"{flag} expects two numbers separated by a comma, e.g. 0.75,0.9; got {text!r}") from None
    if not (math.isfinite(a) and math.isfinite(b)):
        raise GankitError(f"{flag} must be finite numbers, got {text!r}")
    return a, b


def objective_from_args(args):
    """--objective NAME, or --f1/--f2/--f3 (+ --domain) expressions; default non-saturating."""
    from ..objectives import Objective, get_objective
    exprs = [getattr(args, k, None) for k in ("f1", "f2", "f3")]
    if any(e is not None for e in exprs):
        if args.objective:
            raise GankitError("give either --objective or --f1/--f2/--f3, not both")
        if any(e is None for e in exprs):
            raise GankitError("a custom objective needs all three of --f1, --f2 and --f3")
        return Objective.from_expressions(*exprs, domain=args.domain, name="custom")
    return get_objective(args.objective or "non-saturating")


def jsonable(x):
    """Plain JSON values: numpy scalars/arrays to Python, non-finite floats to None."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def emit(args, out: dict, lines: list) -> int:
    """Print ``out`` as JSON (--json) or ``lines`` as text; exit code 0."""
    if args.json:
        print(json.dumps(jsonable(out)))
    else:
        print("\n".join(lines + ([f"plot: {out['plot']}"] if "plot" in out else [])))
    return 0


def fmt_eig(eigs: list) -> str:
    """[[re, im], ...] -> '-0.8 +- 1.83303i' for a conjugate pair, else a list."""
    (a, b), (c, d) = eigs
    if abs(a - c) < 1e-12 and abs(b + d) < 1e-12 and abs(b) > 0:
        return f"{a:.6g} +- {abs(b):.6g}i"
    return ", ".join(f"{re:.6g}" + (f"{im:+.6g}i" if im else "") for re, im in eigs)


def rest_point_infos(f) -> list:
    """`analyse_point` of every rest point of a point field, with ``correct`` and ``physical`` (p_g >= 0)."""
    from .linear import analyse_point

    out = []
    for p in f.rest_points():
        info = analyse_point(f, p)
        info.update(correct=f.is_correct(p), physical=bool(p[1] >= 0))
        out.append(info)
    return out


MAX_POINTS = 4096


def _kernel_setup(args):
    """(D, objective, (x_real, x_fake, y_real, y_fake), toy grid or None, description) for the kernel command.

    The labels are None unless the run's D takes them (see `run_points`)."""
    from ..objectives import get_objective
    import torch

    from .circling import sample_mixture
    from .kernel import load_discriminator, run_points, toy_points

    if not 2 <= args.points <= MAX_POINTS:
        raise GankitError(f"--points must be between 2 and {MAX_POINTS:,} (the kernel is points x points and each "
                          f"point needs a gradient of every parameter), got {args.points:,}")
    if args.toy == bool(args.run_dir):
        raise GankitError("give a run folder or --toy (an untrained 1D MLP discriminator), not both or neither")
    if args.toy:
        from ..nets import MLPDiscriminator, activation, check_norm

        check_norm(args.norm), activation(args.activation)
        with torch.random.fork_rng():
            torch.manual_seed(args.seed)
            D = MLPDiscriminator((1,), width=args.width, depth=2, norm=args.norm, act=args.activation).eval()
        obj = get_objective(args.objective or "non-saturating")
        gen = torch.Generator().manual_seed(args.seed)
        x_real = sample_mixture(args.points // 2, gen)
        x_fake = 2 * torch.rand(args.points - args.points // 2, 1, generator=gen) - 1
        what = f"toy MLP D ({args.activation}, {args.norm})"
        return D, obj, (x_real, x_fake, None, None), toy_points(args.points), what
    from ..build import build_objective

    D, cfg, meta = load_discriminator(args.run_dir, args.checkpoint, init=args.init, seed=args.seed)
    obj = get_objective(args.objective) if args.objective else build_objective(cfg)
    points = run_points(args.run_dir, cfg, args.points, args.source, args.seed, args.data_dir, args.checkpoint)
    what = "initial weights" if args.init else f"after {meta['progress']['images']} images"
    return D, obj, points, None, f"{cfg.model.arch} D of {args.run_dir} ({what})"


def kernel_report(args) -> tuple:
    """(JSON dict, text lines) of ``gankit dynamics kernel``."""
    import torch

    from .kernel import function_space_step, kernel_eigenvalues, ntk

    D, obj, (x_real, x_fake, y_real, y_fake), grid, what = _kernel_setup(args)
    points = grid if grid is not None else torch.cat([x_real, x_fake])
    labels = None if y_real is None else torch.cat([y_real, y_fake])
    K = ntk(D, points, x_labels=labels)
    ev = kernel_eigenvalues(K).double().numpy()
    evp = np.clip(ev, 0, None)
    out = {"discriminator": what, "n_points": int(points.shape[0]), "n_real": 0 if grid is not None else len(x_real),
           "n_params": int(sum(p.numel() for p in D.parameters() if p.requires_grad)),
           "trace": float(np.trace(K.double().numpy())), "eigenvalues_top": ev[:10].tolist(),
           "effective_rank": float(evp.sum() ** 2 / max((evp ** 2).sum(), 1e-300))}
    lines = [what, f"{out['n_points']} points, {out['n_params']} parameters; trace {out['trace']:.4g}; "
             f"effective rank {out['effective_rank']:.3g}; top eigenvalues "
             + ", ".join(f"{v:.4g}" for v in ev[:5])]
    if args.step_lr > 0:
        step = function_space_step(D, obj, x_real, x_fake, args.step_lr, y_real=y_real, y_fake=y_fake)
        out["step_check"] = {"lr": args.step_lr, "objective": obj.name, "relative_error": step["relative_error"],
                             "actual_norm": float(step["actual"].norm())}
        lines.append(f"one gradient step (lr {args.step_lr:g}, {obj.name}): kernel prediction vs actual change of D, "
                     f"relative error {step['relative_error']:.3g}")
    if args.plot:
        from .plots import kernel_heatmap

        split = 0 if grid is not None else len(x_real)
        out["plot"] = str(kernel_heatmap(K.double().numpy(), ev, args.plot, split=split,
                                         extent=(-1, 1) if grid is not None else None, title=what))
    return out, lines


def circling_report(args) -> tuple:
    """(JSON dict, text lines) of ``gankit dynamics circling``."""
    from ..objectives import get_objective
    from .circling import CirclingConfig, compare, run_circling

    if args.steps < 1 or args.lr <= 0 or args.batch_size < 2:
        raise GankitError("need --steps >= 1, --lr > 0 and --batch-size >= 2")
    get_objective(args.objective)
    base = CirclingConfig(norm=args.norm, activation=args.activation, objective=args.objective, steps=args.steps,
                          lr=args.lr, batch_size=args.batch_size, seed=args.seed)
    if args.compare:
        rows = compare(base, args.norms.split(","), args.activations.split(","), args.seeds)
        runs = [(f"{r['norm']} / {r['activation']}", r["first_run"]) for r in rows]
        out = {"rows": [{k: v for k, v in r.items() if k != "first_run"} for r in rows]}
    else:
        res = run_circling(base)
        rows = [{"norm": args.norm, "activation": args.activation, "seeds": 1, "summary": res["summary"]}]
        runs = [(f"{args.norm} / {args.activation}", res)]
        out = {k: v for k, v in res.items() if k != "record"}
    lines = [f"{'norm':8} {'activation':11} {'seeds':>5} {'|turns|':>8} {'rotation':>8} {'radial':>7} "
             f"{'dist ratio':>10} {'predicted rotation':>18}"]
    for r in rows:
        s = r["summary"]
        lines.append(f"{r['norm']:8} {r['activation']:11} {r['seeds']:5d} {s['mean_abs_turns']:8.2f} "
                     f"{s['mean_rotation_index']:8.3f} {s['mean_radial_index']:7.3f} "
                     f"{s['median_distance_ratio']:10.3f} {s['mean_predicted_rotation_index']:18.3f}")
    if args.plot:
        from .plots import circling_plot

        out["plot"] = str(circling_plot(runs, args.plot))
    return out, lines
