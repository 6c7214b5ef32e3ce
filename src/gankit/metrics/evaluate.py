"""Evaluate images (from a run's generator or from files) against a dataset's real images.

Steps: (1) resolve the extractor (the domain classifier, or Inception-v3 from
local weights) and the requested metrics through the registry; (2) load the
reference split's features, and the training split's when memorisation or the
floor needs it, from the on-disk cache; (3) extract the generated images'
features once and call every metric on them; (4) compute (or load) the
real-versus-real floor: the same metrics on ``n`` random training images
against the same reference, so a score can be read against "as good as real".
Every result carries its provenance: extractor and hash, set sizes and split,
seeds, gankit version and how the intervals were obtained.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .._version import __version__
from ..atomic import atomic_write_text
from ..data import to_tensor_images
from ..data._idx import default_cache_dir
from ..errors import GankitError
from ..images import as_uint8, read_folder
from . import frechet, kid, manifold, memorisation, scores  # noqa: F401  (they register the metrics)
from .translation import evaluate_translation, format_translation
from .extractors import Extractor, domain_extractor, resolve_extractor
from .reference import derived, source_tag, split_features
from .registry import FeatureSet, MetricInputs, get_metrics

DEFAULT_METRICS = ("fid", "kid", "pr", "dc", "cs", "modes", "memo")
METRICS = DEFAULT_METRICS
REFERENCE_SPLIT = "test"
FLOOR_SPLIT = "train"
N_BOOT = 100
MIN_IMAGES = 10  # k-NN radii need more than k = 5 neighbours, KID at least 2 per subset
FLOOR_VERSION = 3  # bump when a metric's definition changes: cached floors are then recomputed
# What `evaluate_run` does for a run, by its mode's ``evaluation``: "samples" (draw from the generator and score the
# images, below) or another kind of evaluation with its own table (translation runs).
EVALUATIONS = {"translation": (evaluate_translation, format_translation)}


@dataclass
class Reference:
    """The real side of an evaluation: reference split and (optional) training split, as features."""

    tag: str
    extractor: Extractor
    ref: FeatureSet
    train: Optional[FeatureSet]
    precomputed: dict = field(default_factory=dict)


def read_images(path) -> np.ndarray:
    """Images from an ``.npz`` (array ``images``) or a folder of PNGs (and its subfolders), sorted by path;
    `evaluate_images` checks and converts their encoding."""
    path = Path(path)
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                return f["images"]
        except (OSError, KeyError, ValueError) as exc:
            raise GankitError(f"{path} is not an .npz with an array 'images' ({exc})") from None
    images = read_folder(path) if path.is_dir() else None  # with class subfolders (gankit sample)
    if images is None or not len(images):
        raise GankitError(f"{path} is neither an .npz file nor a folder of PNG images")
    return images


def _with_logits(fs: FeatureSet, domain: Optional[Extractor], logits_of) -> FeatureSet:
    """``fs`` with domain-classifier logits filled in by ``logits_of()`` when it has none."""
    if domain is None or fs.logits is not None:
        return fs
    return FeatureSet(fs.features, logits_of())


def load_reference(dataset: str, data_dir: Optional[str], extractor: Extractor, domain: Optional[Extractor],
                   metrics: list, need_train: bool, progress: bool = False) -> Reference:
    """Reference (test split) and training features for ``metrics``, from the cache or extracted once."""
    def feats(ext: Extractor, split: str) -> FeatureSet:
        return split_features(ext, dataset, split, data_dir, progress)

    ref = _with_logits(feats(extractor, REFERENCE_SPLIT), domain, lambda: feats(domain, REFERENCE_SPLIT).logits)
    train = None
    if need_train:
        train = _with_logits(feats(extractor, FLOOR_SPLIT), domain, lambda: feats(domain, FLOOR_SPLIT).logits)
    reference = Reference(source_tag(dataset, data_dir), extractor, ref, train)
    base = MetricInputs(ref, ref, train)
    for m in metrics:
        for key, fn in m.reference:
            if key not in reference.precomputed:
                reference.precomputed[key] = derived(f"{REFERENCE_SPLIT}-{key}", extractor, dataset, data_dir,
                                                     lambda fn=fn: fn(base))
    return reference


def evaluate_features(fake: FeatureSet, reference: Reference, metrics: list, seed: int = 0, n_boot: int = N_BOOT,
                      fake_train_index: Optional[torch.Tensor] = None) -> dict:
    """Flat dict of every metric's values for generated features ``fake`` against ``reference``."""
    return {k: v for values in _per_metric(fake, reference, metrics, seed, n_boot, fake_train_index).values()
            for k, v in values.items()}


