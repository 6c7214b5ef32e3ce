"""Batch sources: what one iteration of a game consumes, in an order that depends only on (seed, epoch).

The engine asks a source for the batches of iteration ``index`` of epoch ``epoch`` and counts the images they
hold; the source says how many iterations make an epoch. Epoch k's order is `ImageData.epoch_order(seed, k)`,
so a resumed run sees exactly the batches an uninterrupted one would. On several processes each one takes its
slice of every global batch (`ImageBatches.split`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..errors import GankitError


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
        self.rank, self.world = 0, 1
        self._order: tuple = (-1, None)

    def split(self, rank: int, world: int) -> None:
        """Hand out only process ``rank``'s slice (rows rank*b .. (rank+1)*b - 1, b = batch_size / world) of
        every global batch: ``world`` processes together consume what one process would."""
        if self.batch_size % world:
            raise GankitError(f"the global batch {self.batch_size} does not split into {world} equal parts; "
                              f"make train.batch_size a multiple of {world}")
        self.rank, self.world = rank, world

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
        idx = self._order[1][index * n * bs:(index + 1) * n * bs]
        if self.world > 1:  # this process's rows of each of the n global batches
            bs //= self.world
            idx = idx.view(n, self.world, bs)[:, self.rank].reshape(-1)
        x = list(self.data.x.index_select(0, idx).split(bs))
        y = list(self.labels.index_select(0, idx).split(bs)) if self.labels is not None else None
        return Batch(x, y)
