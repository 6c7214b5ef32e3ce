"""Does synthetic data help a small labelled dataset? The augmentation benchmark.

For each subset size n (a class-balanced sample of the training split, fixed seed)
and each seed s:

1. train a conditional GAN on the subset only;
2. draw ``synthetic_per_class`` images of every class from it;
3. train the same small CNN (fixed recipe, seed s) on (a) the subset alone,
   (b) the subset plus the synthetic images (each batch ``real_fraction`` real),
   (c) the synthetic images alone (classification accuracy score, Ravuri & Vinyals 2019);
4. measure each CNN's accuracy on the real test split.

Accuracies are reported as mean and std over seeds. No image of the test split,
and none of the training split outside the subset, may reach the GAN or the CNN.
That is enforced by types: `make_subset` copies the chosen training images into a
`LabelledSet`, the only thing `train_gan` and `train_classifier` accept; the test
split lives in a `HeldOut`, which exposes only `accuracy(model)` (eval mode, no
gradients) and refuses to be turned into training data.
"""
from __future__ import annotations

import hashlib
import json
import math
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._version import __version__
from .atomic import atomic_write_text
from .data import ImageData, to_float
from .errors import GankitError

CONDITIONS = ("real", "real+synthetic", "synthetic")
TILE_TO = 10_000  # a small subset is repeated to about this many images per GAN "epoch" (grids, checkpoints)


@dataclass(frozen=True)
class LabelledSet:
    """Training images (N, C, H, W) in [-1, 1] with labels (N,): a subset of the training split, or synthetic.

    ``origin`` says which: 'train-subset' (with the training-split ``indices`` it was copied from) or
    'synthetic' (made by a generator trained on such a subset).
    """

    x: torch.Tensor
    y: torch.Tensor
    classes: tuple
    origin: str
    indices: Optional[tuple] = None

    def __post_init__(self):
        if self.origin not in ("train-subset", "synthetic"):
            raise ValueError(f"a LabelledSet comes from a training subset or a generator, not {self.origin!r}")
        assert self.x.shape[0] == self.y.shape[0], "one label per image"

    def __len__(self) -> int:
        return self.x.shape[0]

    def digest(self) -> str:
        """SHA-256 of the images and labels, to record which data a result came from."""
        h = hashlib.sha256(self.x.cpu().numpy().tobytes())
        h.update(self.y.cpu().numpy().tobytes())
        return h.hexdigest()


class HeldOut:
    """The real test split: it can score a model and nothing else."""

    def __init__(self, data: ImageData):
        self._x, self._y = data.x, data.y
        self.name = data.name

    def __len__(self) -> int:
        return self._x.shape[0]

    @torch.no_grad()
    def accuracy(self, model: nn.Module, batch_size: int = 1000) -> float:
        """Fraction of test images ``model`` classifies correctly (eval mode, no gradients)."""
        model.eval()
        device = next(model.parameters()).device
        correct = 0
        for xb, yb in zip(self._x.split(batch_size), self._y.split(batch_size)):
            correct += int((model(to_float(xb.to(device))).argmax(1).cpu() == yb.cpu()).sum())
        return correct / len(self)


def balanced_indices(labels: torch.Tensor, size: int, n_classes: int, seed: int) -> torch.Tensor:
    """``size // K`` random indices of every class (sorted), drawn with ``seed``; size must be a multiple of K."""
    if size < n_classes or size % n_classes:
        raise GankitError(f"subset size {size} must be a positive multiple of the {n_classes} classes "
                          f"(e.g. {n_classes * max(1, size // n_classes)}) so every class is equally represented")
    per_class = size // n_classes
    g = torch.Generator().manual_seed(int(seed))
    chosen = []
    for c in range(n_classes):
        idx = (labels.cpu() == c).nonzero().squeeze(1)
        if len(idx) < per_class:
            raise GankitError(f"class {c} has only {len(idx)} training images; subset size {size} needs {per_class}")
        chosen.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return torch.cat(chosen).sort().values


def make_subset(train: ImageData, size: int, seed: int) -> LabelledSet:
    """A class-balanced copy of ``size`` images of the training split (the only real data training ever sees)."""
    idx = balanced_indices(train.y, size, len(train.classes), seed)
    return LabelledSet(to_float(train.x[idx.to(train.x.device)].cpu()).clone(), train.y[idx.to(train.y.device)].cpu().clone(),
                       tuple(train.classes), "train-subset", tuple(idx.tolist()))


def _require(data, what: str) -> LabelledSet:
    if not isinstance(data, LabelledSet):
        raise TypeError(f"{what} takes a LabelledSet (a training subset or synthetic data), got {type(data).__name__}")
    return data


# ---- the GAN ---------------------------------------------------------------------------------------------------

