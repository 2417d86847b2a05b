"""Image and vector data sources on tiny fixtures made here, and the endless resumable sampler."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from wgangp.config import resolve_config
from wgangp.data import build_sampler, data_shape
from wgangp.data.images import (
    FolderImages,
    convert_images,
    load_cifar10,
    load_digits,
    load_mnist,
    load_vectors,
)
from wgangp.data.sampler import ArraySampler, epoch_order
from wgangp.errors import UserError


def _config(**overrides):
    return resolve_config("toy", overrides={"batch_size": 4} | overrides)


def _write_idx(path, array, *, gz):
    header = b"\0\0\x08" + bytes([array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


@pytest.fixture
def mnist_dir(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 28, 28))
    labels = np.arange(10) % 10
    _write_idx(tmp_path / "train-images-idx3-ubyte", images, gz=False)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels, gz=True)
    return tmp_path, images, labels


def test_mnist_idx_raw_and_gz(mnist_dir):
    root, images, labels = mnist_dir
    x, y = load_mnist(root)
    assert x.shape == (10, 1, 28, 28) and x.dtype == torch.uint8
    assert np.array_equal(x[:, 0].numpy(), images) and np.array_equal(y.numpy(), labels)


def test_mnist_missing_files_say_what_is_expected(tmp_path):
    with pytest.raises(UserError, match=r"train-images-idx3-ubyte\[.gz\] not found in .*expected"):
        load_mnist(tmp_path)
    with pytest.raises(UserError, match="needs --data-path DIR"):
        load_mnist("")


def test_mnist_truncated_file(tmp_path):
    _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 28, 28)), gz=False)
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-5])
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3), gz=False)
    with pytest.raises(UserError, match="truncated"):
        load_mnist(tmp_path)


def _write_cifar(root, n=6):
    rng = np.random.default_rng(1)
    batches = []
    for name in [f"data_batch_{i}" for i in range(1, 6)]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = list(rng.integers(0, 10, n))
        with (root / name).open("wb") as f:
            pickle.dump({b"data": data, b"labels": [int(v) for v in labels]}, f)
        batches.append(data)
    return np.concatenate(batches)


def test_cifar_pickles(tmp_path):
    data = _write_cifar(tmp_path)
    x, y = load_cifar10(tmp_path)
    assert x.shape == (30, 3, 32, 32) and y.shape == (30,)
    assert np.array_equal(x.reshape(30, -1).numpy(), data)


def test_cifar_missing_and_hostile_files(tmp_path):
    with pytest.raises(UserError, match=r"data_batch_1, .* not found in .*expected the python version"):
        load_cifar10(tmp_path)
    _write_cifar(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with (tmp_path / "data_batch_3").open("wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f)
    with pytest.raises(UserError, match="data_batch_3 is not a CIFAR-10 python batch"):
        load_cifar10(tmp_path)


@pytest.fixture
def image_folder(tmp_path):
    rng = np.random.default_rng(2)
    (tmp_path / "sub").mkdir()
    Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(rng.integers(0, 256, (40, 16), dtype=np.uint8), mode="L").save(tmp_path / "sub" / "b.png")
    Image.fromarray(rng.integers(0, 256, (12, 12, 4), dtype=np.uint8), mode="RGBA").save(tmp_path / "c.png")
    Image.fromarray(rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)).save(tmp_path / "d.jpg")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "notes.txt").write_text("ignored")
    return tmp_path


@pytest.mark.parametrize("channels", [1, 3])
def test_folder_mixed_sizes_modes_and_a_corrupt_file(image_folder, channels):
    with pytest.warns(UserWarning, match="skipped 1 unreadable image"):
        folder = FolderImages(image_folder, 16, channels)
    assert len(folder) == 4 and len(folder.skipped) == 1
    for i in range(len(folder)):
        item = folder[i]
        assert item.shape == (channels, 16, 16) and item.dtype == torch.uint8


def test_folder_all_corrupt_or_empty_is_an_error(tmp_path):
    with pytest.raises(UserError, match="no image files"):
        FolderImages(tmp_path, 8, 3)
    (tmp_path / "x.png").write_bytes(b"garbage")
    with pytest.raises(UserError, match=r"1 image file.*none readable"):
        FolderImages(tmp_path, 8, 3)


def test_folder_through_a_dataloader_equals_in_memory(image_folder):
    with pytest.warns(UserWarning):
        folder = FolderImages(image_folder, 8, 3)
    in_memory = torch.stack([folder[i] for i in range(len(folder))])
    lazy = ArraySampler(lambda: folder, 2, seed=5, hflip=True)
    eager = ArraySampler(lambda: in_memory, 2, seed=5, hflip=True)
    for _ in range(5):
        torch.testing.assert_close(lazy(), eager(), rtol=0, atol=0)


def test_vectors_npy_and_pt(tmp_path):
    x = np.random.default_rng(3).normal(size=(7, 5)).astype(np.float32)
    np.save(tmp_path / "v.npy", x)
    torch.save(torch.from_numpy(x), tmp_path / "v.pt")
    assert np.array_equal(load_vectors(tmp_path / "v.npy").numpy(), x)
    assert np.array_equal(load_vectors(tmp_path / "v.pt").numpy(), x)
    assert data_shape(_config(dataset="vectors", data_path=str(tmp_path / "v.npy"))) == (5,)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((4, 2, 2)), r"2-d array \[N samples, D features\]; got shape \(4, 2, 2\)"),
        (np.zeros(4), "2-d array"),
        (np.array([[0.0, np.nan], [1.0, np.inf]]), "2 non-finite value"),
    ],
)
def test_bad_vectors_are_one_line_errors(tmp_path, array, message):
    np.save(tmp_path / "v.npy", array)
    with pytest.raises(UserError, match=message) as info:
        load_vectors(tmp_path / "v.npy")
    assert "\n" not in str(info.value)


def test_vectors_path_errors(tmp_path):
    with pytest.raises(UserError, match=r"must be a \.npy or \.pt file"):
        load_vectors(tmp_path / "v.csv")
    with pytest.raises(UserError, match="file not found"):
        load_vectors(tmp_path / "v.npy")


def test_dataset_smaller_than_a_batch(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros((3, 2), np.float32))
    sampler = build_sampler(_config(dataset="vectors", data_path=str(tmp_path / "v.npy"), batch_size=4))
    with pytest.raises(UserError, match="3 samples, fewer than one batch \\(4\\)"):
        sampler()


def test_digits_and_resizing():
    x, y = load_digits()
    assert x.shape == (1797, 1, 8, 8) and int(x.max()) == 255 and set(y.tolist()) == set(range(10))
    big = convert_images(x[:4], 16, 3)
    assert big.shape == (4, 3, 16, 16) and torch.equal(big[:, 0], big[:, 2])
    assert torch.equal(convert_images(x[:4], 8, 1), x[:4])
    batch = build_sampler(_config(dataset="digits", resolution=16, batch_size=8))()
    assert batch.shape == (8, 1, 16, 16) and float(batch.min()) >= -1.0 and float(batch.max()) <= 1.0


def _counting_sampler(n=10, batch=3, **kw):
    data = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return ArraySampler(lambda: data, batch, seed=0, **kw)


def _ids(batch):
    return ((batch[:, 0, 0, 0] + 1) * 127.5).round().long().tolist()


def test_epochs_visit_every_sample_once_and_reshuffle():
    sampler = _counting_sampler()
    epochs = [[i for _ in range(3) for i in _ids(sampler())] for _ in range(3)]
    for seen in epochs:
        assert len(seen) == 9 and len(set(seen)) == 9  # 10 // 3 full batches, no repeats
    assert epochs[0] != epochs[1] != epochs[2]
    assert sampler.epoch == 3 and sampler.position == 0
    assert not torch.equal(epoch_order(10, 0, 0), epoch_order(10, 1, 0))


def test_resume_mid_epoch_is_exact():
    straight = _counting_sampler(dequantize=True, hflip=True)
    batches = [straight() for _ in range(7)]
    first = _counting_sampler(dequantize=True, hflip=True)
    for _ in range(4):
        first()
    resumed = _counting_sampler(dequantize=True, hflip=True)
    resumed.load_state_dict(first.state_dict())
    for expected in batches[4:]:
        torch.testing.assert_close(resumed(), expected, rtol=0, atol=0)


def test_dequantisation_and_flips():
    data = torch.tensor([[[[0, 255], [128, 7]]]], dtype=torch.uint8).expand(64, 1, 2, 2).contiguous()
    plain = ArraySampler(lambda: data, 64)()
    torch.testing.assert_close(plain[0, 0], data[0, 0].float() / 127.5 - 1)
    noisy = ArraySampler(lambda: data, 64, dequantize=True)()
    base = data.float() / 128 - 1  # 2(x/256 − .5)
    offset = noisy - base
    assert float(offset.min()) >= 0 and float(offset.max()) < 1 / 128 and float(offset.std()) > 1e-3
    flipped = ArraySampler(lambda: data, 64, hflip=True)()
    was_flipped = flipped[:, 0, 0, 0] > 0  # pixel (0, 0) is 0 → −1 unless flipped from 255
    assert 0 < int(was_flipped.sum()) < 64
    torch.testing.assert_close(flipped[was_flipped], plain[was_flipped].flip(-1))


class _CountingFolder:
    """A lazily decoded source that records which items were decoded."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images, self.decoded = images, []

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        self.decoded.append(index)
        return self.images[index]


