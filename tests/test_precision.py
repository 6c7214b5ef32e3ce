"""Speed options: precision resolution, bf16 autocast with fp32 losses, compiled networks, fp32 unchanged."""
import json
import shutil

import numpy as np
import pytest
import torch

from gankit import GankitError, resolve
from gankit.cli import main
from gankit.run import load_generator
from gankit.objectives import get_objective
from gankit.penalties import penalty_fn
from gankit.build import build_models
from gankit.checkpoint import load_checkpoint
from gankit.engine import Trainer, train
from gankit.engine import precision as P
from conftest import run_iteration
from gankit.checkpoint import latest_checkpoint

TINY = ("model.codes=0",  # tiny data: fewer images than the preset's 100 codes
        "model.width_g=8", "model.width_d=8", "model.z_dim=8", "train.batch_size=16", "train.log_every=1",
        "train.progress=false", "train.grid_size=16", "train.ema=0.9", "train.tensorboard=false")
CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def _cfg(*extra, epochs=1):
    return resolve("mnist-dcgan", TINY + extra, **{"train.epochs": float(epochs)})


def _no_native_bf16(monkeypatch, flags=frozenset({"avx2", "fma"})):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(P, "cpu_flags", lambda: set(flags))


# ---- resolution ---------------------------------------------------------------------------

def test_auto_on_a_cpu_without_bf16_features_is_fp32(monkeypatch):
    _no_native_bf16(monkeypatch)
    name, reason = P.resolve_precision("auto", CPU)
    assert name == "fp32" and "AVX-512 BF16" in reason
    assert P.resolve_speed("auto", None, False, CPU).autocast().__class__ is not torch.autocast


@pytest.mark.parametrize("flag", ["avx512_bf16", "amx_bf16"])
def test_auto_on_a_cpu_with_native_bf16_is_bf16(monkeypatch, flag):
    _no_native_bf16(monkeypatch, {"avx2", "avx512f", flag})
    assert P.resolve_precision("auto", CPU)[0] == "bf16"


def test_auto_follows_torchs_own_cpu_probe(monkeypatch):
    _no_native_bf16(monkeypatch)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert P.resolve_precision("auto", CPU)[0] == "bf16"


def test_this_cpus_answer_matches_its_flags():
    flags = P.cpu_flags()
    if not flags:
        pytest.skip("no /proc/cpuinfo flags here")
    if flags & {"avx512_bf16", "amx_bf16"}:
        assert P.cpu_has_fast_bf16()
    else:  # torch's probes may still say yes on a CPU whose flags the kernel hides; never the other way round
        assert P.cpu_has_fast_bf16() == bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


@pytest.mark.parametrize("capability, expected", [((8, 0), "bf16"), ((9, 0), "bf16"), ((7, 5), "fp32")])
def test_auto_on_cuda_follows_compute_capability(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert P.resolve_precision("auto", CUDA)[0] == expected


def test_bf16_on_an_old_gpu_is_refused_with_a_fix(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    with pytest.raises(GankitError, match=r"compute capability 8.0 or newer, this one is 7.5; use --precision fp16"):
        P.resolve_precision("bf16", CUDA)
    assert P.resolve_precision("fp16", CUDA)[0] == "fp16"


@pytest.mark.parametrize("name, device, message", [
    ("fp16", CPU, r"fp16 needs a CUDA GPU.*use --precision fp32 or bf16"),
    ("bf16", torch.device("mps"), r"not offered on MPS; use --precision fp32"),
    ("bf61", CPU, r"must be one of auto, fp32, bf16, fp16.*did you mean \"bf16\""),
])
def test_bad_precisions_are_one_line_errors(name, device, message):
    with pytest.raises(GankitError, match=message) as info:
        P.resolve_precision(name, device)
    assert "\n" not in str(info.value)


def test_forced_bf16_on_an_emulating_cpu_runs_with_a_warning(monkeypatch):
    _no_native_bf16(monkeypatch)
    name, reason = P.resolve_precision("bf16", CPU)
    assert name == "bf16" and "emulated and slow" in reason


def test_channels_last_auto_is_cuda_only_and_overridable(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 0))  # no TF32 flags set
    assert not P.resolve_speed("fp32", None, False, CPU).channels_last
    assert P.resolve_speed("fp32", True, False, CPU).channels_last
    assert P.resolve_speed("fp32", None, False, CUDA).channels_last
    assert not P.resolve_speed("fp32", False, False, CUDA).channels_last


def test_fp16_on_cpu_fails_from_the_cli_before_writing(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["train", "mnist-dcgan", "--precision", "fp16", "--device", "cpu", "--run-dir", str(run)]) == 2
    assert "fp16 needs a CUDA GPU" in capsys.readouterr().err
    assert not run.exists()


def test_compile_without_a_compiler_is_a_gankit_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(GankitError, match="needs a C\\+\\+ compiler"):
        P.resolve_speed("fp32", None, True, CPU)


# ---- training -----------------------------------------------------------------------------

def test_forced_bf16_trains_with_bf16_networks_and_fp32_losses(tmp_path, tiny_data):
    seen = set()
    t = train(_cfg("train.precision=bf16"), tmp_path / "r", data=tiny_data)
    # the trained networks really ran in bf16 under autocast: check one more iteration
    hook = t.parts.modules["D"].body[0].register_forward_hook(lambda m, i, out: seen.add(out.dtype))
    stats = run_iteration(t, [tiny_data.x[:16]], measure=True)
    hook.remove()
    assert torch.bfloat16 in seen
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in stats.values())
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(np.isfinite(r[k]) for r in rows for k in ("loss/d", "loss/g", "loss/penalty")
                                  if k in r)
    _, meta = load_checkpoint(latest_checkpoint(tmp_path / "r" / "checkpoints"))
    assert meta["speed"]["precision"] == "bf16"
    assert "precision bf16" in (tmp_path / "r" / "log.txt").read_text()
    assert all(p.dtype == torch.float32 for p in t.parts.modules["G"].parameters())  # weights and Adam states stay fp32


