"""Class consistency and per-class FD, exactly on small cases and with the digits classifier."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wgangp.data.images import load_digits
from wgangp.data.sampler import epoch_order
from wgangp.metrics.classifier import ClassifierMetrics
from wgangp.metrics.conditional import ConditionalMetrics, class_consistency, per_class_frechet
from wgangp.metrics.images import to_unit


def test_class_consistency_closed_form():
    per_class, mean = class_consistency(torch.tensor([0, 1, 1, 2, 2]), torch.tensor([0, 1, 0, 2, 1]), 4)
    assert per_class[:3].tolist() == [0.5, 0.5, 1.0] and math.isnan(float(per_class[3]))
    assert mean == pytest.approx(2.0 / 3.0, abs=1e-12)
    with pytest.raises(ValueError, match="both be"):
        class_consistency(torch.zeros(3, dtype=torch.long), torch.zeros(2, dtype=torch.long), 2)


def test_per_class_frechet_closed_form():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(40, 3))
    labels = torch.arange(40) % 2
    shifted = real + np.array([1.0, 0.0, 0.0]) * (labels.numpy()[:, None] == 1)  # class 1 moved by 1 along x
    fds = per_class_frechet(shifted, labels, real, labels, 3)
    assert fds[0] == pytest.approx(0.0, abs=1e-9)
    assert fds[1] == pytest.approx(1.0, abs=1e-9)  # same covariance, ‖Δμ‖² = 1
    assert math.isnan(fds[2])


@pytest.fixture(scope="module")
def digits_metrics():
    images, labels = load_digits()
    order = epoch_order(len(images), 0, 0)
    cut = int(0.8 * len(images))
    train, test = order[:cut], order[cut:]
    base = ClassifierMetrics.fit(
        (to_unit(images[train]), labels[train]),
        (to_unit(images[test]), labels[test]),
        to_unit(images[train]),
    )
    return ConditionalMetrics.fit(base, labels[train]), to_unit(images[test]), labels[test]


def test_real_held_out_digits_are_consistent_with_their_labels(digits_metrics):
    metrics, images, labels = digits_metrics
    stats = metrics(images, labels)
    print(f"class consistency of held-out digits: {stats['class_consistency']:.4f}")
    assert 0.9 <= stats["class_consistency"] <= 1.0
    assert all(0.7 <= stats[f"class_consistency/{k}"] <= 1.0 for k in range(10))
    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    chance = metrics(images, shuffled)["class_consistency"]
    print(f"with shuffled labels: {chance:.4f}")
    assert 0.03 <= chance <= 0.18


def test_per_class_fd_of_a_set_against_itself_is_zero(digits_metrics):
    metrics, _, _ = digits_metrics
    train_images, train_labels = load_digits()
    order = epoch_order(len(train_images), 0, 0)[: int(0.8 * len(train_images))]
    stats = metrics(to_unit(train_images[order]), train_labels[order])
    assert stats["class_fd"] == pytest.approx(0.0, abs=1e-6)
    assert all(stats[f"class_fd/{k}"] == pytest.approx(0.0, abs=1e-6) for k in range(10))
    with pytest.raises(ValueError, match="one per reference image"):
        ConditionalMetrics.fit(metrics.base, train_labels[:5])
