"""Labelled batches: the same rows as the unlabelled stream, their labels, sharding, resume and bad labels."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from wgangp.config import resolve_config
from wgangp.data import build_sampler, check_labels
from wgangp.data.images import FolderImages, load_digits, load_labelled_vectors, load_vectors
from wgangp.data.sampler import ArraySampler, epoch_order
from wgangp.errors import UserError


def _config(**overrides):
    return resolve_config("toy", overrides={"batch_size": 4} | overrides)


# Recorded with the sampler as it was before labels existed (git HEAD f904b76): 30 batches (past an epoch
# end), sample(100), reference(200, seed=3) and the augmentation state, hashed; plus (epoch, position).
RECORDED = [
    (
        {"dataset": "digits", "batch_size": 64, "hflip": True, "dequantize": True},
        "0733b402b151f8007ffe59d423ec972b",
        1,
        2,
    ),
    ({"dataset": "digits", "batch_size": 50}, "4b4e9b75c013b7442178fd37ac7cd7b9", 0, 30),
]


def _stream_digest(sampler, *, with_labels: bool) -> tuple[str, dict, list[torch.Tensor]]:
    digest, labels = hashlib.sha256(), []
    for _ in range(30):
        batch = sampler(with_labels=True) if with_labels else sampler()
        if with_labels:
            batch, y = batch
            labels.append(y)
        digest.update(batch.numpy().tobytes())
    digest.update(
        (sampler.sample(100, with_labels=True)[0] if with_labels else sampler.sample(100)).numpy().tobytes()
    )
    ref = (
        sampler.reference(200, seed=3, with_labels=True)[0] if with_labels else sampler.reference(200, seed=3)
    )
    digest.update(ref.numpy().tobytes())
    state = sampler.state_dict()
    digest.update(state["augment"].numpy().tobytes())
    return digest.hexdigest()[:32], state, labels


@pytest.mark.parametrize(("overrides", "expected", "epoch", "position"), RECORDED)
@pytest.mark.parametrize("labels", [False, True])
def test_unlabelled_stream_is_bit_identical_to_before(overrides, expected, epoch, position, labels):
    sampler = build_sampler(_config(**overrides), labels=labels)
    digest, state, _ = _stream_digest(sampler, with_labels=labels)
    assert digest == expected
    assert (state["epoch"], state["position"]) == (epoch, position)
    assert set(state) == {"kind", "epoch", "position", "augment"}


def test_labels_are_the_rows_of_the_batch():
    images, labels = load_digits()
    sampler = build_sampler(_config(dataset="digits", batch_size=64), labels=True)
    assert sampler.n_classes == 10
    for step in range(30):  # 1797 // 64 = 28 batches per epoch
        epoch, position = divmod(step, 28)
        x, y = sampler(with_labels=True)
        order = epoch_order(len(images), sampler.seed, epoch)[position * 64 : (position + 1) * 64]
        assert y.dtype == torch.int64 and y.shape == (64,)
        assert torch.equal(y, labels[order])
        assert torch.equal(x, images[order].float() / 127.5 - 1.0)
    x, y = sampler.reference(300, seed=5, with_labels=True)
    order = epoch_order(len(images), 5, 0)[:300]
    assert torch.equal(y, labels[order]) and torch.equal(x, images[order].float() / 127.5 - 1.0)


def test_sample_labels_match_the_images():
    images, labels = load_digits()
    sampler = build_sampler(_config(dataset="digits", batch_size=64), labels=True)
    x, y = sampler.sample(2000, with_labels=True)  # more than N: two permutations
    assert x.shape == (2000, 1, 8, 8) and y.shape == (2000,)
    # Every sample is one of the images with its label: find it by content.
    flat = (images.float() / 127.5 - 1.0).flatten(1)
    match = (x.flatten(1)[:, None, :] == flat[None, :500]).all(-1)  # [2000, 500]
    rows, cols = match.nonzero(as_tuple=True)
    assert len(rows) > 400
    assert torch.equal(y[rows], labels[cols])


@pytest.mark.parametrize("processes", [2, 3])
def test_sharded_labels_concatenate_to_one_process_batch(processes):
    config = _config(dataset="digits", batch_size=60, hflip=True, dequantize=True)
    whole = build_sampler(config, labels=True)
    size = 60 // processes
    shards = [
        build_sampler(config, labels=True, keep=slice(r * size, (r + 1) * size)) for r in range(processes)
    ]
    for _ in range(31):  # across the end of an epoch (1797 // 60 = 29 batches)
        x, y = whole(with_labels=True)
        parts = [s(with_labels=True) for s in shards]
        assert torch.equal(torch.cat([p[0] for p in parts]), x)
        assert torch.equal(torch.cat([p[1] for p in parts]), y)


def test_resume_of_a_labelled_sampler_continues_exactly():
    config = _config(dataset="digits", batch_size=64, hflip=True)
    straight = build_sampler(config, labels=True)
    for _ in range(20):
        straight(with_labels=True)
    resumed = build_sampler(config, labels=True)
    for _ in range(20):
        resumed(with_labels=True)
    state = resumed.state_dict()
    fresh = build_sampler(config, labels=True)
    fresh.load_state_dict(state)
    for _ in range(15):  # across the epoch end
        (xa, ya), (xb, yb) = straight(with_labels=True), fresh(with_labels=True)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_unlabelled_sampler_refuses_with_labels():
    sampler = build_sampler(_config(dataset="digits", batch_size=64))
    with pytest.raises(ValueError, match="no labels; build it with labels=True"):
        sampler(with_labels=True)
    assert sampler.n_classes == 0
    with pytest.raises(UserError, match="has no class labels"):
        build_sampler(_config(dataset="8gaussians"), labels=True)


def _png(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((6, 6, 3), value, np.uint8)).save(path)


def test_folder_classes_are_sorted_sub_folders(tmp_path):
    for name, count, value in [("zebra", 2, 200), ("ant", 3, 10), ("mole", 1, 100)]:
        for i in range(count):
            _png(tmp_path / name / ("deep" if i == 0 else "") / f"{i}.png", value)
    folder = FolderImages(tmp_path, 4, 1, labelled=True)
    assert folder.classes == ["ant", "mole", "zebra"]
    assert folder.labels is not None and folder.labels.tolist() == [0, 0, 0, 1, 2, 2]
    assert folder.files == FolderImages(tmp_path, 4, 1).files  # the same order as without labels
    sampler = build_sampler(
        _config(dataset="folder", data_path=str(tmp_path), resolution=4, channels=1, batch_size=6),
        labels=True,
    )
    x, y = sampler(with_labels=True)
    gray = {0: 10, 1: 100, 2: 200}
    for image, label in zip(x, y.tolist(), strict=True):  # each image is its class's colour
        assert abs(float(image.mean()) - (gray[label] / 127.5 - 1.0)) < 0.02
    assert sorted(y.tolist()) == [0, 0, 0, 1, 2, 2]


def test_folder_label_errors(tmp_path):
    _png(tmp_path / "a" / "0.png", 1)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    with pytest.raises(UserError, match=r"class folder\(s\) empty in .* hold no readable image") as info:
        FolderImages(tmp_path, 4, 3, labelled=True)
    assert "\n" not in str(info.value)
    (tmp_path / "empty" / "notes.txt").unlink()
    (tmp_path / "empty").rmdir()
    _png(tmp_path / "loose.png", 1)
    with pytest.raises(UserError, match=r"1 image\(s\) lie directly in .*loose.png"):
        FolderImages(tmp_path, 4, 3, labelled=True)
    FolderImages(tmp_path, 4, 3)  # without labels a loose image is fine


def test_vectors_npz(tmp_path):
    x = np.arange(24, dtype=np.float32).reshape(8, 3)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    np.savez(tmp_path / "v.npz", x=x, y=y)
    vectors, labels = load_labelled_vectors(tmp_path / "v.npz")
    assert (
        np.array_equal(vectors.numpy(), x) and labels.tolist() == y.tolist() and labels.dtype == torch.int64
    )
    assert np.array_equal(load_vectors(tmp_path / "v.npz").numpy(), x)
    config = _config(dataset="vectors", data_path=str(tmp_path / "v.npz"), batch_size=4)
    sampler = build_sampler(config, labels=True)
    batch, batch_labels = sampler(with_labels=True)
    order = epoch_order(8, sampler.seed, 0)[:4]
    assert torch.equal(batch, torch.from_numpy(x)[order]) and torch.equal(
        batch_labels, torch.from_numpy(y)[order]
    )
    assert torch.equal(build_sampler(config)(), batch)  # unlabelled: the same batch
    with pytest.raises(UserError, match=r"< n_classes = 2; got 2"):
        build_sampler(config, labels=True, n_classes=2).load()
    np.savez(tmp_path / "nolabels.npz", x=x)
    with pytest.raises(UserError, match=r"lacks array\(s\) y"):
        load_labelled_vectors(tmp_path / "nolabels.npz")
    np.save(tmp_path / "v.npy", x)
    with pytest.raises(UserError, match=r"need a \.npz holding x"):
        load_labelled_vectors(tmp_path / "v.npy")


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.array([0, 1, -1, 2]), r"class indices ≥ 0; got -1"),
        (np.array([0, 1, 5, 2]), r"< n_classes = 3; got 5"),
        (np.array([0.0, 1.5, 1.0, 2.0]), r"must be integers; 1 value\(s\) are not, e.g. 1.5"),
        (np.array([0.0, np.nan, 1.0, 2.0]), r"must be integers; 1 value\(s\) are not"),
        (np.array(["a", "b", "c", "d"]), r"must be integers; got dtype <U1"),
        (np.array([True, False, True, False]), r"must be integers; got dtype bool"),
        (np.array([0, 1, 2]), r"one per sample, shape \[4\]; got \(3,\)"),
        (np.zeros((4, 1), np.int64), r"one per sample, shape \[4\]; got \(4, 1\)"),
    ],
)
def test_bad_labels_are_one_line_errors(labels, message):
    with pytest.raises(UserError, match=message) as info:
        check_labels(labels, 4, n_classes=3)
    assert "\n" not in str(info.value)


def test_check_labels_accepts_integral_values():
    assert check_labels(np.array([2.0, 0.0, 1.0]), 3).tolist() == [2, 0, 1]
    assert check_labels(torch.tensor([1, 0], dtype=torch.uint8), 2, n_classes=2).dtype == torch.int64


def test_sampler_checks_labels_at_load():
    images = torch.zeros(8, 1, 4, 4, dtype=torch.uint8)
    sampler = ArraySampler(lambda: (images, torch.tensor([0, 1, 2, 3, 0, 1, 2, -3])), 4, labels=True)
    with pytest.raises(UserError, match="got -3"):
        sampler()
    with pytest.raises(ValueError, match=r"load must return \(data, labels\) exactly when labels=True"):
        ArraySampler(lambda: images, 4, labels=True).load()
