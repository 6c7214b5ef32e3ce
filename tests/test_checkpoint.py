"""Checkpoint files: atomic, hash-checked, and never unpickled."""
import pickle

import pytest
import torch

from gankit import GankitError
from gankit.checkpoint import latest_checkpoint, load_checkpoint, prune, save_checkpoint


def test_round_trip(tmp_path):
    t = {"a": torch.randn(3, 2), "b": torch.arange(4)}
    path = save_checkpoint(tmp_path, "ckpt-000000000001", t, {"x": 1})
    back, meta = load_checkpoint(path)
    assert torch.equal(back["a"], t["a"]) and torch.equal(back["b"], t["b"]) and meta["x"] == 1


def test_pickle_in_place_of_a_checkpoint_is_refused(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("open('PWNED', 'w').write('x')",))

    evil = tmp_path / "ckpt-000000000001.pt"
    evil.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(GankitError, match="never loads pickle"):
        load_checkpoint(evil)
    path = save_checkpoint(tmp_path, "ckpt-000000000002", {"a": torch.zeros(1)}, {})
    path.with_suffix(".safetensors").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(GankitError, match="SHA-256"):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED").exists()


def test_json_is_the_commit_marker(tmp_path):
    save_checkpoint(tmp_path, "ckpt-000000000001", {"a": torch.zeros(1)}, {})
    (tmp_path / "ckpt-000000000002.safetensors").write_bytes(b"half-written")  # no JSON: not committed
    assert latest_checkpoint(tmp_path).name == "ckpt-000000000001.json"


def test_prune_keeps_the_newest(tmp_path):
    for i in range(5):
        save_checkpoint(tmp_path, f"ckpt-{i:012d}", {"a": torch.zeros(1)}, {})
    prune(tmp_path, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt-000000000003.json", "ckpt-000000000003.safetensors",
        "ckpt-000000000004.json", "ckpt-000000000004.safetensors"]


def test_clean_stale_removes_what_a_killed_writer_left(tmp_path):
    from gankit.checkpoint import clean_stale

    save_checkpoint(tmp_path, "ckpt-000000000001", {"a": torch.zeros(1)}, {})
    (tmp_path / "ckpt-000000000002.safetensors").write_bytes(b"uncommitted")
    (tmp_path / ".ckpt-000000000002.jsonab12.tmp").write_bytes(b"{")
    removed = clean_stale(tmp_path)
    assert sorted(p.name for p in removed) == [".ckpt-000000000002.jsonab12.tmp", "ckpt-000000000002.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-000000000001.json", "ckpt-000000000001.safetensors"]
    assert torch.equal(load_checkpoint(tmp_path / "ckpt-000000000001.json")[0]["a"], torch.zeros(1))


def test_rewriting_a_name_uncommits_it_before_replacing_its_tensors(tmp_path, monkeypatch):
    from gankit import checkpoint as ck

    save_checkpoint(tmp_path, "ckpt-000000000001", {"a": torch.zeros(1)}, {})
    save_checkpoint(tmp_path, "ckpt-000000000002", {"a": torch.ones(1)}, {})
    real = ck.atomic_write

    def killed_before_the_json(path, data):
        if path.suffix == ".json":
            raise KeyboardInterrupt  # the process dies between the two renames
        real(path, data)

    monkeypatch.setattr(ck, "atomic_write", killed_before_the_json)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, "ckpt-000000000002", {"a": torch.full((1,), 2.0)}, {})
    latest = latest_checkpoint(tmp_path)
    assert latest.name == "ckpt-000000000001.json"  # never the old JSON with the new tensors
    assert torch.equal(load_checkpoint(latest)[0]["a"], torch.zeros(1))


def test_files_get_the_permissions_open_would_give(tmp_path):
    import os
    import stat

    path = save_checkpoint(tmp_path, "ckpt-000000000001", {"a": torch.zeros(1)}, {})
    umask = os.umask(0o022)
    os.umask(umask)
    for p in (path, path.with_suffix(".safetensors")):
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("tensors", ["../outside.safetensors", "/etc/passwd", "sub/x.safetensors", 7])
def test_a_json_naming_tensors_elsewhere_is_refused(tmp_path, tensors):
    import json

    path = save_checkpoint(tmp_path, "ckpt-000000000001", {"a": torch.zeros(1)}, {})
    meta = json.loads(path.read_text())
    path.write_text(json.dumps({**meta, "tensors": tensors}))
    with pytest.raises(GankitError, match="does not name its tensor file"):
        load_checkpoint(path)