@dataclass
class AugmentSpec:
    """Everything that defines one benchmark; recorded with its results."""

    dataset: str = "mnist"
    sizes: tuple = (100, 500, 1000)        # subset sizes (multiples of the class count)
    seeds: tuple = (0, 1, 2)               # one GAN and three classifiers per (size, seed)
    subset_seed: int = 0                   # the subsets are the same for every seed
    gan_preset: str = "mnist-cdcgan"
    gan_overrides: tuple = ()              # --set key=value for the GAN config
    gan_images: int = 60_000               # images seen by each GAN
    synthetic_per_class: int = 1000
    clf_steps: int = 2000                  # classifier steps (batch clf_batch) in every condition
    clf_batch: int = 64
    clf_lr: float = 1e-3
    shift: int = 2                         # random translation of up to this many pixels (all conditions)
    real_fraction: float = 0.5             # real images per batch in condition real+synthetic
    device: str = "auto"

    def validate(self) -> "AugmentSpec":
        checks = [(all(s > 0 for s in self.sizes) and self.sizes, "--sizes needs positive subset sizes"),
                  (len(self.seeds) >= 1, "--seeds needs at least one seed"),
                  (self.gan_images > 0, "--gan-images must be positive"),
                  (self.synthetic_per_class > 0, "--synthetic-per-class must be positive"),
                  (self.clf_steps > 0 and self.clf_batch > 0, "--clf-steps and the batch size must be positive"),
                  (0 < self.real_fraction < 1, "real_fraction must be in (0, 1)"),
                  (self.shift >= 0, "--shift must not be negative")]
        for ok, message in checks:
            if not ok:
                raise GankitError(message)
        return self


class _BarSink:
    """Forwards the trainer's images-seen count to the benchmark's progress bar."""

    def __init__(self, bar):
        self.bar, self.last = bar, None

    def start(self, images: int) -> None:
        """Where the run starts (a resumed run has seen images already)."""
        self.bar.update(images)
        self.last = images

    def scalars(self, step: int, images: int, values: dict) -> None:
        if self.last is not None and images > self.last:
            self.bar.update(images - self.last)
            self.last = images

    def image(self, tag, grid, step) -> None:
        pass

    def close(self) -> None:
        pass


def gan_config(spec: AugmentSpec, seed: int, subset_len: int):
    from .config import resolve

    batch = ("train.progress=false", "train.tensorboard=false", "train.keep_checkpoints=1",
             "train.grid_size=10", f"train.images={spec.gan_images}", f"train.seed={seed}",
             f"train.device={spec.device}", f"name=augment-{subset_len}-seed{seed}")
    return resolve(spec.gan_preset, tuple(spec.gan_overrides) + batch)


def train_gan(subset: LabelledSet, spec: AugmentSpec, seed: int, run_dir: Path, bar=None) -> nn.Module:
    """Train a conditional GAN on ``subset`` only; returns its sampling generator (EMA when on), eval mode.

    A small subset is repeated (every image equally often) so an "epoch" has about TILE_TO images.
    An existing run folder is resumed (a finished one returns at once).
    """
    from .engine import Trainer

    subset = _require(subset, "train_gan")
    if subset.origin != "train-subset":
        raise GankitError("the GAN trains on a training subset only")
    cfg = gan_config(spec, seed, len(subset))
    if cfg.model.conditional == "none":
        raise GankitError(f"the augmentation GAN must be conditional; {spec.gan_preset} sets model.conditional=none")
    reps = max(1, math.ceil(TILE_TO / len(subset)))
    data = ImageData(subset.x.repeat(reps, 1, 1, 1), subset.y.repeat(reps), spec.dataset, list(subset.classes))
    resume = (Path(run_dir) / "config.yaml").is_file() and any((Path(run_dir) / "checkpoints").glob("ckpt-*.json"))
    sinks = (_BarSink(bar),) if bar is not None else ()
    trainer = Trainer(cfg, Path(run_dir), data=data, resume=resume, sinks=sinks)
    for sink in sinks:
        sink.start(trainer.progress.images)
    trainer.run()
    for sink in sinks:
        bar.update(max(0, cfg.train.images - sink.last))
    return trainer.sample_network().eval()


@torch.no_grad()
def synthesize(G: nn.Module, per_class: int, seed: int, classes: tuple) -> LabelledSet:
    """``per_class`` images of every class from conditional G, quantised to uint8 like exported samples."""
    from .data import to_tensor_images
    from .export import plan_labels, to_uint8
    from .generate import generate
    from .nets.conditional import n_classes_of

    labels = plan_labels(n_classes_of(G), 0, per_class=per_class)
    x = to_tensor_images(to_uint8(generate(G, len(labels), seed=seed, labels=labels)))
    return LabelledSet(x, labels, tuple(classes), "synthetic")


# ---- the classifier ----------------------------------------------------------------------------------------------

class SmallCNN(nn.Module):
    """The benchmark's classifier (not the metrics' domain classifier): x (N, C, H, W) -> logits (N, K)."""

    def __init__(self, channels: int = 1, size: int = 28, n_classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 16 x size/2 x size/2
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),        # 32 x size/4 x size/4
            nn.Flatten(), nn.Linear(32 * (size // 4) ** 2, 64), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(64, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _shift(x: torch.Tensor, shift: int, g: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``shift`` pixels (the padding is -1, the background)."""
    if shift == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (shift,) * 4, value=-1.0)
    offsets = torch.randint(0, 2 * shift + 1, (n, 2), generator=g)
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets.tolist())])


