"""A training run: the run directory, the loop of Algorithm 1, and its maintenance (logs, metrics, plots, checkpoints)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor

from wgangp.checkpoint import load_checkpoint, save_checkpoint
from wgangp.config import TrainConfig, config_from_dict
from wgangp.data import TOY_DATASETS
from wgangp.data.toy import ToySampler
from wgangp.errors import UserError
from wgangp.metrics.toy import toy_metrics
from wgangp.runlog import RunLogger, read_metrics
from wgangp.trainer import CHECKPOINT_FORMAT, Trainer

if TYPE_CHECKING:
    from wgangp.imagerun import DataEvaluator

__all__ = ["RunResult", "ToyEvaluator", "default_run_dir", "load_run", "prepare_run_dir", "train"]

CONFIG_NAME = "config.json"
CHECKPOINT_NAME = "checkpoint.pt"
EVAL_SEED_OFFSET = 1_000_003  # fixed eval latents and real points: comparable across steps and runs


@dataclass
class RunResult:
    """What a finished run reports: its directory, final metrics and where the pictures are."""

    run_dir: Path
    steps: int
    seconds: float
    metrics: dict[str, float]
    plots: list[Path] = field(default_factory=list)


class ToyEvaluator:
    """W1 and mode metrics of the generator on a fixed latent batch vs a fixed real set (n vs n)."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        seed = config.seed + EVAL_SEED_OFFSET
        self.real = ToySampler(config.dataset, config.eval_samples, seed=seed).sample(config.eval_samples)
        self.seed = seed + 1

    def __call__(self, trainer: Trainer) -> dict[str, float]:
        fake = trainer.sample(self.config.eval_samples, seed=self.seed).cpu()
        return toy_metrics(self.config.dataset, fake, self.real)


def prepare_run_dir(run_dir: str | Path, config: TrainConfig, *, overwrite: bool = False) -> Path:
    """Create ``run_dir`` for a new run; refuse one that already holds a run unless ``overwrite``."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"output path {run_dir} exists and is not a directory")
    if (run_dir / CONFIG_NAME).exists() and not overwrite:
        raise UserError(
            f"{run_dir} already holds a run; pass --overwrite to replace it or choose another --out"
        )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for stale in ("metrics.jsonl", CHECKPOINT_NAME):
                (run_dir / stale).unlink(missing_ok=True)
        (run_dir / CONFIG_NAME).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    except OSError as err:
        raise UserError(f"cannot write to output directory {run_dir}: {err.strerror or err}") from None
    return run_dir


def load_run(run_dir: str | Path, *, device: str | None = None) -> Trainer:
    """A trainer restored from a run directory's checkpoint (for eval, sample and resume)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}")
    path = run_dir / CHECKPOINT_NAME
    if not path.is_file():
        raise UserError(f"{run_dir} has no {CHECKPOINT_NAME}; is it a wgangp run directory?")
    state = load_checkpoint(path, expected_format=CHECKPOINT_FORMAT)
    config = config_from_dict(state["config"])
    if device is not None:
        config = config.replace(device=device)
    trainer = Trainer(config)
    trainer.load_state_dict(state)
    return trainer


def train(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
    tensorboard: bool = True,
) -> RunResult:
    """Train per ``config`` into ``run_dir``: Algorithm 1 with periodic logs, metrics, plots and checkpoints."""
    from tqdm.auto import tqdm

    from wgangp.plots import plot_curves, plot_toy

    toy = config.dataset in TOY_DATASETS
    trainer = Trainer(config)
    if not toy:
        trainer.data.load()  # type: ignore[union-attr]  # a bad data path fails before any file is written
    run_dir = prepare_run_dir(run_dir, config, overwrite=overwrite)
    evaluate: ToyEvaluator | DataEvaluator
    if toy:
        evaluate = ToyEvaluator(config)
    else:
        from wgangp.imagerun import DataEvaluator

        evaluate = DataEvaluator(config, trainer.data, run_dir)  # type: ignore[arg-type]
    plots: list[Path] = []
    metrics: dict[str, float] = {}
    window: dict[str, Tensor] = {}
    window_len = 0
    start = time.perf_counter()

    def draw(name: str, log: RunLogger | None = None) -> None:
        if not toy:
            assert isinstance(evaluate, DataEvaluator)
            path = evaluate.draw(trainer, run_dir / "samples" / f"{name}.png", log)
            plots.extend([path] if path else [])
            return
        fake = trainer.sample(config.eval_samples, seed=evaluate.seed).cpu()
        path = run_dir / "plots" / f"{name}.png"
        plot_toy(
            path,
            evaluate.real,
            fake,
            trainer.critic,
            title=f"{config.loss}, {config.dataset}, step {trainer.step}",
        )
        plots.append(path)

    with (
        RunLogger(run_dir, tensorboard=tensorboard) as log,
        tqdm(
            total=config.steps, disable=not progress, unit="it", dynamic_ncols=True, desc=config.loss
        ) as bar,
    ):
        while trainer.step < config.steps:
            # Update the critic ×n_critic, then the generator.
            stats = trainer.train_iteration()
            step = trainer.step
            last = step == config.steps
            for key, value in stats.items():
                window[key] = window[key] + value if key in window else value
            window_len += 1
            bar.update(1)

            # Log window means (the only host sync of the loop).
            if step % config.log_every == 0 or last:
                row = {key: float(value) / window_len for key, value in window.items()}
                if "grad_norm" not in row:
                    row["grad_norm"] = float(trainer.probe_grad_norm(evaluate.real[: config.batch_size]))
                row["time"] = time.perf_counter() - start
                _check_finite(row, step)
                log.write(step, row)
                bar.set_postfix(W=f"{row['wasserstein']:.3f}", grad=f"{row['grad_norm']:.2f}", refresh=False)
                window, window_len = {}, 0

            # Evaluate.
            if step % config.eval_every == 0 or last:
                metrics = evaluate(trainer)
                log.write(step, metrics, group="eval")

            # Plot and save a checkpoint.
            if step % config.plot_every == 0 and not last:
                draw(f"step_{step:07d}", log)
            if step % config.checkpoint_every == 0 or last:
                save_checkpoint(trainer.state_dict(), run_dir / CHECKPOINT_NAME)

        seconds = time.perf_counter() - start
        draw("final", log)
    curves = run_dir / "plots" / "curves.png"
    plot_curves(
        curves,
        read_metrics(run_dir),
        keys=("wasserstein", "grad_norm", "critic_loss", "generator_loss", "w1", "fd", "classes_covered"),
    )
    plots.append(curves)
    summary = {"steps": trainer.step, "seconds": seconds, **metrics}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return RunResult(run_dir=run_dir, steps=trainer.step, seconds=seconds, metrics=metrics, plots=plots)


def _check_finite(row: dict[str, Any], step: int) -> None:
    """Stop with the name of the term that went non-finite rather than training on NaNs."""
    for key in ("critic_loss", "penalty", "generator_loss"):
        value = row.get(key)
        if value is not None and not math.isfinite(value):
            raise UserError(
                f"non-finite {key.replace('_', ' ')} ({value}) at step {step}; the last checkpoint is kept",
                exit_code=3,
            )


def default_run_dir(config: TrainConfig) -> Path:
    """``runs/<dataset>-<loss>-<timestamp>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.dataset}-{config.loss}-{stamp}"
