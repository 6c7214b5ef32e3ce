"""Evaluation of an image-to-image run (mode cyclegan), per direction a2b (G_AB) and b2a (G_BA):

- **FID** of the translations against the target domain's test split, and of the untranslated source images
  against the same reference (the "raw" baseline): gankit's domain features of the target dataset, or
  Inception-v3 pool3 from local weights (``--inception-weights``); for folders without Inception weights no
  FID is computed (a note says so);
- **cycle reconstruction error**: mean |G_BA(G_AB(a)) - a| on the 0..1 pixel scale (and the same for b);
- **label agreement**, where the source images have labels and the target dataset has gankit's classifier
  with the same class names: the share of translations the target classifier labels with the source
  label, next to the share of untranslated source images it labels so.

Translations are scored as files hold them: rounded to 8 bits first. Sources are the ``split`` of the source
domain ("all": train and test together, e.g. all 1,797 scikit-learn digits); ``n`` caps their number (a seeded
random subset). The classifiers are not part of training, so labels are an independent test.
"""
from __future__ import annotations

import copy
import time
from typing import Optional

import torch

from .._version import __version__
from ..data import CLASS_NAMES, to_float
from ..errors import GankitError

SPLITS = ("test", "train", "all")
DIRECTIONS = {"a2b": ("G_AB", "G_BA", "a", "b"), "b2a": ("G_BA", "G_AB", "b", "a")}


def _domain(cfg, side: str, split: str):
    """(name, images, labels, class names) of domain ``side`` ('a' or 'b') for ``split``, at the run's image
    size. A plain folder has no splits (every split is all of it); a trainA/trainB folder without testA/testB
    is its own test split."""
    from ..data.unpaired import domains, load_unpaired

    (name_a, _), (name_b, _), layout = domains(cfg.data)
    name = name_a if side == "a" else name_b
    splits = ("train", "test") if split == "all" else (split,)
    if name == "folder" and not layout:
        splits = ("train",)
    try:
        parts = [load_unpaired(cfg.data, s, "cpu", crop=False) for s in splits]
    except GankitError:
        if not layout or split != "test":
            raise
        parts, splits = [load_unpaired(cfg.data, "train", "cpu", crop=False)], ("train",)
    data = [p if side == "a" else p.b for p in parts]
    x, y = to_float(torch.cat([d.x for d in data])), torch.cat([d.y for d in data])
    used = "all" if len(splits) == 2 else ("all" if name == "folder" and not layout else splits[0])
    return f"{name} {used}", x, y, data[0].classes


def _quantised(x: torch.Tensor) -> torch.Tensor:
    return x.add(1).mul(127.5).round().clamp(0, 255).div(127.5).sub(1)


def _extractor(name: str, data_dir: Optional[str], extractor: str, inception_weights: Optional[str],
               progress: bool):
    """(extractor or None, note or None) for FID against domain ``name``."""
    from .extractors import inception_extractor, inception_weights_path, resolve_extractor

    if name in CLASS_NAMES:
        return resolve_extractor(name, data_dir, extractor, inception_weights, progress)
    weights = inception_weights_path(inception_weights) if extractor != "domain" else None
    if weights is None:
        return None, (f"no FID for the {name} domain: gankit has no classifier for it; pass --inception-weights "
                      f"PATH for Inception FIDs")
    return inception_extractor(weights), None