def train_classifier(sets: list, spec: AugmentSpec, seed: int, device=None, bar=None,
                     fractions: Optional[list] = None) -> nn.Module:
    """Train `SmallCNN` with seed ``seed`` for ``spec.clf_steps`` steps on batches drawn from ``sets``.

    ``sets`` are `LabelledSet`s; each batch takes ``fractions[i]`` of its images from set i (default:
    all from the first), drawn with replacement by a generator seeded with ``seed``.
    """
    sets = [_require(s, "train_classifier") for s in sets]
    fractions = fractions or [1.0] + [0.0] * (len(sets) - 1)
    device = device or torch.device("cpu")
    torch.manual_seed(seed)
    c, h = sets[0].x.shape[1], sets[0].x.shape[2]
    model = SmallCNN(c, h, len(sets[0].classes)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=spec.clf_lr)
    g = torch.Generator().manual_seed(seed)
    counts = [round(f * spec.clf_batch) for f in fractions]
    counts[0] += spec.clf_batch - sum(counts)
    model.train()
    for _ in range(spec.clf_steps):
        xs, ys = [], []
        for s, k in zip(sets, counts):
            if k:
                idx = torch.randint(0, len(s), (k,), generator=g)
                xs.append(s.x[idx])
                ys.append(s.y[idx])
        x = _shift(torch.cat(xs), spec.shift, g).to(device)
        loss = F.cross_entropy(model(x), torch.cat(ys).to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if bar is not None:
            bar.update(spec.clf_batch * CLF_WEIGHT)
    return model.eval()


CLF_WEIGHT = 0.1  # a classifier image costs about a tenth of a GAN image (for the progress bar's ETA)


# ---- the benchmark ----------------------------------------------------------------------------------------------

def _mean_std(values: list) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values)}


def run_benchmark(train: ImageData, test: ImageData, spec: AugmentSpec, out_dir, progress: bool = True) -> dict:
    """Run the benchmark; write ``out_dir/results.json`` and ``out_dir/results.md``; return the results."""
    from tqdm import tqdm

    from .device import pick_device

    spec.validate()
    held_out = HeldOut(test)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = pick_device(spec.device)
    per_run = spec.gan_images + 3 * spec.clf_steps * spec.clf_batch * CLF_WEIGHT
    bar = tqdm(total=per_run * len(spec.sizes) * len(spec.seeds), unit="img", unit_scale=True,
               desc="augment", disable=not progress, dynamic_ncols=True)
    rows, subsets, start = [], {}, time.time()
    try:
        for size in spec.sizes:
            subset = make_subset(train, size, spec.subset_seed)
            subsets[size] = {"sha256": subset.digest(), "indices": list(subset.indices)}
            for seed in spec.seeds:
                bar.set_postfix(size=size, seed=seed)
                G = train_gan(subset, spec, seed, out_dir / "gan" / f"size{size}-seed{seed}", bar)
                synthetic = synthesize(G, spec.synthetic_per_class, 10_000 + seed, subset.classes)
                runs = {"real": ([subset], None), "real+synthetic": ([subset, synthetic],
                                                                     [spec.real_fraction, 1 - spec.real_fraction]),
                        "synthetic": ([synthetic], None)}
                for condition in CONDITIONS:
                    sets, fractions = runs[condition]
                    clf = train_classifier(sets, spec, seed, device, bar, fractions)
                    rows.append({"size": size, "seed": seed, "condition": condition,
                                 "test_accuracy": held_out.accuracy(clf)})
    finally:
        bar.close()
    summary = {str(size): {c: _mean_std([r["test_accuracy"] for r in rows if r["size"] == size
                                         and r["condition"] == c]) for c in CONDITIONS} for size in spec.sizes}
    result = {"spec": asdict(spec), "summary": summary, "runs": rows, "subsets": subsets,
              "provenance": {"gankit_version": __version__, "test_images": len(held_out), "test_split": test.name,
                             "seconds": round(time.time() - start, 1), "device": str(device)}}
    atomic_write_text(out_dir / "results.json", json.dumps(result, indent=1))
    atomic_write_text(out_dir / "results.md", markdown_table(result) + "\n")
    return result


def markdown_table(result: dict) -> str:
    """The summary as a Markdown table: test accuracy, mean ± std over seeds, per size and condition."""
    spec = result["spec"]
    lines = ["| labelled images | (a) real only | (b) real + synthetic | (c) synthetic only (CAS) |",
             "|---:|---:|---:|---:|"]
    for size, by_condition in result["summary"].items():
        cells = [f"{100 * v['mean']:.2f} ± {100 * v['std']:.2f}" for v in (by_condition[c] for c in CONDITIONS)]
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Test accuracy (%) on {result['provenance']['test_images']} real test images, mean ± std over "
                 f"seeds {', '.join(map(str, spec['seeds']))}; GAN {spec['gan_preset']} trained on the subset only "
                 f"for {spec['gan_images']} images; {spec['synthetic_per_class']} synthetic images per class; "
                 f"classifier {spec['clf_steps']} steps of batch {spec['clf_batch']}.")
    return "\n".join(lines)
