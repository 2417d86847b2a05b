"""Fréchet distance and KID against plain SciPy/NumPy computations; the classifier's label statistics."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from wgangp.metrics.classifier import label_stats
from wgangp.metrics.features import frechet_distance, gaussian_stats, kernel_distance


def _scipy_frechet(x, y):
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frechet_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
    y = rng.normal(loc=0.5, size=(250, 6)) @ rng.normal(size=(6, 6))
    assert frechet_distance(x, y) == pytest.approx(_scipy_frechet(x, y), rel=1e-7, abs=1e-9)


def test_frechet_closed_form_for_gaussians():
    # Diagonal covariances: d² = ‖μ₁ − μ₂‖² + Σ (σ₁ − σ₂)²; fitted to large samples it approaches it.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200_000, 2)) * [1.0, 2.0]
    y = rng.normal(size=(200_000, 2)) * [3.0, 2.0] + [1.0, 0.0]
    assert frechet_distance(x, y) == pytest.approx(1.0 + 4.0, rel=0.01)


def test_frechet_of_a_set_with_itself_is_zero_and_real_vs_noise_is_large():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 16)) @ rng.normal(size=(16, 16))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(torch.from_numpy(x), x) == pytest.approx(0.0, abs=1e-8)
    noise = rng.uniform(-1, 1, size=(500, 16))
    assert frechet_distance(x, noise) > 10.0


def _plain_kid(x, y):
    d = x.shape[1]
    m = x.shape[0]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    off = lambda a: (a.sum() - np.trace(a)) / (m * (m - 1))  # noqa: E731
    return off(kxx) + off(kyy) - 2 * kxy.mean()


def test_kid_matches_plain_mmd_with_one_full_subset():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 5)), rng.normal(0.3, size=(40, 5))
    mean, std = kernel_distance(x, y, subsets=3, subset_size=40)
    # Every subset is the whole set (in another order): the same number each time.
    assert mean == pytest.approx(_plain_kid(x, y), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-10)


def test_kid_is_unbiased_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    mean, std = kernel_distance(x, y, subsets=20, subset_size=200)
    assert abs(mean) < 3 * std + 1e-3
    far, _ = kernel_distance(x, y + 1.0, subsets=20, subset_size=200)
    assert far > 10 * abs(mean)


def test_bad_feature_inputs():
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((3, 2), np.nan), np.ones((3, 2)))
    with pytest.raises(ValueError, match="feature sizes differ"):
        frechet_distance(np.ones((3, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"\[N ≥ 2, D\]"):
        gaussian_stats(np.ones(4))


def test_label_stats():
    probs = torch.zeros(100, 10)
    probs[:50, 3] = 1.0  # 50 confident 3s
    probs[50:80, 7] = 0.95  # 30 confident 7s
    probs[50:80, 0] = 0.05
    probs[80:, :] = 0.1  # 20 unsure
    stats = label_stats(probs)
    assert stats == {"classes_covered": 2.0, "confident_fraction": pytest.approx(0.8)}
