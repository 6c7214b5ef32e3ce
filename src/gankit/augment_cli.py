"""``gankit augment``: the augmentation benchmark from the command line (see `gankit.augment`)."""
from __future__ import annotations

import argparse

from .errors import GankitError

EXAMPLES = """examples:
  gankit augment --data-dir ../shared/data/mnist --out runs/augment
  gankit augment --data-dir ../shared/data/mnist --sizes 100,1000 --seeds 0,1,2 --gan-images 30000 \\
      --synthetic-per-class 500 --clf-steps 1500 --out runs/augment-small
  gankit augment --data-dir ../shared/data/mnist --set objective.ac_weight=1 --out runs/augment-ac
"""


def _ints(text: str, flag: str) -> tuple:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise GankitError(f"{flag} must be comma-separated integers, e.g. 100,500,1000; got {text!r}") from None
    if not values:
        raise GankitError(f"{flag} needs at least one value")
    return values


def _augment(args) -> int:
    from .augment import AugmentSpec, markdown_table, run_benchmark
    from .data import load_dataset

    spec = AugmentSpec(dataset=args.dataset, sizes=_ints(args.sizes, "--sizes"), seeds=_ints(args.seeds, "--seeds"),
                       subset_seed=args.subset_seed, gan_preset=args.gan, gan_overrides=tuple(args.set or ()),
                       gan_images=args.gan_images, synthetic_per_class=args.synthetic_per_class,
                       clf_steps=args.clf_steps, shift=args.shift, real_fraction=args.real_fraction,
                       device=args.device).validate()
    train = load_dataset(args.dataset, args.data_dir, "train")
    test = load_dataset(args.dataset, args.data_dir, "test")
    result = run_benchmark(train, test, spec, args.out, progress=not args.no_progress)
    print(markdown_table(result))
    print(f"wrote {args.out}/results.json and {args.out}/results.md")
    return 0


def add_augment_parser(sub) -> None:
    """Register ``gankit augment``."""
    a = sub.add_parser("augment", help="does a conditional GAN's synthetic data help a small labelled set?",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("--dataset", default="mnist", help="a labelled dataset (default mnist)")
    a.add_argument("--data-dir", help="read the dataset files here; never download")
    a.add_argument("--out", default="runs/augment", help="output folder: results.json, results.md, gan/ runs")
    a.add_argument("--sizes", default="100,500,1000", help="labelled subset sizes (default 100,500,1000)")
    a.add_argument("--seeds", default="0,1,2", help="seeds of the GANs and classifiers (default 0,1,2)")
    a.add_argument("--subset-seed", type=int, default=0, help="seed of the class-balanced subsets (default 0)")
    a.add_argument("--gan", default="mnist-cdcgan", help="GAN preset or YAML (default mnist-cdcgan)")
    a.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a GAN config value (repeatable)")
    a.add_argument("--gan-images", type=int, default=60000, help="images seen by each GAN (default 60000)")
    a.add_argument("--synthetic-per-class", type=int, default=1000, help="synthetic images per class (default 1000)")
    a.add_argument("--clf-steps", type=int, default=2000, help="classifier steps of batch 64 (default 2000)")
    a.add_argument("--shift", type=int, default=2, help="random translation in pixels for every classifier (default 2)")
    a.add_argument("--real-fraction", type=float, default=0.5,
                   help="share of real images per batch in condition real+synthetic (default 0.5)")
    a.add_argument("--device", default="auto")
    a.add_argument("--no-progress", action="store_true", help="no progress bar")
    a.set_defaults(func=_augment)
