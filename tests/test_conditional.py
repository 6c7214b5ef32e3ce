"""Conditional GANs: wrapper shapes, label routing, config checks, training, checkpoints and sampling."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from gankit import GankitError, resolve
from gankit.cli import main
from gankit.export import plan_labels, read_manifest, regenerate
from gankit.generate import generate
from gankit.run import load_generator
from gankit.nets import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from gankit.nets.conditional import (ClassifierDiscriminator, ConcatDiscriminator, ConditionalGenerator,
                                     ProjectionDiscriminator)
from gankit.build import build_models
from gankit.engine import Trainer, train
from conftest import run_iteration

TINY = ("model.codes=0",  # tiny data: fewer images than the preset's 100 codes
        "model.width_g=8", "model.width_d=8", "model.z_dim=8", "model.embed_dim=4", "train.batch_size=16",
        "train.log_every=1", "train.progress=false", "train.tensorboard=false", "train.grid_size=8",
        "train.ema=0.9", "objective.penalty=none")
KINDS = [("concat", 0.0), ("projection", 0.0), ("projection", 1.0), ("ac", 1.0)]


def _cfg(*extra, epochs=1, preset="mnist-cdcgan"):
    return resolve(preset, TINY + extra, **{"train.epochs": float(epochs)})


def _kind(conditional, ac):
    return (f"model.conditional={conditional}", f"objective.ac_weight={ac}")


@pytest.mark.parametrize("conditional,ac", KINDS)
@pytest.mark.parametrize("arch,shape", [("dcgan", (1, 28, 28)), ("dcgan", (3, 32, 32)), ("mlp", (1, 28, 28))])
def test_conditional_shapes(conditional, ac, arch, shape):
    cfg = _cfg(f"model.arch={arch}", *_kind(conditional, ac))
    G, D = build_models(cfg, shape, n_classes=5)
    z, y = torch.randn(6, 8), torch.tensor([0, 1, 2, 3, 4, 0])
    x = G(z, y)
    assert x.shape == (6, *shape) and x.abs().max() <= 1
    logits, classes = D.outputs(x, y)
    assert logits.shape == (6,) and D(x, y).shape == (6,)
    assert (classes is None) == (ac == 0)
    if classes is not None:
        assert classes.shape == (6, 5)
    # wrappers around the base networks, not copies of them
    base_g, base_d = {"dcgan": (DCGANGenerator, DCGANDiscriminator), "mlp": (MLPGenerator, MLPDiscriminator)}[arch]
    assert isinstance(G, ConditionalGenerator) and isinstance(G.base, base_g) and G.base.z_dim == 8 + 4
    assert isinstance(D.base, base_d)
    wrapper = {"concat": ConcatDiscriminator, "projection": ProjectionDiscriminator, "ac": ClassifierDiscriminator}
    assert isinstance(D, wrapper[conditional])
    if conditional == "concat":
        assert D.base.image_shape == (shape[0] + 5, *shape[1:])


@pytest.mark.parametrize("conditional,ac", KINDS)
def test_only_the_label_changes_the_output(conditional, ac):
    torch.manual_seed(0)
    G, D = build_models(_cfg(*_kind(conditional, ac)), (1, 28, 28), n_classes=4)
    G.eval()
    z = torch.randn(1, 8).repeat(4, 1)  # the same z four times
    y = torch.arange(4)
    with torch.no_grad():
        x = G(z, y)
        again = G(z, y)
        assert torch.equal(x, again)
        for a in range(4):
            for b in range(a + 1, 4):
                assert (x[a] - x[b]).abs().max() > 1e-4, (a, b)
        x_same = x[:1].repeat(4, 1, 1, 1)
        logits, classes = D.outputs(x_same, y)
    if conditional == "ac":  # AC-GAN's D sees labels only through its class loss
        assert torch.allclose(logits, logits[:1].expand(4)) and torch.allclose(classes, classes[:1].expand(4, 4))
    else:
        assert (logits[1:] - logits[0]).abs().min() > 1e-6


def test_projection_matches_its_formula():
    torch.manual_seed(0)
    _, D = build_models(_cfg(), (1, 28, 28), n_classes=4)
    x, y = torch.randn(3, 1, 28, 28), torch.tensor([2, 0, 3])
    phi = D.base.features(x)
    expected = D.base.head(phi).squeeze(1) + (D.embed.weight[y] * phi).sum(1)
    torch.testing.assert_close(D(x, y), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("extra,message", [
    (("model.conditional=projector",), "model.conditional must be one of"),
    (("model.conditional=ac",), "needs a class loss: set objective.ac_weight"),
    (("model.conditional=concat", "objective.ac_weight=1"), "a concat D sees the label"),
    (("model.conditional=none", "objective.ac_weight=1"), "needs a class head on D"),
    (("train.fake_labels=balanced",), "train.fake_labels must be uniform or data"),
])
def test_bad_conditional_configs_are_refused(extra, message):
    with pytest.raises(GankitError, match=message):
        _cfg(*extra)


def test_one_class_data_cannot_train_a_conditional_model():
    with pytest.raises(GankitError, match="at least 2 classes"):
        build_models(_cfg(), (1, 28, 28), n_classes=1)


def _rows(run):
    return [{k: v for k, v in json.loads(line).items() if not k.startswith("speed/")}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("conditional,ac", KINDS)
def test_conditional_runs_train_and_checkpoints_rebuild_them(tmp_path, tiny_data, conditional, ac):
    t = train(_cfg(*_kind(conditional, ac)), tmp_path / "r", data=tiny_data)
    rows = _rows(tmp_path / "r")
    assert len(rows) == 4 and all(np.isfinite(r["loss/d"]) and np.isfinite(r["loss/g"]) for r in rows)
    assert ("loss/ac_d" in rows[-1]) == (ac > 0) and ("loss/ac_g" in rows[-1]) == (ac > 0)
    G, meta = load_generator(tmp_path / "r", device="cpu")
    assert isinstance(G, ConditionalGenerator) and G.n_classes == 4
    z, y = torch.randn(4, 8), torch.arange(4)
    torch.testing.assert_close(G(z, y), t.sample_network().eval()(z, y), rtol=0, atol=0)


def test_conditional_runs_are_deterministic_and_resume_exactly(tmp_path, tiny_data):
    extra = ("objective.penalty=r1", "objective.penalty_every=2", "train.fake_labels=data")
    train(_cfg(*extra, epochs=3), tmp_path / "full", data=tiny_data)
    train(_cfg(*extra, epochs=3), tmp_path / "again", data=tiny_data)
    train(_cfg(*extra, epochs=1), tmp_path / "part", data=tiny_data)
    Trainer(_cfg(*extra, epochs=3), tmp_path / "part", data=tiny_data, resume=True, force=True).run()
    full = _rows(tmp_path / "full")
    assert full == _rows(tmp_path / "again") == _rows(tmp_path / "part")


def test_real_and_fake_labels_reach_the_discriminator(tmp_path, tiny_data):
    """D sees each real image with its own label; fake labels come from the noise generator."""
    t = Trainer(_cfg(), tmp_path / "r", data=tiny_data)
    D = t.parts.modules["D"]
    seen = []
    original = D.outputs

    def spy(x, y):
        seen.append((x.detach().clone(), y.clone()))
        return original(x, y)

    D.outputs = spy
    drawn = []

    def labels(n, device, generator):
        drawn.append(torch.randint(0, 4, (n,), generator=generator))
        return drawn[-1]

    t.mode.cond.sample = labels
    idx = torch.tensor([3, 10, 17, 20])
    run_iteration(t, [tiny_data.x[idx]], [tiny_data.y[idx]])
    (x_real, y_real), (_, y_fake), (_, y_fake_g) = seen
    assert torch.equal(x_real, tiny_data.x[idx]) and torch.equal(y_real, tiny_data.y[idx])
    assert torch.equal(y_fake, drawn[0]) and torch.equal(y_fake_g, drawn[0])


def test_an_unconditional_step_draws_only_its_codes(tmp_path, tiny_data):
    """No label is drawn in an unconditional run: the noise stream advances by z alone, as before."""
    t = Trainer(resolve("mnist-dcgan", TINY + ("train.n_critic=2",)), tmp_path / "r", data=tiny_data)
    t.noise.manual_seed(5)
    run_iteration(t, [tiny_data.x[:16], tiny_data.x[16:32]], measure=True)
    reference = torch.Generator().manual_seed(5)
    torch.randn(16, 8, generator=reference)
    torch.randn(16, 8, generator=reference)
    assert torch.equal(t.noise.get_state(), reference.get_state())


# ---- sampling and export ----------------------------------------------------------------------------------

@pytest.fixture
def cond_run(tmp_path, tiny_data):
    train(_cfg(), tmp_path / "cond", data=tiny_data)
    return tmp_path / "cond"


def test_sample_per_class_writes_folders_and_a_manifest_that_regenerates_every_image(tmp_path, cond_run):
    out = tmp_path / "synth"
    assert main(["sample", str(cond_run), "--per-class", "3", "--out", str(out), "--seed", "4",
                 "--truncation", "1.5", "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["0", "1", "2", "3", "manifest.jsonl"]
    rows = read_manifest(out)
    assert len(rows) == 12 and [r["label"] for r in rows] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    _, meta = load_generator(cond_run, device="cpu")
    assert {r["checkpoint_sha256"] for r in rows} == {meta["sha256"]}
    assert all(r["file"].startswith(f"{r['label']}/") and r["seed"] == 4 for r in rows)
    G, _ = load_generator(cond_run, device="cpu")
    for r in rows:
        saved = np.asarray(Image.open(out / r["file"]))
        assert np.array_equal(regenerate(G, rows, r["file"]), saved), r["file"]


def test_regeneration_fails_when_the_seed_is_wrong(tmp_path, cond_run):
    out = tmp_path / "synth"
    assert main(["sample", str(cond_run), "--per-class", "2", "--out", str(out)]) == 0
    rows = read_manifest(out)
    G, _ = load_generator(cond_run, device="cpu")
    saved = np.asarray(Image.open(out / rows[0]["file"]))
    tampered = [dict(r, seed=r["seed"] + 1) for r in rows]
    assert not np.array_equal(regenerate(G, tampered, rows[0]["file"]), saved)


def test_sample_one_class_and_npz_labels(tmp_path, cond_run):
    assert main(["sample", str(cond_run), "--class", "2", "--n", "5", "--out", str(tmp_path / "twos")]) == 0
    assert sorted(p.name for p in (tmp_path / "twos").iterdir()) == ["2", "manifest.jsonl"]
    assert len(list((tmp_path / "twos" / "2").glob("*.png"))) == 5
    assert main(["sample", str(cond_run), "--class", "c", "--n", "3", "--out", str(tmp_path / "c.npz")]) == 0
    assert main(["sample", str(cond_run), "--per-class", "2", "--out", str(tmp_path / "all.npz")]) == 0
    with np.load(tmp_path / "c.npz") as f:
        assert f["labels"].tolist() == [2, 2, 2] and f["images"].shape == (3, 28, 28)
    with np.load(tmp_path / "all.npz") as f:
        assert f["labels"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_class_requests_on_an_unconditional_run_are_refused_in_one_line(tmp_path, tiny_data, capsys):
    train(resolve("mnist-dcgan", TINY, **{"train.epochs": 1.0}), tmp_path / "u", data=tiny_data)
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "u"), "--class", "3", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unconditional" in err[0] and err[0].startswith("gankit: error:")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("args,message", [
    (["--class", "9"], r"--class must be in 0\.\.3"), (["--class", "zebra"], "unknown class 'zebra'"),
    (["--class", "1", "--per-class", "2"], "not both"), (["--per-class", "0"], "at least 1"),
    (["--truncation", "0"], "--truncation must be at least 0.05"),
    (["--truncation", "1e-9"], "--truncation must be at least 0.05"),
])
def test_bad_sample_requests(tmp_path, cond_run, capsys, args, message):
    capsys.readouterr()
    assert main(["sample", str(cond_run), "--out", str(tmp_path / "s"), *args]) == 2
    assert message.replace("\\", "") in capsys.readouterr().err or pytest.fail(capsys.readouterr().err)


def test_truncation_bounds_the_codes_and_is_reproducible():
    from gankit.latent import latent_codes
    z = latent_codes(500, 16, seed=3, truncation=0.7)
    assert z.abs().max() <= 0.7 and z.abs().max() > 0.6
    assert torch.equal(z, latent_codes(500, 16, seed=3, truncation=0.7))
    assert torch.equal(latent_codes(7, 16, seed=3), torch.randn(7, 16, generator=torch.Generator().manual_seed(3)))


def test_generate_defaults_to_balanced_labels_and_rejects_labels_for_unconditional(cond_run, tiny_data):
    G, _ = load_generator(cond_run, device="cpu")
    explicit = generate(G, 8, seed=1, labels=torch.arange(8) % 4)
    assert torch.equal(generate(G, 8, seed=1), explicit)
    assert plan_labels(0, 5) is None
    G0, _ = build_models(resolve("mnist-dcgan", TINY), (1, 28, 28))
    with pytest.raises(GankitError, match="unconditional"):
        generate(G0.eval(), 4, labels=torch.zeros(4, dtype=torch.long))


def test_per_class_accuracy_counts_the_requested_class():
    from gankit.metrics.conditional import class_accuracy
    torch.manual_seed(0)
    G, _ = build_models(_cfg(), (1, 28, 28), n_classes=4)

    def always_two(x):
        return torch.nn.functional.one_hot(torch.full((len(x),), 2), 4).float()

    result = class_accuracy(G.eval(), always_two, per_class=5)
    assert result["per_class_accuracy"] == [0.0, 0.0, 1.0, 0.0]
    assert result["confusion"] == [[0, 0, 5, 0]] * 4
    assert result["min_class_accuracy"] == 0.0 and result["mean_class_accuracy"] == 0.25
