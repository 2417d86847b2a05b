"""1-D signals (time series, audio frames) read from a local ``.npy`` file, never downloaded.

The file holds finite real numbers ``[N, C, T]`` (N series of C channels and T steps) or ``[N, T]``
(read as ``C = 1``). Integer arrays are converted to float32; object, string, complex and boolean arrays
are refused, as are other ranks and NaN/inf values.

Standardisation (optional, on by default): per channel ``x' = (x − μ_c) / σ_c`` with ``μ_c``, ``σ_c`` the
mean and standard deviation of channel ``c`` over the *training* series and all their steps (a constant
channel keeps ``σ_c = 1``). The statistics are a small serialisable :class:`ChannelStats`, saved with a
run so generated samples return to the data's units (:meth:`ChannelStats.destandardize`) without the data.

The held-out split is that of :func:`wgangp.data.text.held_out_split`: a ``seed``-fixed permutation whose
first ``min(held_out, N // 5)`` series are held out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from wgangp.data.sampler import ArraySampler
from wgangp.data.text import held_out_split
from wgangp.errors import UserError

__all__ = [
    "ChannelStats",
    "SeriesData",
    "SeriesFormat",
    "SeriesSampler",
    "load_series",
    "read_series",
    "series_sampler",
]


@dataclass(frozen=True)
class ChannelStats:
    """Per-channel ``mean`` and ``std`` (tuples of C floats) for ``(x − mean) / std`` on ``[N, C, T]``.

    >>> s = ChannelStats.fit(torch.tensor([[[1.0, 3.0]]]))
    >>> s, s.standardize(torch.tensor([[[1.0, 3.0]]]))
    (ChannelStats(mean=(2.0,), std=(1.0,)), tensor([[[-1.,  1.]]]))
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, x: Tensor) -> ChannelStats:
        """Statistics of ``x [N, C, T]`` per channel over N and T (population std; 0 becomes 1)."""
        x64 = x.to(torch.float64)
        mean = x64.mean(dim=(0, 2))
        std = x64.std(dim=(0, 2), correction=0)
        std = torch.where(std > 0, std, torch.ones_like(std))
        return cls(tuple(mean.tolist()), tuple(std.tolist()))

    def _columns(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.ndim != 3 or x.shape[1] != len(self.mean):
            raise ValueError(f"expects series [N, {len(self.mean)}, T]; got {tuple(x.shape)}")
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device)[:, None]  # [C, 1]
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device)[:, None]
        return mean, std

    def standardize(self, x: Tensor) -> Tensor:
        """``(x − μ) / σ`` per channel: ``[N, C, T] -> [N, C, T]``."""
        mean, std = self._columns(x)
        return (x - mean) / std

    def destandardize(self, x: Tensor) -> Tensor:
        """``x · σ + μ`` per channel (generated samples back in the data's units): ``[N, C, T] -> [N, C, T]``."""
        mean, std = self._columns(x)
        return x * std + mean

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "channel_stats", "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> ChannelStats:
        if state.get("kind") != "channel_stats" or len(state.get("mean", ())) != len(state.get("std", ())):
            raise ValueError(
                "not saved channel statistics (expected {'kind': 'channel_stats', 'mean', 'std'})"
            )
        return cls(tuple(float(v) for v in state["mean"]), tuple(float(v) for v in state["std"]))


@dataclass(frozen=True)
class SeriesFormat:
    """What a trained model needs of its series data: ``[channels, length]`` and the standardisation.

    Saved in every checkpoint of a ``sequences`` run, so its models are rebuilt and its samples returned to
    the data's units (``stats``; ``None``: not standardised) without the data file.

    >>> SeriesFormat.from_dict(SeriesFormat(2, 16, None).to_dict())
    SeriesFormat(channels=2, length=16, stats=None)
    """

    channels: int
    length: int
    stats: ChannelStats | None

    @classmethod
    def of(cls, data: SeriesData) -> SeriesFormat:
        return cls(*data.shape, data.stats)

    @property
    def shape(self) -> tuple[int, int]:
        """One sample's shape ``(C, T)``."""
        return self.channels, self.length

    def to_units(self, x: Tensor) -> Tensor:
        """Generated ``[N, C, T]`` back in the data's units (the identity without standardisation)."""
        return x if self.stats is None else self.stats.destandardize(x)

    def to_dict(self) -> dict[str, Any]:
        stats = None if self.stats is None else self.stats.to_dict()
        return {"kind": "series_format", "channels": self.channels, "length": self.length, "stats": stats}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> SeriesFormat:
        if state.get("kind") != "series_format":
            raise ValueError("not a saved series format (expected {'kind': 'series_format', ...})")
        stats = None if state.get("stats") is None else ChannelStats.from_dict(state["stats"])
        return cls(int(state["channels"]), int(state["length"]), stats)


