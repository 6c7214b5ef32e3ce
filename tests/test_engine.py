"""The run engine: a new game is one file, the engine names no game, runs written before it still work."""
from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest
import torch

import gankit
from gankit.cli import main
from gankit.modes import MODES, ImageBatches
from gankit.nets import MLPDiscriminator, MLPGenerator

SRC = Path(gankit.__file__).parent
FIXTURES = Path(__file__).parent / "fixtures" / "pre_engine"


# ---- a toy game defined here, with nothing changed under src/ -----------------------------------------------

@gankit.register_mode
class TwoCritics(gankit.Mode):
    """One generator against two discriminators whose losses are averaged."""

    name = "test-two-critics"
    sample_part = "G"

    def parts(self) -> dict:
        z, o = self.cfg.model.z_dim, self.cfg.optim
        return {"G": gankit.Part(MLPGenerator(z, self.image_shape, width=16, depth=1), o.lr_g, (0.5, 0.999),
                                 ema=self.cfg.train.ema),
                "D1": gankit.Part(MLPDiscriminator(self.image_shape, width=16, depth=1), o.lr_d),
                "D2": gankit.Part(MLPDiscriminator(self.image_shape, width=8, depth=2), o.lr_d)}

    def batches(self, data, seed):
        return ImageBatches(data, self.cfg.train.batch_size, 1, seed)

    def phases(self, ctx):
        objective = gankit.get_objective("non-saturating")

        def d_inputs(scratch, r):
            x_real = scratch["batch"].x[r]
            z = torch.randn(x_real.shape[0], self.cfg.model.z_dim, generator=ctx.noise)
            scratch["x_fake"] = ctx.nets["G"](z)
            fake = scratch["x_fake"].detach()
            return [(ctx.nets[d](x_real), ctx.nets[d](fake)) for d in ("D1", "D2")]

        def g_inputs(scratch, r):
            return [ctx.nets[d](scratch["x_fake"]) for d in ("D1", "D2")]

        d_term = gankit.Term("d", lambda i: sum(objective.loss_d(*pair) for pair in i) / 2)
        g_term = gankit.Term("g", lambda i: sum(objective.loss_g(d) for d in i) / 2)
        return [gankit.Phase("D", ("D1", "D2"), [d_term], d_inputs),
                gankit.Phase("G", ("G",), [g_term], g_inputs, frozen=("D1", "D2"))]

    def fixed_inputs(self, n, device, generator):
        return (torch.randn(n, self.cfg.model.z_dim, device=device, generator=generator),)

    def draw(self, nets, inputs):
        return nets["G"](*inputs)


def _toy_cfg(epochs: float):
    return gankit.resolve(None, ("mode=test-two-critics", "model.z_dim=8", "train.batch_size=16", "train.log_every=1",
                                "train.progress=false", "train.tensorboard=false", "train.grid_size=4",
                                "train.ema=0.9", "train.precision=fp32", "train.device=cpu"), **{"train.epochs": epochs})


