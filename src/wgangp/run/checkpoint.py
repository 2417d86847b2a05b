"""Checkpoints are data: state dicts, config, step, RNG states and a format version.

Written atomically (temp file in the same directory, flush + fsync, ``os.replace``) so a crash mid-write
never leaves a torn file under the real name; loaded with ``weights_only=True`` so a crafted file cannot
run code. A run directory keeps them as::

    checkpoints/step_0001000.pt   the newest ``keep`` of these (one every ``checkpoint_every`` steps and the last)
    checkpoints/best.pt           the state with the best eval metric so far (toy: lowest W1)
    checkpoint.pt                 the newest step checkpoint again (a hard link: no extra bytes)
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wgangp.errors import UserError
from wgangp.storage import save_checkpoint

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointDir",
    "CheckpointWarning",
    "capture_global_rng",
    "load_checkpoint",
    "restore_global_rng",
    "save_checkpoint",
]

# Bump when the contents change; a checkpoint of another format is refused with both numbers. The run
# directory stamps it on every checkpoint it writes (CheckpointDir.save), over the trainer's state dict.
# 1: trainer state. 2: + global RNG states, run bookkeeping (log window, best metric, time), skipped updates.
CHECKPOINT_FORMAT = 2

LATEST_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"
_STEP_FILE = re.compile(r"step_(\d+)\.pt")


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped (truncated, foreign) and an older one is used instead."""


