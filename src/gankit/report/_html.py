"""The pieces of a self-contained page: escaping, data URIs, plots (matplotlib, Agg), tables and the page shell.

Every image is inlined as a ``data:`` URI and the only script is the sample slider's few lines, so a page opens
offline, from an e-mail attachment or a CI artefact, exactly as it was written.
"""
from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Iterable, Optional

PLOT_DPI = 80
MAX_POINTS = 4000                     # points drawn per curve
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
           "#bcbd22")


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def img(data: bytes, alt: str, cls: str = "", mime: str = "image/png") -> str:
    return f'<img class="{cls}" alt="{esc(alt)}" src="{data_uri(data, mime)}">'


def file_img(path: Path, alt: str, cls: str = "") -> str:
    mime = "image/svg+xml" if path.suffix.lower() == ".svg" else "image/png"
    return img(path.read_bytes(), alt, cls, mime)


def tensor_png(images, nrow: Optional[int] = None) -> bytes:
    """PNG bytes of a grid of images (N, C, H, W) in [-1, 1] (or one image (C, H, W))."""
    import torch
    from PIL import Image
    from torchvision.utils import make_grid

    x = images.detach().float().cpu()
    x = x[None] if x.dim() == 3 else x
    grid = make_grid(x.add(1).div(2).clamp(0, 1), nrow=nrow or max(1, int(math.sqrt(x.shape[0]))), padding=2)
    pixels = grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()
    return _png(Image.fromarray(pixels))


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def figure_png(fig) -> bytes:
    """PNG bytes of a matplotlib figure (closed), with a 128-colour palette: line plots stay sharp and small."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PLOT_DPI, bbox_inches="tight")
    _plt().close(fig)
    buf.seek(0)
    with Image.open(buf) as im:
        return _png(im.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT))


def _log_scale_fits(values: Iterable[float]) -> bool:
    v = [x for x in values if math.isfinite(x)]
    return bool(v) and min(v) > 0 and max(v) / min(v) > 30


def plot_grid(panels: list, title: str = "", xlabel: str = "real images seen", marks: Iterable = (),
              ncols: int = 3) -> bytes:
    """Small multiples: ``panels`` is [(panel title, {label: (xs, ys)}, note or None)]; every panel shares the
    x axis. ``marks`` are (x, label) drawn as dashed vertical lines (health warnings)."""
    plt = _plt()
    marks = list(marks)
    ncols = max(1, min(ncols, len(panels)))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 2.9 * nrows), squeeze=False, sharex=True)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (name, series, note) in zip(axes.flat, panels):
        values = []
        for i, (label, (xs, ys)) in enumerate(series.items()):
            if len(xs) > MAX_POINTS:  # a long run: every k-th logged row is plenty for a 4-inch panel
                k = math.ceil(len(xs) / MAX_POINTS)
                xs, ys = xs[::k] + xs[-1:], ys[::k] + ys[-1:]
            style = "o-" if len(xs) < 25 else "-"
            ax.plot(xs, ys, style, color=COLOURS[i % len(COLOURS)], label=str(label), lw=1.3, ms=3)
            values += ys
        for x, label in marks:
            ax.axvline(x, color="#d62728", ls="--", lw=0.8, alpha=0.7)
        if _log_scale_fits(values):
            ax.set_yscale("log")
        ax.set_title(name + (f"\n{note}" if note else ""), fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        if len(series) > 1:
            ax.legend(fontsize=7, loc="best")
    for ax in axes[-1]:
        ax.set_xlabel(xlabel, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return figure_png(fig)


def histogram_png(values: dict, title: str, xlabel: str) -> bytes:
    """Overlaid histograms of {label: 1-D array}."""
    import numpy as np

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.0))
    arrays = {k: np.asarray(v, dtype=float).ravel() for k, v in values.items()}
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays.values()]) if arrays else np.zeros(1)
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    bins = np.linspace(lo, hi if hi > lo else lo + 1, 41)
    for i, (label, a) in enumerate(arrays.items()):
        ax.hist(a[np.isfinite(a)], bins=bins, alpha=0.5, color=COLOURS[i % len(COLOURS)],
                label=f"{label} (mean {np.nanmean(a):.3g})")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return figure_png(fig)


def table(header: list, rows: list, cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, Raw) else esc(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


class Raw(str):
    """Markup that `table` inserts as it is (already escaped)."""


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4g}" if (abs(v) < 1e-3 and v != 0) or abs(v) >= 1e5 else f"{v:.4f}".rstrip("0").rstrip(".")
    return str(v)


def section(sid: str, title: str, body: str, note: str = "") -> str:
    extra = f'<p class="note">{esc(note)}</p>' if note else ""
    return f'<section id="{sid}" class="panel"><h2>{esc(title)}</h2>{extra}{body}</section>\n'


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d1f23}
header{background:#1d2733;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c9d3de;font-size:13px}
nav{padding:8px 24px;background:#e9edf2;font-size:13px}nav a{margin-right:12px;color:#1d4f91}
main{padding:12px 24px}.panel{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:12px 16px;
margin:0 0 14px}h2{font-size:16px;margin:0 0 8px}h3{font-size:14px;margin:10px 0 6px}
.note{color:#5b6572;font-size:13px;margin:4px 0 8px}pre{background:#f3f5f7;padding:8px;overflow:auto;font-size:12px;
max-height:420px}table{border-collapse:collapse;font-size:13px;margin:4px 0 8px}
th,td{border:1px solid #dde2e8;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f0f3f6}
img.plot{max-width:100%}img.grid{image-rendering:pixelated;width:420px;max-width:100%}
.timeline input{width:420px;max-width:100%}.warn{color:#a4260b}.slide{display:none}.slide.on{display:block}
"""

SLIDER_JS = """
document.querySelectorAll('.timeline').forEach(function (t) {
  var slides = t.querySelectorAll('.slide'), input = t.querySelector('input'), out = t.querySelector('output');
  function show(i) {
    slides.forEach(function (s, k) { s.classList.toggle('on', k === i); });
    out.textContent = slides[i].getAttribute('data-label') + ' (' + (i + 1) + ' of ' + slides.length + ')';
  }
  input.addEventListener('input', function () { show(parseInt(input.value, 10)); });
  show(parseInt(input.value, 10));
});
"""


def timeline(slides: list, tid: str = "timeline") -> str:
    """A slider over [(label, <img> markup)], starting on the last one."""
    if not slides:
        return '<p class="note">no sample grids in this run folder yet</p>'
    last = len(slides) - 1
    items = "".join(f'<div class="slide" data-label="{esc(label)}">{markup}</div>' for label, markup in slides)
    return (f'<div class="timeline" id="{tid}"><input type="range" min="0" max="{last}" value="{last}" '
            f'aria-label="sample grid"> <output></output>{items}</div>')


def page(title: str, subtitle: str, sections: list) -> str:
    """The whole document; ``sections`` is [(id, title, markup)] as `section` builds them (nav from ids)."""
    nav = "".join(f'<a href="#{sid}">{esc(t)}</a>' for sid, t, _ in sections)
    body = "".join(markup for _, _, markup in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{esc(title)}</title><style>{CSS}</style></head><body>'
            f'<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header><nav>{nav}</nav><main>\n{body}</main>'
            f'<script>{SLIDER_JS}</script></body></html>\n')
