"""A training run: the run directory, the loop of Algorithm 1, and its maintenance (logs, metrics, plots, checkpoints)."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import torch
from torch import Tensor

from wgangp.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointDir,
    capture_global_rng,
    load_checkpoint,
    restore_global_rng,
)
from wgangp.config import TrainConfig, config_from_dict
from wgangp.data import TOY_DATASETS
from wgangp.data.toy import ToySampler
from wgangp.distributed import Shard, current_shard, reduce_flags, reduce_means, run_on_main
from wgangp.errors import RunInterrupted, UserError
from wgangp.faults import all_finite, first_nonfinite
from wgangp.interrupt import StopRequest
from wgangp.metrics.toy import toy_metrics
from wgangp.resume import ResumePoint, check_resume, restore_trainer, rewind_metrics
from wgangp.runlog import RunLogger, read_metrics
from wgangp.trainer import Trainer

if TYPE_CHECKING:
    from wgangp.imagerun import DataEvaluator

__all__ = ["RunResult", "ToyEvaluator", "default_run_dir", "load_run", "prepare_run_dir", "train"]

CONFIG_NAME = "config.json"
EVAL_SEED_OFFSET = 1_000_003  # fixed eval latents and real points: comparable across steps and runs
BEST_METRICS = ("fd", "w1")  # best.pt is kept by the first of these an eval reports; lower is better
EXIT_NONFINITE = 3  # the exit code of a run stopped by a non-finite loss, penalty or gradient


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
        _write_config(run_dir, config)
    except OSError as err:
        raise UserError(f"cannot write to output directory {run_dir}: {err.strerror or err}") from None
    return run_dir


def _write_config(run_dir: Path, config: TrainConfig) -> None:
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
    trainer = Trainer(config)
    restore_trainer(trainer, state)
    return trainer


class _Bookkeeping:
    """The run loop's own state, checkpointed so a resumed run logs exactly what an unbroken one would.

    ``window`` sums each stat since the last log row (a key can be missing from a step whose update was
    skipped, hence the per-key counts); ``best`` is the best eval value of :data:`BEST_METRICS` so far.
    """

    def __init__(self) -> None:
        self.window: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}
        self.best: float | None = None
        self.seconds = 0.0  # training time before this process (resume)

    def add(self, stats: dict[str, Tensor]) -> None:
        for key, value in stats.items():
            self.window[key] = self.window[key] + value if key in self.window else value
            self.counts[key] = self.counts.get(key, 0) + 1

    def means(self) -> dict[str, float]:
        """Window means as floats (the host sync of a log step), and a fresh window."""
        row = {key: float(value) / self.counts[key] for key, value in self.window.items()}
        self.window, self.counts = {}, {}
        return row

    def improves(self, metrics: dict[str, float]) -> bool:
        value = next((metrics[key] for key in BEST_METRICS if key in metrics), None)
        if value is None or not math.isfinite(value) or (self.best is not None and value >= self.best):
            return False
        self.best = value
        return True

    def state_dict(self, seconds: float) -> dict[str, Any]:
        return {
            "window": {k: v.detach().cpu() for k, v in self.window.items()},
            "counts": dict(self.counts),
            "best": self.best,
            "seconds": seconds,
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.window = {k: v.to(device) for k, v in state["window"].items()}
        self.counts = dict(state["counts"])
        self.best = state["best"]
        self.seconds = float(state["seconds"])


def train(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    overwrite: bool = False,
    resume: ResumePoint | None = None,
    force: bool = False,
    progress: bool = True,
    tensorboard: bool = True,
    shard: Shard | None = None,
) -> RunResult:
    """Train per ``config`` into ``run_dir``: Algorithm 1 with periodic logs, metrics, plots and checkpoints.

    ``resume`` (from :func:`~wgangp.resume.find_resume_point`) continues that run in place; ``force``
    lets it change more than :data:`~wgangp.resume.RUN_CONTROL_KEYS`. Raises :class:`UserError` (exit 3)
    at a non-finite term and :class:`RunInterrupted` after SIGINT/SIGTERM, in both cases with the last good
    checkpoint on disk.

    Under ``torchrun`` (``shard``, default: this process's; see ``wgangp.distributed``) every rank trains its
    shard and runs the same collectives in the same order; rank 0 alone reads and writes the run directory.
    """
    from tqdm.auto import tqdm

    from wgangp.plots import plot_curves, plot_toy

    toy = config.dataset in TOY_DATASETS
    shard = shard if shard is not None else current_shard()
    main = shard.is_main
    trainer = Trainer(config, shard=shard)
    if not toy:
        trainer.data.load()  # type: ignore[union-attr]  # a bad data path fails before any file is written
    books = _Bookkeeping()
    if resume is None:
        run_dir = Path(run_dir)
        run_on_main(shard, lambda: prepare_run_dir(run_dir, config, overwrite=overwrite))
    else:
        run_dir = resume.run_dir
        check_resume(resume, config, force=force)
        restore_trainer(trainer, resume.state, force=force)
        restore_global_rng(resume.state["global_rng"])
        books.load_state_dict(resume.state["run"], trainer.device)
    store = CheckpointDir(run_dir, keep=config.keep_checkpoints)
    if resume is not None:
        # Accepted: now bring the directory back to the resumed step (rank 0, once every rank has read).
        resumed_dir = run_dir

        def rewind() -> None:
            try:
                store.remove_temp_files()
                store.quarantine_after(trainer.step)
                store.drop_best_after(trainer.step)
                rewind_metrics(resumed_dir, trainer.step)
                _write_config(resumed_dir, config)
            except OSError as err:
                raise UserError(
                    f"cannot write to run directory {resumed_dir}: {err.strerror or err}"
                ) from None

        run_on_main(shard, rewind)
    evaluate: ToyEvaluator | DataEvaluator
    if toy:
        evaluate = ToyEvaluator(config)
    elif not main:
        evaluate = None  # type: ignore[assignment]  # ranks > 0 never evaluate (no collectives in it)
    else:
        from wgangp.imagerun import DataEvaluator

        evaluate = DataEvaluator(config, trainer.data, run_dir)  # type: ignore[arg-type]
    plots: list[Path] = []
    metrics: dict[str, float] = {}
    start = time.perf_counter() - books.seconds

    def checkpoint() -> dict[str, Any]:
        return trainer.state_dict() | {
            "global_rng": capture_global_rng(),
            "run": books.state_dict(time.perf_counter() - start),
        }

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

    saved: Path | None = None
    # Ranks > 0 never touch the run directory, not even to read it: on another node it is not there (or,
    # worse, an unrelated directory of the same name is).
    kept = store if main else None
    with (
        _disk_errors(run_dir, store) if main else contextlib.nullcontext(),
        StopRequest() as stop,
        RunLogger(run_dir, tensorboard=tensorboard) if main else contextlib.nullcontext() as log,
        tqdm(
            initial=trainer.step,
            total=config.steps,
            disable=not (progress and main),
            unit="it",
            dynamic_ncols=True,
            desc=config.loss,
        ) as bar,
    ):
        while trainer.step < config.steps:
            # Update the critic ×n_critic, then the generator.
            stats = trainer.train_iteration()
            step = trainer.step
            last = step == config.steps
            stopping = stop.requested  # read once: a signal may land anywhere in this iteration
            bar.update(1)

            # Stop at a non-finite term: this state is never saved, the last checkpoint stays the newest.
            # fp16: an overflow is the GradScaler's to handle (it skips that update and halves the scale;
            # at its starting 2^16 the penalty's double backward overflows by design); a real divergence
            # still stops at the weights check before the next checkpoint.
            scaled = config.precision == "fp16"
            term = None if config.skip_nonfinite or scaled else first_nonfinite(stats)
            if shard.distributed:
                # Every rank leaves the loop at the same step, or the others would wait at a collective.
                stopping, anywhere = reduce_flags([stopping, term is not None], trainer.device)
                term = term or ("term on another process" if anywhere else None)
            if term is not None:
                _stop_nonfinite(term.replace("_", " "), step, kept)
            books.add(stats)

            # Log window means over all processes (one host sync per log row).
            if step % config.log_every == 0 or last:
                row = books.means()
                if shard.distributed:
                    row = reduce_means(row, shard.weight(config.batch_size), trainer.device)
                if log is not None:  # rank 0
                    if "grad_norm" not in row:
                        row["grad_norm"] = float(trainer.probe_grad_norm(evaluate.real[: config.batch_size]))
                    if config.skip_nonfinite:
                        row["skipped_updates"] = trainer.skipped_updates
                    row["time"] = time.perf_counter() - start
                    log.write(step, row)
                    if "wasserstein" in row:
                        bar.set_postfix(
                            W=f"{row['wasserstein']:.3f}", grad=f"{row['grad_norm']:.2f}", refresh=False
                        )

            # Evaluate; keep the best state by the eval metric (rank 0: nothing here draws training noise).
            if log is not None and (step % config.eval_every == 0 or last):
                metrics = evaluate(trainer)
                log.write(step, metrics, group="eval")
                if books.improves(metrics):
                    store.save_best(checkpoint())

            # Plot and save a checkpoint (also when a stop signal came: then leave).
            if main and step % config.plot_every == 0 and not last:
                draw(f"step_{step:07d}", log)
            if step % config.checkpoint_every == 0 or last or stopping:
                if not all_finite([*trainer.generator.parameters(), *trainer.critic.parameters()]):
                    _stop_nonfinite("weights (a non-finite gradient)", step, kept)
                if main:
                    saved = store.save(checkpoint())
            if stopping and not last:
                raise RunInterrupted(
                    f"stopped by {stop.name} at step {step}; checkpoint {saved or 'saved by rank 0'}; "
                    f"continue with: wgangp train --resume {run_dir}",
                    exit_code=stop.exit_code,
                )

        seconds = time.perf_counter() - start
        if main:
            draw("final", log)
    if not main:
        return RunResult(run_dir=run_dir, steps=trainer.step, seconds=seconds, metrics=metrics)
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


@contextlib.contextmanager
def _disk_errors(run_dir: Path, store: CheckpointDir) -> Iterator[None]:
    """A disk that fills up or turns read-only mid-run: one line naming the last good checkpoint."""
    try:
        yield
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO):
            raise
        kept = store.step_files()
        where = f"the last good checkpoint is {kept[-1][1]}" if kept else "no checkpoint was written yet"
        raise UserError(f"cannot write to run directory {run_dir}: {err.strerror or err}; {where}") from None


def _stop_nonfinite(what: str, step: int, store: CheckpointDir | None) -> NoReturn:
    """Stop with the step and the term that went non-finite rather than training on NaNs.

    ``store`` is ``None`` on ranks > 0, which do not look into the run directory.
    """
    kept = store.step_files() if store is not None else []
    where = f"the last good checkpoint is {kept[-1][1]}" if kept else "no checkpoint was written yet"
    if store is None:
        where = "rank 0 keeps the last good checkpoint"
    raise UserError(
        f"non-finite {what} at step {step}; stopped, {where} "
        "(lower the learning rates, or pass --skip-nonfinite to skip such updates)",
        exit_code=EXIT_NONFINITE,
    )


def default_run_dir(config: TrainConfig) -> Path:
    """``runs/<dataset>-<loss>-<timestamp>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.dataset}-{config.loss}-{stamp}"
