"""`gankit data prepare` and `gankit data info`: a folder of images, checked once, as a training zip.

prepare reads every file under SRC (labels from sub-folder names, as torchvision's ImageFolder), checks
it (`gankit.data.files.open_image`), crops the centre square, resizes it to SIZE x SIZE with antialiasing
(Lanczos), and writes it as a PNG into an uncompressed zip in stylegan2-ada-pytorch's layout
(``00000/img00000000.png``, ``dataset.json`` with the labels and, for gankit, the class names). Files that
cannot be used are skipped and each is listed with the reason; none is dropped silently. The zip is written
to a temporary name and renamed when complete, so an interrupted prepare leaves no half zip behind.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import GankitError
from .files import IMAGE_SUFFIXES, LABELS_FILE, list_images, mode_problem, open_image


@dataclass
class Prepared:
    out: Path
    written: int
    classes: list
    skipped: list = field(default_factory=list)     # (file, reason)
    upscaled: int = 0


def _source_files(src: Path) -> tuple:
    """(image files, skipped (file, reason)) under folder ``src``, sorted; hidden files are ignored."""
    if not src.is_dir():
        raise GankitError(f"{src} is not a folder; gankit data prepare reads a folder of images (sub-folders "
                          f"are classes)")
    files, skipped = [], []
    for p in sorted(src.rglob("*")):
        if not p.is_file() or any(s.startswith(".") for s in p.relative_to(src).parts):
            continue
        if p.suffix.lower() in IMAGE_SUFFIXES:
            files.append(p)
        else:
            skipped.append((p, f"not an image file (suffix {p.suffix or 'none'})"))
    if not files:
        raise GankitError(f"image folder {src} holds no images (png, jpg, ...)"
                          + (f"; its {len(skipped)} files are not images" if skipped else ""))
    return files, skipped


def _convert(path: Path, size: int, channels: int) -> tuple:
    """(PNG bytes, upscaled?) of image ``path`` centre-cropped and resized; GankitError if unusable."""
    from PIL import Image

    im = open_image(path.read_bytes(), str(path), hint="")
    im = im.convert("L" if channels == 1 else "RGB")
    w, h = im.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    im = im.crop((left, top, left + side, top + side))
    if side != size:
        im = im.resize((size, size), Image.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=6)
    return buf.getvalue(), side < size


def _work(job):
    path, size, channels = job
    try:
        data, up = _convert(path, size, channels)
        return path, data, up, None
    except GankitError as exc:
        return path, None, False, str(exc)
    except (OSError, ValueError, MemoryError) as exc:  # e.g. a decompression bomb or a read error
        return path, None, False, f"{path} cannot be converted ({type(exc).__name__}: {exc})"


def skip_line(path, reason: str) -> str:
    """One line for a skipped file: its path and why."""
    return reason if reason.startswith(str(path)) else f"{path}: {reason}"


def prepare(src, out, size: int, channels: int = 3, workers: int = 0, force: bool = False,
            progress: bool = False, on_skip=None) -> Prepared:
    """Write the usable images of folder ``src`` to zip ``out`` at ``size`` x ``size``; see the module.
    ``on_skip(line)`` hears of each skipped file as it is found."""
    src, out = Path(src).expanduser(), Path(out).expanduser()
    if not 4 <= size <= 4096:
        raise GankitError(f"--size must be between 4 and 4096 pixels, got {size}")
    if channels not in (1, 3):
        raise GankitError(f"--channels must be 1 (grey) or 3 (RGB), got {channels}")
    if out.suffix.lower() != ".zip":
        raise GankitError(f"--out must name a .zip file, got {out}")
    if out.exists() and not force:
        raise GankitError(f"{out} exists; pass --force to replace it, or choose another --out")
    if not out.parent.is_dir():
        raise GankitError(f"the folder of --out, {out.parent}, does not exist; create it first")
    files, skipped = _source_files(src)
    for path, reason in skipped:
        if on_skip:
            on_skip(skip_line(path, reason))
    class_of = {p: p.parent.relative_to(src).as_posix() for p in files}
    jobs = [(p, size, channels) for p in files]
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    results = []
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
            for path, data, up, error in _results(jobs, workers, progress):
                if error is not None:
                    skipped.append((path, error))
                    if on_skip:
                        on_skip(skip_line(path, error))
                    continue
                name = f"{len(results) // 1000:05d}/img{len(results):08d}.png"
                z.writestr(name, data)
                results.append((name, class_of[path], up))
            if not results:
                raise GankitError(f"none of the {len(files)} images in {src} could be used (the first: "
                                  f"{skip_line(*skipped[-len(files)])}); nothing was written")
            classes = sorted({c for _, c, _ in results})
            labelled = classes != ["."]
            index = {c: i for i, c in enumerate(classes)}
            meta = {"labels": [[n, index[c]] for n, c, _ in results] if labelled else None,
                    "classes": classes if labelled else None}
            z.writestr(LABELS_FILE, json.dumps(meta))
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    skipped.sort(key=lambda s: str(s[0]))
    return Prepared(out, len(results), classes if labelled else [], skipped, sum(u for *_, u in results))


def _results(jobs: list, workers: int, progress: bool):
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc="prepare", unit="img", disable=not progress, leave=False)
    if workers <= 0:
        workers = min(4, os.cpu_count() or 1)
    try:
        if workers == 1:
            for job in jobs:
                yield _work(job)
                bar.update()
        else:
            import multiprocessing as mp

            with mp.get_context("spawn" if os.name == "nt" else "fork").Pool(workers) as pool:
                for r in pool.imap(_work, jobs, chunksize=32):  # in order: the zip's order is the folder's
                    yield r
                    bar.update()
    finally:
        bar.close()


# ---- info -------------------------------------------------------------------------------------------------------

def info(path, size: Optional[int] = None, channels: Optional[int] = None) -> dict:
    """Count, resolutions, modes, classes and memory of the images of a folder or zip (headers only)."""
    from PIL import Image

    from .stream import MEMORY_SHARE, available_memory, bytes_needed

    files = list_images(path)
    reader = files.reader()
    sizes, modes, problems = Counter(), Counter(), []
    for name in files.names:
        try:
            with Image.open(io.BytesIO(reader.read(name))) as im:
                sizes[im.size] += 1
                modes[im.mode] += 1
                why = mode_problem(im)
                if why:
                    problems.append(f"{files.label(name)} is {why}")
        except Exception as exc:  # noqa: BLE001 - every unreadable header is one listed line
            problems.append(f"{files.label(name)} cannot be read as an image ({type(exc).__name__})")
    (w, h), _ = sizes.most_common(1)[0] if sizes else ((0, 0), 0)
    size = size or (w if w == h else min(w, h))
    channels = channels or (1 if set(modes) == {"L"} else 3)
    need, avail = bytes_needed(len(files), size, channels), available_memory()
    counts = Counter(files.labels.tolist())
    return {"path": str(files.root), "images": len(files), "kind": "zip" if files.is_zip else "folder",
            "resolutions": {f"{a}x{b}": n for (a, b), n in sizes.most_common()},
            "modes": dict(modes.most_common()),
            "classes": {c: counts.get(i, 0) for i, c in enumerate(files.classes)},
            "train_size": size, "channels": channels, "memory_uint8_bytes": need,
            "memory_float32_bytes": need * 4, "available_bytes": avail,
            "streams_by_default": need > MEMORY_SHARE * avail, "problems": problems}


def format_info(d: dict) -> str:
    gib = 2 ** 30
    res = ", ".join(f"{k} ({v:,})" for k, v in list(d["resolutions"].items())[:5])
    more = f", and {len(d['resolutions']) - 5} more sizes" if len(d["resolutions"]) > 5 else ""
    classes = d["classes"]
    cls = ("none (one unlabelled set)" if len(classes) <= 1 else
           f"{len(classes)}: " + ", ".join(f"{c} ({n:,})" for c, n in list(classes.items())[:20])
           + (", ..." if len(classes) > 20 else ""))
    lines = [f"{d['kind']} {d['path']}",
             f"images:      {d['images']:,}",
             f"resolution:  {res}{more}",
             "modes:       " + ", ".join(f"{k} ({v:,})" for k, v in d["modes"].items()),
             f"classes:     {cls}",
             f"memory:      {d['memory_uint8_bytes'] / gib:.2f} GiB as uint8 at {d['train_size']}x{d['train_size']}x"
             f"{d['channels']} (float32 would be {d['memory_float32_bytes'] / gib:.2f} GiB); "
             f"{d['available_bytes'] / gib:.1f} GiB available",
             f"training:    data.stream=auto would {'stream it from disk' if d['streams_by_default'] else 'hold it in memory'}"]
    if d["problems"]:
        lines.append(f"problems:    {len(d['problems'])} files gankit cannot use (gankit data prepare skips them):")
        lines += [f"  {p}" for p in d["problems"]]
    return "\n".join(lines)
