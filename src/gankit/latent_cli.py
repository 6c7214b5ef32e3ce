"""``gankit latent ...``: pictures of a trained generator's latent space.

Thin by design: load the run's generator, make codes from seeds, call one pure
function of `gankit.latent`, save a PNG grid (and, for paths, an animated GIF).
`add_latent_parser` is the only entry point the main CLI needs.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import GankitError

if TYPE_CHECKING:  # torch loads only when a command runs, not when the parser is built
    import torch

EXAMPLES = """examples:
  gankit latent interpolate runs/mnist-dcgan --seeds 1,2 --steps 10 --out interp.png --gif interp.gif
  gankit latent interpolate runs/mnist-cdcgan --seeds 1,2 --class 3 --method linear --out lerp3.png
  gankit latent traverse runs/mnist-dcgan --seed 1 --dim 7 --range=-3,3 --steps 9 --out dim7.png
  gankit latent classes runs/mnist-cdcgan --seed 1 --from 1 --to 7 --steps 10 --out 1to7.png --gif 1to7.gif
  gankit latent arithmetic runs/mnist-cdcgan --a 1,2,3 --b 4,5,6 --c 7,8,9 --class 2 --out arith.png
"""


MAX_STEPS = 256  # images per row: a grid wider than this is not looked at, and 10**8 would never finish


def _check_steps(steps: int, least: int = 2) -> None:
    if not least <= steps <= MAX_STEPS:
        raise GankitError(f"--steps must be between {least} and {MAX_STEPS}, got {steps:,}")


def _ints(text: str, what: str) -> list:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise GankitError(f"{what} must be comma-separated integers, e.g. 1,2,3; got {text!r}") from None
    if not values:
        raise GankitError(f"{what} needs at least one integer, e.g. 1,2")
    return values


def _range(text: str) -> tuple:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise GankitError(f"--range must be two numbers LOW,HIGH, e.g. -3,3; got {text!r}") from None
    return lo, hi


def _load(args):
    from .export import resolve_class
    from .run import load_generator

    G, meta = load_generator(args.run_dir, args.checkpoint, args.device)
    label = resolve_class(getattr(args, "label", None), meta.get("classes") or [])
    return G, meta, label


def _save(images: torch.Tensor, args, nrow=None, frames=None) -> dict:
    """The grid of ``images``; with --gif also an animation of ``frames`` (default: the same images)."""
    from .latent import save_gif, save_grid

    out = {"png": str(save_grid(images, Path(args.out), nrow))}
    if getattr(args, "gif", None):
        out["gif"] = str(save_gif(images if frames is None else frames, Path(args.gif)))
    print(json.dumps(out) if args.json else f"wrote {', '.join(out.values())}")
    return out


def _interpolate(args) -> int:
    import torch

    from .latent import interpolate, seed_code

    _check_steps(args.steps)
    G, _, label = _load(args)
    seeds = _ints(args.seeds, "--seeds")
    if len(seeds) < 2:
        raise GankitError("--seeds needs at least two seeds, e.g. --seeds 1,2 (more make a path through all)")
    codes = [seed_code(G.z_dim, s) for s in seeds]
    rows = [interpolate(G, a, b, args.steps, args.method, label) for a, b in zip(codes, codes[1:])]
    path = torch.cat([rows[0], *(r[1:] for r in rows[1:])])  # one walk through all seeds: joints once
    _save(torch.cat(rows), args, nrow=args.steps, frames=path)
    return 0


def _traverse(args) -> int:
    import torch

    from .latent import seed_code, traverse

    _check_steps(args.steps)  # at least both ends of the range
    G, _, label = _load(args)
    lo, hi = _range(args.range)
    values = torch.linspace(lo, hi, args.steps).tolist()
    rows = [traverse(G, seed_code(G.z_dim, s), args.dim, values, label) for s in _ints(args.seeds, "--seeds")]
    _save(torch.cat(rows), args, nrow=args.steps)
    return 0


def _classes(args) -> int:
    import torch

    from .export import resolve_class
    from .latent import class_interpolation, seed_code

    _check_steps(args.steps)
    G, meta, _ = _load(args)
    names = meta.get("classes") or []
    a, b = resolve_class(args.from_class, names), resolve_class(args.to_class, names)
    rows = [class_interpolation(G, seed_code(G.z_dim, s), a, b, args.steps) for s in _ints(args.seeds, "--seeds")]
    _save(torch.cat(rows), args, nrow=args.steps)
    return 0


def _arithmetic(args) -> int:
    import torch

    from .latent import arithmetic, seed_code

    G, _, label = _load(args)
    groups = [torch.stack([seed_code(G.z_dim, s) for s in _ints(text, name)])
              for text, name in ((args.a, "--a"), (args.b, "--b"), (args.c, "--c"))]
    _save(arithmetic(G, *groups, label=label), args)
    return 0


def _common(p: argparse.ArgumentParser, label: bool = True) -> None:
    p.add_argument("run_dir", help="a run folder written by gankit train")
    p.add_argument("--out", required=True, help="PNG grid to write")
    if label:
        p.add_argument("--class", dest="label", metavar="K", help="conditional runs: the class (index or name; "
                                                                  "default 0)")
    p.add_argument("--checkpoint", help="a ckpt-*.json to use instead of the latest")
    p.add_argument("--device", default="cpu", help="cpu (default: images then match across machines), cuda, ...")
    p.add_argument("--json", action="store_true", help="print the written paths as JSON")


def add_latent_parser(sub) -> None:
    """Register ``gankit latent {interpolate,traverse,classes,arithmetic}``."""
    fmt = argparse.RawDescriptionHelpFormatter
    lat = sub.add_parser("latent", help="interpolate, traverse and do arithmetic in a generator's latent space",
                         epilog=EXAMPLES, formatter_class=fmt)
    lsub = lat.add_subparsers(dest="action", required=True)

    p = lsub.add_parser("interpolate", help="walk between the codes of seeds (linear or spherical)",
                        epilog=EXAMPLES, formatter_class=fmt)
    _common(p)
    p.add_argument("--seeds", default="1,2", help="comma-separated seeds; one row per consecutive pair (default 1,2)")
    p.add_argument("--steps", type=int, default=10, help="images per row, both ends included (default 10)")
    p.add_argument("--method", choices=("spherical", "linear"), default="spherical")
    p.add_argument("--gif", help="also write an animated GIF of the frames")
    p.set_defaults(func=_interpolate)

    p = lsub.add_parser("traverse", help="vary one latent dimension over a range", epilog=EXAMPLES,
                        formatter_class=fmt)
    _common(p)
    p.add_argument("--seeds", "--seed", dest="seeds", default="1", help="seeds of the base codes, one row each")
    p.add_argument("--dim", type=int, required=True, help="the latent dimension to vary")
    p.add_argument("--range", default="-3,3",
                   help="LOW,HIGH values of that dimension, written --range=-3,3 (default -3,3)")
    p.add_argument("--steps", type=int, default=9, help="values in the range (default 9)")
    p.add_argument("--gif", help="also write an animated GIF of the frames")
    p.set_defaults(func=_traverse)

    p = lsub.add_parser("classes", help="conditional runs: move between two label embeddings at fixed z",
                        epilog=EXAMPLES, formatter_class=fmt)
    _common(p, label=False)
    p.add_argument("--seeds", "--seed", dest="seeds", default="1", help="seeds of the fixed codes, one row each")
    p.add_argument("--from", dest="from_class", required=True, help="start class (index or name)")
    p.add_argument("--to", dest="to_class", required=True, help="end class (index or name)")
    p.add_argument("--steps", type=int, default=10, help="images per row, both ends included (default 10)")
    p.add_argument("--gif", help="also write an animated GIF of the frames")
    p.set_defaults(func=_classes)

    p = lsub.add_parser("arithmetic", help="mean(a) - mean(b) + mean(c) on the codes of groups of seeds",
                        epilog=EXAMPLES, formatter_class=fmt)
    _common(p)
    p.add_argument("--a", required=True, help="seeds of group a, e.g. 1,2,3")
    p.add_argument("--b", required=True, help="seeds of group b")
    p.add_argument("--c", required=True, help="seeds of group c")
    p.set_defaults(func=_arithmetic)