def _per_metric(fake: FeatureSet, reference: Reference, metrics: list, seed: int, n_boot: int,
                fake_train_index: Optional[torch.Tensor] = None) -> dict:
    """{metric name: its values}, all from one `MetricInputs`, so metrics share intermediate results."""
    inputs = MetricInputs(fake, reference.ref, reference.train, seed, n_boot, fake_train_index,
                          precomputed=reference.precomputed)
    out = {}
    for m in metrics:
        try:
            out[m.name] = m.fn(inputs)
        except ValueError as exc:
            raise GankitError(f"metric {m.name}: {exc}") from None
    return out


def _floor_path(reference: Reference, domain: Optional[Extractor], n: int, seed: int, n_boot: int) -> Path:
    tag = reference.extractor.hash[:16]
    if domain is not None and domain is not reference.extractor:
        tag += f"-{domain.hash[:8]}"  # cs/modes come from a different network than the features
    name = f"{reference.tag}-{FLOOR_SPLIT}-vs-{REFERENCE_SPLIT}-{tag}-n{n}-seed{seed}-boot{n_boot}-v{FLOOR_VERSION}"
    return default_cache_dir() / "floors" / f"{name}.json"


def real_floor(reference: Reference, domain: Optional[Extractor], metrics: list, n: int, seed: int = 0,
               n_boot: int = N_BOOT) -> dict:
    """The metrics of ``n`` random training images (drawn with ``seed``) against the reference split.

    Cached per extractor, n, seed and metric; a training image is never its own nearest neighbour.
    """
    path = _floor_path(reference, domain, n, seed, n_boot)
    stored = json.loads(path.read_text()) if path.is_file() else {}
    missing = [m for m in metrics if m.name not in stored]
    if missing:
        train = reference.train
        idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]
        real = FeatureSet(train.features[idx], None if train.logits is None else train.logits[idx])
        stored.update(_per_metric(real, reference, missing, seed, n_boot, fake_train_index=idx))
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(stored, indent=1))
    return {k: v for m in metrics for k, v in stored[m.name].items()}


def _provenance(extractor: Extractor, domain: Optional[Extractor], metrics: list, n: int, reference: Reference,
                seed: Optional[int], metric_seed: int, n_boot: int, floor: Optional[dict]) -> dict:
    p = {"metrics": [m.name for m in metrics], "extractor": extractor.name, "extractor_hash": extractor.hash,
         "n_images": n, "n_generated": n, "n_reference": len(reference.ref), "reference_split": REFERENCE_SPLIT,
         "seed": seed, "metric_seed": metric_seed, "gankit_version": __version__,
         "ci": f"95% bootstrap over {n_boot} resamples: normal interval for FID, percentile otherwise "
               f"(k-NN metrics: manifolds held fixed); KID: std over {kid.SUBSETS} subsets",
         "params": {"kid_subsets": kid.SUBSETS, "kid_subset_size": kid.SUBSET_SIZE, "pr_k": manifold.K_PR,
                    "dc_k": manifold.K_DC, "mode_threshold": scores.MODE_THRESHOLD, "n_boot": n_boot}}
    if "test_accuracy" in extractor.info:
        p["extractor_test_accuracy"] = extractor.info["test_accuracy"]
    if domain is not None and domain is not extractor:
        p.update(classifier=domain.name, classifier_hash=domain.hash)
    if reference.train is not None:
        p["n_train"] = len(reference.train)
    if floor is not None:
        p["floor"] = {"real_split": FLOOR_SPLIT, "n": n, "reference_split": REFERENCE_SPLIT, "seed": metric_seed}
    return p


def _check_images(x: torch.Tensor, dataset: str, domain: Optional[Extractor]) -> None:
    expected = tuple(domain.info["image_shape"]) if domain is not None else None
    if expected is not None and tuple(x.shape[1:]) != expected:
        raise GankitError(f"images have shape {tuple(x.shape[1:])} but the {dataset} classifier expects {expected}")
    if len(x) < MIN_IMAGES:
        raise GankitError(f"need at least {MIN_IMAGES} images to evaluate, got {len(x)}; use --n {MIN_IMAGES} or more")


class Scorer:
    """One dataset's extractor, reference features and metrics, resolved once; score image sets with it.

    `evaluate_images` uses one for a single evaluation; the trainer keeps one for evaluations during training.
    """

    def __init__(self, dataset: str, data_dir: Optional[str] = None, metrics=DEFAULT_METRICS, extractor: str = "auto",
                 inception_weights: Optional[str] = None, need_train: bool = False, progress: bool = False):
        self.dataset, self.metrics = dataset, get_metrics(metrics)
        self.extractor, self.note = resolve_extractor(dataset, data_dir, extractor, inception_weights, progress)
        self.need_logits = any("logits" in m.needs for m in self.metrics)
        self.domain = self.extractor if self.extractor.has_logits else (
            domain_extractor(dataset, data_dir, progress=progress) if self.need_logits else None)
        need_train = need_train or any("train" in m.needs for m in self.metrics)
        self.reference = load_reference(dataset, data_dir, self.extractor, self.domain if self.need_logits else None,
                                        self.metrics, need_train, progress)

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> FeatureSet:
        """Features (and logits, when a metric needs them) of images ``x`` (N, C, H, W) in [-1, 1]."""
        _check_images(x, self.dataset, self.domain)
        return _with_logits(self.extractor(x), self.domain if self.need_logits else None, lambda: self.domain(x).logits)

    def score(self, x: torch.Tensor, seed: int = 0, n_boot: int = N_BOOT) -> dict:
        """Flat metric values of images ``x`` against the reference split."""
        return evaluate_features(self.features(x), self.reference, self.metrics, seed, n_boot)


