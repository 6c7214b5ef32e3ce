"""The empirical NTK against explicit Jacobian products, and the function-space step."""
import pytest
import torch
import torch.nn as nn

from gankit.config import RunConfig
from gankit.dynamics.kernel import function_space_step, kernel_eigenvalues, load_discriminator, ntk
from gankit.errors import GankitError
from gankit.nets import DCGANDiscriminator, MLPDiscriminator
from gankit.nets.conditional import ClassifierDiscriminator, ConcatDiscriminator, ProjectionDiscriminator
from gankit.objectives import get_objective
from gankit.checkpoint import module_tensors, save_checkpoint


def explicit_kernel(D, x, y, x_labels=None, y_labels=None):
    """Oracle: one backward pass per point, parameter gradients stacked into J, then J_x J_y^T."""
    D.eval()
    params = [p for p in D.parameters() if p.requires_grad]

    def rows(points, labels):
        out = []
        for i in range(points.shape[0]):
            logit = D(points[i:i + 1]) if labels is None else D(points[i:i + 1], labels[i:i + 1])
            g = torch.autograd.grad(logit.sum(), params, allow_unused=True)
            out.append(torch.cat([(torch.zeros_like(p) if t is None else t).reshape(-1) for p, t in zip(params, g)]))
        return torch.stack(out)
    return rows(x, x_labels) @ rows(y, y_labels).T


