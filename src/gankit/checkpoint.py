"""Checkpoints as safetensors (tensors) plus JSON (everything else). Loading never unpickles.

A checkpoint ``ckpt-<images>`` is two files written atomically (temporary file,
flush, fsync, rename): the ``.safetensors`` first, then the ``.json``, which
records the tensor file's SHA-256. The JSON is the commit marker: a checkpoint
counts only when its JSON exists and the hash matches, so a process killed at
any moment leaves the previous checkpoint as the latest loadable one. What a
killed writer leaves behind (temporary files, tensors without their JSON) is
removed by `clean_stale` when the run is resumed.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Optional

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .atomic import atomic_write
from .errors import GankitError

FORMAT = "gankit-checkpoint-1"


def flatten_optimizer(prefix: str, opt: torch.optim.Optimizer, tensors: dict) -> dict:
    """Put the optimiser's tensors into ``tensors``; return its JSON-able remainder."""
    sd = opt.state_dict()
    meta = {"param_groups": sd["param_groups"], "state": {}}
    for pid, state in sd["state"].items():
        meta["state"][str(pid)] = {}
        for k, v in state.items():
            if torch.is_tensor(v):
                tensors[f"{prefix}.state.{pid}.{k}"] = v.detach().cpu().contiguous()
                meta["state"][str(pid)][k] = {"tensor": f"{prefix}.state.{pid}.{k}"}
            else:
                meta["state"][str(pid)][k] = v
    return meta


def unflatten_optimizer(meta: dict, tensors: dict) -> dict:
    state = {}
    for pid, entries in meta["state"].items():
        state[int(pid)] = {k: tensors[v["tensor"]] if isinstance(v, dict) and "tensor" in v else v
                           for k, v in entries.items()}
    return {"state": state, "param_groups": meta["param_groups"]}


def checkpoint_name(images: int) -> str:
    """The stem of the checkpoint taken after ``images`` images: names sort in training order."""
    return f"ckpt-{images:012d}"


def save_checkpoint(folder: Path, name: str, tensors: dict, meta: dict) -> Path:
    """Write ``name.safetensors`` then ``name.json``; return the JSON path."""
    folder.mkdir(parents=True, exist_ok=True)
    blob = st_save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    # Rewriting a name: uncommit it first, so a kill between the two renames never pairs old JSON with new tensors.
    (folder / f"{name}.json").unlink(missing_ok=True)
    atomic_write(folder / f"{name}.safetensors", blob)
    meta = {"format": FORMAT, "tensors": f"{name}.safetensors",
            "sha256": hashlib.sha256(blob).hexdigest(), **meta}
    atomic_write(folder / f"{name}.json", json.dumps(meta, indent=1).encode())
    return folder / f"{name}.json"


def list_checkpoints(folder: Path) -> list:
    """Committed checkpoint JSON files, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("ckpt-*.json") if not p.name.startswith("."))


def read_meta(path: Path) -> dict:
    """The JSON half of a checkpoint (config, progress, ...), without reading its tensors."""
    path = Path(path)
    if path.suffix != ".json":
        raise GankitError(f"{path} is not a gankit checkpoint (expected a ckpt-*.json with its .safetensors); "
                          f"gankit never loads pickle files")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GankitError(f"{path} is not a readable checkpoint JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise GankitError(f"{path} is not a gankit checkpoint (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    return meta


def load_checkpoint(path: Path, device="cpu") -> tuple:
    """(tensors, meta) of a checkpoint JSON path; `GankitError` for anything that is not one."""
    path = Path(path)
    meta = read_meta(path)
    name, digest = meta.get("tensors"), meta.get("sha256")
    plain = isinstance(name, str) and name == Path(name).name and name.endswith(".safetensors")  # no "../x"
    if not (plain and isinstance(digest, str)):
        raise GankitError(f"{path} does not name its tensor file (a .safetensors beside it) and its SHA-256; "
                          f"the checkpoint is damaged")
    blob_path = path.parent / name
    try:
        blob = blob_path.read_bytes()
    except OSError as exc:
        raise GankitError(f"checkpoint tensors {blob_path} cannot be read ({exc})") from None
    if hashlib.sha256(blob).hexdigest() != digest:
        raise GankitError(f"checkpoint tensors {blob_path} do not match the SHA-256 in {path.name}; the file is "
                          f"corrupt or was replaced")
    try:
        tensors = st_load(blob)
    except (SafetensorError, Exception) as exc:  # safetensors raises several types for bad input
        raise GankitError(f"{blob_path} is not a safetensors file ({exc})") from None
    return {k: v.to(device) for k, v in tensors.items()}, meta


def latest_checkpoint(folder: Path) -> Optional[Path]:
    found = list_checkpoints(folder)
    return found[-1] if found else None


def find_run_checkpoint(run_dir, checkpoint: Optional[str] = None) -> Path:
    """The checkpoint JSON named by ``checkpoint``, else the latest in ``run_dir/checkpoints``."""
    if checkpoint is not None:
        return Path(checkpoint)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise GankitError(f"run folder {run_dir} does not exist")
    path = latest_checkpoint(run_dir / "checkpoints")
    if path is None:
        raise GankitError(f"no checkpoint in {run_dir / 'checkpoints'}; train first or pass --checkpoint")
    return path


def prune(folder: Path, keep: int) -> None:
    for old in list_checkpoints(folder)[:-keep]:
        for p in (old, old.with_suffix(".safetensors")):
            p.unlink(missing_ok=True)


def clean_stale(folder: Path) -> list:
    """Remove what a killed writer left: temporary files and tensors whose JSON was never written."""
    if not folder.is_dir():
        return []
    committed = {p.with_suffix(".safetensors").name for p in list_checkpoints(folder)}
    stale = list(folder.glob(".ckpt-*.tmp"))
    stale += [p for p in folder.glob("ckpt-*.safetensors") if p.name not in committed]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def check_free_space(run_dir: Path, checkpoint_bytes: int, keep: int) -> None:
    """Keep + 1 checkpoints exist at once while the newest is written: refuse to start without room for them."""
    need = (keep + 1) * checkpoint_bytes + (16 << 20)  # and 16 MiB for samples, metrics, events
    free = shutil.disk_usage(run_dir).free
    if free < need:
        raise GankitError(f"run folder {run_dir} has {free / 2**20:.1f} MiB free, but {keep + 1} checkpoints of "
                          f"{checkpoint_bytes / 2**20:.1f} MiB and 16 MiB for samples and logs need "
                          f"{need / 2**20:.1f} MiB; free space, lower train.keep_checkpoints or choose another "
                          f"--run-dir")


def module_tensors(prefix: str, module: torch.nn.Module) -> dict:
    return {f"{prefix}.{k}": v for k, v in module.state_dict().items()}


def load_module(prefix: str, module: torch.nn.Module, tensors: dict) -> None:
    sd = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    try:
        module.load_state_dict(sd)
    except RuntimeError as exc:
        raise GankitError(f"checkpoint does not fit the network {prefix} ({str(exc).splitlines()[0]}); "
                          f"was it written with another model config?") from None
