"""Endless, reshuffled, resumable batches of a finite dataset (images or vectors).

Order: epoch ``e`` visits the samples in ``randperm(N)`` drawn from a generator seeded by ``(seed, e)``,
in ``N // batch_size`` full batches (the remainder is dropped, as the official code's loaders do). The
sampler's state is ``(epoch, position)`` plus the augmentation generator's state, so a resumed run sees
exactly the batches the uninterrupted one would have seen.

Labels (``labels=True``: ``load`` returns ``(data, labels [N])``): ``sampler(with_labels=True)``,
``sample(n, with_labels=True)`` and ``reference(n, seed=…, with_labels=True)`` return ``(x, y)`` with
``y`` int64 ``[B]``, the labels of exactly the rows in ``x``. Labels are read by the same indices, so they
add no random draw: a labelled sampler yields the unlabelled one's images, and has the same state.

In-memory sets are indexed directly; a lazily decoded set (an image folder) goes through one endless
``DataLoader`` whose workers decode while the model trains. Augmentations run on the whole batch in the
main process with the sampler's own ``torch.Generator`` (so workers never hold random state):

- images to floats: ``x/127.5 − 1`` ∈ [−1, 1], or the paper's dequantisation
  ``2(x/256 − ½) + U(0, 1/128)`` ∈ [−1, 1) (gan_cifar_resnet.py);
- horizontal flips with probability ½.

Under data parallelism (``keep``: this process's rows of every batch, ``Shard.rows``) each process walks
the same epoch order and the same augmentation stream, draws the augmentations for the whole batch and
reads and decodes only its own rows: N processes see exactly one process's batches, split by rows, and an
image folder is decoded once in all, not once per process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal, Protocol, overload

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from wgangp.errors import UserError

__all__ = ["HOLDOUT_SEED", "ArraySampler", "epoch_order", "split_rows", "take_rows"]

# The held-out rows of a dataset are a shuffle by this fixed seed, so runs with any config.seed hold out
# the same samples and their held-out estimates are comparable.
HOLDOUT_SEED = 20_170_400


class ItemSource(Protocol):
    """A lazily decoded dataset (e.g. :class:`~wgangp.data.images.FolderImages`): uint8 items ``[C, R, R]``."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Tensor: ...


Source = Tensor | ItemSource


class _WithLabels:
    """A lazily decoded dataset whose items are ``(image, label)``: the ``DataLoader`` collates both."""

    def __init__(self, data: ItemSource, labels: Tensor) -> None:
        self.data, self.labels = data, labels

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.data[index], self.labels[index]


