"""Image and vector data read from where they already are: never downloaded.

Every image source yields ``uint8`` images ``[N, C, R, R]`` at the model's resolution and channel count
(the conversion to [−1, 1] and the paper's augmentations happen in :mod:`wgangp.data.sampler`):

=============  ================================================================================  ==========
``dataset``    what is read (``data_path``)                                                       native
=============  ================================================================================  ==========
``digits``     scikit-learn's 1,797 handwritten digits, shipped with the package (no path)         8×8×1
``mnist``      idx files ``train-images-idx3-ubyte`` (+ labels), raw or ``.gz``, in the directory  28×28×1
``cifar10``    the python pickles ``data_batch_1`` … ``data_batch_5`` (+ ``test_batch``)          32×32×3
``folder``     every PNG/JPEG/BMP/WebP under the directory, recursively; resize + centre crop     —
``vectors``    a ``.npy`` or ``.pt`` array ``[N, D]`` of finite floats (tabular data, embeddings)   D
=============  ================================================================================  ==========

Labels (class-conditional models): digits, MNIST and CIFAR-10 carry their own; an image folder read with
``labelled=True`` takes one class per sub-folder (torchvision's ``ImageFolder`` convention: class ``k`` is
the ``k``-th sub-folder name in sorted order); vectors with labels come as a ``.npz`` holding ``x [N, D]``
and ``y [N]`` (:func:`load_labelled_vectors`). :func:`check_labels` validates every label array.

Resizing of in-memory sets is bilinear with antialiasing; gray ↔ RGB conversion uses the ITU-R 601 luma
weights (PIL's ``"L"`` mode) or repeats the gray channel.
"""

from __future__ import annotations

import gzip
import pickle
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from wgangp.errors import UserError

__all__ = [
    "IMAGE_DATASETS",
    "LABELLED_DATASETS",
    "NATIVE",
    "FolderImages",
    "check_labels",
    "convert_images",
    "load_cifar10",
    "load_digits",
    "load_labelled_vectors",
    "load_mnist",
    "load_vectors",
    "vector_shape",
]

IMAGE_DATASETS: tuple[str, ...] = ("digits", "mnist", "cifar10", "folder")
LABELLED_DATASETS: tuple[str, ...] = ("digits", "mnist", "cifar10")
# (side, channels) of each dataset as stored; a folder's images have no common size.
NATIVE: dict[str, tuple[int, int]] = {
    "digits": (8, 1),
    "mnist": (28, 1),
    "cifar10": (32, 3),
    "folder": (0, 3),
}

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")
_LUMA = (0.299, 0.587, 0.114)


def convert_images(images: Tensor, resolution: int, channels: int) -> Tensor:
    """``uint8 [N, C, H, W] -> uint8 [N, channels, resolution, resolution]`` (bilinear, antialiased)."""
    x = images.float()
    if x.shape[1] != channels:
        if channels == 1:
            x = sum(w * x[:, i : i + 1] for i, w in enumerate(_LUMA))  # type: ignore[assignment]
        else:
            x = x.expand(-1, channels, -1, -1)
    if x.shape[-2:] != (resolution, resolution):
        if x.shape[-1] != x.shape[-2]:
            raise UserError(f"images must be square to resize; got {x.shape[-2]}×{x.shape[-1]}")
        x = F.interpolate(
            x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False
        )
    return x.round().clamp(0, 255).to(torch.uint8)


def check_labels(labels: object, n: int, *, n_classes: int = 0, what: str = "labels") -> Tensor:
    """Class labels as int64 ``[n]`` in ``0..K−1``; anything else is a one-line :class:`UserError`.

    ``labels``: a tensor or array of ``n`` integers (floats with integral values are accepted).
    ``n_classes``: ``K``, the number of classes; 0 infers ``K = max + 1``.
    """
    if not isinstance(labels, Tensor):
        array = np.asarray(labels)
        if array.dtype.kind not in "fiu":
            raise UserError(f"{what} must be integers; got dtype {array.dtype}")
        labels = torch.from_numpy(array)
    y = labels
    if y.dtype == torch.bool or not (y.is_floating_point() or y.dtype in _INT_DTYPES):
        raise UserError(f"{what} must be integers; got dtype {str(y.dtype).removeprefix('torch.')}")
    if y.ndim != 1 or y.shape[0] != n:
        raise UserError(f"{what} must be one per sample, shape [{n}]; got {tuple(y.shape)}")
    if y.is_floating_point():
        bad = ~torch.isfinite(y) | (y != y.round())
        if bool(bad.any()):
            raise UserError(
                f"{what} must be integers; {int(bad.sum())} value(s) are not, e.g. {float(y[bad][0])}"
            )
    y = y.to(torch.int64)
    if n and int(y.min()) < 0:
        raise UserError(f"{what} must be class indices ≥ 0; got {int(y.min())}")
    if n and n_classes and int(y.max()) >= n_classes:
        raise UserError(f"{what} must be < n_classes = {n_classes}; got {int(y.max())}")
    return y


