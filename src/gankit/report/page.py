"""``gankit report RUN``: one self-contained HTML page that shows a run at a glance.

Sections (each a ``<section>`` with a fixed id, so tests and links can find them):

| id | what |
|---|---|
| ``config`` | the command lines that trained the run (log.txt), the resolved config.yaml, the checkpoint's summary |
| ``losses`` | one curve per loss term (``loss/*``), health warnings marked where they fired |
| ``d-outputs`` | D's outputs on real and generated images during training (keys ending in ``/real``, ``/fake``) |
| ``optimisation`` | gradient norms, learning rates (logged, or the configured constants) and images/s |
| ``samples`` | the fixed-noise sample grids, one per epoch, with a slider |
| ``evaluation`` | RUN/eval/*.json results with intervals, floor and provenance; evaluations during training |
| ``health`` | every health flag at the step it turned on, and the warnings, stops and resumes in log.txt |
| ``dynamics`` | images and JSON summaries under RUN/dynamics/ |
| ``mode`` | the mode's own panels (`gankit.modes.Mode.report_panels`) |

The page reads the run folder only (and, for the mode's panels, the checkpoint through `gankit.run`); nothing in
the folder but report.html is written. A panel that fails says so in its section and the rest of the page stays.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from ..atomic import atomic_write_text
from ..errors import GankitError
from ._folder import EVAL_PREFIX, RunFolder, read_run
from ._html import Raw, esc, file_img, fmt, histogram_png, img, page, plot_grid, section, table, tensor_png, timeline

MAX_GRIDS = 120                       # sample grids inlined in the timeline (evenly thinned beyond)
SECTIONS = ("config", "losses", "d-outputs", "optimisation", "samples", "evaluation", "health", "dynamics", "mode")
TRAIN_KEYS = ("loss/", "grad_norm/", "lr/", "speed/")


def write_report(run_dir, out: Optional[Path] = None, panels: bool = True) -> Path:
    """Write RUN/report.html (or ``out``) for the run folder ``run_dir``; returns its path."""
    run = read_run(run_dir)
    out = Path(out) if out is not None else run.path / "report.html"
    html = render(run, panels)
    try:
        atomic_write_text(out, html)
    except OSError as exc:
        raise GankitError(f"cannot write {out} ({exc.strerror or exc}); choose another path with --out") from None
    return out


def render(run: RunFolder, panels: bool = True) -> str:
    builders = (("config", "Config and command line", _config), ("losses", "Losses per term", _losses),
                ("d-outputs", "D's outputs on real and generated images", _d_outputs),
                ("optimisation", "Gradient norms, learning rates and images/s", _optimisation),
                ("samples", "Sample timeline", _samples), ("evaluation", "Evaluation", _evaluation),
                ("health", "Health warnings", _health), ("dynamics", "Dynamics", _dynamics),
                ("mode", f"Mode: {run.config.get('mode', '?')}", lambda r: _mode(r, panels)))
    sections = []
    for sid, title, build in builders:
        try:
            body = build(run)
        except Exception as exc:  # one broken section must not cost the page
            body = f'<p class="warn">this section could not be drawn: {esc(type(exc).__name__)}: {esc(exc)}</p>'
        sections.append((sid, title, section(sid, title, body)))
    p = run.meta["progress"] if run.meta else {}
    subtitle = (f"{run.path} · mode {run.config.get('mode', '?')} · {p.get('images', 0):,} images, "
                f"step {p.get('step', 0):,}, epoch {p.get('epoch', 0)} at the latest checkpoint"
                if p else f"{run.path} · no checkpoint yet")
    return page(f"gankit report: {run.name}", subtitle, sections)


# ---- sections ----------------------------------------------------------------------------------------
def _config(run: RunFolder) -> str:
    commands = run.commands()
    if commands:
        cmd = table(["started", "command line"], [[t, Raw(f"<code>{esc(c)}</code>")] for t, c in commands])
    else:
        cmd = '<p class="note">no command line recorded in log.txt (runs from before gankit recorded them)</p>'
    parts = [f"<h3>Command line</h3>{cmd}"]
    if run.meta:
        m, speed = run.meta, run.meta.get("speed") or {}
        rows = [["checkpoint", run.checkpoint.name], ["gankit version", m.get("gankit_version")],
                ["run id", m.get("run_id")], ["dataset", m.get("dataset")],
                ["image shape", "x".join(str(s) for s in m.get("image_shape", []))],
                ["progress", ", ".join(f"{k} {v}" for k, v in m.get("progress", {}).items()
                                       if not isinstance(v, (dict, list)))],
                ["precision", speed.get("precision")], ["device", speed.get("device")]]
        parts.append("<h3>Latest checkpoint</h3>" + table(["", "value"], [r for r in rows if r[1] not in (None, "")]))
    text = (run.path / "config.yaml").read_text(errors="replace") if (run.path / "config.yaml").is_file() else ""
    parts.append(f"<h3>Resolved config (config.yaml)</h3><pre>{esc(text) or 'no config.yaml'}</pre>")
    if run.notes:
        parts.append("".join(f'<p class="warn">{esc(n)}</p>' for n in run.notes))
    return "".join(parts)


def _marks(run: RunFolder) -> list:
    return [(images, flag) for _, images, flag, _ in run.flag_onsets()]


def _curves(run: RunFolder, keys: list, note=None) -> list:
    return [(k, {k.split("/", 1)[-1]: run.series(k)}, note(k) if note else None) for k in keys]


def _losses(run: RunFolder) -> str:
    keys = run.keys("loss/")
    if not keys:
        return '<p class="note">no logged losses yet (metrics.jsonl has no loss/* values)</p>'
    png = plot_grid(_curves(run, keys), marks=_marks(run))
    return (img(png, "loss curves", "plot") + '<p class="note">One panel per term, unweighted, as logged every '
            'train.log_every G steps; dashed red lines: health warnings (see Health warnings).</p>')


def d_output_keys(run: RunFolder) -> list:
    """Keys of D's outputs: statistics named <something>/real and <something>/fake (the gan mode's d/real)."""
    return [k for k in run.keys() if k.rsplit("/", 1)[-1] in ("real", "fake") and not k.startswith(TRAIN_KEYS)]


def _d_outputs(run: RunFolder) -> str:
    keys = d_output_keys(run)
    if not keys:
        return '<p class="note">this run logged no D outputs (no */real or */fake statistics)</p>'
    groups: dict = {}
    for k in keys:
        groups.setdefault(k.rsplit("/", 1)[0], {})[k.rsplit("/", 1)[1]] = run.series(k)
    png = plot_grid([(f"{g}: mean over the batch", s, None) for g, s in groups.items()], marks=_marks(run), ncols=2)
    return (img(png, "D outputs", "plot") + '<p class="note">Mean of D\'s output (in the objective\'s domain: a '
            'probability, or a critic value) on the real and the generated batch of a logged D step. The Mode '
            'section shows their distribution at the checkpoint.</p>')


def _optimisation(run: RunFolder) -> str:
    panels = _curves(run, run.keys("grad_norm/"))
    lrs = run.keys("lr/")
    note = ""
    if lrs:
        panels += _curves(run, lrs)
    else:
        o = run.config.get("optim") or {}
        xs = [r["images"] for r in run.rows]
        const = {k: (xs, [float(o[k])] * len(xs)) for k in ("lr_g", "lr_d") if isinstance(o.get(k), (int, float))}
        if const and xs:
            panels.append(("learning rates", const, "constant: no schedule or rollback logged"))
        note = "Learning rates are logged (lr/*) only when a schedule or a rollback changes them; "
    panels += _curves(run, run.keys("speed/"))
    if not panels:
        return '<p class="note">no optimisation statistics logged yet</p>'
    return (img(plot_grid(panels, marks=_marks(run)), "gradient norms, learning rates, images/s", "plot") +
            f'<p class="note">{esc(note)}gradient norms are measured before the optimiser step; images/s counts '
            f'real images between logged steps (sample grids, checkpoints and evaluations included).</p>')


def _samples(run: RunFolder) -> str:
    grids = run.samples
    note = ""
    if len(grids) > MAX_GRIDS:
        step = (len(grids) - 1) / (MAX_GRIDS - 1)
        grids = [grids[round(i * step)] for i in range(MAX_GRIDS)]
        note = f'<p class="note">{len(run.samples)} grids; {MAX_GRIDS} evenly spaced ones shown.</p>'
    slides = [(label, file_img(path, f"samples, {label}", "grid")) for label, path in grids]
    return (timeline(slides) + note + '<p class="note">The same fixed noise every epoch (sampling weights: the EMA '
                                      'copy where the run keeps one). Drag the slider to move through training.</p>')


def _evaluation(run: RunFolder) -> str:
    from ..metrics.registry import METRICS  # the metric names' headline keys and which way is better

    parts = []
    if run.evals:
        for path, result in run.evals:
            parts.append(_eval_table(path, result, METRICS))
    else:
        parts.append(f'<p class="note">no evaluation results in {esc(run.path / "eval")}; write one with '
                     f'<code>gankit evaluate {esc(run.path)}</code></p>')
    if run.eval_rows:
        keys = sorted({k for r in run.eval_rows for k in r if k.startswith(EVAL_PREFIX)})
        rows = [[f"{r['images']:,}", r.get("step")] + [fmt(r.get(k)) for k in keys] for r in run.eval_rows]
        parts.append("<h3>Evaluations during training (eval.every)</h3>" +
                     table(["images seen", "step"] + [k[len(EVAL_PREFIX):] for k in keys], rows))
        series = [(k[len(EVAL_PREFIX):], {k[len(EVAL_PREFIX):]: run.series(k, run.eval_rows)}, None) for k in keys]
        parts.append(img(plot_grid(series), "evaluations during training", "plot"))
        parts.append('<p class="note">During training: no bootstrap interval and no floor (see the config\'s eval '
                     'section for n and seed).</p>')
    if run.best:
        parts.append(f"<p>Best checkpoint so far by {esc(run.best.get('key'))}: {fmt(run.best.get('value'))} at "
                     f"{run.best.get('images', 0):,} images (<code>best/{esc(run.best.get('checkpoint'))}</code>)</p>")
    return "".join(parts)


def _eval_table(path: Path, result: dict, registry: dict) -> str:
    p, floor = result["provenance"], result.get("floor") or {}
    names = [m["name"] if isinstance(m, dict) else str(m) for m in p.get("metrics", [])]
    rows = []
    for name in names:
        m = registry.get(name)
        keys = zip(m.keys, m.better) if m else ((k, "?") for k in result if k == name)
        for key, better in keys:
            if key not in result:
                continue
            if f"{key}_ci_low" in result:
                ci = f"[{fmt(result[key + '_ci_low'])}, {fmt(result[key + '_ci_high'])}]"
            else:
                ci = f"± {fmt(result[key + '_std'])}" if f"{key}_std" in result else "-"
            rows.append([key, fmt(result[key]), ci, fmt(floor.get(key)), {"one": "near 1"}.get(better, better)])
    extractor = f"{p.get('extractor', '?')} ({str(p.get('extractor_hash', ''))[:12]})"
    floor_of = f"real vs real, {p['floor']}" if p.get("floor") else "none"
    prov = (f"extractor {extractor}; n={p.get('n_images', p.get('n'))} generated vs {p.get('n_reference', '?')} "
            f"{p.get('reference_split', '')} images; floor: {floor_of}"
            f"; seed {p.get('seed')}; intervals: {p.get('ci', '-')}; gankit {p.get('gankit_version', '?')}")
    seen = p.get("images_seen")
    head = f"<h3>{esc(path.name)}: {f'{seen:,} images seen' if isinstance(seen, int) else ''}</h3>"
    notes = "".join(f'<p class="note">note: {esc(n)}</p>' for n in result.get("notes", []))
    return (head + table(["metric", "value", "95% interval", "floor (real vs real)", "better"], rows, "eval") +
            f'<p class="note">provenance: {esc(prov)}</p>{notes}' +
            f"<details><summary>full provenance</summary><pre>{esc(json.dumps(p, indent=1))}</pre></details>")


def _health(run: RunFolder) -> str:
    onsets = run.flag_onsets()
    parts = []
    if onsets:
        rows = [[f"{step:,}", f"{images:,}", flag[len('health/'):],
                 f"{n} logged rows" if flag != "health/rollback" else f"rollback {n}"]
                for step, images, flag, n in onsets]
        parts.append("<h3>Flags (metrics.jsonl)</h3>" + table(["step", "images", "warning", "lasted"], rows, "warn"))
    else:
        flags = run.keys("health/")
        parts.append(f'<p class="note">no health flag turned on ({", ".join(f[7:] for f in flags) or "none logged"}'
                     f' checked on every logged step).</p>')
    events = run.events()
    if events:
        rows = [[t, "-" if step is None else f"{step:,}", Raw(f"<code>{esc(text)}</code>")] for t, step, text in events]
        parts.append("<h3>Warnings, stops and resumes (log.txt)</h3>" + table(["time", "step", "message"], rows))
    return "".join(parts)


def _dynamics(run: RunFolder) -> str:
    folder = run.path / "dynamics"
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    shown = []
    for p in files:
        if p.suffix.lower() in (".png", ".svg"):
            shown.append(f"<h3>{esc(p.name)}</h3>{file_img(p, p.name, 'plot')}")
        elif p.suffix.lower() == ".json":
            shown.append(f"<h3>{esc(p.name)}</h3><pre>{esc(p.read_text(errors='replace')[:20000])}</pre>")
    if not shown:
        return (f'<p class="note">no dynamics plots in {esc(folder)}; for example <code>gankit dynamics kernel '
                f'{esc(run.path)} --plot {esc(folder / "kernel.png")}</code> puts one there.</p>')
    return "".join(shown)


def _mode(run: RunFolder, panels: bool) -> str:
    if not panels:
        return '<p class="note">mode panels skipped (--no-panels)</p>'
    if run.checkpoint is None:
        return '<p class="note">no checkpoint yet: the mode\'s panels need one</p>'
    from ..run import load_run

    loaded = load_run(run.path, str(run.checkpoint), device="cpu")
    out = []
    for panel in loaded.mode.report_panels(loaded):
        body = f"<p>{esc(panel.text)}</p>" if panel.text else ""
        for caption, images, nrow in panel.images:
            body += f'<figure>{img(tensor_png(images, nrow), caption, "grid")}<figcaption class="note">' \
                    f'{esc(caption)}</figcaption></figure>'
        if panel.values:
            values = {k: v.detach().cpu().numpy() if hasattr(v, "detach") else v for k, v in panel.values.items()}
            body += img(histogram_png(values, panel.values_title, panel.values_title), panel.title, "plot")
        if panel.table:
            keys = list(panel.table[0])
            body += table(keys, [[fmt(r.get(k)) for k in keys] for r in panel.table])
        out.append(f"<h3>{esc(panel.title)}</h3>{body}")
    return "".join(out) or '<p class="note">this mode adds no panels of its own</p>'
