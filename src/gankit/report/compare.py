"""``gankit compare RUN1 RUN2 ...``: runs side by side on one self-contained page, and as a text table.

Sections: ``runs`` (each run's differences from the first run's config), ``metrics`` (one table: the latest
evaluation of every run with its interval, and where training ended), ``evaluations`` (every evaluation
against real images seen, one line per run: RUN/eval/*.json results and the evaluations during training),
``curves`` (every logged statistic the runs share, overlaid on shared axes) and ``samples`` (each run's latest
grid). Nothing is written into the run folders.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from ..atomic import atomic_write_text
from ..config import diff
from ..errors import GankitError
from ._folder import EVAL_PREFIX, RunFolder, read_run
from ._html import Raw, esc, file_img, fmt, img, page, plot_grid, section, table
from .page import d_output_keys

SECTIONS = ("runs", "metrics", "evaluations", "curves", "samples")
CURVE_PREFIXES = ("loss/", "grad_norm/", "lr/", "speed/", "samples/")
MAX_RUNS = 10


def load_runs(paths: list) -> list:
    if len(paths) < 1:
        raise GankitError("gankit compare needs at least one run folder (usually two or more)")
    if len(paths) > MAX_RUNS:
        raise GankitError(f"gankit compare shows at most {MAX_RUNS} runs on one page, got {len(paths)}; "
                          f"compare fewer at a time")
    runs = [read_run(p) for p in paths]
    seen = [r.path.resolve() for r in runs]
    dupes = {str(p) for p in seen if seen.count(p) > 1}
    if dupes:
        raise GankitError(f"run folder {sorted(dupes)[0]} is given more than once; give each run once")
    return runs


def labels(runs: list) -> list:
    """A short unique label per run: its folder name, or its path where names repeat."""
    names = [r.name for r in runs]
    return [r.name if names.count(r.name) == 1 else str(r.path) for r in runs]


def evaluations(run: RunFolder) -> dict:
    """{headline key: [(images seen, value, ci or None, n, source)]} from eval/*.json and the eval/* rows."""
    from ..metrics.registry import METRICS

    out: dict = {}
    for path, result in run.evals:
        p = result["provenance"]
        for m in p.get("metrics", []):
            metric = METRICS.get(m["name"] if isinstance(m, dict) else str(m))
            for key in metric.keys if metric else ():
                if isinstance(result.get(key), (int, float)):
                    ci = ((result.get(f"{key}_ci_low"), result.get(f"{key}_ci_high"))
                          if f"{key}_ci_low" in result else None)
                    out.setdefault(key, []).append((p.get("images_seen") or 0, float(result[key]), ci,
                                                    p.get("n_images", p.get("n")), f"eval/{path.name}"))
    for r in run.eval_rows:
        for k, v in r.items():
            if k.startswith(EVAL_PREFIX) and isinstance(v, (int, float)):
                n = (run.config.get("eval") or {}).get("n")
                out.setdefault(k[len(EVAL_PREFIX):], []).append((r["images"], float(v), None, n, "during training"))
    return {k: sorted(v, key=lambda e: e[0]) for k, v in out.items()}


def summary(runs: list) -> list:
    """One dict per run: images, steps, last losses, latest value of each evaluation key."""
    rows = []
    for run, label in zip(runs, labels(runs)):
        last = run.rows[-1] if run.rows else {}
        row = {"run": label, "images": (run.meta or {}).get("progress", {}).get("images", last.get("images", 0)),
               "steps": (run.meta or {}).get("progress", {}).get("step", last.get("step", 0))}
        for k in ("loss/d", "loss/g"):
            if k in last:
                row[k] = last[k]
        for key, points in evaluations(run).items():
            images, value, ci, n, source = points[-1]
            row[key] = value
            row[f"{key}_ci"] = ci
            row[f"{key}_at"] = (images, n, source)
        rows.append(row)
    return rows


def compare_text(runs: list) -> str:
    """The terminal's table: one line per run, the first run's config differences after it."""
    rows = summary(runs)
    keys = [k for k in _eval_keys(rows)]
    head = ["run", "images", "steps", "loss/d", "loss/g"] + [f"{k} (at images)" for k in keys]
    lines = []
    for r in rows:
        cells = [r["run"], f"{r['images']:,}", f"{r['steps']:,}", fmt(r.get("loss/d")), fmt(r.get("loss/g"))]
        cells += [f"{fmt(r[k])} ({r[k + '_at'][0]:,})" if k in r else "-" for k in keys]
        lines.append(cells)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *lines)]
    text = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *lines]]
    first = runs[0]
    for run, label in list(zip(runs, labels(runs)))[1:]:
        changes = diff(first.config, run.config)
        text.append(f"{label} vs {labels(runs)[0]}: " + ("; ".join(changes) if changes else "same config"))
    return "\n".join(text)


def _eval_keys(rows: list) -> list:
    keys: dict = {}
    for r in rows:
        for k in r:
            if k.endswith("_at"):
                keys.setdefault(k[:-3], None)
    return list(keys)


def write_compare(paths: list, out: Optional[Path] = None) -> tuple:
    """Write the comparison page of the run folders ``paths`` to ``out`` (default compare.html); returns
    (path, terminal text)."""
    runs = load_runs(list(paths))
    out = Path(out) if out is not None else Path("compare.html")
    if out.is_dir():
        raise GankitError(f"--out {out} is a folder; give a file name such as {out / 'compare.html'}")
    html = render(runs)
    try:
        atomic_write_text(out, html)
    except OSError as exc:
        raise GankitError(f"cannot write {out} ({exc.strerror or exc}); choose another path with --out") from None
    return out, compare_text(runs)


def render(runs: list) -> str:
    names = labels(runs)
    builders = (("runs", "Runs and their config differences", _runs), ("metrics", "Metrics", _metrics),
                ("evaluations", "Evaluations against images seen", _evaluations),
                ("curves", "Training curves (shared axes)", _curves), ("samples", "Latest samples", _samples))
    sections = []
    for sid, title, build in builders:
        try:
            body = build(runs, names)
        except Exception as exc:  # one broken section must not cost the page
            body = f'<p class="warn">this section could not be drawn: {esc(type(exc).__name__)}: {esc(exc)}</p>'
        sections.append((sid, title, section(sid, title, body)))
    return page(f"gankit compare: {len(runs)} runs", " · ".join(names), sections)


def _runs(runs: list, names: list) -> str:
    rows = []
    for i, (run, name) in enumerate(zip(runs, names)):
        changes = diff(runs[0].config, run.config) if i else []
        cmd = run.commands()[-1][1] if run.commands() else "-"
        what = ("the reference: others are listed against it" if i == 0 else
                Raw("<br>".join(f"<code>{esc(c)}</code>" for c in changes) or "same config"))
        rows.append([name, str(run.path), Raw(f"<code>{esc(cmd)}</code>"), what])
    notes = "".join(f'<p class="warn">{esc(n)}: {esc(note)}</p>' for run, n in zip(runs, names) for note in run.notes)
    return table(["run", "folder", "last command line", f"config differences from {names[0]}"], rows) + notes


def _metrics(runs: list, names: list) -> str:
    rows = summary(runs)
    keys = _eval_keys(rows)
    head = ["run", "images trained", "steps", "last loss/d", "last loss/g"]
    for k in keys:
        head += [k, f"{k}: 95% interval", f"{k}: at images (n, source)"]
    body = []
    for r in rows:
        cells = [r["run"], f"{r['images']:,}", f"{r['steps']:,}", fmt(r.get("loss/d")), fmt(r.get("loss/g"))]
        for k in keys:
            ci = r.get(f"{k}_ci")
            at = r.get(f"{k}_at")
            cells += [fmt(r.get(k)), f"[{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "-",
                      f"{at[0]:,} (n={at[1]}, {at[2]})" if at else "-"]
        body.append(cells)
    note = ('<p class="note">The latest evaluation of each run. Values from different n or extractors are not '
            'comparable (FID from few samples is biased upwards); the n and source of each are listed.</p>')
    return table(head, body) + note


def _evaluations(runs: list, names: list) -> str:
    per_run = [evaluations(r) for r in runs]
    keys = list(dict.fromkeys(k for e in per_run for k in e))
    if not keys:
        return ('<p class="note">none of these runs has evaluations (RUN/eval/*.json from gankit evaluate, or '
                'eval.every during training)</p>')
    panels = []
    for key in keys:
        series = {}
        for name, ev in zip(names, per_run):
            if key in ev:
                pts = ev[key]
                series[name] = ([p[0] for p in pts], [p[1] for p in pts])
        ns = sorted({str(p[3]) for ev in per_run for p in ev.get(key, [])})
        panels.append((key, series, f"n = {', '.join(ns)}"))
    rows = [[name, key, f"{p[0]:,}", fmt(p[1]), f"[{fmt(p[2][0])}, {fmt(p[2][1])}]" if p[2] else "-", p[3], p[4]]
            for name, ev in zip(names, per_run) for key in keys for p in ev.get(key, [])]
    return (img(plot_grid(panels, ncols=2), "evaluations against images seen", "plot") +
            "<details><summary>every evaluation</summary>" +
            table(["run", "metric", "images seen", "value", "95% interval", "n", "source"], rows) + "</details>")


def _curves(runs: list, names: list) -> str:
    keys: dict = {}
    for run in runs:
        for k in run.keys():
            if k.startswith(CURVE_PREFIXES) or k in d_output_keys(run):
                keys.setdefault(k, None)
    if not keys:
        return '<p class="note">no logged statistics in these runs yet</p>'
    panels = []
    for k in keys:
        series = {name: run.series(k) for run, name in zip(runs, names) if run.series(k)[0]}
        panels.append((k, series, None if len(series) == len(runs) else f"in {len(series)} of {len(runs)} runs"))
    cols = 3 if len(panels) > 4 else 2
    return (img(plot_grid(panels, ncols=cols), "training curves", "plot") +
            f'<p class="note">{len(panels)} statistics; every panel shares the x axis (real images seen) and each '
            f'run keeps its colour.</p>')


def _samples(runs: list, names: list) -> str:
    cells = []
    for run, name in zip(runs, names):
        if run.samples:
            label, path = run.samples[-1]
            cells.append(f'<figure style="display:inline-block;margin:4px">{file_img(path, name, "grid")}'
                         f'<figcaption class="note">{esc(name)}: {esc(label)}</figcaption></figure>')
    return "".join(cells) or '<p class="note">no sample grids yet</p>'


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)