class Linear1D(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(1, 1)

    def forward(self, x):
        return self.layer(x).squeeze(1)


def test_linear_discriminator_kernel_is_xy_plus_one():
    x = torch.linspace(-2, 2, 9, dtype=torch.float64)[:, None]
    y = torch.tensor([[-1.0], [0.5], [3.0]], dtype=torch.float64)
    K = ntk(Linear1D().double(), x, y)
    assert K.numpy() == pytest.approx((x @ y.T + 1).numpy(), abs=1e-12)


@pytest.mark.parametrize("make,shape", [
    (lambda: MLPDiscriminator((1,), width=8, depth=2, norm="none", act="tanh"), (1,)),
    (lambda: MLPDiscriminator((2,), width=8, depth=2, norm="batch", act="relu"), (2,)),
    (lambda: MLPDiscriminator((1,), width=8, depth=2, norm="spectral", act="elu"), (1,)),
    (lambda: DCGANDiscriminator((1, 28, 28), width=4, norm="batch"), (1, 28, 28)),
])
def test_kernel_equals_explicit_jacobian_product(make, shape):
    torch.manual_seed(0)
    D = make().double()
    x = torch.randn(7, *shape, dtype=torch.float64)
    y = torch.randn(4, *shape, dtype=torch.float64)
    ref = explicit_kernel(D, x, y)
    assert ntk(D, x, y).numpy() == pytest.approx(ref.numpy(), rel=1e-10, abs=1e-10)
    # chunked over points (tiny memory budget) gives the same symmetric kernel
    K_small = ntk(D, x, max_bytes=1)
    assert K_small.numpy() == pytest.approx(explicit_kernel(D, x, x).numpy(), rel=1e-10, abs=1e-10)
    assert K_small.numpy() == pytest.approx(K_small.T.numpy(), abs=1e-12)


@pytest.mark.parametrize("wrap", [
    lambda: ProjectionDiscriminator(DCGANDiscriminator((1, 28, 28), width=4, norm="none"), 3),
    lambda: ConcatDiscriminator(DCGANDiscriminator((4, 28, 28), width=4, norm="none"), 3),
    lambda: ClassifierDiscriminator(DCGANDiscriminator((1, 28, 28), width=4, norm="none"), 3),
])
def test_kernel_of_a_discriminator_that_takes_labels(wrap):
    torch.manual_seed(0)
    D = wrap().double()
    x, y = torch.randn(6, 1, 28, 28, dtype=torch.float64), torch.randn(4, 1, 28, 28, dtype=torch.float64)
    lx, ly = torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([2, 2, 0, 1])
    ref = explicit_kernel(D, x, y, lx, ly)
    assert ntk(D, x, y, x_labels=lx, y_labels=ly).numpy() == pytest.approx(ref.numpy(), rel=1e-10, abs=1e-10)
    assert ntk(D, x, x_labels=lx, max_bytes=1).numpy() == pytest.approx(
        explicit_kernel(D, x, x, lx, lx).numpy(), rel=1e-10, abs=1e-10)
    if isinstance(D, ProjectionDiscriminator):  # the label is part of the point: another label, another kernel
        assert not torch.allclose(ntk(D, x, y, x_labels=lx, y_labels=(ly + 1) % 3), ref)
        step = function_space_step(D, get_objective("non-saturating"), x[:3], x[3:], 1e-6, y_real=lx[:3],
                                   y_fake=lx[3:])
        assert step["relative_error"] < 1e-3 and step["predicted"].shape == (6,)


def test_kernel_points_of_a_cluster_coded_run_carry_clusters_and_codes(tmp_path, tiny_data, capsys, monkeypatch):
    from gankit.cli import main
    from gankit.config import resolve
    from gankit.dynamics.kernel import run_points
    from gankit.latent import latent_codes
    from gankit.engine import train

    cfg = resolve("mnist-dcgan", ("model.codes=4", "model.width_g=8", "model.width_d=8", "model.z_dim=8",
                                  "train.batch_size=16", "train.progress=false", "train.tensorboard=false",
                                  "objective.penalty=none"), **{"train.epochs": 1.0})
    train(cfg, tmp_path / "run", data=tiny_data)
    # the kernel reads the training split like the run did
    monkeypatch.setattr("gankit.data.load_dataset", lambda *a, **k: tiny_data)
    x_real, x_fake, y_real, y_fake = run_points(tmp_path / "run", cfg, 10, seed=3)
    assert main(["dynamics", "kernel", str(tmp_path / "run"), "--points", "8", "--step-lr", "1e-5"]) == 0
    from gankit.run import load_generator
    from gankit.data.clusters import read_clusters

    clusters = read_clusters(tmp_path / "run")[0]
    idx = torch.randperm(len(tiny_data), generator=torch.Generator().manual_seed(3))[:5]
    assert torch.equal(y_real, clusters[idx]) and torch.equal(x_real, tiny_data.x[idx].cpu())
    G, _ = load_generator(tmp_path / "run", device="cpu")
    assert torch.equal(y_fake, G.codes(latent_codes(5, 8, 3))) and x_fake.shape == (5, 1, 28, 28)
    assert "relative error" in capsys.readouterr().out


def test_kernel_restores_training_mode_and_is_positive_semidefinite():
    D = MLPDiscriminator((1,), width=8, depth=2, norm="batch").double().train()
    x = torch.linspace(-1, 1, 12, dtype=torch.float64)[:, None]
    K = ntk(D, x)
    assert D.training
    ev = kernel_eigenvalues(K)
    assert ev[0] >= ev[-1]
    assert float(ev.min()) >= -1e-9 * float(ev.max())  # a Gram matrix: no negative eigenvalue beyond rounding


@pytest.mark.parametrize("name", ["non-saturating", "wasserstein"])
def test_function_space_step_predicts_a_small_gradient_step(name):
    torch.manual_seed(1)
    D = MLPDiscriminator((1,), width=16, depth=2, norm="none", act="tanh").double()
    x_real = 0.5 + 0.1 * torch.randn(6, 1, dtype=torch.float64)
    x_fake = torch.rand(5, 1, dtype=torch.float64) * 2 - 1
    small = function_space_step(D, get_objective(name), x_real, x_fake, 1e-5)
    large = function_space_step(D, get_objective(name), x_real, x_fake, 1e-3)
    assert small["relative_error"] == pytest.approx(0.0, abs=1e-4)
    # the error is second order in the step: 100x the lr gives ~100x the relative error
    assert large["relative_error"] / small["relative_error"] == pytest.approx(100, rel=0.2)
    assert small["predicted"].shape == (11,)


def test_load_discriminator_from_a_checkpoint(tmp_path):
    cfg = RunConfig()
    cfg.model.arch, cfg.model.width_d, cfg.model.width_g, cfg.model.z_dim = "mlp", 4, 4, 3
    from gankit.build import build_models

    torch.manual_seed(3)
    G, D = build_models(cfg, (1, 4, 4))
    tensors = {**module_tensors("G", G), **module_tensors("D", D)}
    save_checkpoint(tmp_path / "checkpoints", "ckpt-000000000010", tensors,
                    {"config": cfg.to_dict(), "image_shape": [1, 4, 4], "progress": {"images": 10}})
    loaded, cfg2, meta = load_discriminator(tmp_path)
    x = torch.randn(5, 1, 4, 4)
    D.eval()
    assert loaded(x).detach().numpy() == pytest.approx(D(x).detach().numpy(), abs=1e-6)
    fresh, _, _ = load_discriminator(tmp_path, init=True, seed=7)
    assert not torch.allclose(fresh(x), D(x))
    with pytest.raises(GankitError, match="does not exist"):
        load_discriminator(tmp_path / "missing")
