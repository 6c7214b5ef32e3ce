"""``gankit data``: prepare a folder of images as a training zip, and describe a folder or zip."""
from __future__ import annotations

import argparse
import json
import sys

EXAMPLES = """examples:
  gankit data prepare ~/pictures/faces --out faces64.zip --size 64
  gankit data info faces64.zip
  gankit train folder-dcgan64 --data-dir faces64.zip
"""


def _prepare(args) -> int:
    from .data.prepare import prepare

    def on_skip(line: str) -> None:
        print(f"skipped {line}", file=sys.stderr, flush=True)

    done = prepare(args.src, args.out, args.size, args.channels, args.workers, args.force,
                   progress=not args.no_progress, on_skip=on_skip)
    classes = f"{len(done.classes)} classes ({', '.join(done.classes[:10])}{', ...' if len(done.classes) > 10 else ''})" \
        if done.classes else "no labels (images directly in the folder)"
    print(f"wrote {done.written:,} images of {args.size}x{args.size} to {done.out}: {classes}")
    if done.upscaled:
        print(f"note: {done.upscaled:,} images were smaller than {args.size}x{args.size} and were enlarged")
    if done.skipped:
        print(f"skipped {len(done.skipped):,} files (listed above on stderr)")
    return 0


def _info(args) -> int:
    from .data.prepare import format_info, info

    d = info(args.path, args.size, args.channels)
    print(json.dumps(d, indent=2) if args.json else format_info(d))
    return 0


def add_data_parser(sub) -> None:
    """Register ``gankit data prepare`` and ``gankit data info``."""
    d = sub.add_parser("data", help="prepare a folder of your own images, or describe a dataset",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="{prepare,info}")
    p = dsub.add_parser("prepare", help="check, crop and resize a folder of images into a training zip",
                        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="a folder of images; sub-folders are classes (as torchvision's ImageFolder)")
    p.add_argument("--out", required=True, help="the zip to write (stylegan2-ada's layout: PNGs + dataset.json)")
    p.add_argument("--size", type=int, required=True, help="side in pixels: centre square crop, then resize")
    p.add_argument("--channels", type=int, default=3, help="3 (RGB, default) or 1 (grey)")
    p.add_argument("--workers", type=int, default=0, help="processes that convert images (default: up to 4)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_prepare)
    i = dsub.add_parser("info", help="images, resolution, classes and the memory a folder or zip needs")
    i.add_argument("path", help="a folder of images or a zip from gankit data prepare")
    i.add_argument("--size", type=int, help="the training size to compute memory for (default: the images')")
    i.add_argument("--channels", type=int, choices=(1, 3), help="1 or 3 (default: 1 if every image is grey)")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=_info)
