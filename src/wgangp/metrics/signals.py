"""Sample-quality metrics for 1-D signals ``[N, C, T]``: value and spectral Wasserstein-1 distances.

- :func:`value_w1` — per channel, the exact 1-D W1 between the distributions of all values (every series,
  every step) of the generated and the real set: ``W1 = ∫ |F_fake(v) − F_real(v)| dv``, in the data's units.
  It sees amplitudes, offsets and the marginal shape, not time structure.
- :func:`spectral_w1` — per channel, the W1 *over frequency* between the two sets' normalised mean power
  spectra. With ``x̄`` a series minus its own mean, ``P(f_k) = mean_series |rfft(x̄)_k|²`` at
  ``f_k = k / T`` cycles per step (``k = 0 … ⌊T/2⌋``), normalised to sum to 1, the distance is
  ``Σ_k |CDF_fake(f_k) − CDF_real(f_k)| · (1/T)`` in cycles per step, in ``[0, ½]``. A set of pure tones
  at frequency ``f`` against one at ``f'`` (both on the grid) is exactly ``|f − f'|``.

Why this spectral distance rather than a mean over bins of per-bin W1s of (log-)power: moving power from
one frequency to a far one should cost more than to a neighbour, and only a distance over the frequency
axis says so; per-bin distances treat every move alike. The overall power scale is normalised away (the
value W1 sees amplitude), and so is each series' mean (DC, an offset the value W1 sees). A set with no
power beyond DC at all has the uniform (white) spectrum by convention, so the metric is always defined.

:func:`signal_floor` is the same pair of numbers between two disjoint random subsets of real series of
the sizes compared: the level a perfect generator would score with that many samples.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["as_series", "mean_spectrum", "signal_floor", "signal_metrics", "spectral_w1", "value_w1"]

ArrayLike = Tensor | np.ndarray


def as_series(x: ArrayLike, what: str) -> np.ndarray:
    """``[N, C, T]`` float64 NumPy copy (``[N, T]`` becomes ``[N, 1, T]``) with N ≥ 1, T ≥ 2, finite."""
    arr = x.detach().to("cpu", torch.float64).numpy() if isinstance(x, Tensor) else np.asarray(x, np.float64)
    if arr.ndim == 2:
        arr = arr[:, None]
    if arr.ndim != 3 or arr.shape[0] < 1 or arr.shape[1] < 1 or arr.shape[2] < 2:
        raise ValueError(f"{what} must be series [N, C, T] (or [N, T]) with T ≥ 2; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or inf")
    return arr


def _pair(fake: ArrayLike, real: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    f, r = as_series(fake, "fake"), as_series(real, "real")
    if f.shape[1:] != r.shape[1:]:
        raise ValueError(f"fake and real series differ in [C, T]: {f.shape[1:]} vs {r.shape[1:]}")
    return f, r


def value_w1(fake: ArrayLike, real: ArrayLike) -> np.ndarray:
    """Per-channel exact 1-D W1 between all values of ``fake [N, C, T]`` and ``real [M, C, T]``: ``[C]``.

    >>> value_w1(np.zeros((2, 1, 4)), np.ones((3, 1, 4)))
    array([1.])
    """
    from scipy.stats import wasserstein_distance

    f, r = _pair(fake, real)
    return np.array([wasserstein_distance(f[:, c].ravel(), r[:, c].ravel()) for c in range(f.shape[1])])


def mean_spectrum(x: ArrayLike) -> np.ndarray:
    """Normalised mean power spectrum per channel, ``[N, C, T] -> [C, ⌊T/2⌋ + 1]`` (rows sum to 1).

    ``P_c(f_k) ∝ mean_n |rfft(x_nc − mean_t x_nc)_k|²``; a channel with no power at all is uniform.
    """
    arr = as_series(x, "x")
    centred = arr - arr.mean(axis=2, keepdims=True)
    power = (np.abs(np.fft.rfft(centred, axis=2)) ** 2).mean(axis=0)  # [C, K]
    total = power.sum(axis=1, keepdims=True)
    uniform = np.full_like(power, 1.0 / power.shape[1])
    # Relative to the data's own scale: rounding leaves ~1e-30 of "power" in a constant series.
    flat = total <= 1e-24 * max(1.0, float(np.abs(arr).max()) ** 2) * arr.shape[2]
    return np.where(flat, uniform, power / np.where(flat, 1.0, total))


def spectral_w1(fake: ArrayLike, real: ArrayLike) -> np.ndarray:
    """Per-channel W1 over frequency (cycles per step) between normalised mean power spectra: ``[C]``.

    ``Σ_k |CDF_fake(f_k) − CDF_real(f_k)| / T`` (see the module docstring), in ``[0, ½]``.

    >>> t = np.arange(16)
    >>> float(spectral_w1(np.sin(2 * np.pi * 2 * t / 16)[None], np.sin(2 * np.pi * 5 * t / 16)[None])[0])
    0.1875
    """
    f, r = _pair(fake, real)
    length = f.shape[2]
    cdf_gap = np.cumsum(mean_spectrum(f) - mean_spectrum(r), axis=1)[:, :-1]  # the last is 0
    return np.abs(cdf_gap).sum(axis=1) / length


def signal_metrics(fake: ArrayLike, real: ArrayLike) -> dict[str, float]:
    """``{"value_w1", "spectral_w1"}``: the channel means of :func:`value_w1` and :func:`spectral_w1`."""
    return {
        "value_w1": float(value_w1(fake, real).mean()),
        "spectral_w1": float(spectral_w1(fake, real).mean()),
    }


def signal_floor(
    real: ArrayLike, size: int, *, reference_size: int | None = None, seed: int = 0
) -> dict[str, float]:
    """:func:`signal_metrics` between two disjoint random subsets of ``real`` (``size`` and ``reference_size``).

    ``reference_size`` defaults to ``size``; the subsets are drawn by a NumPy generator seeded with ``seed``.
    """
    arr = as_series(real, "real")
    reference_size = size if reference_size is None else reference_size
    if size < 1 or reference_size < 1:
        raise ValueError(f"subset sizes must be ≥ 1; got {size} and {reference_size}")
    if size + reference_size > arr.shape[0]:
        raise ValueError(
            f"two disjoint subsets of {size} and {reference_size} series need {size + reference_size}; "
            f"got {arr.shape[0]}"
        )
    order = np.random.default_rng(seed).permutation(arr.shape[0])
    return signal_metrics(arr[order[:size]], arr[order[size : size + reference_size]])
