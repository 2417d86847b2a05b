"""Sample quality of image GANs in the features of a small classifier trained on the same dataset.

For datasets with labels (digits, MNIST, CIFAR-10) a small CNN is trained once on the real training
images (seconds on a CPU), cached next to the run, and its test accuracy is reported. Generated images are
then compared with real ones by

- the Fréchet distance and KID of the classifier's penultimate features (FID/KID with a network that knows
  this dataset instead of ImageNet's Inception-v3; comparable across runs with the same classifier only);
- the classifier's labels of the samples: ``confident_fraction``, the share of samples classified with
  probability ≥ 0.9 (recognisable images), and ``classes_covered``, the number of classes into which at
  least a fifth of the fair share ``n/K`` of the samples is *confidently* classified (mode coverage; noise
  is spread over the classes by argmax, so unconfident samples do not count).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wgangp.metrics.features import frechet_distance, kernel_distance

__all__ = [
    "CONFIDENT",
    "ClassifierMetrics",
    "FeatureClassifier",
    "label_stats",
    "train_classifier",
]

CONFIDENT = 0.9  # a sample is "confident" when its top class probability is at least this
COVERED_SHARE = 0.2  # a class is covered when it gets ≥ this fraction of its fair share n/K


class FeatureClassifier(nn.Module):
    """A small CNN: three 3×3 convs (32, 64, 64 ch; the last two stride 2), mean pool, 64-d features, logits.

    ``features(x)``: ``[N, C, R, R] -> [N, 64]``; ``forward(x)``: ``[N, C, R, R] -> [N, classes]``.
    """

    def __init__(self, channels: int, classes: int = 10, *, width: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.embed = nn.Linear(width, width)
        self.head = nn.Linear(width, classes)

    def features(self, x: Tensor) -> Tensor:
        return torch.relu(self.embed(self.body(x).mean(dim=(2, 3))))  # [N, width]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def train_classifier(
    images: Tensor,
    labels: Tensor,
    test_images: Tensor,
    test_labels: Tensor,
    *,
    steps: int = 400,
    batch_size: int = 128,
    seed: int = 0,
) -> tuple[FeatureClassifier, float]:
    """Train :class:`FeatureClassifier` with Adam (1e-3) on float images in [−1, 1]; return it and its test accuracy."""
    classes = int(max(labels.max(), test_labels.max())) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FeatureClassifier(images.shape[1], classes)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    model.train()
    for _ in range(steps):
        idx = torch.randint(images.shape[0], (batch_size,), generator=g)
        loss = F.cross_entropy(model(images[idx]), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval().requires_grad_(False)
    with torch.no_grad():
        predicted = torch.cat([model(chunk).argmax(1) for chunk in test_images.split(1024)])
    return model, float((predicted == test_labels).float().mean())


def label_stats(probs: Tensor) -> dict[str, float]:
    """``classes_covered`` and ``confident_fraction`` of class probabilities ``[N, K]`` (module docstring)."""
    n, k = probs.shape
    confident = probs.max(1).values >= CONFIDENT  # [N]
    counts = torch.bincount(probs.argmax(1)[confident], minlength=k)  # [K]
    return {
        "classes_covered": float((counts >= COVERED_SHARE * n / k).sum()),
        "confident_fraction": float((probs.max(1).values >= CONFIDENT).float().mean()),
    }


@dataclass
class ClassifierMetrics:
    """Fréchet distance, KID and label statistics of generated images against fixed real features."""

    classifier: FeatureClassifier
    accuracy: float
    real_features: np.ndarray  # [M, 64]
    kid_subsets: int = 10

    @torch.no_grad()
    def embed(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Features ``[N, 64]`` and class probabilities ``[N, K]`` of float images in [−1, 1]."""
        feats = torch.cat([self.classifier.features(c) for c in images.float().cpu().split(1024)])
        return feats, torch.softmax(self.classifier.head(feats), dim=1)

    def __call__(self, images: Tensor) -> dict[str, float]:
        feats, probs = self.embed(images)
        kid, _ = kernel_distance(feats, self.real_features, subsets=self.kid_subsets, subset_size=1000)
        return {
            "fd": frechet_distance(feats, self.real_features),
            "kid": kid,
            **label_stats(probs),
            "classifier_accuracy": self.accuracy,
        }

    @classmethod
    def fit(
        cls,
        train: tuple[Tensor, Tensor],
        test: tuple[Tensor, Tensor],
        reference: Tensor,
        *,
        cache: Path | None = None,
        key: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> ClassifierMetrics:
        """Train (or load from ``cache`` when its ``key`` matches) and embed the ``reference`` real images."""
        key = key or {}
        model: FeatureClassifier | None = None
        accuracy = 0.0
        if cache is not None and cache.is_file():
            saved = torch.load(cache, map_location="cpu", weights_only=True)
            if saved.get("key") == key:
                model = FeatureClassifier(train[0].shape[1], int(saved["classes"]))
                model.load_state_dict(saved["state"])
                model.eval().requires_grad_(False)
                accuracy = float(saved["accuracy"])
        if model is None:
            model, accuracy = train_classifier(*train, *test, seed=seed)
            if cache is not None:
                from wgangp.storage import save_checkpoint

                classes = model.head.out_features
                state = {"format_version": 1, "key": key, "classes": classes, "accuracy": accuracy}
                save_checkpoint(state | {"state": model.state_dict()}, cache)
        metrics = cls(model, accuracy, np.zeros((0, 1)))
        metrics.real_features = metrics.embed(reference)[0].numpy()
        return metrics
