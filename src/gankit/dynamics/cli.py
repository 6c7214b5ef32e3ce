"""``gankit dynamics ...``: the command line of the dynamics tools.

Thin by design: each handler parses its arguments, makes one or two library
calls, and prints text or (``--json``) one JSON object; ``--plot PATH`` writes a
PNG through `gankit.dynamics.plots`. Bad input raises `GankitError`, which the
main CLI prints as one line (exit 2). `add_dynamics_parser` is the only entry
point the main CLI needs.
"""
from __future__ import annotations

import argparse
import re

import numpy as np

from ..errors import GankitError
from ._report import emit, fmt_eig, objective_from_args, pair, rest_point_infos

FIELD_EXAMPLES = """examples:
  gankit dynamics field --objective minimax --pd 0.2 --json
  gankit dynamics field --objective wasserstein --pd 0.2 --plot field.png --start 0.5,0.5
  gankit dynamics field --f1 '-0.5*d**2' --f2 'd' --f3 '-d' --domain real --pd 0.2 --plot field.png
"""
TRAJECTORY_EXAMPLES = """examples:
  gankit dynamics trajectory --objective minimax --start 0.75,0.9 --lr 1e-3 --steps 100000 --json
  gankit dynamics trajectory --objective wasserstein --start 0.75,0.9 --lr 1e-3 --steps 100000 \\
      --method simultaneous --plot traj.png
  gankit dynamics trajectory --objective wasserstein --start 0.75,0.9 --method ode --t-end 50 --lyapunov distance
"""
STEPSIZE_EXAMPLES = """examples:
  gankit dynamics stepsize --objective minimax --pd 0.2 --json
  gankit dynamics stepsize --objective quadratic --pd 0.2 --plot lr.png
  gankit dynamics stepsize --system dirac --objective non-saturating --reg r1 --gamma 0.3
"""
DIRAC_EXAMPLES = """examples:
  gankit dynamics dirac --objective non-saturating --reg r1 --gamma 0.3 --method alternating --lr 0.2 --steps 500 --json
  gankit dynamics dirac --objective minimax --method simultaneous --lr 0.2 --steps 500 --plot dirac.png
  gankit dynamics dirac --objective wasserstein --reg consensus --gamma 0.3 --method ode --t-end 40
"""
KERNEL_EXAMPLES = """examples:
  gankit dynamics kernel runs/digits-dcgan --points 256 --plot k.png
  gankit dynamics kernel runs/digits-dcgan --points 128 --init --json        # the same D at initialisation
  gankit dynamics kernel --toy --activation relu --points 128 --plot k_relu.png
"""
CIRCLING_EXAMPLES = """examples:
  gankit dynamics circling --norm batch --activation relu --json
  gankit dynamics circling --norm none --activation tanh --plot circling.png
  gankit dynamics circling --compare --norms none,batch --activations relu,tanh --seeds 3 --plot grid.png
"""


