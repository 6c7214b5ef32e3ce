"""Bad input: each gets one line on stderr, exit status 2, and leaves what was already written untouched.

Every case runs the real command (``gankit.cli.main``) next to a finished run folder,
whose bytes are compared before and after; a case that would start a new run gets a
fresh folder, which must stay empty.
"""
import hashlib
import io
import json
import os
import pickle
import shutil
import tarfile
import zipfile

import pytest

from gankit import GankitError
from gankit.cli import main
from gankit.data import _idx, safe_extract

from conftest import write_image_folder

SETS = ["data.name=folder", "model.codes=0", "model.width_g=8", "model.width_d=8", "model.z_dim=8",
        "train.batch_size=8", "train.progress=false", "train.tensorboard=false", "train.grid_size=4"]


def _train_args(data, run, *sets):
    return ["train", "mnist-dcgan", "--data-dir", str(data), "--run-dir", str(run), "--device", "cpu",
            *[a for s in (*SETS, *sets) for a in ("--set", s)]]


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


class Boom:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A finished run, an image folder and assorted bad files, shared by every case."""
    w = tmp_path_factory.mktemp("inputs")
    write_image_folder(w / "imgs", 16)
    assert main(_train_args(w / "imgs", w / "run", "train.epochs=1")) == 0
    (w / "notes").mkdir()
    shutil.copytree(w / "imgs", w / "notes", dirs_exist_ok=True)
    (w / "notes" / "readme.txt").write_text("not an image")
    (w / "broken").mkdir()
    shutil.copytree(w / "imgs", w / "broken", dirs_exist_ok=True)
    (w / "broken" / "3.png").write_bytes((w / "imgs" / "3.png").read_bytes()[:60])  # truncated PNG
    (w / "empty").mkdir()
    (w / "mnist").mkdir()
    for name in _idx.CHECKSUMS["mnist"]:
        (w / "mnist" / name).write_bytes(b"\x1f\x8b truncated")
    (w / "mnist-missing").mkdir()
    (w / "mnist-missing" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    (w / "bad.yaml").write_text("train: {epochs: [1, 2\n")
    (w / "list.yaml").write_text("- 1\n- 2\n")
    (w / "tag.yaml").write_text("train: !!python/object/apply:os.system ['touch PWNED']\n")
    (w / "typo.yaml").write_text("train: {batch_sise: 8}\n")
    (w / "afile").write_text("a file where a folder should be")
    (w / "evil.pt").write_bytes(pickle.dumps(Boom()))
    return w


MNIST_MD5 = _idx.CHECKSUMS["mnist"]["train-images-idx3-ubyte.gz"]
CASES = [  # (argv with {w} for the shared folder and {new} for a fresh run folder, what the line must say)
    (["train", "mnist-dcgan", "--set", "train.bacth_size=3"], 'unknown config key train.bacth_size (did you mean "batch_size"?)'),
    (["train", "mnist-dcgan", "--set", "trian.epochs=3"], 'unknown config key trian (did you mean "train"?)'),
    (["train", "mnist-dcgan", "--set", "train.batch_size=big"], "config key train.batch_size must be an integer, got 'big'"),
    (["train", "mnist-dcgan", "--set", "train.progress=3"], "config key train.progress must be true or false, got 3"),
    (["train", "mnist-dcgan", "--set", "train.ema=1.5"], "train.ema must be in [0, 1)"),
    (["train", "mnist-dcgan", "--set", "optim.lr_g=-1"], "optim.lr_g and optim.lr_d must be positive"),
    (["train", "mnist-dcgan", "--set", "optim.lr_d=.nan"], "optim.lr_g and optim.lr_d must be positive"),
    (["train", "mnist-dcgan", "--set", "train.epochs=.inf"], "config key train.epochs must be a finite number, got inf"),
    (["train", "mnist-dcgan", "--set", "train.on_nan=rolback"], 'train.on_nan must be stop or rollback, got \'rolback\' (did you mean "rollback"?)'),
    (["train", "mnist-dcgan", "--set", "train.rollback_lr_factor=2"], "train.rollback_lr_factor must be in (0, 1)"),
    (["train", "mnist-dcgan", "--set", "noequals"], "--set expects key=value"),
    (["train", "mnist-dcgn"], 'unknown preset or config file \'mnist-dcgn\' (did you mean "mnist-dcgan"?)'),
    (["train", "{w}/nope.yaml"], "config file {w}/nope.yaml does not exist"),
    (["train", "{w}/bad.yaml"], "{w}/bad.yaml is not valid YAML"),
    (["train", "{w}/list.yaml"], "{w}/list.yaml must hold a mapping of config sections, got list"),
    (["train", "{w}/tag.yaml"], "{w}/tag.yaml is not valid YAML: could not determine a constructor"),
    (["train", "{w}/typo.yaml"], 'unknown config key train.batch_sise (did you mean "batch_size"?)'),
    (_train_args("{w}/imgs", "{new}", "objective.name=custom", "objective.f1=__import__('os').system('touch PWNED')",
                 "objective.f2=d", "objective.f3=d"), 'objective expression "__import__(\'os\').system(\'touch PWNED\')"'),
    (_train_args("{w}/imgs", "{new}", "objective.name=custom", "objective.f1=d.__class__", "objective.f2=d",
                 "objective.f3=d"), "attribute access"),
    (_train_args("{w}/imgs", "{new}", "objective.name=custom", "objective.f1=d + 1/0", "objective.f2=d",
                 "objective.f3=-d"), "f1 is not finite at D logit -4 (a division by zero"),
    (_train_args("{w}/imgs", "{new}", "objective.name=custom", "objective.f1=d", "objective.f2=(-8)**0.5 * d",
                 "objective.f3=-d"), "f2 is not finite at D logit -4"),
    (_train_args("{w}/imgs", "{new}", "objective.name=custom", "objective.f1=d", "objective.f2=d",
                 "objective.f3=pi"), "loss_g does not depend on d"),
    (["train", "mnist-dcgan", "--data-dir", "{w}/mnist", "--run-dir", "{new}", "--device", "cpu"],
     "{w}/mnist/train-images-idx3-ubyte.gz is corrupt or truncated (md5 "),
    (["train", "mnist-dcgan", "--data-dir", "{w}/mnist", "--run-dir", "{new}", "--device", "cpu"], f"expected {MNIST_MD5}"),
    (["train", "mnist-dcgan", "--data-dir", "{w}/mnist-missing", "--run-dir", "{new}", "--device", "cpu"],
     "mnist files not found under {w}/mnist-missing: expected train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz"),
    (_train_args("{w}/notes", "{new}"), "{w}/notes/readme.txt is not an image (suffix .txt)"),
    (_train_args("{w}/broken", "{new}"), "{w}/broken/3.png cannot be read as an image"),
    (_train_args("{w}/empty", "{new}"), "image folder {w}/empty contains no files"),
    (_train_args("{w}/nowhere", "{new}"), "image folder {w}/nowhere does not exist"),
    (_train_args("{w}/imgs", "{new}", "data.channels=2"), "data.channels must be 1 or 3 for image folders, got 2"),
    (_train_args("{w}/imgs", "{new}", "data.image_size=30"), "dcgan supports image sizes"),
    (_train_args("{w}/imgs", "{new}", "train.batch_size=64"), "dataset has 16 images, fewer than train.batch_size"),
    (_train_args("{w}/imgs", "{w}/afile/run"), "run folder {w}/afile/run is not writable (Not a directory)"),
    (_train_args("{w}/imgs", "{w}/" + "n" * 300), "is not writable (File name too long)"),
    (_train_args("{w}/imgs", "{w}/nul\0run"), "is not writable (embedded null byte)"),
    (_train_args("{w}/imgs", "{w}/run"), "run folder {w}/run already holds checkpoints; use --resume {w}/run"),
    (["train", "--resume", "{w}/run", "--set", "train.epochs=2"],
     "config differs from the run being resumed: train.epochs: 1.0 -> 2.0 (pass --force to resume anyway)"),
    (["train", "--resume", "{w}/run", "--set", "data.channels=3", "--force"],
     "in keys that cannot change on resume: data.channels: 1 -> 3; undo the change"),
    (["train", "--resume", "{w}/run", "--set", "train.bacth_size=3"], 'did you mean "batch_size"'),
    (["train", "--resume", "{w}/run", "--run-dir", "{new}"], "--resume {w}/run continues that run in place"),
    (["train", "--resume", "{w}/imgs"], "{w}/imgs is not a gankit run folder (no config.yaml)"),
    (["train", "mnist-dcgan", "--device", "tpu"], "unknown device 'tpu'"),
    (["sample", "{w}/run", "--out", "{new}/s.npz", "--checkpoint", "{w}/evil.pt"],
     "{w}/evil.pt is not a gankit checkpoint (expected a ckpt-*.json with its .safetensors); gankit never loads pickle files"),
]


@pytest.mark.parametrize("argv,fragment", CASES, ids=[f"{i:02d}" for i in range(len(CASES))])
def test_bad_input_is_one_line_with_exit_2_and_damages_nothing(world, tmp_path, argv, fragment, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    new = tmp_path / "new"
    fill = {"{w}": str(world), "{new}": str(new)}
    argv = [_fill(a, fill) for a in argv]
    before = _snapshot(world)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gankit: error: "), err
    assert _fill(fragment, fill) in err
    assert _snapshot(world) == before
    assert not new.exists() or not any(p.is_file() for p in new.rglob("*"))
    assert not (tmp_path / "PWNED").exists() and not (world / "PWNED").exists()


def _fill(text, fill):
    for k, v in fill.items():
        text = text.replace(k, v)
    return text


def test_a_full_run_folder_is_refused_before_training(world, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(100 << 30, 100 << 30, 1 << 20))
    assert main(_train_args(world / "imgs", tmp_path / "r")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"gankit: error: run folder {tmp_path / 'r'} has 1.0 MiB free, but 4 checkpoints of ")
    assert "lower train.keep_checkpoints or choose another --run-dir" in err
    assert not any(p.is_file() for p in (tmp_path / "r").rglob("*"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_run_folder_is_refused(world, tmp_path, capsys):
    (tmp_path / "ro").mkdir(mode=0o500)
    assert main(_train_args(world / "imgs", tmp_path / "ro" / "run")) == 2
    assert "is not writable (Permission denied)" in capsys.readouterr().err


@pytest.mark.parametrize("damage,fragment", [
    ("pickle-as-json", "is not a readable checkpoint JSON"),
    ("pickle-as-tensors", "do not match the SHA-256"),
    ("pickle-with-forged-hash", "is not a safetensors file"),
    ("tensors-path-escapes", "does not name its tensor file"),
    ("json-without-hash", "does not name its tensor file"),
])
def test_a_pickle_or_forged_checkpoint_is_refused_never_unpickled(world, tmp_path, capsys, monkeypatch, damage,
                                                                  fragment):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    shutil.copytree(world / "run", run)
    latest = sorted((run / "checkpoints").glob("ckpt-*.json"))[-1]
    meta, evil = json.loads(latest.read_text()), pickle.dumps(Boom())
    if damage == "pickle-as-json":
        latest.write_bytes(evil)
    elif damage == "pickle-as-tensors":
        latest.with_suffix(".safetensors").write_bytes(evil)
    elif damage == "pickle-with-forged-hash":
        latest.with_suffix(".safetensors").write_bytes(evil)
        latest.write_text(json.dumps({**meta, "sha256": hashlib.sha256(evil).hexdigest()}))
    elif damage == "tensors-path-escapes":
        latest.write_text(json.dumps({**meta, "tensors": "../../evil.pt"}))
    else:
        latest.write_text(json.dumps({k: v for k, v in meta.items() if k != "sha256"}))
    before = _snapshot(run)
    for argv in (["train", "--resume", str(run)], ["sample", str(run), "--out", str(tmp_path / "s.npz")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and fragment in err and latest.stem in err, err
    assert _snapshot(run) == before
    assert not (tmp_path / "PWNED").exists()


# ---- archives ------------------------------------------------------------------------------
def _tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def test_safe_extract_extracts_an_ordinary_tar_and_zip(tmp_path):
    archive = _tar(tmp_path / "ok.tar.gz", [_file("data/a.bin", b"abc"), _file("data/sub/b.bin", b"de"),
                                            _link("data/alias", "a.bin")])
    out = safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "data" / "sub" / "b.bin").read_bytes() == b"de"
    assert (tmp_path / "out" / "data" / "alias").read_bytes() == b"abc"
    assert len(out) == 3
    with zipfile.ZipFile(tmp_path / "ok.zip", "w") as zf:
        zf.writestr("z/c.txt", "hello")
    safe_extract(tmp_path / "ok.zip", tmp_path / "zout")
    assert (tmp_path / "zout" / "z" / "c.txt").read_text() == "hello"


@pytest.mark.parametrize("member,reason", [
    (_file("../escape.txt"), "points outside the destination folder"),
    (_file("data/../../escape.txt"), "points outside the destination folder"),
    (_file("/tmp/escape.txt"), "has an absolute path"),
    (_link("data/up", "../../.."), "points outside the destination folder"),
    (_link("data/abs", "/etc/passwd"), "points outside the destination folder"),
    (_link("data/hard", "../../escape.txt", tarfile.LNKTYPE), "points outside the destination folder"),
    ((lambda i: (setattr(i, "type", tarfile.CHRTYPE), i)[1])(tarfile.TarInfo("data/dev")), "is a device or FIFO"),
])
def test_safe_extract_refuses_a_tar_member_escaping_the_folder(tmp_path, member, reason):
    member = member if isinstance(member, tuple) else (member, None)
    archive = _tar(tmp_path / "evil.tar.gz", [_file("data/first.txt"), member])
    with pytest.raises(GankitError, match=f"member '{member[0].name}' {reason}; .*nothing was extracted"):
        safe_extract(archive, tmp_path / "out" / "inner")
    assert not any((tmp_path / "out").rglob("*.txt"))  # not even the harmless first member
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out" / "escape.txt").exists()


@pytest.mark.parametrize("name", ["../escape.txt", "a/../../escape.txt", "/abs/escape.txt", "..\\escape.txt",
                                  "C:/escape.txt"])
def test_safe_extract_refuses_a_zip_member_escaping_the_folder(tmp_path, name):
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("first.txt", "x")
        zf.writestr(zipfile.ZipInfo(name), "boom")  # ZipInfo keeps the name as given
    with pytest.raises(GankitError, match="points outside the destination folder; .*nothing was extracted"):
        safe_extract(tmp_path / "evil.zip", tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())


def test_safe_extract_names_a_file_that_is_not_an_archive(tmp_path):
    (tmp_path / "x.tar.gz").write_bytes(b"\x1f\x8b\x08 truncated")
    with pytest.raises(GankitError, match="x.tar.gz is not a readable tar or zip archive"):
        safe_extract(tmp_path / "x.tar.gz", tmp_path / "out")
