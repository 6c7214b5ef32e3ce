"""Batch sources: what one iteration of a game consumes, in an order that depends only on (seed, epoch).

The engine asks a source for the batches of iteration ``index`` of epoch ``epoch`` and counts the images they
hold; the source says how many iterations make an epoch. Epoch k's order is `ImageData.epoch_order(seed, k)`,
so a resumed run sees exactly the batches an uninterrupted one would. The data hands over uint8 images (from
memory, or streamed from files by `gankit.data.stream`); they become float in [-1, 1] here, on the device. On several
processes each one takes its slice of every global batch (`ImageBatches.split`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..data import to_float
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

    def iterations(self, epoch: int) -> int:
        """Iterations that make epoch ``epoch`` (the same for every epoch here)."""
        return self.iterations_per_epoch

    @property
    def images_per_epoch(self) -> int:
        return self.iterations_per_epoch * self.per_iteration * self.batch_size

    def epoch_fraction(self, index: int, epoch: int = 0) -> float:
        """The share of the epoch's data consumed after ``index`` iterations."""
        return index * self.per_iteration * self.batch_size / len(self.data)

    def take(self, epoch: int, index: int) -> Batch:
        """The batches of iteration ``index`` (0-based) of ``epoch``."""
        if self._order[0] != epoch:
            order = self.data.epoch_order(self.seed, epoch)
            if self.world > 1:  # this process's rows of every global batch, in order: consecutive for a stream
                whole = len(order) // self.batch_size * self.batch_size
                order = order[:whole].view(-1, self.world, self.batch_size // self.world)[:, self.rank].reshape(-1)
            self._order = (epoch, order)
        bs, n = self.batch_size // self.world, self.per_iteration
        start, stop = index * n * bs, (index + 1) * n * bs
        idx = self._order[1][start:stop]
        x = list(to_float(self.data.batch(epoch, self._order[1], start, stop)).split(bs))  # uint8 -> float on device
        y = list(self.labels.index_select(0, idx).split(bs)) if self.labels is not None else None
        return Batch(x, y)


class UnpairedBatches:
    """One batch of each of two unpaired domains per iteration: ``Batch.x = [a, b]``.

    An epoch is ``max(len(a), len(b)) // batch_size`` iterations (the larger domain once, as the reference
    implementation counts it); the smaller domain runs through as many fresh permutations as that takes. Epoch
    k's orders depend only on (seed, k), and so do the random crops (``crop`` > 0) and flips of its batches.
    """

    def __init__(self, a, b, batch_size: int, seed: int, crop: int = 0, flip: bool = False):
        self.a, self.b, self.batch_size, self.seed, self.crop, self.flip = a, b, batch_size, seed, crop, flip
        self._orders: tuple = (-1, None, None)

    @property
    def iterations_per_epoch(self) -> int:
        return max(len(self.a), len(self.b)) // self.batch_size

    @property
    def images_per_epoch(self) -> int:
        return self.iterations_per_epoch * 2 * self.batch_size

    def iterations(self, epoch: int) -> int:
        return self.iterations_per_epoch

    def epoch_fraction(self, index: int, epoch: int = 0) -> float:
        return index / max(1, self.iterations_per_epoch)

    def _order(self, data, seed: int, epoch: int) -> torch.Tensor:
        needed = self.iterations_per_epoch * self.batch_size
        reps = -(-needed // len(data))
        return torch.cat([data.epoch_order(seed, epoch * reps + j) for j in range(reps)])[:needed]

    def take(self, epoch: int, index: int) -> Batch:
        if self._orders[0] != epoch:
            self._orders = (epoch, self._order(self.a, self.seed, epoch), self._order(self.b, self.seed + 1, epoch))
        bs = self.batch_size
        out = []
        for data, order in ((self.a, self._orders[1]), (self.b, self._orders[2])):
            out.append(data.x.index_select(0, order[index * bs:(index + 1) * bs]))
        if self.crop or self.flip:
            from ..data.unpaired import crop_flip

            g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) * 1_000_033 + index & (2 ** 63 - 1))
            out = [crop_flip(x, self.crop, self.flip, g) for x in out]
        return Batch([to_float(x) for x in out])


class GrowingBatches:
    """Batches whose size depends on the images seen so far (progressive growing's batch size
    per resolution): ``batch_size(images)`` gives it, and it may change only at the image counts in ``changes``.

    Where iteration ``index`` of epoch k starts is found by walking the run from its first image: batches are cut
    from epoch k's order (`ImageData.epoch_order(seed, k)`) while they fit, and the rest of an epoch is left out,
    as `ImageBatches` does. So (epoch, index) names the same images however often the run was stopped.
    """

    def __init__(self, data, batch_size, changes: list, seed: int, total_images: int = 0, per_iteration: int = 1,
                 labels: Optional[torch.Tensor] = None):
        self.data, self.batch_size, self.changes, self.seed = data, batch_size, sorted(changes), seed
        self.labels = labels  # (N,) of the training images (cluster codes), or None
        self.per_iteration = per_iteration  # batch_size(images) images per iteration, in this many equal batches
        self.total_images = total_images  # the run's natural length (0: train.epochs decides)
        self._epochs: list = []           # per epoch: [(first index, first offset, batch size, count), ...]
        self._next = 0                    # images seen when the epoch after the last walked one starts
        self._order: tuple = (-1, None)

    @property
    def images_per_epoch(self) -> int:
        return len(self.data)

    def _walk(self, epoch: int) -> list:
        n = len(self.data)
        while len(self._epochs) <= epoch:
            segments, index, offset, images = [], 0, 0, self._next
            while offset + (b := self.batch_size(images)) <= n:
                change = next((c for c in self.changes if c > images), None)
                count = (n - offset) // b if change is None else min((n - offset) // b, -(-(change - images) // b))
                segments.append((index, offset, b, count))
                index, offset, images = index + count, offset + count * b, images + count * b
            if not segments:
                raise GankitError(f"a batch of {self.batch_size(images)} images does not fit in the {n} training "
                                  f"images; lower the batch size or use more data")
            self._epochs.append(segments)
            self._next = images
        return self._epochs[epoch]

    def iterations(self, epoch: int) -> int:
        index, _, _, count = self._walk(epoch)[-1]
        return index + count

    def _position(self, epoch: int, index: int) -> tuple:
        for first, offset, b, count in reversed(self._walk(epoch)):
            if index >= first:
                return offset + (index - first) * b, b
        raise IndexError(index)

    def epoch_fraction(self, index: int, epoch: int = 0) -> float:
        if index >= self.iterations(epoch):
            return 1.0
        return self._position(epoch, index)[0] / len(self.data)

    def take(self, epoch: int, index: int) -> Batch:
        if self._order[0] != epoch:
            self._order = (epoch, self.data.epoch_order(self.seed, epoch))
        start, b = self._position(epoch, index)
        x = to_float(self.data.batch(epoch, self._order[1], start, start + b))
        n = b // self.per_iteration
        y = self.labels.index_select(0, self._order[1][start:start + b]).split(n) if self.labels is not None else None
        return Batch(list(x.split(n)), None if y is None else list(y))
