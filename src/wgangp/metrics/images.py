"""Image metrics for a run's config: the dataset-classifier metrics and (optionally) Inception FID/KID/IS."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from torch import Tensor

from wgangp.data import labelled_images
from wgangp.data.images import LABELLED_DATASETS
from wgangp.data.sampler import epoch_order
from wgangp.errors import UserError
from wgangp.metrics.classifier import ClassifierMetrics
from wgangp.metrics.conditional import ConditionalMetrics

if TYPE_CHECKING:
    from wgangp.config import TrainConfig

__all__ = ["CLASSIFIER_CACHE", "classifier_metrics", "conditional_metrics", "to_unit"]

CLASSIFIER_CACHE = "classifier.pt"
HOLDOUT = 0.2  # share of a dataset held out to test the classifier when it has no test split


def to_unit(images: Tensor) -> Tensor:
    """uint8 images to floats in [−1, 1] (``x/127.5 − 1``), the range every generator outputs."""
    return images.float() / 127.5 - 1.0


def classifier_metrics(
    config: TrainConfig, *, cache_dir: Path | None, reference_samples: int, seed: int = 0
) -> ClassifierMetrics:
    """The dataset classifier for ``config`` (trained or loaded from ``cache_dir``) and real reference features.

    The reference is ``reference_samples`` real training images in a fixed order (all of them if fewer).
    """
    return _classifier_and_reference_labels(
        config, cache_dir=cache_dir, reference_samples=reference_samples, seed=seed
    )[0]


def conditional_metrics(
    config: TrainConfig, *, cache_dir: Path | None, reference_samples: int, seed: int = 0, n_classes: int = 0
) -> ConditionalMetrics:
    """Class consistency and per-class FD (:mod:`wgangp.metrics.conditional`) on :func:`classifier_metrics`'
    classifier and reference set, whose labels are those of the same fixed rows. ``n_classes`` 0: the data's.
    """
    base, reference_labels = _classifier_and_reference_labels(
        config, cache_dir=cache_dir, reference_samples=reference_samples, seed=seed
    )
    return ConditionalMetrics.fit(base, reference_labels, n_classes)


def _classifier_and_reference_labels(
    config: TrainConfig, *, cache_dir: Path | None, reference_samples: int, seed: int
) -> tuple[ClassifierMetrics, Tensor]:
    if config.dataset not in LABELLED_DATASETS:
        raise UserError(
            f"classifier metrics need a labelled dataset ({', '.join(LABELLED_DATASETS)}); "
            f"{config.dataset} has none: use --metric fid with --inception-weights"
        )
    all_images, labels = labelled_images(config, "train")
    labels_all = labels
    images = all_images
    test: tuple[Tensor, Tensor] | None = None
    if config.dataset != "digits":
        try:
            test = labelled_images(config, "test")
        except UserError:
            test = None  # no test files: hold out part of the training split instead
    if test is None:
        order = epoch_order(images.shape[0], seed, 0)
        cut = int(images.shape[0] * (1 - HOLDOUT))
        test = images[order[cut:]], labels[order[cut:]]
        images, labels = images[order[:cut]], labels[order[:cut]]
    reference_rows = epoch_order(all_images.shape[0], seed + 1, 0)[:reference_samples]
    reference, reference_labels = all_images[reference_rows], labels_all[reference_rows]
    key = {
        "dataset": config.dataset,
        "data_path": str(Path(config.data_path).resolve()) if config.data_path else "",
        "shape": list(images.shape[1:]),
        "seed": seed,
    }
    cache = None if cache_dir is None else Path(cache_dir) / CLASSIFIER_CACHE
    classifier = ClassifierMetrics.fit(
        (to_unit(images), labels),
        (to_unit(test[0]), test[1]),
        to_unit(reference),
        cache=cache,
        key=key,
        seed=seed,
    )
    return classifier, reference_labels
