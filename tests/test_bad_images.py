"""Bad input in folders of images: one line naming the file, whether loaded, streamed or prepared."""
import numpy as np
import pytest
from PIL import Image

from gankit import GankitError, resolve
from gankit.cli import main
from gankit.data.stream import open_training_data
from gankit.engine import train

RNG = np.random.default_rng(0)


def _rgb():
    return Image.fromarray(RNG.integers(0, 256, (20, 30, 3), dtype=np.uint8))


def _cmyk(p):
    _rgb().convert("CMYK").save(p.with_suffix(".jpg"))


def _sixteen_bit(p):
    Image.fromarray(RNG.integers(0, 65535, (20, 30), dtype=np.uint16)).save(p)


def _alpha(p):
    Image.fromarray(RNG.integers(0, 256, (20, 30, 4), dtype=np.uint8)).save(p)


def _grey_alpha(p):
    _rgb().convert("LA").save(p)


def _transparent_palette(p):
    _rgb().convert("P").save(p, transparency=0)


def _corrupt(p):
    p.write_bytes(b"\x89PNG\r\n\x1a\nnot really")


def _truncated(p):
    _rgb().save(p)
    data = p.read_bytes()
    p.write_bytes(data[:len(data) // 2])


CASES = {  # maker, the words of the one-line error
    "cmyk": (_cmyk, "is a CMYK image; convert it to RGB"),
    "16bit": (_sixteen_bit, "is a 16-bit image"),
    "alpha": (_alpha, "with an alpha channel"),
    "grey-alpha": (_grey_alpha, "grey image with an alpha channel"),
    "palette-alpha": (_transparent_palette, "palette image with transparency"),
    "corrupt": (_corrupt, "cannot be read as an image"),
    "truncated": (_truncated, r"cannot be read as an image \(image file is truncated"),
}


def _folder(tmp_path, case):
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(7):
        _rgb().save(root / f"good{i}.png")
    bad = root / f"zbad_{case}.png"
    CASES[case][0](bad)
    return root, next(root.glob("zbad_*"))


def _cfg(root, stream):
    return resolve("cifar10-dcgan", ("data.name=folder", f"data.data_dir={root}", "data.channels=3",
                                     "data.image_size=32", f"data.stream={stream}", "data.workers=1",
                                     "train.batch_size=4", "train.progress=false", "train.tensorboard=false",
                                     "model.width_g=4", "model.width_d=4", "train.grid_size=4"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_image_in_memory_names_the_file(tmp_path, case):
    root, bad = _folder(tmp_path, case)
    with pytest.raises(GankitError, match=CASES[case][1]) as err:
        open_training_data(_cfg(root, "false").data, "cpu")
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("case", ["cmyk", "corrupt"])
def test_bad_image_while_streaming_stops_the_run_naming_the_file(tmp_path, case, capsys):
    root, bad = _folder(tmp_path, case)
    with pytest.raises(GankitError, match=CASES[case][1]) as err:
        train(_cfg(root, "true"), tmp_path / "run")
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_prepare_lists_every_bad_file_and_keeps_the_good_ones(tmp_path, capsys):
    root = tmp_path / "imgs"
    root.mkdir()
    _rgb().save(root / "good.png")
    (root / "notes.txt").write_text("not an image")
    for case, (make, _) in CASES.items():
        make(root / f"bad_{case}.png")
    assert main(["data", "prepare", str(root), "--out", str(tmp_path / "o.zip"), "--size", "8", "--no-progress",
                 "--workers", "1"]) == 0
    out, err = capsys.readouterr()
    assert "wrote 1 images of 8x8" in out and f"skipped {len(CASES) + 1} files" in out
    lines = err.strip().splitlines()
    assert len(lines) == len(CASES) + 1 and any("notes.txt: not an image file" in line for line in lines)
    for case, (_, words) in CASES.items():
        assert sum(f"bad_{case}." in line for line in lines) == 1
        assert any(f"bad_{case}." in line and __import__("re").search(words, line) for line in lines), case


def test_empty_and_missing_folders(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for argv in (["data", "prepare", str(tmp_path / "empty"), "--out", str(tmp_path / "o.zip"), "--size", "8"],
                 ["data", "info", str(tmp_path / "empty")],
                 ["data", "prepare", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o.zip"), "--size", "8"]):
        assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "holds no images" in err[0] and "contains no files" in err[1]
    assert "is not a folder" in err[2] and not (tmp_path / "o.zip").exists()
    with pytest.raises(GankitError, match="contains no files"):
        open_training_data(_cfg(tmp_path / "empty", "auto").data, "cpu")


def test_all_bad_writes_nothing(tmp_path, capsys):
    root = tmp_path / "imgs"
    root.mkdir()
    _cmyk(root / "a.png")
    assert main(["data", "prepare", str(root), "--out", str(tmp_path / "o.zip"), "--size", "8", "--workers", "1"]) == 2
    assert "none of the 1 images" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.zip")) and not list(tmp_path.glob(".*tmp"))


def test_bad_zips(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"PK\x03\x04 not a zip at all")
    import zipfile
    with zipfile.ZipFile(tmp_path / "labels.zip", "w") as z:
        z.writestr("a.png", b"")
        z.writestr("dataset.json", "{not json")
    with pytest.raises(GankitError, match="dataset.json is not valid"):
        open_training_data(_cfg(tmp_path / "labels.zip", "auto").data, "cpu")
    with zipfile.ZipFile(tmp_path / "none.zip", "w") as z:
        z.writestr("readme.txt", "hi")
    with pytest.raises(GankitError, match="holds no images"):
        open_training_data(_cfg(tmp_path / "none.zip", "auto").data, "cpu")


def test_a_bad_file_met_by_a_worker_is_one_line_naming_it(tmp_path):
    from gankit.data.stream import StreamedImages
    from gankit.data.files import list_images
    import torch

    root, bad = _folder(tmp_path, "cmyk")
    data = StreamedImages(list_images(root), "folder", 32, 3, workers=2)
    order = torch.arange(8)
    assert data.batch(0, order, 0, 4).shape == (4, 3, 32, 32)  # good files, from the workers
    with pytest.raises(GankitError, match="is a CMYK image") as err:
        data.batch(0, order, 4, 8)  # the bad one is the last file
    assert str(bad) in str(err.value) and "\n" not in str(err.value) and "worker" not in str(err.value)