def _add_objective(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("objective (a catalogue name, or three expressions in d)")
    g.add_argument("--objective", help="minimax, non-saturating, wasserstein, least-squares, hinge, quadratic "
                                       "(default non-saturating)")
    g.add_argument("--f1", help="D's reward on data, e.g. 'log(d)'")
    g.add_argument("--f2", help="D's reward on generated samples, e.g. 'log(1 - d)'")
    g.add_argument("--f3", help="G's reward, e.g. 'log(d)'")
    g.add_argument("--domain", default="real", choices=("probability", "real"),
                   help="what d is for --f1/--f2/--f3 (default real)")


def _allow_dash_values(p: argparse.ArgumentParser) -> None:
    """Let option values start with '-' (``--f1 '-0.5*d**2'``, ``--f3 '-d'``, ``--start -1,1``).

    argparse treats such a value as an unknown option unless it looks like a
    negative number. Widening its (instance) negative-number pattern to "a
    dash and a non-dash" makes it a value; exact option names still win.
    Call after all options are added, so no option itself counts as "negative".
    """
    p._negative_number_matcher = re.compile(r"^-[^-]")


def _sub(subs, name: str, help_: str, epilog: str) -> argparse.ArgumentParser:
    p = subs.add_parser(name, help=help_, description=help_, epilog=epilog,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return p


def _field_parser(subs) -> None:
    p = _sub(subs, "field", "rest points, eigenvalues and phase portrait of the point-wise field", FIELD_EXAMPLES)
    _add_objective(p)
    p.add_argument("--pd", type=float, default=0.2, help="data density p_d at the point x (default 0.2)")
    p.add_argument("--d0", type=float, help="D0 if f1'+f2'=0 has no root (default: found numerically)")
    p.add_argument("--plot", help="write a phase portrait PNG here")
    p.add_argument("--start", action="append", metavar="D,P_G", help="overlay the flow from here (repeatable)")
    p.add_argument("--t-end", type=float, default=20.0, help="flow time of overlaid trajectories (default 20)")
    p.add_argument("--xlim", help="D range of the plot, e.g. 0,1")
    p.add_argument("--ylim", help="p_g range of the plot, e.g. 0,1")
    p.set_defaults(func=_field)


def _trajectory_parser(subs) -> None:
    p = _sub(subs, "trajectory", "discrete (Euler) or continuous training trajectory of the point-wise field",
             TRAJECTORY_EXAMPLES)
    _add_objective(p)
    p.add_argument("--pd", type=float, default=0.2, help="data density p_d (default 0.2)")
    p.add_argument("--d0", type=float, help="override D0")
    p.add_argument("--start", default="0.75,0.9", help="start point D,p_g (default 0.75,0.9)")
    p.add_argument("--method", default="simultaneous", choices=("simultaneous", "alternating", "ode"))
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate = Euler step (default 1e-3)")
    p.add_argument("--steps", type=int, default=10000, help="number of steps (default 10000)")
    p.add_argument("--t-end", type=float, help="flow time for --method ode (default lr x steps)")
    p.add_argument("--lyapunov", default="none", choices=("none", "distance", "linearised"),
                   help="check that this candidate decreases along the flow on a grid around the rest point")
    p.add_argument("--radius", type=float, default=0.1, help="half-width of the Lyapunov grid (default 0.1)")
    p.add_argument("--plot", help="write the trajectory over the phase portrait here")
    p.set_defaults(func=_trajectory)


def _stepsize_parser(subs) -> None:
    p = _sub(subs, "stepsize", "spectral radius of discrete updates vs learning rate; largest stable lr",
             STEPSIZE_EXAMPLES)
    _add_objective(p)
    p.add_argument("--system", default="field", choices=("field", "dirac"))
    p.add_argument("--pd", type=float, default=0.2, help="data density p_d (field; default 0.2)")
    p.add_argument("--reg", default="none", help="Dirac-GAN regulariser (dirac; default none)")
    p.add_argument("--gamma", type=float, default=0.0, help="regulariser strength (dirac)")
    p.add_argument("--lr-max", type=float, default=2.0, help="largest learning rate plotted/listed (default 2)")
    p.add_argument("--plot", help="write eigenvalues and spectral radius curves here")
    p.set_defaults(func=_stepsize)


def _dirac_parser(subs) -> None:
    from ._names import REGULARISERS

    p = _sub(subs, "dirac", "the Dirac-GAN: eigenvalues at equilibrium and a training trajectory", DIRAC_EXAMPLES)
    _add_objective(p)
    p.add_argument("--reg", default="none", choices=REGULARISERS, help="regulariser (default none)")
    p.add_argument("--gamma", type=float, default=0.0, help="its strength (for noise: the noise std)")
    p.add_argument("--method", default="simultaneous", choices=("simultaneous", "alternating", "ode"))
    p.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    p.add_argument("--steps", type=int, default=500, help="gradient steps (default 500)")
    p.add_argument("--t-end", type=float, help="flow time for --method ode (default lr x steps)")
    p.add_argument("--start", default="1,1", help="start point theta,psi (default 1,1)")
    p.add_argument("--plot", help="write the phase portrait with the trajectory here")
    p.set_defaults(func=_dirac)


def _kernel_parser(subs) -> None:
    p = _sub(subs, "kernel", "the discriminator's neural tangent kernel on a set of points", KERNEL_EXAMPLES)
    p.add_argument("run_dir", nargs="?", help="a run folder written by gankit train")
    p.add_argument("--checkpoint", help="a ckpt-*.json to use instead of the latest")
    p.add_argument("--init", action="store_true", help="same architecture, fresh initial weights (--seed)")
    p.add_argument("--source", default="mixed", choices=("mixed", "real", "fake"),
                   help="points: half data, half generated (default), or one kind")
    p.add_argument("--data-dir", help="dataset files for the real points")
    p.add_argument("--toy", action="store_true", help="an untrained 1D MLP discriminator on a grid of [-1, 1]")
    p.add_argument("--width", type=int, default=32, help="toy D's width (default 32)")
    p.add_argument("--activation", default="relu", help="toy D's activation (default relu)")
    p.add_argument("--norm", default="none", help="toy D's normalisation (default none)")
    p.add_argument("--objective", help="objective for the step check (default: the run's, or non-saturating)")
    p.add_argument("--points", type=int, default=256, help="number of points (default 256)")
    p.add_argument("--step-lr", type=float, default=1e-3, help="lr of the function-space step check (0: skip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", help="write the kernel heat map and spectrum here")
    p.set_defaults(func=_kernel)


def _circling_parser(subs) -> None:
    p = _sub(subs, "circling", "train small MLP GANs on a 1D mixture and measure how (D, p_g) circles",
             CIRCLING_EXAMPLES)
    p.add_argument("--norm", default="none", help="G's and D's normalisation: none, batch, layer, spectral")
    p.add_argument("--activation", default="relu", help="relu, leaky_relu, tanh or elu")
    p.add_argument("--objective", default="non-saturating")
    p.add_argument("--steps", type=int, default=3000, help="training steps (default 3000)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compare", action="store_true", help="run every --norms x --activations combination")
    p.add_argument("--norms", default="none,batch", help="for --compare (default none,batch)")
    p.add_argument("--activations", default="relu,tanh", help="for --compare (default relu,tanh)")
    p.add_argument("--seeds", type=int, default=1, help="for --compare: seeds per combination (default 1)")
    p.add_argument("--plot", help="write the probe trajectories here")
    p.set_defaults(func=_circling)


def add_dynamics_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``dynamics`` with sub-commands field, trajectory, stepsize, dirac, kernel, circling."""
    p = subparsers.add_parser("dynamics", help="understand training: fields, rest points, stability, kernels",
                              description="Vector fields, rest points, stability and the discriminator's kernel.")
    subs = p.add_subparsers(dest="dynamics_command", required=True, metavar="COMMAND")
    for add in (_field_parser, _trajectory_parser, _stepsize_parser, _dirac_parser, _kernel_parser, _circling_parser):
        add(subs)
    for sub in subs.choices.values():
        _allow_dash_values(sub)
    return p


# ---- handlers ---------------------------------------------------------------------------
def _field(args) -> int:
    from .field import point_field
    from .linear import field_grid
    from .trajectories import integrate

    obj = objective_from_args(args)
    f = point_field(obj, args.pd, args.d0)
    infos = rest_point_infos(f)
    out = {"objective": obj.describe(), "domain": obj.domain, "p_d": f.p_d, "d0": f.d0, "d0_note": f.d0_note,
           "rest_points": infos}
    if args.plot:
        from .plots import phase_portrait

        xlim, ylim = f.default_box()
        xlim, ylim = pair(args.xlim, "--xlim") if args.xlim else xlim, pair(args.ylim, "--ylim") if args.ylim else ylim
        trajs = [(f"flow from {s}", integrate(f, pair(s, "--start"), args.t_end).states) for s in args.start or ()]
        out["plot"] = str(phase_portrait(field_grid(f, xlim, ylim), infos, args.plot, trajs,
                                         title=f"{obj.name}, p_d = {f.p_d:g}"))
    lines = [out["objective"], f"p_d = {f.p_d:g}; D0 = {f.d0:.6g} ({f.d0_note})"]
    for i in infos:
        lines.append(f"rest point (D, p_g) = ({i['point'][0]:.6g}, {i['point'][1]:.6g}): {i['classification']}, "
                     f"{'correct (p_g = p_d)' if i['correct'] else 'NOT correct (p_g != p_d)'}; "
                     f"eigenvalues {fmt_eig(i['eigenvalues'])}")
    if not infos:
        lines.append("no rest point in the domain")
    return emit(args, out, lines)


MAX_STEPS = 1_000_000  # about 10 minutes of Dirac-GAN steps on one CPU core


def check_steps(steps: int) -> int:
    """A step count that finishes: positive and at most `MAX_STEPS`."""
    if not 1 <= steps <= MAX_STEPS:
        raise GankitError(f"--steps must be between 1 and {MAX_STEPS:,} (100,000 Dirac-GAN steps take about a minute),"
                          f" got {steps:,}")
    return steps


def _trajectory(args) -> int:
    from .field import point_field
    from .trajectories import distance_to, euler, integrate, summarise

    check_steps(args.steps)
    obj = objective_from_args(args)
    f = point_field(obj, args.pd, args.d0)
    rest = next((p for p in f.rest_points() if f.is_correct(p)), None)
    if rest is None:
        raise GankitError(f"{obj.name} has no rest point with p_g = p_d at p_d = {args.pd}; see gankit dynamics field")
    start = pair(args.start, "--start")
    if args.method == "ode":
        traj = integrate(f, start, args.t_end or args.lr * args.steps)
    else:
        traj = euler(f, start, args.lr, args.steps, args.method)
    out = {"objective": obj.describe(), "p_d": f.p_d, "rest_point": rest.tolist(), "method": args.method,
           "lr": args.lr, "steps": args.steps, "t_end": float(traj.t[-1]), **summarise(traj, rest)}
    v = distance_to(traj.states, rest) ** 2
    out["squared_distance_relative_change"] = float((v[-1] - v[0]) / v[0]) if v[0] > 0 else None
    lines = [out["objective"], f"{args.method}: start {start} -> final ({traj.final[0]:.6g}, {traj.final[1]:.6g}) "
             f"at t = {traj.t[-1]:g}; rest point ({rest[0]:.6g}, {rest[1]:.6g})",
             f"distance to rest point {out['distance_start']:.4g} -> {out['distance_end']:.4g} "
             f"(ratio {out['distance_ratio']:.4g}): {out['outcome']}"]
    if args.lyapunov != "none":
        out["lyapunov"], line = _lyapunov(f, rest, args.lyapunov, args.radius, obj.domain)
        lines.append(line)
    if args.plot:
        from .linear import field_grid
        from .plots import phase_portrait

        xlim, ylim = f.default_box()
        lo, hi = np.nanmin(traj.states, 0), np.nanmax(traj.states, 0)
        xlim = (min(xlim[0], lo[0]), max(xlim[1], hi[0])) if obj.domain == "real" else xlim
        ylim = (min(ylim[0], lo[1]), max(ylim[1], hi[1]))
        out["plot"] = str(phase_portrait(field_grid(f, xlim, ylim), rest_point_infos(f), args.plot,
                                         [(args.method, traj.states)], title=f"{obj.name}, p_d = {f.p_d:g}"))
    return emit(args, out, lines)


def _lyapunov(f, rest, candidate: str, radius: float, domain: str) -> tuple:
    """(result dict, text line) of the Lyapunov check of ``candidate`` around ``rest``."""
    from .trajectories import box_grid, linearised_lyapunov, lyapunov_check, squared_distance

    if candidate == "distance":
        V = squared_distance(rest)
    else:
        V, _, pd = linearised_lyapunov(f, rest)
        if V is None:
            return ({"candidate": candidate, "available": False},
                    "no quadratic Lyapunov function from the linearisation: the Jacobian is not stable")
    L = {"candidate": candidate, "radius": radius, **lyapunov_check(f, V, box_grid(rest, radius, 20, domain))}
    return L, (f"Lyapunov candidate '{candidate}' on a grid of radius {radius:g}: dV/dt < 0 at "
               f"{100 * L['fraction_decreasing']:.1f}% of states, <= 0 at {100 * L['fraction_nonincreasing']:.1f}% "
               f"(max dV/dt {L['max_dV_dt']:.3g})")


def _stepsize(args) -> int:
    from .linear import analyse_point, eigenvalues_of
    from .stepsize import analyse_stepsize

    obj = objective_from_args(args)
    if args.system == "dirac":
        from .dirac import DiracGAN

        system, point = DiracGAN(obj, args.reg, args.gamma), np.zeros(2)
    else:
        from .field import point_field

        system = point_field(obj, args.pd)
        point = next((p for p in system.rest_points() if system.is_correct(p)), None)
        if point is None:
            raise GankitError(f"{obj.name} has no correct rest point at p_d = {args.pd}")
    if not args.lr_max > 0:
        raise GankitError(f"--lr-max must be positive, got {args.lr_max}")
    info = analyse_point(system, point)
    res = analyse_stepsize(system, point, np.linspace(args.lr_max / 200, args.lr_max, 200))
    out = {"objective": obj.describe(), "system": args.system, "point": info["point"],
           "eigenvalues": info["eigenvalues"], "classification": info["classification"], **res}
    lines = [out["objective"], f"{args.system} rest point {info['point']}: {info['classification']}, "
             f"eigenvalues {fmt_eig(info['eigenvalues'])}"]
    for m in ("simultaneous", "alternating"):
        s, b = res[m]["largest_stable_lr"], res[m]["largest_bounded_lr"]
        lines.append(f"{m}: stable (rho < 1) for lr < {s:.6g}" if s else f"{m}: not stable for any lr")
        lines[-1] += f"; bounded (rho <= 1) for lr < {b:.6g}" if b else "; unbounded for every lr"
    if args.plot:
        from .plots import stepsize_plot

        out["plot"] = str(stepsize_plot(res, eigenvalues_of(info), args.plot, title=f"{obj.name} ({args.system})"))
    return emit(args, out, lines)


def _dirac(args) -> int:
    from .dirac import DiracGAN
    from .linear import analyse_point, field_grid
    from .trajectories import euler, integrate, summarise

    check_steps(args.steps)
    obj = objective_from_args(args)
    g = DiracGAN(obj, args.reg, args.gamma)
    info = analyse_point(g, (0.0, 0.0))
    start = pair(args.start, "--start")
    traj = (integrate(g, start, args.t_end or args.lr * args.steps, n_eval=500) if args.method == "ode"
            else euler(g, start, args.lr, args.steps, args.method))
    out = {"objective": obj.describe(), "reg": args.reg, "gamma": args.gamma, "equilibrium": info,
           "method": args.method, "lr": args.lr, "steps": args.steps, **summarise(traj, (0.0, 0.0))}
    if args.reg == "gp" and args.gamma > 0:
        out["note"] = ("the gradient penalty (|psi| - 1)^2 has a kink and a local maximum at psi = 0, so it pushes psi "
                       "away from 0; the size of that Jacobian entry only reflects the 1e-12 smoothing inside "
                       "gankit.penalties")
    lines = [f"Dirac-GAN, {out['objective']}, reg {args.reg} (gamma {args.gamma:g})",
             f"equilibrium (theta, psi) = (0, 0): {info['classification']}, eigenvalues {fmt_eig(info['eigenvalues'])}",
             f"{args.method} from {start}: distance {out['distance_start']:.4g} -> {out['distance_end']:.4g} "
             f"(ratio {out['distance_ratio']:.4g}): {out['outcome']}"] + ([out["note"]] if "note" in out else [])
    if args.plot:
        from .plots import phase_portrait

        r = max(2.0, 1.1 * float(np.nanmax(np.abs(traj.states[np.isfinite(traj.states).all(1)]))))
        r = min(r, 10.0)
        out["plot"] = str(phase_portrait(field_grid(g, (-r, r), (-r, r)), [info], args.plot,
                                         [(args.method, traj.states)], names=g.names,
                                         title=f"Dirac-GAN {obj.name}, {args.reg}"))
    return emit(args, out, lines)


def _kernel(args) -> int:
    from ..errors import memory_guard
    from ._report import kernel_report

    with memory_guard(f"the kernel of {args.points:,} points (a gradient of every parameter at each)",
                      "use fewer --points"):
        out, lines = kernel_report(args)
    return emit(args, out, lines)


def _circling(args) -> int:
    from ._report import circling_report

    check_steps(args.steps)
    out, lines = circling_report(args)
    return emit(args, out, lines)
