"""Per-class accuracy of a conditional generator: does "a 7" come out as a 7?

For each class k, ``per_class`` images are requested as class k (latent codes from
one seed, as `gankit sample --per-class` draws them), written to uint8 like saved
samples and read back, and classified by the held-out domain classifier:

    acc_k = (1/m) sum_i [argmax_y p(y | G(z_i, k)) = k]

The classifier was trained on the dataset's training split and never saw the
generator; its SHA-256 goes with the result.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import torch

from .._version import __version__
from ..atomic import atomic_write_text
from ..data import to_tensor_images
from ..errors import GankitError


@torch.no_grad()
def class_accuracy(G: torch.nn.Module, classify, per_class: int, seed: int = 0) -> dict:
    """Per-class accuracy of conditional G under ``classify`` (x (N, C, H, W) in [-1, 1] -> logits (N, K)).

    Returns 'per_class_accuracy' (K floats), 'min_class_accuracy', 'mean_class_accuracy' and
    'confusion' (K x K counts: row requested class, column predicted class).
    """
    from ..export import plan_labels, to_uint8
    from ..generate import generate
    from ..nets.conditional import n_classes_of

    k = n_classes_of(G)
    if k == 0:
        raise GankitError("per-class accuracy needs a conditional run (model.conditional set); this one is "
                          "unconditional: use gankit evaluate without --per-class")
    labels = plan_labels(k, 0, per_class=per_class)
    x = to_tensor_images(to_uint8(generate(G, len(labels), seed=seed, labels=labels)))
    predicted = torch.cat([classify(b).argmax(1).cpu() for b in x.split(1000)])
    if predicted.max() >= k:
        raise GankitError(f"the classifier predicts more classes than the generator's {k}")
    confusion = torch.zeros(k, k, dtype=torch.long)
    confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    acc = (confusion.diag().double() / confusion.sum(1).double()).tolist()
    return {"per_class_accuracy": [round(a, 5) for a in acc], "min_class_accuracy": min(acc),
            "mean_class_accuracy": sum(acc) / k, "confusion": confusion.tolist()}


def evaluate_class_accuracy(run_dir, per_class: int = 1000, seed: int = 0, data_dir: Optional[str] = None,
                            checkpoint: Optional[str] = None) -> dict:
    """`class_accuracy` of a run's generator (EMA weights when present) with its dataset's domain classifier,
    with provenance; saved as RUN_DIR/eval/<images_seen>-class-accuracy-seed<seed>.json."""
    from ..run import load_generator
    from .extractors import domain_extractor

    if per_class < 1:
        raise GankitError(f"--per-class must be at least 1, got {per_class}")
    start = time.time()
    G, meta = load_generator(run_dir, checkpoint, device="cpu")
    ext = domain_extractor(meta["dataset"], data_dir or meta["config"]["data"]["data_dir"], progress=True)
    result = class_accuracy(G, lambda x: ext(x).logits, per_class, seed)
    result["classes"] = meta.get("classes")
    result["provenance"] = {"metric": "per-class accuracy", "classifier": ext.name, "classifier_hash": ext.hash,
                            "classifier_test_accuracy": ext.info.get("test_accuracy"), "per_class": per_class,
                            "seed": seed, "images_seen": meta["progress"]["images"], "run_dir": str(run_dir),
                            "checkpoint_sha256": meta.get("sha256"), "weights": meta.get("weights"),
                            "gankit_version": __version__, "seconds": round(time.time() - start, 2)}
    folder = Path(run_dir) / "eval"
    folder.mkdir(exist_ok=True)
    path = folder / f"{meta['progress']['images']:012d}-class-accuracy-seed{seed}.json"
    atomic_write_text(path, json.dumps(result, indent=1))
    result["provenance"]["written_to"] = str(path)
    return result


def format_class_accuracy(result: dict) -> str:
    """A table: one row per class with its accuracy and most frequent wrong prediction."""
    names = result.get("classes") or [str(i) for i in range(len(result["per_class_accuracy"]))]
    rows = [f"{'class':<14}{'accuracy':>10}  most confused with"]
    for k, (name, acc) in enumerate(zip(names, result["per_class_accuracy"])):
        wrong = [(c, j) for j, c in enumerate(result["confusion"][k]) if j != k]
        count, j = max(wrong) if wrong else (0, k)
        other = f"{names[j]} ({count})" if count else "-"
        rows.append(f"{k} {name:<12}{acc:>10.4f}  {other}")
    p = result["provenance"]
    rows.append(f"min {result['min_class_accuracy']:.4f}, mean {result['mean_class_accuracy']:.4f}; "
                f"{p['per_class']} samples per class, seed {p['seed']}; classifier {p['classifier']} "
                f"({p['classifier_hash'][:12]}); {p['images_seen']} images seen")
    return "\n".join(rows)
