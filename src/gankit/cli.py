"""The ``gankit`` command: parse arguments, build a config, make one library call.

A `GankitError` becomes one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from .errors import GankitError

TRAIN_EXAMPLES = """examples:
  gankit train digits-dcgan                                  # bundled digits, no download
  gankit train mnist-dcgan --data-dir ../shared/data/mnist --epochs 5
  gankit train mnist-dcgan --set objective.name=wasserstein --set objective.penalty=gp
  gankit train my.yaml --set objective.name=custom --set objective.f1='-0.5*d**2' \\
      --set objective.f2=d --set objective.f3=-d
  gankit train mnist-dcgan --dry-run                        # print the resolved config
  gankit train mnist-dcgan --precision fp32 --compile      # strict fp32, compiled networks
  gankit train --resume runs/mnist-dcgan                    # continue a stopped run
  gankit train digits2mnist-cyclegan --data-dir ../shared/data/mnist   # CycleGAN: digits <-> MNIST
"""
SAMPLE_EXAMPLES = """examples:
  gankit sample runs/mnist-dcgan --n 64 --out samples/      # a folder of PNGs
  gankit sample runs/mnist-dcgan --n 10000 --out s.npz      # uint8 array 'images' (N, H, W)
  gankit sample runs/mnist-cdcgan --class 7 --n 16 --out sevens/  # conditional: PNGs in sevens/7/
  gankit sample runs/mnist-cdcgan --per-class 1000 --out synth/   # synth/0 ... synth/9 + manifest.jsonl
  gankit sample runs/mnist-cdcgan --per-class 100 --truncation 1.5 --out s.npz   # with 'labels' (N,)
