"""Signal metrics on series made here (noisy sines of random phase, AR(1)): closed forms and behaviour."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from wgangp.metrics.signals import mean_spectrum, signal_floor, signal_metrics, spectral_w1, value_w1
from wgangp.pictures.signals import plot_series

T = 64


def sines(n, cycles, *, seed=0, noise=0.1, channels=1):
    """``n`` series of ``sin(2π·cycles·t/T + φ)`` with random phase φ, plus Gaussian noise: ``[n, C, T]``."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    phase = rng.uniform(0, 2 * np.pi, (n, channels, 1))
    return np.sin(2 * np.pi * cycles * t / T + phase) + noise * rng.standard_normal((n, channels, T))


def ar1(n, phi, *, seed=0):
    """AR(1) ``x_t = φ x_{t−1} + e_t`` started at stationarity: ``[n, 1, T]``."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, 1, T))
    x[..., 0] = rng.standard_normal((n, 1)) / np.sqrt(1 - phi**2)
    for t in range(1, T):
        x[..., t] = phi * x[..., t - 1] + rng.standard_normal((n, 1))
    return x


def test_value_w1_closed_forms():
    x = np.random.default_rng(0).standard_normal((30, 2, T))
    np.testing.assert_allclose(value_w1(x, x), [0.0, 0.0], rtol=0, atol=1e-12)
    shifted = x + np.array([0.5, -2.0])[None, :, None]  # a shift moves W1 by exactly |shift|
    np.testing.assert_allclose(value_w1(shifted, x), [0.5, 2.0], rtol=1e-12, atol=1e-12)
    assert value_w1(torch.tensor(x), torch.tensor(x)).shape == (2,)


@pytest.mark.parametrize(("k1", "k2"), [(2, 5), (7, 3), (1, 32), (4, 4)])
def test_pure_tones_are_their_frequency_gap(k1, k2):
    a, b = sines(8, k1, seed=1, noise=0.0), sines(8, k2, seed=2, noise=0.0)
    assert spectral_w1(a, b)[0] == pytest.approx(abs(k1 - k2) / T, rel=1e-9, abs=1e-12)


def test_spectrum_ignores_dc_and_scale_and_rows_sum_to_one():
    x = sines(10, 3, seed=3)
    spec = mean_spectrum(x)
    assert spec.shape == (1, T // 2 + 1)
    np.testing.assert_allclose(spec.sum(axis=1), [1.0], rtol=1e-12)
    np.testing.assert_allclose(mean_spectrum(5 * x + 2), spec, rtol=1e-9, atol=1e-15)
    flat = mean_spectrum(np.full((3, 1, T), 4.0))
    np.testing.assert_allclose(flat, np.full((1, T // 2 + 1), 1 / (T // 2 + 1)), rtol=1e-12)


def test_set_against_itself_is_zero_and_grows_with_frequency_change():
    real = sines(200, 4, seed=4)
    self_metrics = signal_metrics(real, real)
    assert self_metrics == {"value_w1": 0.0, "spectral_w1": 0.0}
    gaps = [signal_metrics(sines(200, 4 + d, seed=5), real)["spectral_w1"] for d in (0, 1, 2, 4, 8)]
    assert gaps[0] < 0.005 and all(a < b for a, b in itertools.pairwise(gaps))
    assert gaps[-1] == pytest.approx(8 / T, rel=0.1)  # noise spreads a little power over all bins


def test_ar1_spectra_separate_by_coefficient():
    real = ar1(300, 0.9, seed=6)
    same = signal_metrics(ar1(300, 0.9, seed=7), real)
    other = signal_metrics(ar1(300, 0.3, seed=7), real)
    assert same["spectral_w1"] < 0.01 < 0.05 < other["spectral_w1"]


def test_floor_is_small_seeded_and_shrinks_with_size():
    real = np.concatenate([sines(400, 4, seed=8), ar1(400, 0.5, seed=9)])[
        np.random.default_rng(0).permutation(800)
    ]
    small, large = signal_floor(real, 20, seed=1), signal_floor(real, 300, seed=1)
    assert signal_floor(real, 20, seed=1) == small and signal_floor(real, 20, seed=2) != small
    assert all(0 < large[k] < small[k] for k in small)
    moved = signal_metrics(sines(300, 12, seed=10), real[:300])
    assert moved["spectral_w1"] > 10 * large["spectral_w1"]
    with pytest.raises(ValueError, match="need 801"):
        signal_floor(real, 400, reference_size=401)


def test_input_checks():
    with pytest.raises(ValueError, match="differ in"):
        value_w1(np.zeros((2, 1, 8)), np.zeros((2, 1, 9)))
    with pytest.raises(ValueError, match="NaN or inf"):
        spectral_w1(np.full((2, 8), np.nan), np.zeros((2, 8)))


def test_plot_writes_a_png(tmp_path):
    path = plot_series(
        tmp_path / "figs" / "series.png", sines(6, 3, channels=2), sines(6, 5, channels=2), channel=1
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    with pytest.raises(ValueError, match="channel must be in"):
        plot_series(tmp_path / "x.png", sines(2, 3), sines(2, 3), channel=1)
