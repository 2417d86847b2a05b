"""``wgangp sample``: samples of a saved generator streamed to ``.npy``/``.npz`` in batches, or a ``.png``.

Any ``-n`` works in bounded memory: latents are drawn and samples generated :func:`chunk_rows` at a time
and written straight to the file (the ``.npy`` header first, then the rows; an ``.npz`` is a zip of such
members, stored uncompressed as ``np.savez`` does). The file appears only when complete (a temp file in
the same directory, then ``os.replace``). An output the disk cannot hold is refused before any sample is
drawn. The latents are drawn in chunks whose size is a multiple of 16 values, so on the CPU the samples
are exactly those of one draw of all ``n`` latents.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import torch
from torch import Tensor

from wgangp.errors import UserError
from wgangp.step.memory import format_bytes
from wgangp.trainer import Trainer

__all__ = ["CHUNK_BYTES", "PNG_LIMITS", "check_sample_output", "chunk_rows", "sample_bytes", "write_samples"]

CHUNK_BYTES = 64 << 20  # samples generated and written at a time (fp32 bytes)
PNG_LIMITS = {"images": 10_000, "points": 1_000_000}  # a grid / scatter plot beyond this is unreadable


def _sample_shape(trainer: Trainer) -> tuple[int, ...]:
    with torch.no_grad():
        return tuple(trainer.sample(2, seed=0).shape[1:])  # 2: batch-statistics sampling needs a pair


def chunk_rows(sample_shape: tuple[int, ...], latent_dim: int) -> int:
    """Rows per chunk: about :data:`CHUNK_BYTES` of samples, with ``rows·latent_dim`` a multiple of 16."""
    rows = max(1, CHUNK_BYTES // (4 * max(1, math.prod(sample_shape))))
    step = 16 // math.gcd(16, latent_dim)  # torch's CPU normal sampler works in blocks of 16 values
    return max(step, rows // step * step)


def sample_bytes(n: int, sample_shape: tuple[int, ...], suffix: str) -> int:
    """Bytes of the output file (headers aside): fp32 samples, plus uint8 images in an ``.npz``."""
    size = n * math.prod(sample_shape)
    if suffix == ".npy":
        return 4 * size
    if suffix == ".npz":
        return 4 * size + (size if len(sample_shape) == 3 else 0)
    return 0


def check_sample_output(trainer: Trainer, n: int, out: Path) -> None:
    """Refuse what cannot be written: a ``.png`` of too many samples, a file the disk has no room for."""
    shape = _sample_shape(trainer)
    if out.suffix == ".png":
        kind = "images" if len(shape) == 3 else "points"
        if n > PNG_LIMITS[kind]:
            raise UserError(
                f"a .png shows at most {PNG_LIMITS[kind]} {kind}; got -n {n} (write .npy or .npz for more)"
            )
        return
    needed = sample_bytes(n, shape, out.suffix)
    parent = next((p for p in (out.parent, *out.parent.parents) if p.exists()), Path("."))
    free = shutil.disk_usage(parent).free
    if needed > free:
        raise UserError(
            f"{n} samples need {format_bytes(needed)} in {out}, but only {format_bytes(free)} is free on "
            f"that disk; lower -n or choose another --out"
        )


def sample_chunks(trainer: Trainer, n: int, *, seed: int) -> Iterator[Tensor]:
    """``n`` samples in chunks of :func:`chunk_rows`, on the CPU; on the CPU, equal to one draw of ``n``."""
    shape = _sample_shape(trainer)
    rows = chunk_rows(shape, trainer.config.latent_dim)
    if n <= rows:
        yield trainer.to_data_units(trainer.sample(n, seed=seed)).cpu()
        return
    noise = torch.Generator(device=trainer.device).manual_seed(seed)
    for start in range(0, n, rows):
        count = min(rows, n - start)
        z = torch.randn(count, trainer.config.latent_dim, generator=noise, device=trainer.device)
        yield trainer.to_data_units(trainer.sample_from(z)).cpu()


def _write_npy(
    file: IO[bytes], n: int, shape: tuple[int, ...], dtype: np.dtype, chunks: Iterator[np.ndarray]
) -> None:
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (n, *shape)}
    np.lib.format.write_array_header_2_0(file, header)
    for chunk in chunks:
        file.write(np.ascontiguousarray(chunk, dtype=dtype).tobytes())


def write_samples(trainer: Trainer, n: int, out: Path, *, seed: int) -> None:
    """Write ``n`` samples to ``out`` (``.npy``: ``samples [N, ...]`` fp32; ``.npz``: also ``images [N, H, W, C]``
    uint8 for images; ``.png``: a grid of images, or the points over the critic's surface)."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".png":
            _write_png(trainer, n, out, seed)
            return
        shape = _sample_shape(trainer)
        with open(tmp, "wb") as file:
            if out.suffix == ".npy":
                _write_npy(
                    file,
                    n,
                    shape,
                    np.dtype(np.float32),
                    (c.numpy() for c in sample_chunks(trainer, n, seed=seed)),
                )
            else:
                _write_npz(file, trainer, n, shape, seed)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, out)
    except OSError as err:
        raise UserError(f"cannot write {out}: {err.strerror or err}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _write_npz(file: IO[bytes], trainer: Trainer, n: int, shape: tuple[int, ...], seed: int) -> None:
    """``samples`` (and, for images, ``images``) as stored zip members, each streamed chunk by chunk."""
    from wgangp.pictures.grid import to_uint8

    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        with archive.open("samples.npy", "w", force_zip64=True) as member:
            chunks = (c.numpy() for c in sample_chunks(trainer, n, seed=seed))
            _write_npy(member, n, shape, np.dtype(np.float32), chunks)
        if len(shape) == 3:  # [C, H, W] images: the same samples again, as uint8 [N, H, W, C]
            image_shape = (shape[1], shape[2], shape[0])
            with archive.open("images.npy", "w", force_zip64=True) as member:
                images = (to_uint8(c) for c in sample_chunks(trainer, n, seed=seed))
                _write_npy(member, n, image_shape, np.dtype(np.uint8), images)


def _write_png(trainer: Trainer, n: int, out: Path, seed: int) -> None:
    samples = trainer.to_data_units(trainer.sample(n, seed=seed)).cpu()
    if samples.ndim == 4:
        from wgangp.pictures.grid import save_grid

        save_grid(samples, out)
    else:
        from wgangp.pictures.plots import plot_toy

        plot_toy(out, None, samples, trainer.critic, title=f"{n} samples, step {trainer.step}")
