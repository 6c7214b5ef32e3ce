"""Coded GANs: the code read from z, InfoGAN's code head and loss, cluster codes, config checks."""
import json

import pytest
import torch
from safetensors.torch import save as st_save

from gankit import GankitError, resolve
from gankit.generate import generate
from gankit.run import load_generator
from gankit.nets import DCGANDiscriminator, DCGANGenerator
from gankit.data.clusters import CLUSTERS_FILE, kmeans_clusters
from gankit.nets.coded import CodedGenerator, code_function, codes_from_z
from gankit.nets.conditional import ClassifierDiscriminator, ProjectionDiscriminator
from gankit.build import build_models
from gankit.engine import Trainer, train

TINY = ("model.width_g=8", "model.width_d=8", "model.z_dim=8", "train.batch_size=16", "train.log_every=1",
        "train.progress=false", "train.tensorboard=false", "train.grid_size=8", "train.ema=0.9",
        "objective.penalty=none")
CODED = ("model.codes=4", "model.code_kind=info", "objective.info_weight=1.0")
CLUSTERED = ("model.codes=4", "model.code_kind=clusters")


def _cfg(*extra, epochs=1):
    return resolve("mnist-dcgan", TINY + extra, **{"train.epochs": float(epochs)})


@pytest.mark.parametrize("probs", [torch.full((7,), 1 / 7), torch.tensor([0.5, 0.1, 0.0, 0.25, 0.15])])
def test_codes_follow_their_prior_and_the_order_of_the_first_coordinate(probs):
    z = torch.randn(200_000, 3, generator=torch.Generator().manual_seed(0))
    k = len(probs)
    c = codes_from_z(z, probs)
    freq = torch.bincount(c, minlength=k).double() / len(c)
    assert c.min() == 0 and c.max() == k - 1
    assert torch.allclose(freq, probs.double(), atol=0.004)            # binomial sd <= 0.0012
    order = z[:, 0].argsort()
    assert (c[order].diff() >= 0).all()                                # monotone in z_0
    extreme = torch.tensor([[-1e30, 0.0], [1e30, 0.0]])
    assert codes_from_z(extreme, probs).tolist() == [0, k - 1]         # both tails land on a code
    assert codes_from_z(torch.zeros(1, 2), torch.full((7,), 1 / 7)).tolist() == [3]  # z_0 = 0: the middle code


def test_coded_wrappers_shapes_and_what_changes_the_output():
    torch.manual_seed(0)
    G, D = build_models(_cfg(*CODED), (1, 28, 28))
    assert isinstance(G, CodedGenerator) and isinstance(G.base, DCGANGenerator)
    assert isinstance(D, ClassifierDiscriminator) and isinstance(D.base, DCGANDiscriminator)
    assert G.z_dim == 8 and G.base.z_dim == 8 - 1 + 4
    G.eval()
    z = torch.randn(6, 8)
    x = G(z)
    assert x.shape == (6, 1, 28, 28) and x.abs().max() <= 1
    logits, q = D.outputs(x)
    assert logits.shape == (6,) and q.shape == (6, 4)
    assert torch.equal(logits, D(x)) and torch.equal(D(x), D.base(x))
    # within a code's bin z_0 does not matter; across a bin boundary it does
    same_bin, other_bin = z.clone(), z.clone()
    same_bin[:, 0], z[:, 0], other_bin[:, 0] = 0.1, 0.2, 1.5      # Phi: 0.54, 0.58 (code 2); 0.93 (code 3)
    assert torch.equal(G(same_bin), G(z))
    assert (G(other_bin) - G(z)).abs().amax(dim=(1, 2, 3)).min() > 0
    assert code_function(G)(z).tolist() == [2] * 6 and code_function(G.base) is None
    _, D_clusters = build_models(_cfg(*CLUSTERED), (1, 28, 28))
    assert isinstance(D_clusters, ProjectionDiscriminator) and D_clusters.n_classes == 4


def test_kmeans_clusters_split_separate_blobs_without_labels():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([-0.8, -0.2, 0.4, 0.9])
    truth = torch.arange(400) % 4
    x = centres[truth].view(-1, 1, 1, 1) + 0.05 * torch.randn(400, 1, 8, 8, generator=g)
    cluster, share = kmeans_clusters(x, 4, seed=0)
    assert cluster.shape == (400,) and share.dtype == torch.float64
    assert torch.allclose(share, torch.full((4,), 0.25, dtype=torch.float64))
    for k in range(4):                                                 # every cluster is one blob
        assert cluster[truth == k].unique().numel() == 1
    assert torch.equal(cluster, kmeans_clusters(x, 4, seed=0)[0])
    with pytest.raises(GankitError, match="only 4; set model.codes to at most 4"):
        kmeans_clusters(x[:4], 5, seed=0)


