"""A run directory: creating one for a new run, its config file, and loading a trainer back from it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from wgangp.config import TrainConfig, config_from_dict
from wgangp.errors import UserError
from wgangp.run.checkpoint import CHECKPOINT_FORMAT, CheckpointDir, load_checkpoint
from wgangp.run.resume import restore_trainer
from wgangp.trainer import Trainer

__all__ = ["CONFIG_NAME", "default_run_dir", "load_run", "prepare_run_dir", "write_config"]

CONFIG_NAME = "config.json"


def prepare_run_dir(run_dir: str | Path, config: TrainConfig, *, overwrite: bool = False) -> Path:
    """Create ``run_dir`` for a new run; refuse one that already holds a run unless ``overwrite``."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"output path {run_dir} exists and is not a directory")
    holds_run = (run_dir / CONFIG_NAME).exists() or CheckpointDir(run_dir).step_files()
    if holds_run and not overwrite:
        raise UserError(
            f"{run_dir} already holds a run; pass --resume {run_dir} to continue it, --overwrite to "
            "replace it, or choose another --out"
        )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if overwrite:
            (run_dir / "metrics.jsonl").unlink(missing_ok=True)
            CheckpointDir(run_dir).remove_all()
        write_config(run_dir, config)
    except OSError as err:
        raise UserError(f"cannot write to output directory {run_dir}: {err.strerror or err}") from None
    return run_dir


def write_config(run_dir: Path, config: TrainConfig) -> None:
    """``config.json`` (the resolved config), replaced atomically."""
    tmp = run_dir / f".{CONFIG_NAME}.tmp"
    tmp.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    os.replace(tmp, run_dir / CONFIG_NAME)


def load_run(path: str | Path, *, device: str | None = None) -> Trainer:
    """A trainer restored from a run directory's newest valid checkpoint, or from one checkpoint file."""
    path = Path(path)
    if path.is_file():
        state = load_checkpoint(path, expected_format=CHECKPOINT_FORMAT)
    elif path.is_dir():
        _, state = CheckpointDir(path).latest()
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


def default_run_dir(config: TrainConfig) -> Path:
    """``runs/<dataset>-<loss>-<timestamp>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.dataset}-{config.loss}-{stamp}"
