"""Batch sources: what one iteration of a game consumes, in an order that depends only on (seed, epoch).

The engine asks a source for the batches of iteration ``index`` of epoch ``epoch`` and counts the images they
hold; the source says how many iterations make an epoch. Epoch k's order is `ImageData.epoch_order(seed, k)`,
so a resumed run sees exactly the batches an uninterrupted one would. The data hands over uint8 images (from
memory, or streamed from files by `gankit.data.stream`); they become float in [-1, 1] here, on the device.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..data import to_float


@dataclass
class Batch:
    """The real batches of one iteration: images [(N, C, H, W), ...] and, for a labelled game, labels [(N,), ...]."""

    x: list
    y: Optional[list] = None

    @property
    def images(self) -> int:
        return sum(b.shape[0] for b in self.x)


class ImageBatches:
    """``per_iteration`` batches of ``batch_size`` images (and labels, when given) per iteration.

    An epoch is as many whole iterations as the data holds; the images left over are not used that epoch.
    """

    def __init__(self, data, batch_size: int, per_iteration: int, seed: int, labels: Optional[torch.Tensor] = None):
        self.data, self.batch_size, self.per_iteration, self.seed = data, batch_size, per_iteration, seed
        self.labels = labels
        self._order: tuple = (-1, None)

    @property
    def iterations_per_epoch(self) -> int:
        return (len(self.data) // self.batch_size) // self.per_iteration

    @property
    def images_per_epoch(self) -> int:
        return self.iterations_per_epoch * self.per_iteration * self.batch_size

    def epoch_fraction(self, index: int) -> float:
        """The share of the epoch's data consumed after ``index`` iterations."""
        return index * self.per_iteration * self.batch_size / len(self.data)

    def take(self, epoch: int, index: int) -> Batch:
        """The batches of iteration ``index`` (0-based) of ``epoch``."""
        if self._order[0] != epoch:
            self._order = (epoch, self.data.epoch_order(self.seed, epoch))
        bs, n = self.batch_size, self.per_iteration
        start, stop = index * n * bs, (index + 1) * n * bs
        idx = self._order[1][start:stop]
        x = list(to_float(self.data.batch(epoch, self._order[1], start, stop)).split(bs))  # uint8 -> float on device
        y = list(self.labels.index_select(0, idx).split(bs)) if self.labels is not None else None
        return Batch(x, y)
