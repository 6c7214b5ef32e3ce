"""Scores from the domain classifier's outputs: classifier score and mode (class) coverage.

Notation: p(y|x) the classifier's softmax for image x, p(y) = E_x p(y|x) the
marginal over the sample set, K classes.

    classifier score = exp(E_x KL(p(y|x) || p(y)))            (the Inception-score formula)
    mode coverage    = histogram h of argmax_y p(y|x); classes with h_y >= threshold; KL(h || uniform)

They always use the domain classifier, whatever extractor the feature metrics use.
"""
from __future__ import annotations

import math

import torch

from .bootstrap import percentile_ci, resample_indices
from .registry import MetricInputs, register

MODE_THRESHOLD = 0.05
CS_SPLITS = 10  # the Inception-score convention: the mean over 10 parts of the samples


def classifier_score(logits: torch.Tensor, splits: int = 1) -> dict:
    """exp(E_x KL(p(y|x) || p(y))), p(y) the mean prediction; mean and std over ``splits`` parts.

    logits: (N, K). Ranges from 1 (one class, or uniform predictions) to K (confident and balanced).
    """
    values = []
    for part in logits.double().chunk(splits):
        logp = torch.log_softmax(part, dim=1)
        p = logp.exp()
        log_marginal = torch.log(p.mean(0).clamp_min(1e-300))
        kl = (p * (logp - log_marginal)).sum(1).mean()
        values.append(math.exp(kl.item()))
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return {"cs": mean, "cs_std": std}


def classifier_score_ci(logits: torch.Tensor, n_boot: int = 100, seed: int = 0, splits: int = 1) -> tuple:
    """95% percentile bootstrap interval of `classifier_score` (mean over ``splits`` parts) of logits (N, K).

    Each resample of the N rows is cut into the same ``splits`` parts, so the interval is of the very statistic
    reported (the split mean is lower than the all-N score: each part estimates p(y) from fewer images).
    """
    logp = torch.log_softmax(logits.double(), dim=1)
    p = logp.exp()
    neg_entropy = (p * logp).sum(1)  # E_y log p(y|x), per image
    idx = resample_indices(len(p), n_boot, seed, stream=0)
    scores = []
    for part in idx.chunk(splits, dim=1):  # (n_boot, about N / splits) rows of each resample
        marginal = p[part].mean(1)  # (n_boot, K)
        kl = neg_entropy[part].mean(1) - (marginal * marginal.clamp_min(1e-300).log()).sum(1)
        scores.append(kl.exp())
    return percentile_ci(torch.stack(scores).mean(0))


def class_coverage(logits: torch.Tensor, threshold: float = MODE_THRESHOLD) -> dict:
    """Class histogram of argmax predictions, classes above ``threshold``, and KL(histogram || uniform)."""
    k = logits.shape[1]
    counts = torch.bincount(logits.argmax(1), minlength=k).double()
    freq = counts / counts.sum()
    nz = freq[freq > 0]
    kl_uniform = float((nz * (nz * k).log()).sum())
    return {"class_fractions": [round(float(f), 5) for f in freq], "min_class_fraction": float(freq.min()),
            "classes_present": int((freq >= threshold).sum()), "kl_to_uniform": kl_uniform}


def kl_to_uniform_ci(logits: torch.Tensor, n_boot: int = 100, seed: int = 0) -> tuple:
    """95% percentile bootstrap interval of KL(class histogram || uniform) for logits (N, K)."""
    k = logits.shape[1]
    labels = logits.argmax(1)
    idx = resample_indices(len(labels), n_boot, seed, stream=1)
    counts = torch.zeros(n_boot, k, dtype=torch.float64).scatter_add_(1, labels[idx], torch.ones(idx.shape,
                                                                                               dtype=torch.float64))
    freq = counts / len(labels)  # (n_boot, K)
    kl = torch.where(freq > 0, freq * (freq * k).clamp_min(1e-300).log(), torch.zeros_like(freq)).sum(1)
    return percentile_ci(kl)


def _logits(s: MetricInputs) -> torch.Tensor:
    if s.fake.logits is None:
        raise ValueError("classifier metrics need the domain classifier's logits")
    return s.fake.logits


@register("cs", keys=("cs",), better=("higher",), needs=("logits",), title="classifier score")
def _cs(s: MetricInputs) -> dict:
    out = classifier_score(_logits(s), splits=CS_SPLITS)
    out["cs_ci_low"], out["cs_ci_high"] = classifier_score_ci(_logits(s), s.n_boot, s.seed, CS_SPLITS)
    return out


@register("modes", keys=("classes_present", "kl_to_uniform"), better=("higher", "lower"), needs=("logits",),
          title="mode coverage")
def _modes(s: MetricInputs) -> dict:
    out = class_coverage(_logits(s))
    out["kl_to_uniform_ci_low"], out["kl_to_uniform_ci_high"] = kl_to_uniform_ci(_logits(s), s.n_boot, s.seed)
    return out