def _rows(run: Path) -> list:
    return [{k: v for k, v in json.loads(line).items() if not k.startswith("speed/")}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_toy_mode_defined_in_a_test_trains_checkpoints_and_resumes_exactly(tmp_path, tiny_data):
    full = gankit.train(_toy_cfg(3), run_dir=tmp_path / "full", data=tiny_data)
    assert set(full.meta["parts"]) == {"G", "D1", "D2"} and full.progress["step"] == 12
    assert any(k.startswith("D2.") for k in full.tensors) and any(k.startswith("G_ema.") for k in full.tensors)
    gankit.train(_toy_cfg(1), run_dir=tmp_path / "part", data=tiny_data)
    gankit.train(_toy_cfg(3), run_dir=tmp_path / "part", data=tiny_data, resume=True, force=True)
    rows = _rows(tmp_path / "full")
    assert len(rows) == 12 and rows == _rows(tmp_path / "part")
    assert {"loss/d", "loss/g", "grad_norm/d1", "grad_norm/d2", "grad_norm/g", "weight_max/d2"} <= set(rows[0])
    x = gankit.load_run(tmp_path / "part").sample(5, seed=1)
    assert x.shape == (5, 1, 28, 28) and torch.equal(x, full.sample(5, seed=1))
    assert MODES["test-two-critics"] is TwoCritics


def test_an_unknown_mode_is_one_line(tmp_path, capsys):
    assert main(["train", "digits-dcgan", "--set", "mode=gam", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gankit: error: unknown mode 'gam' (did you mean \"gan\"?)") and err.count("\n") == 1


# ---- the engine names no part and no game; the package has no import cycle; files stay short -----------------

ENGINE = ["engine/trainer.py", "engine/stepper.py", "engine/parts.py", "engine/hooks.py", "engine/progress.py",
          "engine/rundir.py", "engine/evaluation.py", "engine/reporting.py", "engine/ema.py", "engine/precision.py"]


def _code_strings_and_names(tree: ast.AST):
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.value
        elif isinstance(node, ast.Name):
            yield node.id
        elif isinstance(node, ast.Attribute):
            yield node.attr
        elif isinstance(node, ast.arg):
            yield node.arg


@pytest.mark.parametrize("path", ENGINE)
def test_the_engine_names_no_part_and_no_mode(path):
    forbidden = {"G", "D", "G_ema", "D_A", "D_B", "G_AB", "G_BA", "g", "d", "opt_g", "opt_d", *MODES}
    found = {s for s in _code_strings_and_names(ast.parse((SRC / path).read_text())) if s in forbidden}
    assert not found, f"{path} names {sorted(found)}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict:
    """{module: {modules it imports, at module level or inside functions}} for every module under gankit/."""
    files = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                for alias in node.names:  # "from . import x" imports the submodule x where there is one
                    sub = f"{base}.{alias.name}"
                    edges.add(sub if sub in files else base)
        graph[name] = {e for e in edges if e in files and e != name}
    return graph


def find_cycle(graph: dict):
    """One import cycle [a, b, ..., a] in ``graph``, or None."""
    state, path = {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 50 and "gankit.engine.trainer" in graph["gankit.engine"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_finds_a_cycle():
    graph = import_graph()
    graph["gankit.run"] = graph["gankit.run"] | {"gankit.engine"}  # what using a run must never do
    cycle = find_cycle(graph)
    assert cycle is not None and "gankit.run" in cycle and cycle[0] == cycle[-1]


def test_using_a_run_never_imports_the_trainer():
    graph, seen, todo = import_graph(), set(), ["gankit.run"]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    assert not {m for m in seen if m.startswith("gankit.engine")}


def test_no_source_file_is_longer_than_400_lines():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long


# ---- runs written before the engine -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["gan", "conditional", "coded"])
def test_a_run_written_before_the_engine_resumes_and_samples(tmp_path, name, capsys):
    run = tmp_path / name
    shutil.copytree(FIXTURES / name, run)
    G, meta = gankit.run.load_generator(run, device="cpu")
    assert meta["weights"] == "G_ema" and meta["progress"]["step"] > 0
    assert gankit.sample(gankit.load_run(run), 3, seed=0).shape == (3, 1, 28, 28)
    assert main(["train", "--resume", str(run)]) == 0
    expected = [{k: v for k, v in json.loads(line).items() if not k.startswith("speed/")}
                for line in (FIXTURES / f"{name}.expected.jsonl").read_text().splitlines()]
    got = _rows(run)
    assert [r["step"] for r in got] == [r["step"] for r in expected] and got[0] == expected[0]
    for a, b in zip(got, expected):  # the resumed half, by new code, against an uninterrupted run by the old
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-6), (a["step"], k)


def test_hooks_scale_learning_rates_and_see_every_iteration_and_sinks_see_every_report(tmp_path, tiny_data):
    from gankit.engine import Hook

    class Halve(Hook):
        def __init__(self):
            self.seen = []

        def lr_scale(self, trainer):
            return 0.5

        def after_iteration(self, trainer):
            self.seen.append(trainer.progress.step)

    class Sink:
        def __init__(self):
            self.rows, self.texts = [], []

        def scalars(self, step, images, values):
            self.rows.append((step, images, dict(values)))

        def message(self, text):
            self.texts.append(text)

        def image(self, tag, grid, step):
            pass

        def close(self):
            pass

    hook, sink = Halve(), Sink()
    run = gankit.train(_toy_cfg(2), run_dir=tmp_path / "r", data=tiny_data, hooks=[hook], sinks=[sink])
    assert hook.seen == list(range(1, 9))
    assert [r[0] for r in sink.rows] == list(range(1, 9))
    assert all(v["optim/lr_g"] == 0.5 * run.cfg.optim.lr_g and v["optim/lr_d1"] == 0.5 * run.cfg.optim.lr_d
               for _, _, v in sink.rows)
    logged = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [r[0] for r in sink.rows]  # the sink saw what metrics.jsonl holds
