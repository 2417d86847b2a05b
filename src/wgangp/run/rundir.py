"""A run directory: creating one for a new run, its config file, and loading a trainer back from it."""

from __future__ import annotations

import json
import shlex
import stat
import time
import warnings
from pathlib import Path

from wgangp.config import TrainConfig, config_from_dict
from wgangp.errors import UserError
from wgangp.run.checkpoint import CHECKPOINT_FORMAT, CheckpointDir, load_checkpoint
from wgangp.run.lock import RunLock
from wgangp.run.resume import restore_trainer
from wgangp.storage import write_text_atomic
from wgangp.trainer import Trainer

__all__ = [
    "CONFIG_NAME",
    "default_run_dir",
    "load_run",
    "prepare_run_dir",
    "special_file_kind",
    "write_config",
]

CONFIG_NAME = "config.json"


def prepare_run_dir(
    run_dir: str | Path, config: TrainConfig, *, overwrite: bool = False, lock: RunLock | None = None
) -> Path:
    """Create ``run_dir`` for a new run; refuse one that already holds a run unless ``overwrite``.

    A directory with a config but no checkpoint (a run stopped, or killed, before its first checkpoint)
    holds nothing to resume: it is started afresh, with a warning. ``lock`` is acquired once the
    directory exists, before anything in it is replaced.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"output path {run_dir} exists and is not a directory")
    has_checkpoint = bool(CheckpointDir(run_dir).step_files()) or (run_dir / "checkpoint.pt").exists()
    restart = (run_dir / CONFIG_NAME).exists() and not has_checkpoint
    if has_checkpoint and not overwrite:
        quoted = shlex.quote(str(run_dir))
        raise UserError(
            f"{run_dir} already holds a run; pass --resume {quoted} to continue it, --overwrite to "
            "replace it, or choose another --out"
        )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if lock is not None:
            lock.acquire()  # a run still writing here (before its first checkpoint) is not replaced
        if restart and not overwrite:
            warnings.warn(
                f"{run_dir} holds a run that stopped before its first checkpoint; starting it afresh",
                stacklevel=2,
            )
        if overwrite or restart:
            (run_dir / "metrics.jsonl").unlink(missing_ok=True)
            CheckpointDir(run_dir).remove_all()
        write_config(run_dir, config)
    except OSError as err:
        raise UserError(f"cannot write to output directory {run_dir}: {err.strerror or err}") from None
    return run_dir


def write_config(run_dir: Path, config: TrainConfig) -> None:
    """``config.json`` (the resolved config), replaced atomically."""
    write_text_atomic(run_dir / CONFIG_NAME, json.dumps(config.to_dict(), indent=2) + "\n")


def load_run(path: str | Path, *, device: str | None = None) -> Trainer:
    """A trainer restored from a run directory's newest valid checkpoint, or from one checkpoint file."""
    path = Path(path)
    if path.is_file():
        state = load_checkpoint(path, expected_format=CHECKPOINT_FORMAT)
    elif path.is_dir():
        _, state = CheckpointDir(path).latest()
    elif path.exists():
        raise UserError(f"{path} is {special_file_kind(path)}, not a run directory or a checkpoint file")
    else:
        raise UserError(f"run directory not found: {path}")
    config = config_from_dict(state["config"])
    if device is not None:
        config = config.replace(device=device)
    # The saved charmap or series format (text, sequences) and a conditional run's class count, so no data
    # are read to rebuild the models.
    trainer = Trainer(config, codec=state.get("data_codec"), n_classes=state.get("n_classes"))
    restore_trainer(trainer, state)
    return trainer


def special_file_kind(path: Path) -> str:
    """``'a FIFO'``, ``'a character device'``...: what a path that is neither a file nor a directory is."""
    mode = path.stat().st_mode
    for test, name in (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def default_run_dir(config: TrainConfig) -> Path:
    """``runs/<dataset>-<loss>-<timestamp>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.dataset}-{config.loss}-{stamp}"