def load_checkpoint(path: str | Path, *, expected_format: int | None = None) -> dict[str, Any]:
    """Load a checkpoint on the CPU with ``weights_only=True``; a clear error for a bad or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        message = str(err)
        detail = re.search(r"WeightsUnpickler error: ?([^\n]*)", message)
        if detail is not None:
            refused = re.search(r"Unsupported global: GLOBAL (\S+)", detail.group(1))
            if refused is not None:  # a pickle that would import or call something; nothing ran
                raise UserError(
                    f"cannot load checkpoint {path}: refused, it would load {refused.group(1)} "
                    "(a wgangp checkpoint holds only tensors and plain data)"
                ) from None
            reason = detail.group(1).strip()[:200] or "unreadable data"
            raise UserError(f"cannot load checkpoint {path}: not a torch checkpoint ({reason})") from None
        # A truncated zip, or not a torch file at all.
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot load checkpoint {path}: {reason[:200]}") from None
    if not isinstance(state, dict) or "format_version" not in state:
        raise UserError(f"{path} is not a wgangp checkpoint (no format_version)")
    if expected_format is not None and state["format_version"] != expected_format:
        raise UserError(
            f"{path} has checkpoint format {state['format_version']}, this wgangp reads format {expected_format}"
        )
    return state


def capture_global_rng() -> dict[str, Any]:
    """The process-wide random states (python, NumPy, torch CPU and CUDA) as checkpoint-safe data.

    The trainer draws only from its own generators; these are saved so code that does use the global
    streams (a user's augmentation, a library) also continues exactly.
    """
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "python": random.getstate(),
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),  # weights_only refuses ndarrays
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_global_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_global_rng` (CUDA states only where the device count matches)."""
    random.setstate(_as_tuples(state["python"]))
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["name"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _as_tuples(value: Any) -> Any:
    """``random.setstate`` wants tuples all the way down."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


class CheckpointDir:
    """The checkpoints of one run: numbered step files (newest ``keep`` kept), ``best.pt`` and ``checkpoint.pt``."""

    def __init__(self, run_dir: str | Path, *, keep: int = 3) -> None:
        self.run_dir = Path(run_dir)
        self.dir = self.run_dir / "checkpoints"
        self.keep = keep

    def step_files(self) -> list[tuple[int, Path]]:
        """``(step, path)`` of every ``step_*.pt``, oldest first."""
        if not self.dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.dir.iterdir() if (m := _STEP_FILE.fullmatch(p.name))]
        return sorted(found)

    def save(self, state: dict[str, Any]) -> Path:
        """Write ``checkpoints/step_N.pt``, point ``checkpoint.pt`` at it, drop step files beyond ``keep``."""
        path = self.dir / f"step_{int(state['step']):07d}.pt"
        try:
            save_checkpoint({"format_version": CHECKPOINT_FORMAT} | state, path)
        except UserError as err:
            previous = [p for _, p in self.step_files() if p != path]
            kept = f"the last good checkpoint {previous[-1]} is intact" if previous else "no checkpoint yet"
            raise UserError(f"{err}; {kept}") from None
        self._link_latest(path)
        for _, old in self.step_files()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def save_best(self, state: dict[str, Any]) -> Path:
        return save_checkpoint({"format_version": CHECKPOINT_FORMAT} | state, self.dir / BEST_NAME)

    def _link_latest(self, path: Path) -> None:
        """Replace ``checkpoint.pt`` atomically by a hard link to ``path`` (a copy where links fail)."""
        latest = self.run_dir / LATEST_NAME
        tmp = self.run_dir / f".{LATEST_NAME}.{os.getpid()}.tmp"
        try:
            tmp.unlink(missing_ok=True)
            try:
                os.link(path, tmp)
            except OSError:  # a filesystem without hard links
                shutil.copyfile(path, tmp)
            os.replace(tmp, latest)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise UserError(f"cannot update {latest}: {err.strerror or err}; {path} is intact") from None

    def latest(self) -> tuple[Path, dict[str, Any]]:
        """The newest checkpoint that loads; each newer one that does not is skipped with a warning.

        Falls back to ``checkpoint.pt`` for a run directory without ``checkpoints/``.
        """
        candidates = [p for _, p in reversed(self.step_files())] or [self.run_dir / LATEST_NAME]
        errors: list[str] = []
        for path in candidates:
            if not path.is_file():
                continue
            try:
                state = load_checkpoint(path, expected_format=CHECKPOINT_FORMAT)
            except UserError as err:
                errors.append(str(err))
                continue
            for error in errors:  # only now: a command that fails anyway prints its one error line
                warnings.warn(f"skipping a newer checkpoint: {error}", CheckpointWarning, stacklevel=2)
            return path, state
        if errors:
            raise UserError(f"no valid checkpoint in {self.run_dir}; the newest: {errors[0]}")
        raise UserError(f"{self.run_dir} has no checkpoint; is it a wgangp run directory?")

    def quarantine_after(self, step: int) -> list[Path]:
        """Rename step files newer than ``step`` (ones :meth:`latest` skipped) to ``*.corrupt``.

        A resumed run would otherwise keep them in place of good ones when it prunes to ``keep``.
        """
        moved = []
        for saved_step, path in self.step_files():
            if saved_step > step:
                with contextlib.suppress(OSError):  # read-only: still never loaded, just not renamed
                    moved.append(path.rename(path.with_name(path.name + ".corrupt")))
        return moved

    def remove_temp_files(self) -> None:
        """Temp files of writes that a crash interrupted (never under a real name, so never loaded)."""
        for directory in (self.dir, self.run_dir):
            if directory.is_dir():
                for tmp in directory.glob(".*.tmp"):
                    tmp.unlink(missing_ok=True)

    def drop_best_after(self, step: int) -> None:
        """Remove a ``best.pt`` written after ``step`` (by a run that died later): resuming replays that future."""
        best = self.dir / BEST_NAME
        if not best.is_file():
            return
        try:
            stale = int(load_checkpoint(best)["step"]) > step
        except UserError:
            stale = True
        if stale:
            best.unlink()

    def remove_all(self) -> None:
        """Delete this run's checkpoints (``--overwrite``): only files this class writes."""
        for _, path in self.step_files():
            path.unlink()
        for path in (self.dir / BEST_NAME, self.run_dir / LATEST_NAME):
            path.unlink(missing_ok=True)
        self.remove_temp_files()
