"""Data sources: the paper's 2-d toy distributions (generated); images, vectors, text and 1-d signals (read,
never downloaded).

:func:`build_sampler` returns the sampler a config asks for; every sampler has ``sampler() -> batch``,
``sample(n)``, ``state_dict()`` and ``load_state_dict()``. :func:`data_shape` gives one sample's shape.

Text and sequences have a *codec* (:func:`data_codec`): what the models and samples need of the data —
the :class:`Charmap` of a text run, the :class:`SeriesFormat` (shape, standardisation) of a sequences
run. It is built from the data once and saved in every checkpoint, so a saved run is rebuilt, sampled and
decoded without its data, and a resumed one encodes its data exactly as before.
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
from wgangp.data.scaling import FeatureScaling
from wgangp.data.sequences import (
    ChannelStats,
    SeriesData,
    SeriesFormat,
    SeriesSampler,
    load_series,
    series_sampler,
)
from wgangp.data.text import Charmap, TextData, TextSampler, load_text
from wgangp.data.toy import TOY_DATASETS, ToySampler, mode_centres, mode_std
from wgangp.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from wgangp.config import TrainConfig

__all__ = [
    "IMAGE_DATASETS",
    "LABELLED_DATASETS",
    "SEQUENCE_DATASETS",
    "TOY_DATASETS",
    "ArraySampler",
    "ChannelStats",
    "Charmap",
    "DataCodec",
    "FeatureScaling",
    "SeriesData",
    "SeriesFormat",
    "SeriesSampler",
    "TextData",
    "TextSampler",
    "ToySampler",
    "build_sampler",
    "check_labels",
    "data_codec",
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
# The held-out split of text and sequences is the data's, not a run's: the same for every training seed,
# so runs on several seeds train on the same sequences and are scored against the same floor.
SPLIT_SEED = 0
SEQUENCE_DATASETS = ("text", "sequences")
DataCodec = Charmap | SeriesFormat


def is_image_dataset(name: str) -> bool:
    return name in IMAGE_DATASETS


def image_geometry(config: TrainConfig) -> tuple[int, int]:
    """``(resolution, channels)`` of the images a config trains on (0 in the config = the dataset's own)."""
    native_side, native_channels = NATIVE[config.dataset]
    resolution = config.resolution or native_side
    if resolution == 0:
        raise UserError(f"dataset {config.dataset} needs a size: --set resolution=R (e.g. 64)")
    return resolution, config.channels or native_channels


def _text(config: TrainConfig, charmap: Charmap | None = None) -> TextData:
    return load_text(
        config.data_path,
        seq_len=config.seq_len,
        mode=config.text_mode,
        max_vocab=config.max_vocab,
        held_out=config.held_out,
        seed=SPLIT_SEED,
        charmap=charmap,
    )


def _series(config: TrainConfig, stats: ChannelStats | None = None) -> SeriesData:
    return load_series(
        config.data_path,
        standardize=config.standardize,
        held_out=config.held_out,
        seed=SPLIT_SEED,
        stats=stats,
    )


def data_codec(config: TrainConfig, saved: Mapping[str, Any] | None = None) -> DataCodec | None:
    """The codec of a text or sequences run (``None`` for other data): ``saved`` (a checkpoint's
    ``data_codec``) if it fits the config, else built from the data (which is then read).

    A saved charmap always fits (characters the new data add map to the unknown one); a saved series
    format fits unless ``standardize`` changed.
    """
    if config.dataset == "text":
        if saved is not None and saved.get("kind") == "charmap":
            return Charmap.from_dict(dict(saved))
        return _text(config).charmap
    if config.dataset == "sequences":
        if saved is not None and saved.get("kind") == "series_format":
            fmt = SeriesFormat.from_dict(dict(saved))
            if (fmt.stats is not None) == config.standardize:
                return fmt
        return SeriesFormat.of(_series(config))
    return None


def data_shape(config: TrainConfig, codec: DataCodec | None = None) -> tuple[int, ...]:
    """One sample's shape: ``(2,)`` toy, ``(D,)`` vectors (from the file header), ``(C, R, R)`` images,
    ``(V, T)`` text (charmap size, seq_len), ``(C, T)`` sequences; text and sequences from ``codec``
    (built from the data if ``None``)."""
    if config.dataset in TOY_DATASETS:
        return (2,)
    if config.dataset == "vectors":
        return (vector_shape(config.data_path)[1],)
    if config.dataset in SEQUENCE_DATASETS:
        codec = codec if codec is not None else data_codec(config)
        if isinstance(codec, Charmap):
            return (len(codec), config.seq_len)
        assert isinstance(codec, SeriesFormat)
        return codec.shape
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
    codec: DataCodec | None = None,
    scaling: FeatureScaling | None = None,
) -> ToySampler | ArraySampler:
    """The training data stream of ``config``, seeded by ``config.seed + 2``; image data load on first use.

    ``keep``: the rows of every global batch this process trains on (data parallelism, ``Shard``).
    ``labels``: also read class labels (an :class:`ArraySampler` with ``labels=True``): digits, MNIST and
    CIFAR-10 their own, ``folder`` one class per sub-folder, ``vectors`` a ``.npz`` with ``x`` and ``y``;
    ``n_classes`` (0: ``max + 1``) bounds them. Without labels the stream is exactly as before.
    ``codec``: text and sequences encode with it (a saved run's; built from the data if ``None``).
    ``scaling``: vectors are standardised per feature on loading (``standardize``; fitted on first use).
    """
    seed = config.seed + DATA_SEED_OFFSET
    if (config.dataset in TOY_DATASETS or config.dataset in SEQUENCE_DATASETS) and labels:
        raise UserError(
            f"dataset {config.dataset} has no class labels; use digits, mnist, cifar10, folder or vectors"
        )
    if config.dataset in TOY_DATASETS:
        if config.train_subset or config.monitor_holdout:
            raise UserError(
                f"dataset {config.dataset} is sampled afresh for every batch: it has no finite training set "
                "for train_subset or monitor_holdout (use digits, mnist, cifar10, folder or vectors)"
            )
        return ToySampler(config.dataset, config.batch_size, seed=seed, device=device, keep=keep)
    if config.dataset == "text":
        charmap = codec if isinstance(codec, Charmap) else None
        return TextSampler(
            lambda: _text(config, charmap), config.batch_size, seed=seed, device=device, keep=keep
        )
    if config.dataset == "sequences":
        stats = codec.stats if isinstance(codec, SeriesFormat) else None
        return SeriesSampler(
            lambda: _series(config, stats), config.batch_size, seed=seed, device=device, keep=keep
        )

    def load_all() -> Source:
        if config.dataset == "vectors":
            vectors = load_vectors(config.data_path)
            return vectors if scaling is None else scaling.fit_transform(vectors)
        if config.dataset == "folder":
            resolution, channels = image_geometry(config)
            return FolderImages(config.data_path, resolution, channels)
        return _images(config)[0]

    def load_all_labelled() -> tuple[Source, Tensor]:
        if config.dataset == "vectors":
            x, classes = load_labelled_vectors(config.data_path, n_classes=n_classes)
            return (x if scaling is None else scaling.fit_transform(x)), classes
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
