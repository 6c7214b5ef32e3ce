"""gankit.AdversarialLoss: the trainer's objectives as a loss for any training loop, and its example."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import gankit
from gankit.errors import GankitError
from gankit.nets import DCGANDiscriminator, MLPDiscriminator
from gankit.nets.conditional import ProjectionDiscriminator
from gankit.objectives import get_objective

SHAPE = (1, 28, 28)


def _mlp_d():
    torch.manual_seed(0)
    return MLPDiscriminator(SHAPE, width=32, norm="none", act="leaky_relu")


def _batch(n=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *SHAPE, generator=g) * 2 - 1


def test_losses_are_the_trainers_objective():
    D = _mlp_d()
    adv = gankit.AdversarialLoss("hinge", D)
    real, fake = _batch(seed=1), _batch(seed=2)
    obj = get_objective("hinge")
    with torch.no_grad():
        expected_d = obj.loss_d(D(real), D(fake))
        expected_g = obj.loss_g(D(fake))
    assert torch.allclose(adv.d_step(real, fake), expected_d)  # no optimizer: D's loss, with its graph
    assert adv.d_step(real, fake).requires_grad
    assert torch.allclose(adv.g_term(fake), expected_g)


def test_d_step_updates_d_and_g_term_reaches_only_the_generator():
    D = _mlp_d()
    adv = gankit.AdversarialLoss("non-saturating", D, torch.optim.SGD(D.parameters(), lr=0.5))
    real, fake = _batch(32, seed=1), _batch(32, seed=2) * 0.1
    first = float(adv.d_step(real, fake))
    for _ in range(20):
        last = float(adv.d_step(real, fake))
    assert last < first  # D learns to tell the two batches apart
    assert adv.last["d_real"] > adv.last["d_fake"]

    G = nn.Linear(4, 28 * 28)
    before = [p.detach().clone() for p in D.parameters()]
    for p in D.parameters():
        p.grad = None
    term = adv.g_term(torch.tanh(G(torch.randn(8, 4))).view(8, *SHAPE))
    term.backward()
    assert G.weight.grad is not None and G.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in D.parameters())  # D's parameters were frozen
    assert all(p.requires_grad for p in D.parameters())  # and are trainable again afterwards
    assert all(torch.equal(a, b) for a, b in zip(before, D.parameters()))


def test_fake_is_detached_in_d_step():
    D = _mlp_d()
    adv = gankit.AdversarialLoss("least-squares", D, torch.optim.Adam(D.parameters(), 1e-3))
    G = nn.Linear(4, 28 * 28)
    fake = G(torch.randn(8, 4)).view(8, *SHAPE)
    adv.d_step(_batch(), fake)
    assert G.weight.grad is None


def test_conditional_discriminator_uses_labels():
    torch.manual_seed(0)
    D = ProjectionDiscriminator(DCGANDiscriminator(SHAPE, width=8), 4, False, "spectral")
    adv = gankit.AdversarialLoss("non-saturating", D, torch.optim.Adam(D.parameters(), 1e-3))
    real, fake = _batch(8), _batch(8, seed=3)
    y = torch.arange(8) % 4
    loss = adv.d_step(real, fake, labels=y)
    assert torch.isfinite(loss)
    with torch.no_grad():  # the labels change D's verdict: they are really used
        a = adv.g_term(fake, labels=y)
        b = adv.g_term(fake, labels=(y + 1) % 4)
    assert not torch.allclose(a, b)
    with pytest.raises(GankitError, match="conditional: pass labels="):
        adv.g_term(fake)
    with pytest.raises(GankitError, match=r"shape \(8,\)"):
        adv.d_step(real, fake, labels=torch.arange(5))
    with pytest.raises(GankitError, match="integer class indices"):
        adv.d_step(real, fake, labels=torch.zeros(8))
    with pytest.raises(GankitError, match="class range"):
        adv.d_step(real, fake, labels=torch.full((8,), 9))


def test_penalty_and_clipping():
    D = _mlp_d()
    plain = gankit.AdversarialLoss("wasserstein", D)
    gp = gankit.AdversarialLoss("wasserstein", D, penalty="gp", penalty_weight=10.0)
    real, fake = _batch(), _batch(seed=4)
    torch.manual_seed(0)
    assert float(gp.d_step(real, fake).detach()) > float(plain.d_step(real, fake).detach())  # the penalty is positive
    clipped = gankit.AdversarialLoss("wasserstein", D, torch.optim.SGD(D.parameters(), lr=10.0), clip=0.01)
    clipped.d_step(real, fake)
    assert max(float(p.detach().abs().max()) for p in D.parameters()) <= 0.01


@pytest.mark.parametrize("call, match", [
    (lambda: gankit.AdversarialLoss("nonsaturating", _mlp_d()), "non-saturating"),
    (lambda: gankit.AdversarialLoss(3, _mlp_d()), "objective must be"),
    (lambda: gankit.AdversarialLoss("hinge", lambda x: x), "torch.nn.Module"),
    (lambda: gankit.AdversarialLoss("hinge", _mlp_d(), optimizer="adam"), "torch.optim.Optimizer"),
    (lambda: gankit.AdversarialLoss("hinge", _mlp_d(), penalty="r3"), "r1"),
    (lambda: gankit.AdversarialLoss("hinge", _mlp_d(), penalty_weight=float("nan")), "finite"),
    (lambda: gankit.AdversarialLoss("hinge", _mlp_d(), clip=-1), "clip"),
])
def test_bad_construction_is_one_clear_error(call, match):
    with pytest.raises(GankitError, match=match):
        call()


def test_hostile_inputs():
    D = _mlp_d()
    adv = gankit.AdversarialLoss("non-saturating", D, torch.optim.Adam(D.parameters(), 1e-3))
    real = _batch()
    with pytest.raises(GankitError, match="torch.Tensor"):
        adv.d_step(real.numpy(), real)
    with pytest.raises(GankitError, match="floating point"):
        adv.g_term(torch.zeros(8, *SHAPE, dtype=torch.uint8))
    with pytest.raises(GankitError, match="non-empty"):
        adv.g_term(torch.zeros(0, *SHAPE))
    with pytest.raises(GankitError, match="differ in shape"):
        adv.d_step(real, torch.zeros(8, 1, 32, 32))
    with pytest.raises(GankitError, match="built for"):
        adv.g_term(torch.zeros(8, 3, 28, 28))
    with pytest.raises(GankitError, match="takes no labels"):
        adv.g_term(real, labels=torch.zeros(8, dtype=torch.long))
    before = [p.detach().clone() for p in D.parameters()]
    bad = real.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(GankitError, match="NaN/Inf"):
        adv.d_step(bad, real)
    assert all(torch.equal(a, b) for a, b in zip(before, D.parameters()))  # nothing updated

    class WideD(nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :3]

    with pytest.raises(GankitError, match="one logit per image"):
        gankit.AdversarialLoss("hinge", WideD()).g_term(real)


def test_user_conditional_module_with_forward_x_y():
    class TinyCond(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.lin = nn.Embedding(3, 28 * 28), nn.Linear(28 * 28, 1)

        def forward(self, x, y):
            return self.lin(x.flatten(1) * self.embed(y))  # (N, 1): squeezed to (N,)

    adv = gankit.AdversarialLoss("non-saturating", TinyCond())
    y = torch.tensor([0, 1, 2, 0])
    assert adv.g_term(_batch(4), y).shape == ()
    assert adv.d_step(_batch(4), _batch(4, seed=5), y, fake_labels=torch.tensor([2, 2, 1, 0])).shape == ()


def test_example_runs_a_few_steps(tmp_path):
    path = Path(__file__).resolve().parents[1] / "examples" / "adversarial_autoencoder.py"
    spec = importlib.util.spec_from_file_location("adversarial_autoencoder", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "aae"
    code = module.main(["--dataset", "digits", "--limit", "128", "--steps", "3", "--batch-size", "16",
                        "--eval-n", "64", "--no-eval", "--out", str(out), "--log-every", "1"])
    assert code == 0
    record = json.loads((out / "results.json").read_text())
    assert [r["setting"].split(" ")[0] for r in record["results"]] == ["autoencoder", "+"]
    assert all(r["l1"] > 0 and r["sharpness"] > 0 for r in record["results"])
    assert (out / "reconstructions.png").is_file()
    assert module.main(["--dataset", "digits", "--steps", "0", "--out", str(out)]) == 2
