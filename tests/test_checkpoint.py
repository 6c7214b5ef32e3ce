"""Checkpoint files: atomic, hash-checked, and never unpickled."""
import pickle

import pytest
import torch

from gankit import GankitError
from gankit.train.checkpoint import latest_checkpoint, load_checkpoint, prune, save_checkpoint


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