def test_a_cluster_coded_run_tells_d_each_image_cluster_and_keeps_the_split(tmp_path, tiny_data):
    run = tmp_path / "run"
    t = Trainer(_cfg(*CLUSTERED, epochs=2), run, data=tiny_data)
    saved = (run / CLUSTERS_FILE).read_bytes()
    assert torch.allclose(t.parts.modules["G"].code_probs.double(), t.mode.real_codes.bincount(minlength=4).double() / len(tiny_data))
    seen = []
    real_step = t.parts.step_modules["D"].outputs

    def spy(x, y):
        seen.append(y.clone())
        return real_step(x, y)
    t.parts.step_modules["D"].outputs = spy
    t.run()
    assert seen and all(y.dtype == torch.int64 and 0 <= y.min() and y.max() < 4 for y in seen)
    assert (run / CLUSTERS_FILE).read_bytes() == saved
    G, _ = load_generator(run, device="cpu")
    assert torch.equal(G.code_probs, t.parts.modules["G"].code_probs.cpu())           # the prior travels with the weights
    assert generate(G, 6, seed=0).shape == (6, 1, 28, 28)
    shifted = (t.mode.real_codes.cpu() + 1) % 4                           # a split k-means would not make
    (run / CLUSTERS_FILE).write_bytes(st_save({"cluster": shifted, "share": t.parts.modules["G"].code_probs.double().roll(1)}))
    resumed = Trainer(_cfg(*CLUSTERED, epochs=3), run, data=tiny_data, resume=True, force=True)
    assert torch.equal(resumed.mode.real_codes.cpu(), shifted)             # read back, not clustered again
    resumed.close()
    (run / CLUSTERS_FILE).write_bytes(st_save({"cluster": shifted[:10], "share": t.parts.modules["G"].code_probs.double()}))
    with pytest.raises(GankitError, match="does not match this run's data"):
        Trainer(_cfg(*CLUSTERED, epochs=3), run, data=tiny_data, resume=True, force=True)


def test_a_coded_run_learns_its_code_and_samples_like_any_unconditional_run(tmp_path, tiny_data):
    run = tmp_path / "run"
    train(_cfg(*CODED, epochs=8), run, data=tiny_data)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    info_d = [r["loss/info_d"] for r in rows if "loss/info_d" in r]
    info_g = [r["loss/info_g"] for r in rows if "loss/info_g" in r]
    assert len(info_d) == len(info_g) == len(rows) >= 30
    first, last = sum(info_g[:5]) / 5, sum(info_g[-5:]) / 5
    assert first > 1.0 and last < 0.5 * first       # ln 4 = 1.39 at the start; G and Q agree on the code later
    G, _ = load_generator(run, device="cpu")
    x = generate(G, 5, seed=1)
    assert x.shape == (5, 1, 28, 28)
    assert torch.equal(x, generate(G, 5, seed=1))


def test_the_code_head_learns_only_from_the_code_loss(tiny_data, tmp_path):
    heads = {}
    for weight in (0.0, 1.0):
        t = Trainer(_cfg(*CODED, "train.images=64"), tmp_path / str(weight), data=tiny_data)
        init = t.parts.modules["D"].classes.weight.detach().clone()
        for phase in t.stepper.phases:  # the InfoGAN terms' weight, as objective.info_weight would set it
            for term in phase.terms:
                if term.name.startswith("info_"):
                    term.weight = weight
        t.run()
        heads[weight] = (init, t.parts.modules["D"].classes.weight.detach())
    assert torch.equal(heads[0.0][0], heads[1.0][0])            # same seed, same start
    assert torch.equal(*heads[0.0])                              # no code loss: the head never moves
    assert not torch.equal(*heads[1.0])


@pytest.mark.parametrize("extra,needle", [
    (("model.codes=10", "model.code_kind=info"), "go together"),
    (("objective.info_weight=1.0",), "go together"),
    (("model.codes=10", "objective.info_weight=1.0"), "go together"),   # cluster codes take no code loss
    (("model.codes=10", "model.code_kind=kmeans"), "clusters, info"),
    (("model.codes=1",), "at least 2"),
    (("model.codes=-3",), "at least 2"),
    (("model.codes=10", "model.conditional=projection"), "unconditional"),
    (("model.codes=10", "model.z_dim=1"), "z_dim >= 2"),
])
def test_bad_code_settings_are_refused_with_the_fix(extra, needle):
    with pytest.raises(GankitError, match=needle):
        _cfg(*extra)
