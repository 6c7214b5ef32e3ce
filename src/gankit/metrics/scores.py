"""Scores from a classifier's outputs: classifier score (the Inception-score formula) and class coverage."""
from __future__ import annotations

import math

import torch


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


def class_coverage(logits: torch.Tensor, threshold: float = 0.05) -> dict:
    """Class histogram of argmax predictions, classes above ``threshold``, and KL(histogram || uniform)."""
    k = logits.shape[1]
    counts = torch.bincount(logits.argmax(1), minlength=k).double()
    freq = counts / counts.sum()
    nz = freq[freq > 0]
    kl_uniform = float((nz * (nz * k).log()).sum())
    return {"class_fractions": [round(float(f), 5) for f in freq], "min_class_fraction": float(freq.min()),
            "classes_present": int((freq >= threshold).sum()), "kl_to_uniform": kl_uniform}
