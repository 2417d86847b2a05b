"""Checkpoints are data: state dicts, config, step, RNG states and a format version.

Written atomically (temp file in the same directory, flush + fsync, ``os.replace``) so a crash mid-write
never leaves a torn file under the real name; loaded with ``weights_only=True`` so a crafted file cannot
run code.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from wgangp.errors import UserError

__all__ = ["load_checkpoint", "save_checkpoint"]


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically: readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # Make the rename itself durable.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def load_checkpoint(path: str | Path, *, expected_format: int | None = None) -> dict[str, Any]:
    """Load a checkpoint on the CPU with ``weights_only=True``; a clear error for a bad or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, pickle with globals, not a torch file at all
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot load checkpoint {path}: {reason[:200]}") from None
    if not isinstance(state, dict) or "format_version" not in state:
        raise UserError(f"{path} is not a wgangp checkpoint (no format_version)")
    if expected_format is not None and state["format_version"] != expected_format:
        raise UserError(
            f"{path} has checkpoint format {state['format_version']}, this wgangp reads format {expected_format}"
        )
    return state
