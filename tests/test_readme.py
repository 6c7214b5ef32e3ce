"""The README's Python example runs exactly as printed."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_example() -> str:
    text = README.read_text()
    section = text[text.index("### From Python"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_python_example_runs_as_printed(tmp_path, monkeypatch, cache, capsys):
    monkeypatch.chdir(tmp_path)  # it writes runs/digits-py here; the cache fixture holds a digits classifier
    exec(compile(python_example(), str(README), "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out.splitlines()
    images, shape, fid = re.fullmatch(r"(\d+) (\(.*\)) (\S+)", out[-2]).groups()
    assert int(images) == 1600 and shape == "(16, 1, 28, 28)" and float(fid) >= 0  # 25 steps of 64 images
    assert out[-1] == "stable focus"
    assert (tmp_path / "runs" / "digits-py" / "checkpoints").is_dir()
