"""The classifier score exp(E KL(p(y|x) ‖ p(y))): closed forms, splits, real digits vs noise."""

from __future__ import annotations

import math

import pytest
import torch

from wgangp.data.images import load_digits
from wgangp.metrics.classifier import ClassifierMetrics
from wgangp.metrics.images import to_unit
from wgangp.metrics.score import classifier_score, score_from_probs


@pytest.mark.parametrize("k", [2, 10])
def test_uniform_predictions_score_one(k):
    mean, std = score_from_probs(torch.full((50, k), 1.0 / k), splits=5)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("k", "n", "splits"), [(4, 40, 1), (10, 100, 10), (10, 1000, 10)])
def test_one_hot_balanced_predictions_score_k(k, n, splits):
    probs = torch.eye(k)[torch.arange(n) % k]  # every split holds each class equally often
    mean, std = score_from_probs(probs, splits=splits)
    assert mean == pytest.approx(k, rel=1e-12) and std == pytest.approx(0.0, abs=1e-9)


def test_score_matches_a_direct_kl_computation():
    probs = torch.softmax(torch.randn(12, 3, generator=torch.Generator().manual_seed(0)), dim=1).double()
    marginal = probs.mean(0)
    kl = (probs * (probs / marginal).log()).sum(1).mean()
    assert score_from_probs(probs)[0] == pytest.approx(math.exp(float(kl)), rel=1e-12)
    # Two splits: the mean and population std of the two halves' scores.
    halves = [score_from_probs(part)[0] for part in probs.split(6)]
    mean, std = score_from_probs(probs, splits=2)
    assert mean == pytest.approx(sum(halves) / 2, rel=1e-12)
    assert std == pytest.approx(abs(halves[0] - halves[1]) / 2, rel=1e-9)


def test_collapsed_confident_predictions_score_one():
    # All samples confidently one class: p(y|x) = p(y), KL 0: mode collapse scores 1 however sharp.
    probs = torch.eye(10)[torch.zeros(30, dtype=torch.long)]
    assert score_from_probs(probs)[0] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("bad", [torch.zeros(5), torch.zeros(0, 3)])
def test_bad_shapes_are_refused(bad):
    with pytest.raises(ValueError, match="N, K"):
        score_from_probs(bad)


def test_bad_split_counts_are_refused():
    with pytest.raises(ValueError, match="splits"):
        score_from_probs(torch.full((4, 2), 0.5), splits=5)


@pytest.fixture(scope="module")
def digits_classifier():
    images, labels = load_digits()
    x = to_unit(images)
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(x.shape[0], generator=g)
    train, test = order[:1400], order[1400:]
    metrics = ClassifierMetrics.fit((x[train], labels[train]), (x[test], labels[test]), x[test], seed=0)
    return metrics, x[test]


def test_real_digits_score_high_and_noise_low(digits_classifier):
    metrics, real = digits_classifier
    real_score, _ = classifier_score(metrics, real, splits=1)
    noise = torch.rand(real.shape, generator=torch.Generator().manual_seed(3)) * 2 - 1
    noise_score, _ = classifier_score(metrics, noise, splits=1)
    print(
        f"classifier score: real digits {real_score:.3f}, uniform noise {noise_score:.3f}, accuracy {metrics.accuracy:.3f}"
    )
    assert metrics.accuracy > 0.9
    assert 8.0 < real_score <= 10.0
    assert 1.0 <= noise_score < real_score / 2