def epoch_order(n: int, seed: int, epoch: int) -> Tensor:
    """The permutation of ``range(n)`` used in ``epoch``: a function of ``(seed, epoch)`` alone."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint32)
    g = torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))
    return torch.randperm(n, generator=g)


def split_rows(n: int, *, train_subset: int = 0, held_out: int = 0) -> tuple[Tensor, Tensor]:
    """``(train, held_out)`` row indices of a dataset of ``n`` samples: disjoint, each sorted.

    Both come from one fixed shuffle of the rows (seeded by :data:`HOLDOUT_SEED`, the same for every run):
    ``train`` is its first ``train_subset`` rows (``0``: every row not held out), ``held_out`` its last
    ``held_out`` rows. A shuffle, not the file's order, because datasets are often stored grouped (sklearn's
    digits by writer), and a subset of a few writers would differ from the held-out rows before any
    training; a ``train_subset`` run trains on the same rows whether or not it holds any out. Sizes the
    data cannot give are a :class:`UserError`.

    >>> [t.shape[0] for t in split_rows(10, train_subset=4, held_out=3)]
    [4, 3]
    """
    if train_subset > n:
        raise UserError(f"train_subset={train_subset}, but the dataset has only {n} samples")
    if held_out == 1:
        raise UserError("monitor_holdout must be 0 (off) or at least 2 samples (a standard error needs two)")
    spare = n - train_subset if train_subset else n - 1
    if held_out > spare:
        where = (
            f"the {n - train_subset} samples train_subset={train_subset} leaves"
            if train_subset
            else f"{n} samples"
        )
        raise UserError(f"monitor_holdout={held_out} does not fit in {where} (some must remain to train on)")
    order = epoch_order(n, HOLDOUT_SEED, 0)
    train = order[: train_subset or n - held_out]
    return train.sort().values, order[n - held_out :].sort().values


class _Rows:
    """The rows ``index`` of a lazily decoded dataset, decoded on access (a view, no copy)."""

    def __init__(self, data: ItemSource, index: Tensor) -> None:
        self.data, self.index = data, index

    def __len__(self) -> int:
        return self.index.shape[0]

    def __getitem__(self, i: int) -> Tensor:
        return self.data[int(self.index[i])]


def take_rows(data: Source, index: Tensor) -> Source:
    """The rows ``index`` of a tensor (indexed) or of a lazily decoded dataset (a view decoding on access)."""
    return data[index] if isinstance(data, Tensor) else _Rows(data, index)


class _EndlessBatches:
    """Index batches from ``(epoch, position)`` on, forever; a ``DataLoader`` batch sampler."""

    def __init__(
        self, n: int, batch_size: int, seed: int, epoch: int, position: int, keep: slice = slice(None)
    ) -> None:
        self.n, self.batch_size, self.seed, self.epoch, self.position = n, batch_size, seed, epoch, position
        self.keep = keep  # this process's rows of each batch

    def __iter__(self) -> Iterator[list[int]]:
        epoch, position = self.epoch, self.position
        per_epoch = self.n // self.batch_size
        while True:
            order = epoch_order(self.n, self.seed, epoch)
            for b in range(position, per_epoch):
                yield order[b * self.batch_size : (b + 1) * self.batch_size][self.keep].tolist()
            epoch, position = epoch + 1, 0


class ArraySampler:
    """Batches of a finite dataset, endlessly, reshuffled every epoch (see the module docstring).

    Args:
        load: returns the data when first needed: a tensor ``[N, ...]`` (uint8 images ``[N, C, R, R]``
            or float vectors ``[N, D]``) or a ``Dataset`` of uint8 images.
        batch_size: samples per ``sampler()`` call.
        seed: seeds the epoch order and the augmentation generator.
        device: where batches are returned.
        images: convert uint8 images to [−1, 1] floats (and allow the augmentations).
        dequantize, hflip: the paper's augmentations (images only).
        num_workers: ``DataLoader`` workers for a ``Dataset`` source.
        keep: the rows of every batch this process reads (data parallelism; all rows by default).
        labels: ``load`` returns ``(data, labels)``, labels ``[N]`` integers in ``0..K−1``, and the
            ``with_labels=True`` forms return them.
        n_classes: ``K`` for the labels' range check; 0 takes ``max(labels) + 1``.
        held_out: returns real samples kept out of training (never in a batch), for :meth:`held_out`.

    Returns from ``sampler()``: float32 ``[batch_size, ...]`` (``keep``'s rows of it) on ``device``;
    from ``sampler(with_labels=True)`` also int64 labels ``[batch_size]`` (the same rows) on ``device``.
    """

    def __init__(
        self,
        load: Callable[[], Source] | Callable[[], tuple[Source, Tensor]],
        batch_size: int,
        *,
        seed: int = 0,
        device: torch.device | str = "cpu",
        images: bool = True,
        dequantize: bool = False,
        hflip: bool = False,
        num_workers: int = 0,
        keep: slice | None = None,
        labels: bool = False,
        n_classes: int = 0,
        held_out: Callable[[], Source] | None = None,
    ) -> None:
        self._load = load
        self._load_held_out = held_out
        self.labelled, self._n_classes = labels, n_classes
        self._labels: Tensor | None = None
        self.keep = keep if keep is not None else slice(None)
        self.batch_size, self.seed, self.device = batch_size, seed, torch.device(device)
        self.images, self.dequantize, self.hflip, self.num_workers = images, dequantize, hflip, num_workers
        self.augment = torch.Generator().manual_seed(seed)
        self.epoch, self.position = 0, 0  # batches already returned in this epoch
        self._data: Source | None = None
        self._batches: Iterator[Any] | None = None

    def load(self) -> Source:
        """Read the data now (errors surface here, before a run writes anything)."""
        if self._data is None:
            loaded = self._load()
            if self.labelled != isinstance(loaded, tuple):
                raise ValueError("load must return (data, labels) exactly when labels=True")
            data = loaded[0] if isinstance(loaded, tuple) else loaded
            n = len(data)
            if n < self.batch_size:
                raise UserError(f"the dataset has {n} samples, fewer than one batch ({self.batch_size})")
            if isinstance(loaded, tuple):
                from wgangp.data.images import check_labels

                self._labels = check_labels(loaded[1], n, n_classes=self._n_classes)
            self._data = data
        return self._data

    @property
    def n_classes(self) -> int:
        """``K``: the ``n_classes`` given, else the largest label + 1 (loads the data); 0 without labels."""
        if not self.labelled:
            return 0
        if self._n_classes:
            return self._n_classes
        self.load()
        assert self._labels is not None
        return int(self._labels.max()) + 1

    def _require_labels(self) -> Tensor:
        if not self.labelled:
            raise ValueError("this sampler has no labels; build it with labels=True")
        self.load()
        assert self._labels is not None
        return self._labels

    def __len__(self) -> int:
        return len(self.load())

    @overload
    def __call__(self, *, with_labels: Literal[False] = ...) -> Tensor: ...

    @overload
    def __call__(self, *, with_labels: Literal[True]) -> tuple[Tensor, Tensor]: ...

    def __call__(self, *, with_labels: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        if with_labels:
            self._require_labels()
        if self._batches is None:
            self._batches = self._start()
        raw = next(self._batches)
        self.position += 1
        if self.position == len(self) // self.batch_size:
            self.epoch, self.position = self.epoch + 1, 0
        if self.labelled:
            raw, y = raw  # the labels of the same rows, int64 [n]
            x = self._to_float(raw, augment=True, total=self.batch_size)
            return (x, y.to(self.device)) if with_labels else x
        return self._to_float(raw, augment=True, total=self.batch_size)

    def _start(self) -> Iterator[Any]:
        data = self.load()
        order = _EndlessBatches(len(data), self.batch_size, self.seed, self.epoch, self.position, self.keep)
        labels = self._labels
        if isinstance(data, Tensor):
            if labels is not None:
                return ((data[idx], labels[idx]) for idx in order)
            return (data[idx] for idx in order)
        source = data if labels is None else _WithLabels(data, labels)
        loader: DataLoader[Tensor] = DataLoader(
            source,  # type: ignore[arg-type]
            batch_sampler=order,
            num_workers=self.num_workers,
            persistent_workers=False,
            pin_memory=self.device.type == "cuda",
        )
        return iter(loader)

    @overload
    def sample(self, n: int, *, with_labels: Literal[False] = ...) -> Tensor: ...

    @overload
    def sample(self, n: int, *, with_labels: Literal[True]) -> tuple[Tensor, Tensor]: ...

    def sample(self, n: int, *, with_labels: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """``n`` random samples (without replacement while ``n ≤ N``), augmented; advances the augment RNG."""
        labels = self._require_labels() if with_labels else None
        size = len(self)
        idx = torch.cat([torch.randperm(size, generator=self.augment) for _ in range(-(-n // size))])[:n]
        x = self._to_float(self._gather(idx), augment=True)
        return x if labels is None else (x, labels[idx].to(self.device))

    @overload
    def reference(self, n: int, *, seed: int, with_labels: Literal[False] = ...) -> Tensor: ...

    @overload
    def reference(self, n: int, *, seed: int, with_labels: Literal[True]) -> tuple[Tensor, Tensor]: ...

    def reference(self, n: int, *, seed: int, with_labels: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Up to ``n`` samples in an order fixed by ``seed``, not augmented; the sampler's state is untouched.

        On the CPU, as are their labels (``with_labels=True``).
        """
        labels = self._require_labels() if with_labels else None
        size = len(self)
        idx = epoch_order(size, seed, 0)[: min(n, size)]
        x = self._to_float(self._gather(idx), augment=False, device=torch.device("cpu"))
        return x if labels is None else (x, labels[idx])

    def held_out(self) -> Tensor | None:
        """The held-out real samples ``[M, ...]`` as floats, not augmented, on the CPU; ``None`` if none.

        Never part of a batch; reading them leaves the sampler's state and random streams untouched.
        """
        if self._load_held_out is None:
            return None
        data = self._load_held_out()
        raw = data if isinstance(data, Tensor) else torch.stack([data[i] for i in range(len(data))])
        return self._to_float(raw, augment=False, device=torch.device("cpu"))

    def _gather(self, idx: Tensor) -> Tensor:
        data = self.load()
        if isinstance(data, Tensor):
            return data[idx]
        return torch.stack([data[int(i)] for i in idx])

    def _to_float(
        self, raw: Tensor, *, augment: bool, device: torch.device | None = None, total: int | None = None
    ) -> Tensor:
        """uint8 ``raw [n, ...]`` to floats; ``total``: ``raw`` is ``keep``'s rows of a batch of ``total``.

        The augmentations are drawn for all ``total`` rows and cut to ``keep``, so every process consumes
        the augmentation stream as one process does and gets its rows' share of the same draws.
        """
        device = self.device if device is None else device
        if not self.images:
            return raw.to(device, torch.float32)
        x = raw.to(torch.float32)  # [n, C, R, R] in 0..255
        keep = slice(None) if total is None else self.keep
        total = x.shape[0] if total is None else total
        if self.dequantize:
            # Without augmentation, the noise's mean 1/256 stands in for the noise.
            noise = (
                torch.rand((total, *x.shape[1:]), generator=self.augment)[keep]
                if augment
                else torch.full_like(x, 0.5)
            )
            x = x / 128.0 - 1.0 + noise / 128.0
        else:
            x = x / 127.5 - 1.0
        if augment and self.hflip:
            flip = (torch.rand(total, generator=self.augment) < 0.5)[keep]  # [n]
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x.to(device)

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": "array",
            "epoch": self.epoch,
            "position": self.position,
            "augment": self.augment.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "array":
            raise ValueError(f"state is for a {state.get('kind', 'toy')!r} sampler, not a dataset sampler")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self.augment.set_state(state["augment"].to("cpu").clone())
        self._batches = None  # restart the stream at the restored position

    def __repr__(self) -> str:
        return f"ArraySampler(batch_size={self.batch_size}, seed={self.seed}, epoch={self.epoch}, position={self.position})"
