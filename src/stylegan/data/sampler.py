"""An endless, sharded sampler for training loops (the sample order of NVIDIA's InfiniteSampler), and the
minibatches a training process takes from it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sized

import numpy as np
import torch


class InfiniteSampler(torch.utils.data.Sampler):
    """Yields dataset indices forever; rank `r` of `num_replicas` gets every `num_replicas`-th one.

    With `shuffle`, the order starts as a seeded permutation and keeps changing: after each visit an
    element is swapped with one up to `window_size * len(dataset)` places behind it, so no epoch repeats
    the last. `rank` and `num_replicas` default to those of the initialised `torch.distributed` group (else
    0 and 1). All ranks must use the same seed so that together they see each index once per pass.
    """

    def __init__(self, dataset: Sized, rank: int | None = None, num_replicas: int | None = None,
                 shuffle: bool = True, seed: int = 0, window_size: float = 0.5) -> None:
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if num_replicas is None:
            num_replicas = torch.distributed.get_world_size() if distributed else 1
        if rank is None:
            rank = torch.distributed.get_rank() if distributed else 0
        if len(dataset) < 1:
            raise ValueError("InfiniteSampler: the dataset is empty")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"InfiniteSampler: rank {rank} is not in 0..{num_replicas - 1}")
        if not 0 <= window_size <= 1:
            raise ValueError(f"InfiniteSampler: window_size {window_size} is not in [0, 1]")
        super().__init__()
        self.dataset = dataset
        self.rank = rank
        self.num_replicas = num_replicas
        self.shuffle = shuffle
        self.seed = seed
        self.window_size = window_size

    def __iter__(self) -> Iterator[int]:
        order = np.arange(len(self.dataset))
        rnd = None
        window = 0
        if self.shuffle:
            rnd = np.random.RandomState(self.seed)
            rnd.shuffle(order)
            window = int(np.rint(order.size * self.window_size))
        idx = 0
        while True:
            i = idx % order.size
            if idx % self.num_replicas == self.rank:
                yield int(order[i])
            if rnd is not None and window >= 2:
                j = (i - rnd.randint(window)) % order.size
                order[i], order[j] = order[j], order[i]
            idx += 1


class RankBatches(Iterable[list[int]]):
    """This process's share of each global minibatch, drawn from one shuffled index stream that starts
    `skip` indices in (the images already seen); `batch_at(nimg)` is the global minibatch size there."""

    def __init__(self, sampler: InfiniteSampler, batch_at: Callable[[int], int], rank: int, world: int, skip: int) -> None:
        self.sampler, self.batch_at, self.rank, self.world, self.skip = sampler, batch_at, rank, world, skip

    def __iter__(self) -> Iterator[list[int]]:
        it = iter(self.sampler)
        for _ in range(self.skip):
            next(it)
        nimg = self.skip
        while True:
            batch = self.batch_at(nimg)
            per = batch // self.world
            idx = [next(it) for _ in range(batch)]
            nimg += batch
            yield idx[self.rank * per:(self.rank + 1) * per]
