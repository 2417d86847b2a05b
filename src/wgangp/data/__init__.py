"""Data sources: the paper's 2-d toy distributions (generated), images and vectors (read, never downloaded).

:func:`build_sampler` returns the sampler a config asks for; every sampler has ``sampler() -> batch``,
``sample(n)``, ``state_dict()`` and ``load_state_dict()``. :func:`data_shape` gives one sample's shape.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from wgangp.data.images import (
    IMAGE_DATASETS,
    LABELLED_DATASETS,
    NATIVE,
    FolderImages,
    check_labels,
    convert_images,
    load_cifar10,
    load_digits,
    load_labelled_vectors,
    load_mnist,
    load_vectors,
    vector_shape,
)
from wgangp.data.sampler import ArraySampler, Source, split_rows, take_rows
from wgangp.data.sequences import ChannelStats, SeriesData, load_series, series_sampler
from wgangp.data.text import Charmap, TextData, TextSampler, load_text
from wgangp.data.toy import TOY_DATASETS, ToySampler, mode_centres, mode_std
from wgangp.errors import UserError

if TYPE_CHECKING:
    from wgangp.config import TrainConfig

__all__ = [
    "IMAGE_DATASETS",
    "LABELLED_DATASETS",
    "TOY_DATASETS",
    "ArraySampler",
    "ChannelStats",
    "Charmap",
    "SeriesData",
    "TextData",
    "TextSampler",
    "ToySampler",
    "build_sampler",
    "check_labels",
    "data_shape",
    "image_geometry",
    "is_image_dataset",
    "labelled_images",
    "load_series",
    "load_text",
    "mode_centres",
    "mode_std",
    "series_sampler",
]

DATA_SEED_OFFSET = 2  # the data stream's seed is config.seed + 2 (the trainer's convention)


def is_image_dataset(name: str) -> bool:
    return name in IMAGE_DATASETS


def image_geometry(config: TrainConfig) -> tuple[int, int]:
    """``(resolution, channels)`` of the images a config trains on (0 in the config = the dataset's own)."""
    native_side, native_channels = NATIVE[config.dataset]
    resolution = config.resolution or native_side
    if resolution == 0:
        raise UserError(f"dataset {config.dataset} needs a size: --set resolution=R (e.g. 64)")
    return resolution, config.channels or native_channels


def data_shape(config: TrainConfig) -> tuple[int, ...]:
    """One sample's shape: ``(2,)`` toy, ``(D,)`` vectors (from the file header), ``(C, R, R)`` images."""
    if config.dataset in TOY_DATASETS:
        return (2,)
    if config.dataset == "vectors":
        return (vector_shape(config.data_path)[1],)
    resolution, channels = image_geometry(config)
    return (channels, resolution, resolution)


def _images(config: TrainConfig, split: str = "train") -> tuple[Tensor, Tensor | None]:
    """An in-memory labelled set at the config's geometry: uint8 ``[N, C, R, R]`` and labels ``[N]``."""
    resolution, channels = image_geometry(config)
    if config.dataset == "digits":
        images, labels = load_digits()
    elif config.dataset == "mnist":
        images, labels = load_mnist(config.data_path, split)
    elif config.dataset == "cifar10":
        images, labels = load_cifar10(config.data_path, split)
    else:
        raise UserError(f"{config.dataset} is not an in-memory labelled image dataset")
    return convert_images(images, resolution, channels), labels


def labelled_images(config: TrainConfig, split: str) -> tuple[Tensor, Tensor]:
    """uint8 images and labels of a labelled dataset's ``split`` (train or test), at the config's geometry."""
    images, labels = _images(config, split)
    assert labels is not None
    return images, labels


def build_sampler(
    config: TrainConfig,
    device: torch.device | str = "cpu",
    keep: slice | None = None,
    *,
    labels: bool = False,
    n_classes: int = 0,
) -> ToySampler | ArraySampler:
    """The training data stream of ``config``, seeded by ``config.seed + 2``; image data load on first use.

    ``keep``: the rows of every global batch this process trains on (data parallelism, ``Shard``).
    ``labels``: also read class labels (an :class:`ArraySampler` with ``labels=True``): digits, MNIST and
    CIFAR-10 their own, ``folder`` one class per sub-folder, ``vectors`` a ``.npz`` with ``x`` and ``y``;
    ``n_classes`` (0: ``max + 1``) bounds them. Without labels the stream is exactly as before.
    """
    seed = config.seed + DATA_SEED_OFFSET
    if config.dataset in TOY_DATASETS:
        if config.train_subset or config.monitor_holdout:
            raise UserError(
                f"dataset {config.dataset} is sampled afresh for every batch: it has no finite training set "
                "for train_subset or monitor_holdout (use digits, mnist, cifar10, folder or vectors)"
            )
        if labels:
            raise UserError(
                f"dataset {config.dataset} has no class labels; use digits, mnist, cifar10, folder or vectors"
            )
        return ToySampler(config.dataset, config.batch_size, seed=seed, device=device, keep=keep)

    def load_all() -> Source:
        if config.dataset == "vectors":
            return load_vectors(config.data_path)
        if config.dataset == "folder":
            resolution, channels = image_geometry(config)
            return FolderImages(config.data_path, resolution, channels)
        return _images(config)[0]

    def load_all_labelled() -> tuple[Source, Tensor]:
        if config.dataset == "vectors":
            return load_labelled_vectors(config.data_path, n_classes=n_classes)
        if config.dataset == "folder":
            resolution, channels = image_geometry(config)
            folder = FolderImages(config.data_path, resolution, channels, labelled=True)
            assert folder.labels is not None
            return folder, folder.labels
        images, y = _images(config)
        assert y is not None
        return images, y

    load, load_labelled, held_out = load_all, load_all_labelled, None
    if config.train_subset or config.monitor_holdout:
        load, load_labelled, held_out = _split_loaders(config, load_all, load_all_labelled, labels)
    return ArraySampler(
        load_labelled if labels else load,
        config.batch_size,
        seed=seed,
        device=device,
        images=config.dataset != "vectors",
        dequantize=config.dequantize,
        hflip=config.hflip,
        num_workers=config.num_workers,
        keep=keep,
        labels=labels,
        n_classes=n_classes,
        held_out=held_out,
    )


def _split_loaders(
    config: TrainConfig,
    load_all: Callable[[], Source],
    load_all_labelled: Callable[[], tuple[Source, Tensor]],
    labels: bool,
) -> tuple[Callable[[], Source], Callable[[], tuple[Source, Tensor]], Callable[[], Source]]:
    """Loaders of the training rows (``train_subset``) and of the held-out rows (``monitor_holdout``).

    The data are read once, on first use, and split by :func:`~wgangp.data.sampler.split_rows`.
    """

    @functools.cache
    def parts() -> tuple[Source, Source, Tensor | None]:
        data, y = load_all_labelled() if labels else (load_all(), None)
        train, held = split_rows(len(data), train_subset=config.train_subset, held_out=config.monitor_holdout)
        return take_rows(data, train), take_rows(data, held), None if y is None else y[train]

    def load_labelled() -> tuple[Source, Tensor]:
        train, _, y = parts()
        assert y is not None
        return train, y

    return (lambda: parts()[0]), load_labelled, (lambda: parts()[1])
