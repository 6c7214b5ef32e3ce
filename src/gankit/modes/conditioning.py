"""What a GAN's networks are told besides z and x: nothing, class labels, or a code read from z.

The `gan` mode asks its conditioning, once per step, for the real batch's labels, the fakes' labels and the
codes of their z, and how to call G and D. Each conditioning is resolved once from the built networks:

| conditioning | G is called | D is called | extra terms |
|---|---|---|---|
| `Plain` | G(z) | D(x) | none |
| `Classes` (conditional GANs) | G(z, y_fake), y_fake drawn from the noise | D.outputs(x, y) | AC cross-entropy when D has a class head |
| `Clusters` (cluster codes) | G(z), its code c(z) read from z | D.outputs(x, cluster or c(z)) | none |
| `InfoCodes` (InfoGAN) | G(z), its code c(z) read from z | D.outputs(x): logits and code head Q | InfoGAN's CE(Q(G(z)), c(z)) |

Fake labels are drawn from the training noise generator right after each batch's z, so a conditional run is
reproducible and resumes exactly; the other conditionings draw nothing extra.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ..nets.coded import CodedGenerator
from .labels import make_label_sampler


class Plain:
    """An unconditional G and D."""

    def real_labels(self, data) -> Optional[torch.Tensor]:
        return None

    def fake_labels(self, z: torch.Tensor, noise: torch.Generator) -> tuple:
        """(labels D scores the fakes with or None, codes the code loss reads or None)."""
        return None, None

    def generate(self, G, z, y_fake):
        return G(z)

    def discriminate(self, D, x: torch.Tensor, y: Optional[torch.Tensor]) -> tuple:
        """(logits (N,), class or code logits (N, K) or None)."""
        return D(x), None

    def d_terms(self, weights) -> list:
        """[(name, fn(inputs), weight)] added to D's adversarial term."""
        return []

    def g_terms(self, weights) -> list:
        return []


class Classes(Plain):
    """A conditional G and D (concat, projection or AC); AC's class loss uses real images only for D."""

    def __init__(self, G, y_data: torch.Tensor, fake_labels: str):
        self.sample = make_label_sampler(fake_labels, G, y_data)

    def real_labels(self, data):
        return data.y

    def fake_labels(self, z, noise):
        return self.sample(z.shape[0], z.device, noise), None

    def generate(self, G, z, y_fake):
        return G(z, y_fake)

    def discriminate(self, D, x, y):
        return D.outputs(x, y)

    def d_terms(self, weights):
        return [("ac_d", lambda i: F.cross_entropy(i.c_real.float(), i.y_real), weights.ac_weight)] \
            if weights.ac_weight > 0 else []

    def g_terms(self, weights):
        return [("ac_g", lambda i: F.cross_entropy(i.c_fake.float(), i.y_fake), weights.ac_weight)] \
            if weights.ac_weight > 0 else []


class Clusters(Plain):
    """A coded G whose code D is told: each real image's k-means cluster, each fake's code c(z)."""

    def __init__(self, G: CodedGenerator, real_codes: torch.Tensor):
        self._codes, self.real_codes = G.codes, real_codes

    def real_labels(self, data):
        return self.real_codes

    def fake_labels(self, z, noise):
        return self._codes(z), None

    def discriminate(self, D, x, y):
        return D.outputs(x, y)


class InfoCodes(Plain):
    """A coded G and a D with a code head Q; both descend ``info_weight * CE(Q(G(z)), c(z))``."""

    def __init__(self, G: CodedGenerator):
        self._codes = G.codes

    def fake_labels(self, z, noise):
        return None, self._codes(z)

    def discriminate(self, D, x, y):
        return D.outputs(x)

    def d_terms(self, weights):
        return [("info_d", lambda i: F.cross_entropy(i.c_fake.float(), i.codes), weights.info_weight)]

    def g_terms(self, weights):
        return [("info_g", lambda i: F.cross_entropy(i.c_fake.float(), i.codes), weights.info_weight)]
