"""Class-conditional sample quality in the dataset classifier's terms (:mod:`wgangp.metrics.classifier`).

- class consistency: ``c_k = #{i : y_i = k, argmax C(x_i) = k} / #{i : y_i = k}``, the share of samples made
  for class ``k`` that the held-out classifier assigns to ``k``, per class and averaged over the classes
  present (macro mean); chance level is ``1/K``;
- per-class Fréchet distance: ``FD_k`` between the classifier features of the samples of class ``k`` and
  those of the real images of class ``k`` (:func:`~wgangp.metrics.features.frechet_distance`), and their mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from wgangp.metrics.classifier import ClassifierMetrics
from wgangp.metrics.features import frechet_distance

__all__ = ["ConditionalMetrics", "class_consistency", "code_purity", "per_class_frechet"]


def class_consistency(predicted: Tensor, labels: Tensor, n_classes: int) -> tuple[Tensor, float]:
    """Per-class consistency ``c_k`` ``[K]`` (NaN for a class without samples) and their mean over present classes.

    ``predicted``, ``labels``: int64 ``[N]``. Example: predicted ``[0, 1, 1]``, labels ``[0, 1, 0]`` give
    ``c = [0.5, 1.0]`` and mean 0.75.
    """
    if predicted.shape != labels.shape or predicted.ndim != 1:
        raise ValueError(
            f"predicted and labels must both be [N]; got {tuple(predicted.shape)}, {tuple(labels.shape)}"
        )
    hits = torch.bincount(labels[predicted == labels], minlength=n_classes).double()  # [K]
    counts = torch.bincount(labels, minlength=n_classes).double()  # [K]
    per_class = torch.where(counts > 0, hits / counts.clamp(min=1), torch.full_like(counts, float("nan")))
    present = counts > 0
    return per_class, float(per_class[present].mean()) if bool(present.any()) else float("nan")


def code_purity(predicted: Tensor, codes: Tensor) -> dict[str, float]:
    """How an unsupervised code lines up with the classifier's classes (``latent_codes`` runs).

    ``code_purity = Σ_c max_y n(c, y) / N``: the share of samples in their code's majority class (1 when
    each code makes one class; about the largest class's share when the codes ignore the classes);
    ``code_classes``: how many distinct classes are some code's majority (K codes that found K classes).
    ``predicted``, ``codes``: int64 ``[N]``. Example: codes ``[0, 0, 1, 1]``, classes ``[3, 3, 3, 5]``
    give purity 0.75 and 1 class (both codes' majority is 3).
    """
    if predicted.shape != codes.shape or predicted.ndim != 1 or predicted.numel() == 0:
        raise ValueError(
            f"predicted and codes must both be [N], N ≥ 1; got {tuple(predicted.shape)}, {tuple(codes.shape)}"
        )
    predicted, codes = predicted.cpu(), codes.cpu()
    k, y = int(codes.max()) + 1, int(predicted.max()) + 1
    table = torch.bincount(codes * y + predicted, minlength=k * y).view(k, y)  # [codes, classes]
    used = table.sum(1) > 0
    majority = table.argmax(1)[used]
    return {
        "code_purity": float(table.max(1).values.sum()) / predicted.numel(),
        "code_classes": float(torch.unique(majority).numel()),
    }


def per_class_frechet(
    features: Tensor | np.ndarray,
    labels: Tensor,
    real_features: Tensor | np.ndarray,
    real_labels: Tensor,
    n_classes: int,
) -> list[float]:
    """``FD_k`` for every class ``k`` (NaN where either set has fewer than 2 rows of class ``k``).

    ``features [N, D]`` with ``labels [N]`` against ``real_features [M, D]`` with ``real_labels [M]``.
    """
    fake = np.asarray(features.detach().cpu() if isinstance(features, Tensor) else features, np.float64)
    real = np.asarray(
        real_features.detach().cpu() if isinstance(real_features, Tensor) else real_features, np.float64
    )
    y, y_real = labels.cpu().numpy(), real_labels.cpu().numpy()
    out = []
    for k in range(n_classes):
        a, b = fake[y == k], real[y_real == k]
        out.append(frechet_distance(a, b) if len(a) >= 2 and len(b) >= 2 else float("nan"))
    return out


@dataclass
class ConditionalMetrics:
    """Class consistency and per-class FD of images made for given labels, against labelled real features."""

    base: ClassifierMetrics
    real_labels: Tensor  # [M], the labels of base.real_features' rows
    n_classes: int

    @classmethod
    def fit(cls, base: ClassifierMetrics, real_labels: Tensor, n_classes: int = 0) -> ConditionalMetrics:
        """Wrap ``base`` whose reference images had ``real_labels [M]``; ``n_classes`` 0: the classifier's."""
        if real_labels.shape != (base.real_features.shape[0],):
            raise ValueError(
                f"real_labels must be [{base.real_features.shape[0]}] (one per reference image); got {tuple(real_labels.shape)}"
            )
        return cls(base, real_labels.cpu(), n_classes or base.classifier.head.out_features)

    @torch.no_grad()
    def __call__(self, images: Tensor, labels: Tensor) -> dict[str, float]:
        """``class_consistency``, ``class_fd`` (means) and ``class_consistency/k``, ``class_fd/k`` per class."""
        feats, probs = self.base.embed(images)
        labels = labels.cpu()
        per_class, mean = class_consistency(probs.argmax(1), labels, self.n_classes)
        fds = per_class_frechet(feats, labels, self.base.real_features, self.real_labels, self.n_classes)
        finite = [v for v in fds if np.isfinite(v)]
        stats = {"class_consistency": mean, "class_fd": float(np.mean(finite)) if finite else float("nan")}
        for k in range(self.n_classes):
            stats[f"class_consistency/{k}"] = float(per_class[k])
            stats[f"class_fd/{k}"] = fds[k]
        return stats