"""


def _train(args) -> int:
    from .launch import launch
    from .lock import lock_run_dir

    # The folder is locked first, when the arguments name it, so a second writer is refused before torch loads;
    # under torchrun, rank 0 is the one writer.
    named = Path(args.resume or args.run_dir) if (args.resume or args.run_dir) and not args.dry_run else None
    named = named if launch().is_main else None
    lock = lock_run_dir(named, bool(args.resume)) if named is not None else None
    try:
        return _train_locked(args, lock)
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def _train_locked(args, lock) -> int:
    from . import api
    from . import config as C

    if args.resume:
        run_dir = Path(args.resume)
        if args.run_dir and Path(args.run_dir) != run_dir:
            raise GankitError(f"--resume {run_dir} continues that run in place; drop --run-dir {args.run_dir}")
        if not (run_dir / "config.yaml").is_file():
            raise GankitError(f"{run_dir} is not a gankit run folder (no config.yaml); nothing to resume")
        source = args.config or str(run_dir / "config.yaml")
    else:
        if not args.config:
            raise GankitError("gankit train needs a preset or config file, e.g. gankit train digits-dcgan "
                              f"(presets: {', '.join(C.preset_names())})")
        source = args.config
    cfg = api.resolve_config(source, tuple(args.set or ()), **{
        "data.data_dir": args.data_dir, "train.epochs": args.epochs, "train.device": args.device,
        "train.precision": args.precision, "train.compile": args.compile})
    if args.dry_run:
        print(cfg.to_yaml(), end="")
        return 0
    run_dir = Path(args.resume) if args.resume else Path(args.run_dir or Path("runs") / cfg.name)
    run = api.train(cfg, run_dir=run_dir, resume=bool(args.resume), force=args.force, lock=lock)
    if run is None:  # a rank other than 0 of a torchrun launch: rank 0 says what was trained
        return 0
    p = run.progress
    print(f"trained {p['images']} images ({p['step']} steps) -> {run_dir}")
    if run.stop_signal is not None:
        return 128 + run.stop_signal
    return 0


def _sample(args) -> int:
    from .export import export_samples, plan_labels, resolve_class
    from .nets.conditional import n_classes_of
    from .run import load_generator

    G, meta = load_generator(args.run_dir, args.checkpoint, args.device)
    label = resolve_class(args.label, meta.get("classes") or [])
    labels = plan_labels(n_classes_of(G), args.n, label, args.per_class)
    info = export_samples(G, meta, Path(args.out), args.n, args.seed, labels, args.truncation)
    info["images_seen"] = meta["progress"]["images"]
    print(json.dumps(info) if args.json else f"wrote {info['n']} samples to {info['out']}")
    return 0


def _evaluate(args) -> int:
    from . import api
    from .metrics.evaluate import read_images

    if args.per_class is not None:  # conditional runs: does each requested class come out as that class?
        from .metrics.conditional import evaluate_class_accuracy, format_class_accuracy

        if args.images or not args.run_dir:
            raise GankitError("--per-class measures a conditional run: give its RUN_DIR, not --images")
        result = evaluate_class_accuracy(args.run_dir, args.per_class, args.seed, args.data_dir, args.checkpoint)
        print(json.dumps(result, indent=1) if args.json else format_class_accuracy(result))
        return 0

    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    if not metrics:
        raise GankitError(f"--metrics {args.metrics!r} names no metric; e.g. --metrics fid,cs")
    options = {"extractor": args.extractor, "inception_weights": args.inception_weights, "floor": not args.no_floor,
               "progress": True}
    if args.split is not None or args.direction is not None:  # translation runs (mode cyclegan) only
        options.update(split=args.split or "test",
                       directions=("a2b", "b2a") if args.direction in (None, "both") else (args.direction,))
    if args.images:
        if not args.dataset:
            raise GankitError("--images needs --dataset (e.g. --dataset mnist) to pick the feature extractor")
        result = api.evaluate(read_images(args.images), args.dataset, metrics, data_dir=args.data_dir, **options)
    else:
        if not args.run_dir:
            raise GankitError("gankit evaluate needs a RUN_DIR or --images PATH --dataset NAME")
        result = api.evaluate(args.run_dir, None, metrics, args.n, args.seed, args.data_dir, args.checkpoint,
                              **options)
    for note in result.get("notes", []):
        print(f"gankit: note: {note}", file=sys.stderr)
    from .metrics.evaluate import formatter

    print(json.dumps(result, indent=1) if args.json else (formatter(result) or format_result)(result))
    return 0


def _translate(args) -> int:
    from .translate import translate_files

    info = translate_files(args.run_dir, args.direction, args.src, args.out, args.checkpoint, args.device)
    print(json.dumps(info) if args.json else f"translated {info['n']} images {info['direction']} to {info['out']} "
                                             f"(manifest {info['manifest']})")
    return 0


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-3 and v != 0 else f"{v:.4f}"
    return "-" if v is None else str(v)


def format_result(result: dict) -> str:
    """A table: one row per headline value with its 95% interval (KID: +- subset std) and the floor."""
    from .metrics.registry import METRICS

    p, floor = result["provenance"], result.get("floor") or {}
    rows = [f"{'metric':<18}{'value':>11}  {'95% interval':<23}{'floor':>10}  better"]
    for name in p.get("metrics", [m for m in METRICS if m in result]):
        m = METRICS[name]
        for key, better in zip(m.keys, m.better):
            if f"{key}_ci_low" in result:
                ci = f"[{_fmt(result[key + '_ci_low'])}, {_fmt(result[key + '_ci_high'])}]"
            else:
                ci = f"+- {_fmt(result[key + '_std'])}" if f"{key}_std" in result else ""
            rows.append(f"{key:<18}{_fmt(result[key]):>11}  {ci:<23}{_fmt(floor.get(key)):>10}  "
                        f"{ {'one': 'near 1'}.get(better, better)}")
    if "class_fractions" in result:
        rows.append(f"{'class_fractions':<18}{' '.join(f'{f:.3f}' for f in result['class_fractions'])}")
    rows.append(f"extractor {p['extractor']} ({p['extractor_hash'][:12]}); n={p['n_images']} generated vs "
                f"{p.get('n_reference', '?')} {p.get('reference_split', '')} images; "
                f"floor: {p['n_images'] if floor else 'no'} train images; seed {p['seed']}; "
                f"gankit {p['gankit_version']}")
    return "\n".join(rows)


def _report(args) -> int:
    from .report.page import write_report

    print(f"wrote {write_report(args.run_dir, args.out, panels=not args.no_panels)}")
    return 0


def _compare(args) -> int:
    from .report.compare import write_compare

    out, text = write_compare(args.run_dirs, args.out)
    print(text)
    print(f"wrote {out}")
    return 0


def _classifier(args) -> int:
    from .metrics.classifier import load_classifier

    _, info = load_classifier(args.dataset, args.data_dir, progress=True)
    print(json.dumps({k: info[k] for k in ("dataset", "test_accuracy", "hash")}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = argparse.ArgumentParser(prog="gankit", description="Train, evaluate and understand GANs.")
    parser.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a GAN from a preset or YAML config", epilog=TRAIN_EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("config", nargs="?", help="preset name (digits-dcgan, mnist-dcgan, ...) or YAML file")
    t.add_argument("--data-dir", help="read existing dataset files here; never download")
    t.add_argument("--run-dir", help="run folder (default runs/<name>)")
    t.add_argument("--epochs", type=float, help="training length in epochs")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (repeatable)")
    t.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    t.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"),
                   help="auto (default): bf16 autocast where bf16 is fast (CUDA >= 8.0, CPU with AVX-512 BF16 or "
                        "AMX), else fp32; fp16 is CUDA-only")
    t.add_argument("--compile", action="store_true", default=None, help="torch.compile the networks (off by default)")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint")
    t.add_argument("--force", action="store_true", help="with --resume: accept a changed config")
    t.set_defaults(func=_train)

    s = sub.add_parser("sample", help="write samples from a trained generator", epilog=SAMPLE_EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("run_dir", help="a run folder written by gankit train")
    s.add_argument("--n", type=int, default=64, help="number of images (default 64)")
    s.add_argument("--out", required=True, help="a folder for PNGs, or a file ending in .npz")
    s.add_argument("--seed", type=int, default=0, help="seed of the latent codes (default 0)")
    s.add_argument("--class", dest="label", metavar="K",
                   help="conditional runs: only class K (an index or a class name), --n images of it")
    s.add_argument("--per-class", type=int, metavar="N", help="conditional runs: N images of every class")
    s.add_argument("--truncation", type=float, metavar="T",
                   help="redraw latent entries with |z| > T (truncation trick; fidelity over variety)")
    s.add_argument("--checkpoint", help="a ckpt-*.json to use instead of the latest")
    s.add_argument("--device", default="auto")
    s.add_argument("--json", action="store_true", help="print a JSON summary")
    s.set_defaults(func=_sample)

    e = sub.add_parser("evaluate", help="score a run's generator or a set of images",
                       epilog="examples:\n"
                              "  gankit evaluate runs/mnist-dcgan --n 10000          # all metrics, table + floor\n"
                              "  gankit evaluate runs/mnist-dcgan --metrics fid,pr --json\n"
                              "  gankit evaluate --images s.npz --dataset mnist --data-dir ../shared/data/mnist\n"
                              "  gankit evaluate runs/x --inception-weights pt_inception.pth   # Inception FID\n"
                              "  gankit evaluate runs/mnist-cdcgan --per-class 1000     # per-class accuracy",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("run_dir", nargs="?", help="a run folder written by gankit train")
    e.add_argument("--images", help="an .npz (array 'images') or folder of PNGs instead of a run")
    e.add_argument("--dataset", help="with --images: the dataset they imitate (its test split is the reference)")
    e.add_argument("--data-dir", help="dataset files, read for reference features and the classifier on first use")
    e.add_argument("--n", type=int, default=10000, help="samples to draw from the run (default 10000)")
    e.add_argument("--seed", type=int, default=0, help="seed of the latent codes, bootstrap and floor (default 0)")
    e.add_argument("--metrics", default="fid,kid,pr,dc,cs,modes,memo",
                   help="comma-separated from fid, kid, pr, dc, cs, modes, memo (default: all)")
    e.add_argument("--checkpoint", help="a ckpt-*.json to use instead of the latest")
    e.add_argument("--extractor", choices=("auto", "domain", "inception"), default="auto",
                   help="feature extractor: auto (Inception if its weights are given, else the domain classifier)")
    e.add_argument("--inception-weights", metavar="PATH",
                   help="local Inception-v3 weights (.pth); also $GANKIT_INCEPTION_WEIGHTS; never downloaded")
    e.add_argument("--no-floor", action="store_true", help="skip the real-versus-real floor")
    e.add_argument("--per-class", type=int, metavar="N",
                   help="conditional runs instead: N samples requested per class, the fraction the domain "
                        "classifier assigns to the requested class (per-class accuracy)")
    e.add_argument("--split", choices=("test", "train", "all"),
                   help="translation runs: the source images to translate (default test; all: train and test)")
    e.add_argument("--direction", choices=("a2b", "b2a", "both"), help="translation runs: which way (default both)")
    e.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    e.set_defaults(func=_evaluate)

    r = sub.add_parser("report", help="write RUN_DIR/report.html: one self-contained page showing a run",
                       epilog="examples:\n  gankit report runs/mnist-dcgan          # runs/mnist-dcgan/report.html\n"
                              "  gankit report runs/mnist-dcgan --out mnist.html",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("run_dir", help="a run folder written by gankit train (finished or not)")
    r.add_argument("--out", help="the HTML file to write (default RUN_DIR/report.html)")
    r.add_argument("--no-panels", action="store_true", help="skip the mode's panels (they load the checkpoint)")
    r.set_defaults(func=_report)
    cmp = sub.add_parser("compare", help="runs side by side on one page, and a table in the terminal",
                         epilog="examples:\n  gankit compare runs/a runs/b                  # compare.html\n"
                                "  gankit compare runs/a runs/b runs/c --out abc.html",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    cmp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders; the first is the reference")
    cmp.add_argument("--out", help="the HTML file to write (default compare.html)")
    cmp.set_defaults(func=_compare)
    tr = sub.add_parser("translate", help="translate images with an image-to-image run (mode cyclegan)",
                        epilog="examples:\n"
                               "  gankit translate runs/digits2mnist-cyclegan --direction a2b --in my_digits/ --out out/\n"
                               "  gankit translate runs/horse2zebra --direction b2a --in x.npz --out y.npz",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    tr.add_argument("run_dir", help="a run folder written by gankit train with mode cyclegan")
    tr.add_argument("--direction", required=True, choices=("a2b", "b2a"), help="a2b: G_AB (A into B); b2a: G_BA")
    tr.add_argument("--in", dest="src", required=True, help="a folder of images (read recursively) or an .npz")
    tr.add_argument("--out", required=True, help="a folder for PNGs (with manifest.jsonl) or a file ending in .npz")
    tr.add_argument("--checkpoint", help="a ckpt-*.json to use instead of the latest")
    tr.add_argument("--device", default="auto")
    tr.add_argument("--json", action="store_true", help="print a JSON summary")
    tr.set_defaults(func=_translate)

    c = sub.add_parser("classifier", help="the offline domain classifier used by the metrics",
                       epilog="examples:\n  gankit classifier train --dataset mnist --data-dir ../shared/data/mnist",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    csub = c.add_subparsers(dest="action", required=True)
    ct = csub.add_parser("train", help="train (or load from cache) a dataset's classifier; print accuracy and hash")
    ct.add_argument("--dataset", required=True)
    ct.add_argument("--data-dir")
    ct.set_defaults(func=_classifier)

    from .dynamics.cli import add_dynamics_parser

    add_dynamics_parser(sub)
    from .augment_cli import add_augment_parser
    from .latent_cli import add_latent_parser

    add_latent_parser(sub)
    add_augment_parser(sub)
    from .data_cli import add_data_parser

    add_data_parser(sub)
    return parser


def main(argv=None) -> int:
    """Run one command; a `GankitError` is one line and exit 2, Ctrl-C at any moment one line and exit 130."""
    from . import _command

    _command.COMMAND = ["gankit", *(sys.argv[1:] if argv is None else argv)]  # what log.txt records
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except GankitError as exc:
        from .launch import error_prefix

        print(f"gankit: error: {error_prefix()}{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """The ``gankit`` command: `main`, then exit; a Ctrl-C while the interpreter shuts down is ignored."""
    try:
        code = main()
    except KeyboardInterrupt:  # between the last statement of main and its return
        print("gankit: interrupted", file=sys.stderr)
        code = 130
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .launch import one_of_several

    if code == 130 or one_of_several():
        # 130: interrupted and already cleaned up. A Ctrl-C that landed in code a C extension ran through
        # PyRun_* (pybind11's exec, during torch's import) makes Python re-raise SIGINT at exit, however it
        # was handled: exit at once instead, with the status a shell gives a Ctrl-C.
        # One process of a multi-process run whose work is done: Python's exit handlers run (logging, files),
        # C++'s static destructors do not: a rank sometimes aborted ("terminate called without an active
        # exception") after a successful run, possibly in them (not proven).
        if code != 130:
            import atexit

            atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
