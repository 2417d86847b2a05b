"""Continuing a run: which checkpoint, which config changes are allowed, and the log rewound to match.

``wgangp train --resume RUN_DIR`` continues from the newest checkpoint that loads. On CPU the result is
bit-identical to a run that was never stopped: the checkpoint carries every random state, and the
metrics rows the stopped run wrote after its last checkpoint are dropped because the resumed run writes
them again.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wgangp.config import TrainConfig
from wgangp.errors import UserError
from wgangp.run.checkpoint import CheckpointDir
from wgangp.storage import write_text_atomic
from wgangp.trainer import Trainer

__all__ = [
    "RUN_CONTROL_KEYS",
    "ResumePoint",
    "check_resume",
    "config_changes",
    "find_resume_point",
    "restore_trainer",
    "rewind_metrics",
]

# Keys that say how long and how observably a run goes, not what it computes: free to change on resume
# (``--steps`` extends a run). Any other change makes a different run and needs ``--force``.
RUN_CONTROL_KEYS = frozenset(
    {
        "steps",
        "device",
        "log_every",
        "eval_every",
        "plot_every",
        "checkpoint_every",
        "keep_checkpoints",
        "skip_nonfinite",
        "dist_timeout",
    }
)


@dataclass(frozen=True)
class ResumePoint:
    """The checkpoint a run continues from."""

    run_dir: Path
    path: Path
    state: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.state["step"])

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.state["config"])


def find_resume_point(run_dir: str | Path) -> ResumePoint:
    """The newest checkpoint of ``run_dir`` that loads (newer broken ones are skipped with a warning).

    Reads only: the run directory changes once :func:`~wgangp.run.loop.train` has accepted the resume.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"cannot resume {run_dir}: it is a file, not a run directory")
    if not run_dir.is_dir():
        raise UserError(f"cannot resume: run directory not found: {run_dir}")
    store = CheckpointDir(run_dir)
    if (
        (run_dir / "config.json").is_file()
        and not store.step_files()
        and not (run_dir / "checkpoint.pt").exists()
    ):
        quoted = shlex.quote(str(run_dir))
        raise UserError(
            f"cannot resume {run_dir}: it stopped before its first checkpoint, so there is nothing to "
            f"continue; start it again with: wgangp train --out {quoted} (same options)"
        )
    path, state = store.latest()
    return ResumePoint(run_dir, path, state)


def config_changes(saved: Mapping[str, Any], config: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """``{key: (saved, new)}`` for every key whose value differs.

    A key the saved config lacks is a field added after that run was made: it counts as its default, so
    upgrading wgangp does not refuse to resume older runs.
    """
    defaults = TrainConfig().to_dict()
    old = {key: saved.get(key, defaults[key]) for key in defaults}
    return {key: (old[key], value) for key, value in config.to_dict().items() if old[key] != value}


def check_resume(point: ResumePoint, config: TrainConfig, *, force: bool = False) -> None:
    """Refuse a resume that would silently make a different run, or one with nothing left to do."""
    changes = config_changes(point.config, config)
    refused = [key for key in changes if key not in RUN_CONTROL_KEYS]
    if refused and not force:
        what = ", ".join(f"{key} ({changes[key][0]!r} → {changes[key][1]!r})" for key in refused)
        raise UserError(
            f"cannot resume {point.run_dir}: the config changes {what}; pass --force to resume anyway "
            "or start a new run with --out"
        )
    if config.steps <= point.step:
        raise UserError(
            f"{point.run_dir} is already at step {point.step} of steps={config.steps}; "
            f"pass --steps N with N > {point.step} to extend it"
        )


def restore_trainer(trainer: Trainer, state: Mapping[str, Any], *, force: bool = False) -> None:
    """Load ``state`` into ``trainer``; with ``force``, carry over what fits a changed config."""
    state = _fit_to(dict(state), trainer) if force else dict(state)
    try:
        trainer.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as err:
        reason = " ".join(str(err).split())[:300]
        raise UserError(f"the checkpoint does not fit the model of its config: {reason}") from None
    if force:
        _apply_optimizer_settings(trainer)


def _fit_to(state: dict[str, Any], trainer: Trainer) -> dict[str, Any]:
    """A forced resume: keep the weights (their shapes must still match), restart what the config changed.

    ``trainer`` is freshly built for the new config, so its optimizers and sampler hold starting states.
    """
    saved, config = state["config"], trainer.config
    if saved.get("optimizer") != config.optimizer:
        state["generator_opt"] = trainer.generator_opt.state_dict()
        state["critic_opt"] = trainer.critic_opt.state_dict()
    if saved.get("dataset") != config.dataset:
        state["rng"] = {**state["rng"], "data": trainer.data.state_dict()}
    if len(state.get("schedulers", [])) != len(trainer.schedulers):
        state["schedulers"] = [{"last_epoch": state["step"]} for _ in trainer.schedulers]
    if config.ema_decay > 0 and state.get("generator_ema") is None:
        state["generator_ema"] = state["generator"]
    return state


def _apply_optimizer_settings(trainer: Trainer) -> None:
    """Loading an optimizer restores its saved lr and betas; a forced resume wants the new config's."""
    cfg = trainer.config
    factor = max(0.0, 1.0 - trainer.step / cfg.steps) if cfg.lr_decay == "linear" else 1.0
    for opt, lr in ((trainer.generator_opt, cfg.lr_generator), (trainer.critic_opt, cfg.lr_critic)):
        for group in opt.param_groups:
            group["initial_lr"] = lr
            group["lr"] = lr * factor
            if "betas" in group:
                group["betas"] = (cfg.beta1, cfg.beta2)
    for scheduler in trainer.schedulers:
        scheduler.base_lrs = [group["initial_lr"] for group in scheduler.optimizer.param_groups]


def rewind_metrics(run_dir: str | Path, step: int) -> int:
    """Drop ``metrics.jsonl`` rows after ``step`` (and a torn last line); returns how many were dropped.

    The stopped run logged them after its last checkpoint; the resumed run logs those steps again, so
    keeping them would leave duplicate steps.
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = []
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and int(row.get("step", 0)) <= step:
            kept.append(line)
    if len(kept) != len(lines):
        write_text_atomic(path, "".join(line + "\n" for line in kept))
    return len(lines) - len(kept)