def evaluate_images(images: np.ndarray, dataset: str, data_dir: Optional[str] = None, seed: Optional[int] = None,
                    metrics=DEFAULT_METRICS, extractor: str = "auto", inception_weights: Optional[str] = None,
                    floor: bool = True, n_boot: int = N_BOOT, progress: bool = False) -> dict:
    """Scores of uint8 images (N, H, W[, C]) against ``dataset``'s test split, with floor and provenance.

    ``seed`` is the generation seed (recorded; None for image files); bootstraps, KID subsets and the floor's
    training subset use ``seed or 0``. ``progress`` shows bars for the one-time work (training the classifier,
    extracting a reference split). Returns flat metric values, 'floor' (same keys, real vs real, or None),
    'notes' (one-line remarks, e.g. which extractor was used and why) and 'provenance'.
    """
    start = time.time()
    images, encoding = as_uint8(images)  # a wrong encoding is refused before any work
    scorer = Scorer(dataset, data_dir, metrics, extractor, inception_weights, need_train=floor, progress=progress)
    reference = scorer.reference
    x = to_tensor_images(images)
    n, metric_seed = len(x), 0 if seed is None else int(seed)
    result = scorer.score(x, metric_seed, n_boot)
    notes = [n for n in (scorer.note, encoding) if n]
    floor_values = None
    if floor and n <= len(reference.train):
        floor_values = real_floor(reference, scorer.domain, scorer.metrics, n, metric_seed, n_boot)
    elif floor:
        notes.append(f"no floor: n={n} exceeds the {len(reference.train)} training images")
    result["floor"] = floor_values
    result["notes"] = notes
    result["provenance"] = _provenance(scorer.extractor, scorer.domain, scorer.metrics, n, reference, seed,
                                       metric_seed, n_boot, floor_values)
    result["provenance"]["seconds"] = round(time.time() - start, 2)
    return result


@torch.no_grad()
def evaluate_run(run_dir, n: int = 10000, seed: int = 0, data_dir: Optional[str] = None,
                 checkpoint: Optional[str] = None, metrics=DEFAULT_METRICS, **options) -> dict:
    """Sample ``n`` images from a run's generator (EMA weights when present) and score them.

    ``options`` go to `evaluate_images` (extractor, inception_weights, floor, n_boot, progress).
    """
    from ..export import to_uint8
    from ..generate import generate
    from ..run import load_generator, load_run

    kind = load_run(run_dir, checkpoint, "cpu").mode.evaluation
    if kind in EVALUATIONS:
        return EVALUATIONS[kind][0](run_dir, n, seed, data_dir, checkpoint, metrics, **options)
    if "split" in options or "directions" in options:
        raise GankitError("--split and --direction apply to translation runs (mode cyclegan); drop them")
    G, meta = load_generator(run_dir, checkpoint, device="cpu")
    images = to_uint8(generate(G, n, seed=seed))
    result = evaluate_images(images, meta["dataset"], data_dir or meta["config"]["data"]["data_dir"], seed, metrics,
                             **options)
    result["provenance"]["images_seen"] = meta["progress"]["images"]
    result["provenance"]["run_dir"] = str(run_dir)
    return result


def formatter(result: dict):
    """The table maker of a result's kind of evaluation, or None for sample scores (``format_result``)."""
    kind = result.get("provenance", {}).get("evaluation")
    return EVALUATIONS[kind][1] if kind in EVALUATIONS else None


def write_result(run_dir: Path, result: dict) -> Path:
    """Save a result as RUN_DIR/eval/<images_seen>-n<n>-seed<seed>-<metrics>.json (atomically).

    The name holds everything that changes the numbers, so a result is only ever replaced by the same evaluation
    run again, never by one with another metric set or sample count.
    """
    folder = Path(run_dir) / "eval"
    folder.mkdir(exist_ok=True)
    p = result["provenance"]
    metrics = "+".join(sorted(m["name"] if isinstance(m, dict) else str(m) for m in p.get("metrics", [])))
    n = p.get("n_generated", p.get("n"))  # the samples scored (provenance of evaluate_images; "n" in older files)
    path = folder / f"{p.get('images_seen', 0):012d}-n{n}-seed{p['seed']}-{metrics or 'none'}.json"
    atomic_write_text(path, json.dumps(result, indent=1))
    return path
