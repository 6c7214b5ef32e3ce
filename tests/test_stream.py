"""Own images: folders and zips, `gankit data prepare` / `info`, streaming with workers, exact resume."""
import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from gankit import GankitError, resolve
from gankit.cli import main
from gankit.data.files import list_images, read_images
from gankit.data.prepare import prepare
from gankit.data.stream import StreamedImages, open_training_data
from gankit.engine import Hook, Trainer, train

from conftest import make_tiny_images

TINY = ("model.width_g=8", "model.width_d=8", "model.z_dim=8", "train.batch_size=8", "train.log_every=1",
        "train.progress=false", "train.tensorboard=false", "train.grid_size=4", "train.precision=fp32",
        "data.image_size=32", "data.workers=2")


def _folder(root, n=24, size=40, classes=("cats", "dogs")):
    for k, c in enumerate(classes):
        (root / c).mkdir(parents=True)
        for i, img in enumerate(make_tiny_images(n // len(classes), size=size, channels=3, seed=k)):
            Image.fromarray(img).save(root / c / f"{i:03d}.png")
    return root


def _cfg(data_dir, *extra, epochs=3.0):
    return resolve("cifar10-dcgan", TINY + ("data.name=folder", "data.channels=3", f"data.data_dir={data_dir}")
                   + extra, **{"train.epochs": epochs})


def _rows(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith(("speed/", "time"))} for r in rows]


@pytest.fixture
def zipped(tmp_path):
    done = prepare(_folder(tmp_path / "src"), tmp_path / "d.zip", 32, workers=1)
    assert done.written == 24 and done.classes == ["cats", "dogs"] and not done.skipped
    return tmp_path / "d.zip"


def test_prepare_writes_the_stylegan2_ada_layout_with_labels(zipped):
    with zipfile.ZipFile(zipped) as z:
        names = sorted(n for n in z.namelist() if n.endswith(".png"))
        meta = json.loads(z.read("dataset.json"))
        first = Image.open(z.open(names[0]))
        assert first.size == (32, 32) and first.mode == "RGB"
        assert all(info.compress_type == zipfile.ZIP_STORED for info in z.infolist())
    assert names[0] == "00000/img00000000.png" and len(names) == 24
    assert meta["classes"] == ["cats", "dogs"] and [label for _, label in meta["labels"]] == [0] * 12 + [1] * 12
    files = list_images(zipped)
    assert files.classes == ["cats", "dogs"] and files.labels.tolist() == [0] * 12 + [1] * 12


def test_prepare_crops_the_centre_square(tmp_path):
    (tmp_path / "src").mkdir()
    img = np.zeros((20, 60, 3), np.uint8)
    img[:, 20:40] = 255  # the centre 20x20 square is white; the sides are black
    Image.fromarray(img).save(tmp_path / "src" / "wide.png")
    prepare(tmp_path / "src", tmp_path / "o.zip", 10, workers=1)
    x = read_images(list_images(tmp_path / "o.zip"), 10, 3)
    assert x.shape == (1, 10, 10, 3) and x.min() >= 250


def _memory_and_streamed(zipped) -> tuple:
    """(in memory, streamed, the streamed one's note): the same zip opened both ways."""
    cfg = _cfg(zipped)
    cfg.data.stream = "false"
    memory, _ = open_training_data(cfg.data, "cpu")
    cfg.data.stream = "true"
    return (memory, *open_training_data(cfg.data, "cpu"))


def test_streamed_batches_equal_in_memory_batches(zipped):
    memory, streamed, note = _memory_and_streamed(zipped)
    assert isinstance(streamed, StreamedImages) and "streaming 24 images" in note
    assert memory.x.dtype == torch.uint8 and memory.x.shape == (24, 3, 32, 32)
    order = memory.epoch_order(5, 1)
    assert torch.equal(order, streamed.epoch_order(5, 1))
    for start in (0, 8, 16, 0, 16):  # in order, then a restart (a resume), then a jump
        assert torch.equal(streamed.batch(1, order, start, start + 8), memory.batch(1, order, start, start + 8))
    assert torch.equal(streamed.x[2:20:3], memory.x[2:20:3])
    streamed.close()


def test_a_batch_size_that_changes_mid_epoch_streams_the_same_images_as_memory(zipped):
    """Progressive growing's batch size per resolution: the prefetching loader restarts at the new size."""
    from gankit.modes.sources import GrowingBatches

    memory, streamed, _ = _memory_and_streamed(zipped)
    size = lambda images: 4 if images < 10 else 6  # noqa: E731
    a, b = GrowingBatches(memory, size, [10], seed=1), GrowingBatches(streamed, size, [10], seed=1)
    for epoch in range(2):
        for index in range(a.iterations(epoch)):
            assert torch.equal(a.take(epoch, index).x[0], b.take(epoch, index).x[0])
    streamed.close()


class _StopAt(Hook):
    def __init__(self, step):
        self.step = step

    def after_iteration(self, trainer):
        if trainer.progress.step == self.step:
            trainer.stop_signal = 2  # as Ctrl-C: checkpoint between iterations, then stop


def test_streamed_run_stopped_and_resumed_logs_the_same_losses(tmp_path, zipped):
    cfg = lambda *e: _cfg(zipped, "data.stream=true", *e)  # noqa: E731
    Trainer(cfg(), tmp_path / "full", hooks=(_StopAt(-1),)).run()  # a hook adds the lrs to the logs: here too
    t = Trainer(cfg(), tmp_path / "part", hooks=(_StopAt(7),))  # mid-way through epoch 2 (3 iterations each)
    t.run()
    assert t.progress.step == 7 and t.progress.batch == 1
    Trainer(cfg(), tmp_path / "part", resume=True, hooks=(_StopAt(-1),)).run()
    full, part = _rows(tmp_path / "full"), _rows(tmp_path / "part")
    assert len(full) == 9 and [r["step"] for r in part] == [r["step"] for r in full]
    assert part == full
    Trainer(_cfg(zipped, "data.stream=false"), tmp_path / "memory", hooks=(_StopAt(-1),)).run()  # = in memory
    assert _rows(tmp_path / "memory") == full


def test_a_folder_streams_with_labels_from_sub_folders(tmp_path):
    src = _folder(tmp_path / "src")
    t = train(_cfg(src, "data.stream=true", "model.conditional=projection", epochs=1.0), tmp_path / "r")
    assert t.data.classes == ["cats", "dogs"] and t.progress.images == 24


def test_auto_streams_only_what_does_not_fit(zipped, monkeypatch):
    import gankit.data.stream as stream

    cfg = _cfg(zipped)
    assert not isinstance(open_training_data(cfg.data, "cpu")[0], StreamedImages)
    monkeypatch.setattr(stream, "available_memory", lambda: 24 * 32 * 32 * 3)  # twice what auto allows
    data, note = open_training_data(cfg.data, "cpu")
    assert isinstance(data, StreamedImages) and "data.stream=auto" in note and "0.00 GiB as uint8" in note


def test_stream_refuses_named_datasets_and_cluster_codes(tmp_path, zipped):
    with pytest.raises(GankitError, match="data.stream=true streams folders and zips"):
        open_training_data(resolve("digits-dcgan", ("data.stream=true",)).data, "cpu")
    with pytest.raises(GankitError, match="data.stream must be auto, true or false"):
        resolve("digits-dcgan", ("data.stream=sometimes",))
    with pytest.raises(GankitError, match="model.codes=4 with code_kind=clusters.*data.stream=false"):
        train(_cfg(zipped, "data.stream=true", "model.codes=4"), tmp_path / "r")


def test_data_info_and_prepare_from_the_command_line(tmp_path, zipped, capsys):
    assert main(["data", "info", str(zipped)]) == 0
    out = capsys.readouterr().out
    assert "images:      24" in out and "32x32 (24)" in out and "cats (12), dogs (12)" in out
    assert "as uint8 at 32x32x3" in out
    assert main(["data", "prepare", str(tmp_path / "src"), "--out", str(zipped), "--size", "16"]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(["data", "prepare", str(tmp_path / "src"), "--out", str(zipped), "--size", "16", "--force",
                 "--no-progress", "--workers", "2"]) == 0
    assert "wrote 24 images of 16x16" in capsys.readouterr().out
    assert list_images(zipped).names == [f"00000/img{i:08d}.png" for i in range(24)]