@pytest.mark.parametrize(("batch", "world"), [(4, 2), (5, 2), (7, 3)])
@pytest.mark.parametrize("lazy", [False, True], ids=["in-memory", "folder"])
def test_shards_read_their_rows_and_together_equal_one_process(batch, world, lazy):
    """N samplers with ``keep`` = each rank's rows: their batches, concatenated, are one sampler's, across
    epoch boundaries and with the paper's augmentations; a folder decodes each row once in all."""
    n = 11  # 11 // batch full batches per epoch, then a reshuffle
    data = torch.randint(0, 256, (n, 3, 4, 4), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    sources = [_CountingFolder(data) for _ in range(world)]
    kw = {"seed": 3, "dequantize": True, "hflip": True}
    whole = ArraySampler(lambda: data, batch, **kw)
    shards = [
        ArraySampler(
            (lambda s=s: s) if lazy else (lambda: data),  # type: ignore[misc]
            batch,
            keep=slice(batch * r // world, batch * (r + 1) // world),
            **kw,
        )
        for r, s in enumerate(sources)
    ]
    steps = 2 * (n // batch) + 1
    for _ in range(steps):
        parts = [shard() for shard in shards]
        assert [p.shape[0] for p in parts] == [
            batch * (r + 1) // world - batch * r // world for r in range(world)
        ]
        torch.testing.assert_close(torch.cat(parts), whole(), rtol=0, atol=0)
    if lazy:
        assert sum(len(s.decoded) for s in sources) == steps * batch  # not world × that
    state = shards[0].state_dict()
    assert state["epoch"] == whole.epoch and state["position"] == whole.position


def test_toy_shards_together_equal_one_process():
    from wgangp.data import ToySampler

    whole = ToySampler("8gaussians", 7, seed=1)
    shards = [ToySampler("8gaussians", 7, seed=1, keep=keep) for keep in (slice(0, 3), slice(3, 7))]
    for _ in range(3):
        torch.testing.assert_close(torch.cat([s() for s in shards]), whole(), rtol=0, atol=0)