def load_digits() -> tuple[Tensor, Tensor]:
    """scikit-learn's digits as ``uint8 [1797, 1, 8, 8]`` (0..16 scaled to 0..255) and labels ``[1797]``."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # [N, 1, 8, 8]
    return torch.from_numpy(images), torch.from_numpy(bunch.target.astype(np.int64))


# -- MNIST -----------------------------------------------------------------------------------------------

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def load_mnist(path: str | Path, split: str = "train") -> tuple[Tensor, Tensor]:
    """MNIST from idx files (raw or ``.gz``) in ``path``: ``uint8 [N, 1, 28, 28]`` and labels ``[N]``."""
    root = _directory(path, "mnist")
    image_name, label_name = _MNIST_FILES[split]
    images = _read_idx(_find(root, image_name, "mnist"), ndim=3)
    labels = _read_idx(_find(root, label_name, "mnist"), ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise UserError(f"mnist: {images.shape[0]} images but {labels.shape[0]} labels in {root}")
    return torch.from_numpy(images[:, None].copy()), torch.from_numpy(labels.astype(np.int64))


def _find(root: Path, name: str, dataset: str) -> Path:
    for candidate in (root / name, root / f"{name}.gz", root / "raw" / name, root / "raw" / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    expected = "train-images-idx3-ubyte and train-labels-idx1-ubyte (raw or .gz)"
    raise UserError(f"{dataset}: {name}[.gz] not found in {root}; expected {expected} there")


def _read_idx(path: Path, *, ndim: int) -> np.ndarray:
    """An idx file (LeCun's format: magic ``0 0 0x08 ndim``, big-endian sizes, uint8 data)."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise UserError(f"cannot read {path}: {err}") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08 or raw[3] != ndim:
        raise UserError(f"{path} is not a uint8 idx file with {ndim} dimension(s)")
    sizes = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    start = 4 + 4 * ndim
    if len(raw) - start != int(np.prod(sizes)):
        raise UserError(
            f"{path} is truncated: header says {tuple(sizes)}, file holds {len(raw) - start} bytes"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(tuple(sizes))


# -- CIFAR-10 --------------------------------------------------------------------------------------------

_CIFAR_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}


class _ArraysOnly(pickle.Unpickler):
    """Unpickles NumPy arrays and plain containers only: a crafted 'dataset' cannot run code."""

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("_codecs", "encode"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_cifar10(path: str | Path, split: str = "train") -> tuple[Tensor, Tensor]:
    """CIFAR-10 from the python pickles in ``path`` (or its ``cifar-10-batches-py``): ``uint8 [N, 3, 32, 32]``."""
    root = _directory(path, "cifar10")
    if not (root / "data_batch_1").is_file() and (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    names = _CIFAR_FILES[split]
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise UserError(
            f"cifar10: {', '.join(missing)} not found in {root}; expected the python version's files "
            "data_batch_1 … data_batch_5 (and test_batch) there (cifar-10-python.tar.gz, extracted)"
        )
    images, labels = [], []
    for name in names:
        try:
            with (root / name).open("rb") as f:
                batch = _ArraysOnly(f, encoding="bytes").load()
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
        except (OSError, pickle.UnpicklingError, KeyError, ValueError, TypeError, EOFError) as err:
            raise UserError(f"cifar10: {root / name} is not a CIFAR-10 python batch ({err})") from None
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


# -- Image folders ---------------------------------------------------------------------------------------


class FolderImages(Dataset[Tensor]):
    """Every readable image under ``root`` (recursive), as ``uint8 [channels, resolution, resolution]``.

    Each image is resized so its shorter side is ``resolution`` (Lanczos), centre-cropped to a square and
    converted to gray (``channels=1``) or RGB (3). Files PIL cannot read are skipped with one warning that
    counts them; a folder with no readable image is an error. Decoding happens in ``__getitem__``, so a
    ``DataLoader``'s workers share it.

    ``labelled=True``: every image must lie in a sub-folder of ``root`` (at any depth below it), one
    sub-folder per class; ``classes`` are the sub-folder names sorted, ``labels [N]`` their indices (the
    ``ImageFolder`` convention). The file order is the same as without labels. A class folder without a
    readable image, or an image directly in ``root``, is an error.
    """

    def __init__(self, root: str | Path, resolution: int, channels: int, *, labelled: bool = False) -> None:
        from PIL import Image

        self.root = _directory(root, "folder")
        self.resolution, self.channels = resolution, channels
        candidates = sorted(
            p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        self.files: list[Path] = []
        self.skipped: list[Path] = []
        for p in candidates:
            try:
                with Image.open(p) as im:
                    im.verify()  # reads the whole file's structure without decoding pixels
                self.files.append(p)
            except Exception:  # PIL raises many types for a bad file
                self.skipped.append(p)
        if self.skipped and self.files:  # with none readable, the error below says it all
            warnings.warn(
                f"skipped {len(self.skipped)} unreadable image file(s) in {self.root}, e.g. {self.skipped[0].name}",
                stacklevel=2,
            )
        if not self.files:
            found = f"{len(candidates)} image file(s), none readable" if candidates else "no image files"
            raise UserError(f"folder: {found} under {self.root} (looked for {', '.join(IMAGE_SUFFIXES)})")
        self.classes: list[str] = []
        self.labels: Tensor | None = None
        if labelled:
            self.classes, self.labels = self._class_labels()

    def _class_labels(self) -> tuple[list[str], Tensor]:
        """Sorted class sub-folder names and the int64 label ``[N]`` of every readable file."""
        classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        loose = [p for p in self.files if len(p.relative_to(self.root).parts) == 1]
        if loose:
            raise UserError(
                f"folder: labelled images must sit in one sub-folder per class; {len(loose)} image(s) "
                f"lie directly in {self.root}, e.g. {loose[0].name}"
            )
        index = {name: k for k, name in enumerate(classes)}
        labels = torch.tensor(
            [index[p.relative_to(self.root).parts[0]] for p in self.files], dtype=torch.int64
        )
        counts = torch.bincount(labels, minlength=len(classes))
        empty = [classes[k] for k in range(len(classes)) if counts[k] == 0]
        if empty:
            raise UserError(
                f"folder: class folder(s) {', '.join(empty)} in {self.root} hold no readable image"
            )
        return classes, labels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Tensor:
        from PIL import Image

        path = self.files[index]
        try:
            with Image.open(path) as opened:
                image = _resize_crop(opened.convert("L" if self.channels == 1 else "RGB"), self.resolution)
                array = np.asarray(image, dtype=np.uint8)
        except Exception as err:
            raise UserError(f"cannot decode image {path}: {err}") from None
        array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)  # [C, R, R]
        return torch.from_numpy(array.copy())


def _resize_crop(im: Any, size: int) -> Any:
    from PIL import Image

    w, h = im.size
    scale = size / min(w, h)
    im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.LANCZOS)
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    return im.crop((left, top, left + size, top + size))


# -- Vectors ---------------------------------------------------------------------------------------------


def vector_shape(path: str | Path) -> tuple[int, int]:
    """``(N, D)`` of a vectors file, read from the ``.npy`` header without loading the data."""
    path = _file(path)
    if path.suffix == ".npz":
        return _check_rank(tuple(load_labelled_vectors(path)[0].shape), path)
    if path.suffix == ".npy":
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as err:
            raise _npy_error(err, path) from None
        except OSError as err:
            raise UserError(f"cannot read {path}: {err}") from None
        _check_numeric(array.dtype, path)
        return _check_rank(tuple(array.shape), path)
    return _check_rank(tuple(load_vectors(path).shape), path)


def load_vectors(path: str | Path) -> Tensor:
    """A ``.npy`` or ``.pt`` array ``[N, D]`` as float32; other ranks and non-finite values are errors.

    A ``.npz`` gives its ``x`` array (its labels ``y`` are read by :func:`load_labelled_vectors`).
    """
    path = _file(path)
    if path.suffix == ".npz":
        return load_labelled_vectors(path)[0]
    try:
        if path.suffix == ".npy":
            loaded = np.load(path, allow_pickle=False)
            _check_numeric(loaded.dtype, path)
            array = torch.from_numpy(loaded)
        else:
            array = torch.load(path, map_location="cpu", weights_only=True)
    except UserError:
        raise
    except ValueError as err:
        raise _npy_error(err, path) from None
    except Exception as err:
        raise UserError(f"cannot read {path}: {_first_line(err)}") from None
    return _check_vectors(array, path)


def _npy_error(err: ValueError, path: Path) -> UserError:
    """numpy refuses object arrays without pickle (which could run code): say so in our words."""
    if "allow_pickle" in str(err) or "Python objects" in str(err):
        return UserError(
            f"{path} holds Python objects (dtype object), not numbers; save a numeric array [N, D]"
        )
    return UserError(f"cannot read {path}: {_first_line(err)}")


def _check_numeric(dtype: np.dtype, path: Path) -> None:
    """Numbers only: strings, bytes, booleans, complex numbers and records get one line naming the dtype."""
    if dtype.kind in "fiu":
        return
    what = {"U": "strings", "S": "bytes", "b": "booleans", "c": "complex numbers", "V": "records"}.get(
        dtype.kind, f"dtype {dtype}"
    )
    raise UserError(f"{path} holds {what} (dtype {dtype}), not real numbers; save a numeric array [N, D]")


def load_labelled_vectors(path: str | Path, *, n_classes: int = 0) -> tuple[Tensor, Tensor]:
    """A ``.npz`` with ``x`` (float ``[N, D]``) and ``y`` (integer labels ``[N]``): float32 x, int64 y.

    >>> # np.savez("v.npz", x=x, y=y); load_labelled_vectors("v.npz") -> (x [N, D], y [N])
    """
    path = _file(path)
    if path.suffix != ".npz":
        raise UserError(f"vectors with labels need a .npz holding x [N, D] and y [N]; got {path.name}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in ("x", "y") if key not in archive.files]
            if missing:
                raise UserError(f"{path} lacks array(s) {', '.join(missing)}; expected x [N, D] and y [N]")
            x, y = archive["x"], archive["y"]
    except UserError:
        raise
    except Exception as err:
        raise UserError(f"cannot read {path}: {_first_line(err)}") from None
    if x.dtype.kind not in "fiu":
        raise UserError(f"{path}: x must be a numeric array [N, D]; got dtype {x.dtype}")
    vectors = _check_vectors(torch.from_numpy(x), path)
    return vectors, check_labels(y, vectors.shape[0], n_classes=n_classes, what=f"{path.name}: y")


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _check_vectors(array: object, path: Path) -> Tensor:
    if not isinstance(array, Tensor) or not (array.is_floating_point() or array.dtype in _INT_DTYPES):
        raise UserError(f"{path} must hold one numeric array [N, D]")
    _check_rank(tuple(array.shape), path)
    array = array.float()
    bad = int((~torch.isfinite(array)).sum())
    if bad:
        raise UserError(f"{path} holds {bad} non-finite value(s) (NaN or inf); clean the data first")
    return array


_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def _check_rank(shape: tuple[int, ...], path: Path) -> tuple[int, int]:
    if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
        raise UserError(f"{path} must hold a 2-d array [N samples, D features]; got shape {shape}")
    return shape[0], shape[1]


def _file(path: str | Path) -> Path:
    if not str(path):
        raise UserError("dataset vectors needs --data-path FILE.npy (or .pt; or --set data_path=FILE)")
    path = Path(path)
    if path.suffix not in (".npy", ".pt", ".npz"):
        raise UserError(
            f"vectors: data_path must be a .npy or .pt file (or .npz with x and y); got {path.name}"
        )
    if not path.is_file():
        raise UserError(f"vectors: file not found: {path}")
    return path


def _directory(path: str | Path, dataset: str) -> Path:
    if not str(path):
        raise UserError(
            f"dataset {dataset} needs --data-path DIR (or --set data_path=DIR); nothing is downloaded"
        )
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"{dataset}: data_path {root} is not a directory")
    return root
