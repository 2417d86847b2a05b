"""The Inception-style score of a dataset classifier: ``exp(E_x KL(p(y|x) ‖ p(y)))``.

Reference: Salimans et al. 2016 (the Inception score); Gulrajani et al. 2017 (arXiv:1704.00028), Sec. 5.1
(Table 2 counts runs whose score exceeds a threshold). Here ``p(y|x)`` is the small classifier of
:mod:`wgangp.metrics.classifier` trained on the same dataset, so the score lies in ``[1, K]``: 1 when every
sample gets the same prediction, ``K`` when each sample is one class with certainty and the classes are
balanced. Comparable across runs with the same classifier only.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from wgangp.metrics.classifier import ClassifierMetrics

__all__ = ["classifier_score", "score_from_probs"]


def score_from_probs(probs: Tensor, *, splits: int = 1, eps: float = 1e-12) -> tuple[float, float]:
    """Mean and std over ``splits`` of ``exp(mean_x KL(p(y|x) ‖ p̂(y)))`` for class probabilities ``[N, K]``.

    ``p̂(y)`` is the mean prediction of each split (the Inception score's convention: 10 splits of 5,000);
    ``KL(p ‖ q) = Σ_y p log(p/q)`` with ``0·log 0 = 0``. Splits are consecutive, the last ones one shorter
    when ``splits`` does not divide ``N``. ``std`` is 0 for one split.

    >>> score_from_probs(torch.eye(4))
    (4.0, 0.0)
    """
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise ValueError(f"probabilities must be [N, K] with N ≥ 1; got shape {tuple(probs.shape)}")
    if splits < 1 or splits > probs.shape[0]:
        raise ValueError(f"splits must be between 1 and N = {probs.shape[0]}; got {splits}")
    p = probs.double()
    scores = []
    for part in p.tensor_split(splits):
        marginal = part.mean(0, keepdim=True)  # [1, K]
        terms = torch.where(
            part > 0, part * (torch.log(part.clamp_min(eps)) - torch.log(marginal.clamp_min(eps))), 0.0
        )
        scores.append(math.exp(float(terms.sum(1).mean())))
    mean = sum(scores) / len(scores)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    return mean, std


def classifier_score(metrics: ClassifierMetrics, images: Tensor, *, splits: int = 10) -> tuple[float, float]:
    """The score (mean, std over ``splits``) of float images ``[N, C, R, R]`` in [−1, 1] by the dataset classifier.

    ``metrics`` is the :class:`~wgangp.metrics.classifier.ClassifierMetrics` of the run's dataset, as
    :func:`wgangp.metrics.images.classifier_metrics` returns it (trained once, cached).
    """
    _, probs = metrics.embed(images)
    return score_from_probs(probs, splits=splits)