def read_series(path: str | Path) -> Tensor:
    """The ``.npy`` file's series as float32 ``[N, C, T]`` (``[N, T]`` becomes ``[N, 1, T]``), checked."""
    if not str(path):
        raise UserError("dataset sequences needs --data-path FILE.npy (or --set data_path=FILE)")
    path = Path(path)
    if path.suffix != ".npy":
        raise UserError(f"sequences: data_path must be a .npy file; got {path.name}")
    if not path.is_file():
        raise UserError(f"sequences: file not found: {path}")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise UserError(f"sequences: {path} holds Python objects; save a numeric array instead") from None
        raise UserError(f"sequences: cannot read {path}: {err}") from None
    except OSError as err:
        raise UserError(f"sequences: cannot read {path}: {err}") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "iuf":
        kind = getattr(array, "dtype", type(array))
        raise UserError(f"sequences: {path} must hold real numbers (int or float); got {kind}")
    if array.ndim not in (2, 3) or 0 in array.shape:
        raise UserError(f"sequences: {path} must hold [N, C, T] or [N, T] series; got shape {array.shape}")
    series = torch.from_numpy(array.astype(np.float32))
    series = series[:, None] if series.ndim == 2 else series  # [N, C, T]
    bad = int((~torch.isfinite(series)).sum())
    if bad:
        raise UserError(
            f"sequences: {path} holds {bad} non-finite value(s) (NaN or inf); clean the data first"
        )
    return series


@dataclass(frozen=True)
class SeriesData:
    """``train`` and ``held_out`` float32 ``[N, C, T]`` (standardised if ``stats``), and ``stats`` or None."""

    train: Tensor
    held_out: Tensor
    stats: ChannelStats | None
    source: str

    @property
    def shape(self) -> tuple[int, int]:
        """One sample's shape ``(C, T)``."""
        return int(self.train.shape[1]), int(self.train.shape[2])


def load_series(
    path: str | Path,
    *,
    standardize: bool = True,
    held_out: int = 512,
    seed: int = 0,
    stats: ChannelStats | None = None,
) -> SeriesData:
    """Read, split and (optionally) standardise with the training split's statistics.

    Args:
        path: a ``.npy`` file of ``[N, C, T]`` or ``[N, T]`` finite numbers.
        standardize: apply per-channel standardisation.
        held_out: series held out (at most a fifth of them).
        seed: seeds the split.
        stats: a saved run's statistics (so the data match the trained model); fitted if None.
    """
    series = read_series(path)
    train_idx, held_idx = held_out_split(series.shape[0], held_out, seed)
    train, held = series[train_idx], series[held_idx]
    if standardize:
        stats = stats if stats is not None else ChannelStats.fit(train)
        if len(stats.mean) != series.shape[1]:
            raise UserError(
                f"sequences: saved statistics are for {len(stats.mean)} channels, {path} has {series.shape[1]}"
            )
        train, held = stats.standardize(train), stats.standardize(held)
    return SeriesData(train, held, stats if standardize else None, str(path))


class SeriesSampler(ArraySampler):
    """Float ``[batch_size, C, T]`` batches over ``load().train``: an :class:`ArraySampler` that keeps the
    loaded :class:`SeriesData` (its held-out split and statistics) for the metrics.

    Too few training series for one batch is a one-line :class:`UserError` naming the file.
    """

    def __init__(
        self,
        load: Callable[[], SeriesData],
        batch_size: int,
        *,
        seed: int = 0,
        device: torch.device | str = "cpu",
        keep: slice | None = None,
    ) -> None:
        self._load_series = load
        self._series: SeriesData | None = None
        super().__init__(
            lambda: self.series.train, batch_size, seed=seed, device=device, images=False, keep=keep
        )

    @property
    def series(self) -> SeriesData:
        """The loaded data (read on first use)."""
        if self._series is None:
            data = self._load_series()
            if data.train.shape[0] < self.batch_size:
                raise UserError(
                    f"sequences: {data.source} gives {data.train.shape[0]} training series, fewer than one "
                    f"batch ({self.batch_size}); use more series or a smaller batch_size"
                )
            self._series = data
        return self._series


def series_sampler(
    load: Callable[[], SeriesData],
    batch_size: int,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    keep: slice | None = None,
) -> SeriesSampler:
    """A :class:`SeriesSampler` of float ``[batch_size, C, T]`` batches over ``load().train``."""
    return SeriesSampler(load, batch_size, seed=seed, device=device, keep=keep)