def test_fp32_step_equals_the_plain_pytorch_loop(tmp_path, tiny_data):
    """gankit's fp32 iteration (autocast, casts and scalers all no-ops) matches a textbook loop bit for bit."""
    cfg = _cfg("train.precision=fp32", "objective.penalty=r1", "objective.penalty_every=1",
               "objective.penalty_weight=0.5", "optim.lr_g=1e-3", "optim.lr_d=1e-3", "optim.beta1=0.0",
               "optim.beta2=0.99", "train.ema=0")
    objective, r1 = get_objective("non-saturating"), penalty_fn("r1")
    t = Trainer(cfg, tmp_path / "r", data=tiny_data)  # seeds the global RNG with train.seed=0, noise with 1
    G, D = t.parts.modules["G"], t.parts.modules["D"]
    torch.manual_seed(0)
    G2, D2 = build_models(cfg, (1, 28, 28))
    opt_g2, opt_d2 = [torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.0, 0.99), foreach=True) for m in (G2, D2)]
    noise = torch.Generator().manual_seed(1)
    for step in range(3):
        x_real = tiny_data.x[16 * step:16 * step + 16]
        run_iteration(t, [x_real], index=step)
        # textbook: D step on (x_real, G(z)), then G step through the updated D
        x_fake = G2(torch.randn(16, 8, generator=noise))
        loss_d = objective.loss_d(D2(x_real), D2(x_fake.detach()))
        loss_d = loss_d + 0.5 * r1(D2, x_real, None, noise).mean()
        opt_d2.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d2.step()
        D2.requires_grad_(False)
        loss_g = objective.loss_g(D2(x_fake))
        opt_g2.zero_grad(set_to_none=True)
        loss_g.backward()
        D2.requires_grad_(True)
        opt_g2.step()
    for a, b in zip([*G.state_dict().values(), *D.state_dict().values()],
                    [*G2.state_dict().values(), *D2.state_dict().values()]):
        assert torch.equal(a, b)


def test_compiled_networks_give_plain_checkpoints(tmp_path, tiny_data):
    pytest.importorskip("torch._inductor")
    if not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        pytest.skip("torch.compile on CPU needs a C++ compiler")
    cfg = _cfg("train.compile=true", "model.arch=mlp", "objective.penalty=r1", "objective.penalty_every=2",
               "train.log_every=2")
    t = train(cfg, tmp_path / "r", data=tiny_data)
    assert isinstance(t.parts.step_modules["G"], torch._dynamo.eval_frame.OptimizedModule)  # the steps did run compiled
    tensors, meta = load_checkpoint(latest_checkpoint(tmp_path / "r" / "checkpoints"))
    assert meta["speed"]["compile"] is True
    assert tensors and not [k for k in tensors if "_orig_mod" in k]
    G, _ = load_generator(tmp_path / "r", device="cpu")  # a plain, uncompiled G loads the EMA weights
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(G(z), t.parts.emas["G"].module.eval()(z))


def test_channels_last_runs_resume_exactly_and_load_as_plain_weights(tmp_path, tiny_data):
    def losses(run):
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [(r["images"], r["loss/d"], r["loss/g"]) for r in rows]

    train(_cfg("train.channels_last=true", epochs=2), tmp_path / "full", data=tiny_data)
    t = train(_cfg("train.channels_last=true", epochs=1), tmp_path / "part", data=tiny_data)
    assert t.parts.modules["D"].body[0].weight.is_contiguous(memory_format=torch.channels_last)
    Trainer(_cfg("train.channels_last=true", epochs=2), tmp_path / "part", data=tiny_data, resume=True,
            force=True).run()
    assert losses(tmp_path / "part") == losses(tmp_path / "full")
    G, meta = load_generator(tmp_path / "full", device="cpu")  # a default (contiguous) G loads them
    assert meta["speed"]["channels_last"] is True and G(torch.zeros(2, 8)).shape == (2, 1, 28, 28)
