"""Distances between two sets of feature vectors: the Fréchet distance and the kernel inception distance.

Both are pure functions of ``[N, D]`` arrays; the network that makes the features is the caller's choice
(a small classifier trained on the dataset, :mod:`wgangp.metrics.classifier`, or Inception-v3 for FID/KID,
:mod:`wgangp.metrics.inception`). The work is done in float64 NumPy.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["frechet_distance", "gaussian_stats", "kernel_distance"]

ArrayLike = Tensor | np.ndarray


def _features(x: ArrayLike, what: str, *, min_rows: int = 2) -> np.ndarray:
    arr = x.detach().to("cpu", torch.float64).numpy() if isinstance(x, Tensor) else np.asarray(x, np.float64)
    if arr.ndim != 2 or arr.shape[0] < min_rows or arr.shape[1] < 1:
        raise ValueError(f"{what} must be [N ≥ {min_rows}, D] features; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or inf")
    return arr


def gaussian_stats(features: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and unbiased covariance ``[D, D]`` of ``[N, D]`` features (float64)."""
    x = _features(features, "features")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(a)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(x: ArrayLike, y: ArrayLike) -> float:
    """Fréchet distance of Gaussians fitted to two feature sets (FID when the features are Inception's).

    ``d² = ‖μ_x − μ_y‖² + Tr(Σ_x + Σ_y − 2 (Σ_x Σ_y)^{1/2})`` (Heusel et al. 2017, arXiv:1706.08500).
    ``Tr((Σ_x Σ_y)^{1/2})`` is computed as ``Σ √λᵢ`` over the eigenvalues of the symmetric PSD matrix
    ``Σ_x^{1/2} Σ_y Σ_x^{1/2}`` (same spectrum as ``Σ_x Σ_y``), which avoids a non-symmetric matrix square
    root and its complex round-off. Inputs ``[N, D]`` and ``[M, D]``; returns ``d² ≥ 0``.

    >>> frechet_distance(np.eye(3), np.eye(3))
    0.0
    """
    mu_x, cov_x = gaussian_stats(x)
    mu_y, cov_y = gaussian_stats(y)
    if mu_x.shape != mu_y.shape:
        raise ValueError(f"feature sizes differ: {mu_x.shape[0]} vs {mu_y.shape[0]}")
    root_x = _psd_sqrt(cov_x)
    middle = root_x @ cov_y @ root_x
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    d2 = float(((mu_x - mu_y) ** 2).sum() + np.trace(cov_x) + np.trace(cov_y) - 2.0 * trace_sqrt)
    return max(d2, 0.0)


def kernel_distance(
    x: ArrayLike,
    y: ArrayLike,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID: the unbiased MMD² with the kernel ``k(a, b) = (a·b/D + 1)³``, averaged over random subsets.

    Bińkowski et al. 2018, "Demystifying MMD GANs" (arXiv:1801.01401), as in torch-fidelity and the
    reference TF code: each of ``subsets`` draws ``m = min(subset_size, N, M)`` rows of each set without
    replacement and computes ``(Σ_{i≠j} k(xᵢ,xⱼ) + Σ_{i≠j} k(yᵢ,yⱼ))/(m(m−1)) − 2 Σ_{i,j} k(xᵢ,yⱼ)/m²``.
    Returns the mean and standard deviation over subsets. Inputs ``[N, D]`` and ``[M, D]``.
    """
    a, b = _features(x, "x"), _features(y, "y")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} vs {b.shape[1]}")
    m = min(subset_size, a.shape[0], b.shape[0])
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)
    for s in range(subsets):
        xs = a[rng.choice(a.shape[0], m, replace=False)]
        ys = b[rng.choice(b.shape[0], m, replace=False)]
        k_xx = (xs @ xs.T / d + 1.0) ** 3
        k_yy = (ys @ ys.T / d + 1.0) ** 3
        k_xy = (xs @ ys.T / d + 1.0) ** 3
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        values[s] = within - 2.0 * k_xy.mean()
    return float(values.mean()), float(values.std())
