"""gankit report and gankit compare: self-contained pages of run folders, written by training too."""
from __future__ import annotations

import json
import re
import shutil

import pytest
import torch

import gankit
from gankit.cli import main
from gankit.modes.gan import GanMode
from gankit.report import compare, page
from gankit.report._folder import read_run

pytestmark = pytest.mark.report

RUN = ["digits-dcgan", "--device", "cpu", "--set", "model.width_g=8", "--set", "model.width_d=8", "--set",
       "model.z_dim=8", "--set", "train.batch_size=16", "--set", "train.progress=false", "--set",
       "train.grid_size=4", "--set", "train.tensorboard=false", "--set", "train.log_every=5", "--set",
       "model.codes=0", "--set", "data.limit=160"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished tiny runs on the bundled digits (one with an evaluation file), trained once per module."""
    from gankit.metrics.classifier import RECIPE, DomainClassifier, save_classifier

    root = tmp_path_factory.mktemp("runs")
    mp = pytest.MonkeyPatch()
    mp.setenv("GANKIT_CACHE", str(root / "cache"))
    mp.delenv("GANKIT_INCEPTION_WEIGHTS", raising=False)
    torch.manual_seed(0)
    save_classifier("digits", DomainClassifier(1, 28, 10).eval(),
                    {"dataset": "digits", "test_accuracy": 0.1, "recipe": RECIPE,
                     "classes": [str(i) for i in range(10)], "image_shape": [1, 28, 28]})
    a, b = root / "a", root / "b"
    assert main(["train", *RUN, "--epochs", "2", "--run-dir", str(a), "--set", "eval.every=160", "--set",
                 "eval.n=40", "--set", "eval.metrics=fid,cs", "--set", "train.report=eval"]) == 0
    assert main(["train", *RUN, "--epochs", "3", "--run-dir", str(b), "--set", "objective.name=hinge"]) == 0
    gankit.evaluate(str(a), n=40, metrics=("fid", "cs"))
    (a / "dynamics").mkdir()
    shutil.copy(a / "samples" / "epoch_001.png", a / "dynamics" / "kernel.png")
    (a / "dynamics" / "kernel.json").write_text(json.dumps({"effective_rank": 3.5}))
    assert main(["report", str(a)]) == 0  # again, now with the evaluation file and the dynamics
    yield a, b
    mp.undo()


def test_training_writes_a_self_contained_report_with_every_section(runs):
    a, b = runs
    for run in (a, b):
        html = (run / "report.html").read_text()
        for sid in page.SECTIONS:
            assert f'<section id="{sid}"' in html
        assert not re.search(r'(src|href)="(?!data:|#)', html)  # every image inline, every link in-page
        assert "<link" not in html and "http://" not in html and "https://" not in html
    html = (a / "report.html").read_text()
    assert html.count('class="slide"') == len(list((a / "samples").glob("*.png"))) == 3  # epochs 0, 1, 2
    assert "command: " not in html and "gankit train digits-dcgan" in html  # the command line, from log.txt
    assert "fid" in html and "95% interval" in html and "floor (real vs real)" in html  # eval/*.json, provenance
    assert "Evaluations during training" in html  # eval.every rows
    assert "kernel.png" in html and "effective_rank" in html  # dynamics files
    assert "D&#x27;s outputs at the checkpoint" in html and "512 random training images of digits" in html
    assert "learning rates" in html


def test_report_after_every_evaluation_and_never_fatal(tmp_path, monkeypatch, capsys):
    written = []
    real = page.write_report
    monkeypatch.setattr(page, "write_report", lambda run_dir, out=None, panels=True: written.append(1) or
                        real(run_dir, out, panels))
    run = tmp_path / "run"
    assert main(["train", *RUN, "--epochs", "1", "--run-dir", str(run), "--set", "train.report=end"]) == 0
    assert written == [1] and (run / "report.html").is_file()

    def broken(*args, **kwargs):
        raise RuntimeError("plotting exploded")

    monkeypatch.setattr(page, "render", broken)
    run2 = tmp_path / "run2"
    assert main(["train", *RUN, "--epochs", "1", "--run-dir", str(run2)]) == 0  # the run survives
    err = capsys.readouterr().err
    assert "the run report could not be written (RuntimeError: plotting exploded)" in err
    assert f"gankit report {run2}" in err
    assert sorted(p.name for p in (run2 / "checkpoints").glob("*.json"))  # checkpoints intact
    assert not (run2 / "report.html").exists()
    run3 = tmp_path / "run3"
    assert main(["train", *RUN, "--epochs", "1", "--run-dir", str(run3), "--set", "train.report=none"]) == 0
    assert not (run3 / "report.html").exists()
    assert main(["train", *RUN, "--run-dir", str(tmp_path / "x"), "--set", "train.report=always"]) == 2
    assert "train.report must be none, end or eval" in capsys.readouterr().err


def test_a_broken_section_is_reported_in_the_page(runs, tmp_path, monkeypatch):
    a, _ = runs
    monkeypatch.setattr(page, "_losses", lambda run: 1 / 0)
    out = page.write_report(a, tmp_path / "r.html")
    html = out.read_text()
    assert "this section could not be drawn: ZeroDivisionError" in html
    assert '<section id="samples"' in html


def test_cli_report_and_compare(runs, tmp_path, capsys, monkeypatch):
    a, b = runs
    before = sorted(p.relative_to(a) for p in a.rglob("*"))
    out = tmp_path / "mine.html"
    assert main(["report", str(a), "--out", str(out)]) == 0
    assert out.is_file() and f"wrote {out}" in capsys.readouterr().out
    assert sorted(p.relative_to(a) for p in a.rglob("*")) == before  # --out: nothing written in the run folder

    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(a), str(b)]) == 0
    text = capsys.readouterr().out
    assert (tmp_path / "compare.html").is_file()
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["run", "images", "steps"] and "fid (at images)" in lines[0]
    assert lines[1].startswith("a ") and lines[2].startswith("b ")
    diffs = [line for line in lines if line.startswith("b vs a: ")]
    assert len(diffs) == 1 and "objective.name: 'non-saturating' -> 'hinge'" in diffs[0]
    assert "train.epochs: 2.0 -> 3.0" in diffs[0] and "eval.every: 160 -> 0" in diffs[0]
    html = (tmp_path / "compare.html").read_text()
    for sid in compare.SECTIONS:
        assert f'<section id="{sid}"' in html
    assert not re.search(r'(src|href)="(?!data:|#)', html)
    assert "objective.name: &#x27;non-saturating&#x27; -&gt; &#x27;hinge&#x27;" in html


def test_compare_reads_every_evaluation_source(runs):
    a, b = runs
    ev = compare.evaluations(read_run(a))
    sources = {p[4] for p in ev["fid"]}
    assert "during training" in sources and any(s.startswith("eval/") for s in sources)
    assert [p[0] for p in ev["fid"]] == sorted(p[0] for p in ev["fid"])
    assert compare.evaluations(read_run(b)) == {}


@pytest.mark.parametrize("args, message", [
    (["report", "/nonexistent/run"], "is not a folder"),
    (["compare", "{a}", "{a}"], "given more than once"),
    (["compare", "{a}", "--out", "{tmp}"], "is a folder"),
    (["compare", *[f"/r{i}" for i in range(11)]], "at most 10 runs"),
    (["report", "{tmp}"], "not a gankit run folder"),
])
def test_bad_input_is_one_line(runs, tmp_path, capsys, args, message):
    a, _ = runs
    args = [x.format(a=a, tmp=tmp_path) for x in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_damaged_folder_still_reads(runs, tmp_path):
    a, _ = runs
    broken = tmp_path / "broken"
    shutil.copytree(a, broken)
    with open(broken / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "images"\n')  # torn line
    (broken / "eval" / "junk.json").write_text("[1, 2]")
    shutil.rmtree(broken / "samples")
    html = page.write_report(broken).read_text()
    assert "1 unreadable line(s) skipped" in html and "eval/junk.json is not an evaluation result" in html
    assert "no sample grids" in html


def test_health_flags_at_their_step(runs, tmp_path):
    a, _ = runs
    run = tmp_path / "sick"
    shutil.copytree(a, run)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if "health/mode_collapse" in r]
    for r in train[2:4]:
        r["health/mode_collapse"] = 1.0
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with open(run / "log.txt", "a") as f:
        f.write(f"2026-01-01 00:00:00 health: mode collapse at step {train[2]['step']} (x images): look\n")
    folder = read_run(run)
    assert folder.flag_onsets() == [(train[2]["step"], train[2]["images"], "health/mode_collapse", 2)]
    assert folder.events()[-1][1] == train[2]["step"]
    html = page.render(folder, panels=False)
    assert "mode_collapse" in html and "2 logged rows" in html


def test_a_modes_own_panel_appears_without_the_report_knowing_the_mode(runs, tmp_path):
    """A later mode (CycleGAN's translations, progressive stages) adds its panel through Mode.report_panels."""
    from gankit.modes import Panel
    from gankit.modes.registry import MODES

    @gankit.register_mode
    class Translating(GanMode):
        name = "report-test-translating"

        def report_panels(self, run):
            x = run.sample(4, seed=0)
            return [Panel("Translations A to B", "rows: input, translation", images=[("A to B", torch.cat([x, -x]), 4)],
                          table=[{"stage": 1, "resolution": 28}])]

    try:
        a, _ = runs
        run = tmp_path / "translating"
        shutil.copytree(a, run)
        for path in (run / "checkpoints").glob("*.json"):
            meta = json.loads(path.read_text())
            meta["config"]["mode"] = Translating.name
            path.write_text(json.dumps(meta))
        config = run / "config.yaml"
        config.write_text(config.read_text().replace("mode: gan", f"mode: {Translating.name}"))
        html = page.write_report(run).read_text()
        assert f"Mode: {Translating.name}" in html
        assert "Translations A to B" in html and "rows: input, translation" in html and "resolution" in html
    finally:
        MODES.pop(Translating.name, None)


# ---- in a real browser ---------------------------------------------------------------------------------
# Written into a copy of the page, first thing in <head>: records script errors, console.error calls and
# images that failed to load or decode, then puts them on <html data-errors=...> for --dump-dom to show.
TRAP = """<script>(function () {
  var errs = [], ce = console.error;
  window.addEventListener('error', function (e) {
    errs.push(e.message || ('failed to load ' + (e.target && e.target.tagName)));
  }, true);
  console.error = function () { errs.push([].join.call(arguments, ' ')); ce.apply(console, arguments); };
  window.addEventListener('load', function () {
    [].forEach.call(document.images, function (im) { if (!im.naturalWidth) errs.push('undecoded image ' + im.alt); });
    document.documentElement.setAttribute('data-errors', JSON.stringify(errs));
    document.documentElement.setAttribute('data-images', String(document.images.length));
  });
})();</script>"""


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium); the browser test needs it")


def _browser(chromium, *args, timeout=120):
    import subprocess

    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           "--disable-extensions", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("which", ["report", "compare"])
def test_pages_in_headless_chromium(runs, tmp_path, which):
    """Every section is in the browser's DOM, the slider's script ran, no console errors, a non-blank screenshot."""
    from PIL import Image, ImageStat

    chromium = _chromium()
    a, b = runs
    if which == "report":
        path, sections = page.write_report(a, tmp_path / "report.html"), page.SECTIONS
    else:
        path, sections = compare.write_compare([a, b], tmp_path / "compare.html")[0], compare.SECTIONS
    url = path.resolve().as_uri()

    plain = _browser(chromium, "--dump-dom", url)  # the page as written: it logs nothing at all
    assert plain.returncode == 0, plain.stderr[-2000:]
    console = [line for line in plain.stderr.splitlines() if "CONSOLE" in line]
    assert console == []
    dom = plain.stdout
    for sid in sections:
        assert re.search(rf'<section id="{sid}"', dom), f"section {sid} missing from the DOM"
    if which == "report":
        assert "<output>epoch 2 (3 of 3)</output>" in dom  # the slider's script ran: the last grid shows
        assert dom.count('class="slide on"') == 1

    trapped = tmp_path / f"trapped-{which}.html"
    trapped.write_text(path.read_text().replace("<head>", "<head>" + TRAP, 1))
    seen = _browser(chromium, "--dump-dom", trapped.resolve().as_uri())
    errors = re.search(r'data-errors="([^"]*)"', seen.stdout)
    assert errors is not None, "the page's load event never fired"
    assert json.loads(errors.group(1).replace("&quot;", '"')) == []
    assert int(re.search(r'data-images="(\d+)"', seen.stdout).group(1)) >= 3

    shot = tmp_path / f"{which}.png"
    taken = _browser(chromium, f"--screenshot={shot}", "--window-size=1200,1600", url)
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    with Image.open(shot) as im:
        grey = im.convert("L")
        assert im.size == (1200, 1600)
        assert ImageStat.Stat(grey).stddev[0] > 20  # not one flat colour
        assert len(grey.getcolors(256) or []) > 50
        assert grey.getextrema()[0] < 60  # dark pixels exist: text and plots drew


def test_the_browser_check_sees_errors(tmp_path):
    """The checks above can fail: a page with a script error and a broken image trips both of them."""
    chromium = _chromium()
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head></head><body><img alt="x" src="data:image/png;base64,AAAA">'
                   '<script>undefinedFunction();</script></body></html>')
    plain = _browser(chromium, "--dump-dom", bad.resolve().as_uri())
    assert any("CONSOLE" in line and "undefinedFunction" in line for line in plain.stderr.splitlines())
    trapped = tmp_path / "trapped.html"
    trapped.write_text(bad.read_text().replace("<head>", "<head>" + TRAP, 1))
    seen = _browser(chromium, "--dump-dom", trapped.resolve().as_uri())
    errors = json.loads(re.search(r'data-errors="([^"]*)"', seen.stdout).group(1).replace("&quot;", '"'))
    assert any("undefinedFunction" in e for e in errors) and any("failed to load IMG" in e or "undecoded" in e
                                                                  for e in errors)


@pytest.mark.parametrize("sets, panels", [
    (["model.conditional=projection"], ["D&#x27;s outputs at the checkpoint", "Samples by class"]),
    (["model.codes=4", "model.code_kind=info", "objective.info_weight=1"], ["D&#x27;s outputs at the checkpoint"]),
    (["model.codes=4"], ["D&#x27;s outputs at the checkpoint"]),  # D is told each real image's k-means cluster
])
def test_the_gan_modes_panels_for_every_conditioning(tmp_path, sets, panels):
    run = tmp_path / "run"
    i = RUN.index("model.codes=0")
    args = RUN[:i - 1] + RUN[i + 1:]  # without --set model.codes=0
    assert main(["train", *args, "--epochs", "1", "--run-dir", str(run), *[x for s in sets for x in ("--set", s)]]) == 0
    html = (run / "report.html").read_text()
    mode = html[html.find('<section id="mode"'):]
    assert "could not be drawn" not in mode
    assert re.findall(r"<h3>([^<]*)</h3>", mode) == panels
    assert "512 random training images of digits" in mode