def evaluate_translation(run_dir, n: int = 10000, seed: int = 0, data_dir: Optional[str] = None,
                         checkpoint: Optional[str] = None, metrics=(), extractor: str = "auto",
                         inception_weights: Optional[str] = None, floor: bool = True, n_boot: int = 100,
                         progress: bool = False, split: str = "test", directions=("a2b", "b2a")) -> dict:
    """Scores of both directions (or ``directions``) of a translation run; see the module docstring."""
    from ..run import load_run
    from ..translate import translate_tensor
    from .classifier import load_classifier
    from .frechet import fid

    start = time.time()
    if split not in SPLITS:
        raise GankitError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    if n < 2:
        raise GankitError(f"--n must be at least 2 images per direction, got {n}")
    bad = [d for d in directions if d not in DIRECTIONS]
    if bad or not directions:
        raise GankitError(f"--direction must be a2b, b2a or both, got {bad[0] if bad else 'none'!r}")
    run = load_run(run_dir, checkpoint, "cpu")
    cfg = copy.deepcopy(run.cfg)
    if data_dir:
        cfg.data.data_dir = data_dir
    notes = ["--metrics is not used: a translation run reports FID, cycle error and label agreement"] \
        if metrics and tuple(metrics) != ("fid", "kid", "pr", "dc", "cs", "modes", "memo") else []
    result: dict = {}
    for direction in directions:
        fwd, back, src_side, tgt_side = DIRECTIONS[direction]
        src_name, x, y, src_classes = _domain(cfg, src_side, split)
        tgt_name, ref, _, tgt_classes = _domain(cfg, tgt_side, "test")
        tgt_dir = cfg.data.data_dir if tgt_side == "a" else (cfg.data.data_dir_b or cfg.data.data_dir)
        if n < len(x):
            keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n].sort().values
            x, y = x[keep], y[keep]
        G, G_back = run.network(fwd), run.network(back)
        t = _quantised(translate_tensor(G, x))
        rec = _quantised(translate_tensor(G_back, t))
        out = {"source": f"{src_name} ({len(x)} images)", "target": f"{tgt_name} ({len(ref)} images)",
               "network": fwd, "weights": run.weights[fwd],
               "cycle_l1": float((rec - x).abs().mean() / 2)}
        src_name, tgt_name = src_name.split()[0], tgt_name.split()[0]
        ext, note = _extractor(tgt_name, tgt_dir, extractor, inception_weights, progress)
        if note:
            notes.append(note)
        if ext is not None:
            f_ref, f_t, f_x = ext(ref).features, ext(t).features, ext(x).features
            out.update({k: v for k, v in fid(f_t, f_ref, n_boot, seed).items()})
            out.update({f"raw_{k}": v for k, v in fid(f_x, f_ref, n_boot, seed).items()})
            out["extractor"], out["extractor_hash"] = ext.name, ext.hash
        if tgt_name in CLASS_NAMES and src_classes == tgt_classes and src_name != "folder":
            model, info = load_classifier(tgt_name, tgt_dir, progress=progress)
            with torch.no_grad():
                pred_t = torch.cat([model(b).argmax(1) for b in t.split(1000)])
                pred_x = torch.cat([model(b).argmax(1) for b in x.split(1000)])
            out.update(label_agreement=float((pred_t == y).float().mean()),
                       raw_label_agreement=float((pred_x == y).float().mean()),
                       classifier=f"gankit-{tgt_name}-classifier-v{info['recipe']['version']}",
                       classifier_hash=info["hash"], classifier_test_accuracy=info["test_accuracy"])
        else:
            notes.append(f"{direction}: no label agreement (the source has no labels shared with a gankit "
                         f"classifier of the target)")
        result[direction] = out
    result["notes"] = list(dict.fromkeys(notes))
    result["provenance"] = {"evaluation": "translation", "metrics": [f"translation-{'+'.join(directions)}-{split}"],
                            "directions": list(directions), "split": split, "n": n,
                            "seed": seed, "run_dir": str(run_dir), "checkpoint": str(run.checkpoint),
                            "images_seen": run.progress["images"], "gankit_version": __version__,
                            "fid_ci": f"95% normal bootstrap interval over {n_boot} resamples",
                            "seconds": round(time.time() - start, 2)}
    return result


def format_translation(result: dict) -> str:
    """A table per direction: the translations next to the untranslated sources."""
    rows = [f"{'direction':<10}{'metric':<18}{'translated':>11}  {'95% interval':<21}{'raw source':>11}"]
    for direction in DIRECTIONS:
        r = result.get(direction)
        if r is None:
            continue
        if "fid" in r:
            ci = f"[{r['fid_ci_low']:.3f}, {r['fid_ci_high']:.3f}]"
            rows.append(f"{direction:<10}{'fid':<18}{r['fid']:>11.3f}  {ci:<21}{r['raw_fid']:>11.3f}")
        if "label_agreement" in r:
            rows.append(f"{direction:<10}{'label_agreement':<18}{r['label_agreement']:>11.4f}  {'':<21}"
                        f"{r['raw_label_agreement']:>11.4f}")
        rows.append(f"{direction:<10}{'cycle_l1':<18}{r['cycle_l1']:>11.4f}")
        rows.append(f"{'':<10}{r['source']} -> {r['target']}; {r['weights']}"
                    + (f"; features {r['extractor']} ({r['extractor_hash'][:12]})" if "extractor" in r else "")
                    + (f"; labels {r['classifier']} ({r['classifier_hash'][:12]})" if "classifier" in r else ""))
    p = result["provenance"]
    rows.append(f"checkpoint {p['checkpoint']} ({p['images_seen']} images seen); seed {p['seed']}; "
                f"gankit {p['gankit_version']}")
    return "\n".join(rows)
