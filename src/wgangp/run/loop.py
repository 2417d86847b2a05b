"""A training run: the loop of Algorithm 1 and its maintenance (logs, metrics, plots, checkpoints).

:func:`train` is the loop, one screen long; :class:`_Run` holds what the loop maintains around the
trainer (run directory, checkpoints, the data kind's metrics and pictures, the log window), one method per
stage.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import shlex
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from tqdm.auto import tqdm

from wgangp.config import TrainConfig
from wgangp.data import ArraySampler
from wgangp.distributed import Shard, current_shard, reduce_flags, reduce_means, run_on_main
from wgangp.errors import RunInterrupted, UserError
from wgangp.evaluation import DataKind, kind_for
from wgangp.metrics.monitor import HeldOutMonitor
from wgangp.run.books import Bookkeeping
from wgangp.run.checkpoint import CheckpointDir, capture_global_rng, restore_global_rng
from wgangp.run.interrupt import StopRequest
from wgangp.run.lock import RunLock
from wgangp.run.log import RunLogger, read_metrics
from wgangp.run.resume import ResumePoint, check_resume, restore_trainer, rewind_metrics
from wgangp.run.rundir import CONFIG_NAME, default_run_dir, load_run, prepare_run_dir, write_config
from wgangp.step.faults import all_finite, first_nonfinite
from wgangp.trainer import Trainer

__all__ = ["CONFIG_NAME", "RunResult", "default_run_dir", "load_run", "prepare_run_dir", "train"]

EXIT_NONFINITE = 3  # the exit code of a run stopped by a non-finite loss, penalty or gradient
CURVE_KEYS = (
    "wasserstein",
    "grad_norm",
    "critic_loss",
    "generator_loss",
    "w1",
    "fd",
    "classes_covered",
    "js4",
    "spectral_w1",
)
# The held-out monitor's panels in curves.png: estimates drawn together, each with its ±1 SE band.
MONITOR_CURVES = {
    "critic estimate: train vs held-out": ("w_train", "w_val"),
    "gap w_train − w_val": ("w_gap",),
}


class OverfitWarning(UserWarning):
    """The held-out monitor's gap exceeded overfit_sigmas standard errors for overfit_patience evals."""


@dataclass
class RunResult:
    """What a finished run reports: its directory, final metrics and where the pictures are."""

    run_dir: Path
    steps: int
    seconds: float
    metrics: dict[str, float]
    plots: list[Path] = field(default_factory=list)


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
    log_lines: bool = False,
) -> RunResult:
    """Train per ``config`` into ``run_dir``: Algorithm 1 with periodic logs, metrics, plots and checkpoints.

    ``resume`` (from :func:`~wgangp.run.resume.find_resume_point`) continues that run in place; ``force``
    lets it change more than :data:`~wgangp.run.resume.RUN_CONTROL_KEYS`. Raises :class:`UserError` (exit 3)
    at a non-finite term and :class:`RunInterrupted` after SIGINT/SIGTERM, in both cases with the last good
    checkpoint on disk.

    Under ``torchrun`` (``shard``, default: this process's; see ``wgangp.distributed``) every rank trains its
    shard and runs the same collectives in the same order; rank 0 alone reads and writes the run directory.

    ``log_lines``: print one plain line per log row to stdout (step, it/s, ETA, W estimate, ‖∇‖), for
    logs without a terminal (CI, ``nohup``), where a progress bar would be silent or garbled.
    """
    run = _Run.start(config, Path(run_dir), overwrite, resume, force, shard or current_shard())
    run.lines = _LogLines(config.steps, run.trainer.step) if log_lines and run.main else None
    with run.session(progress=progress, tensorboard=tensorboard) as (stop, log, bar):
        while run.trainer.step < config.steps:
            # Update the critic ×n_critic, then the generator.
            stats = run.trainer.train_iteration()
            step, last = run.trainer.step, run.trainer.step == config.steps
            stopping = run.check(stats, stop.requested)  # stop requests read once, agreed by all ranks
            bar.update(1)
            run.books.add(stats)

            # Log window means over all processes (one host sync per log row).
            if step % config.log_every == 0 or last:
                run.log_row(log, bar)

            # Evaluate; keep the best state by the eval metric (rank 0: nothing here draws training noise).
            if log is not None and (step % config.eval_every == 0 or last):
                run.evaluate(log)

            # Plot and save a checkpoint (also when a stop signal came: then leave).
            if run.main and step % config.plot_every == 0 and not last:
                run.draw(f"step_{step:07d}", log)
            if step % config.checkpoint_every == 0 or last or stopping:
                run.save()
            if stopping and not last:
                raise run.interrupted(stop)
        run.seconds = run.clock()
        if run.main:
            run.draw("final", log)
        return run.finish()  # curves and summary, still under the run directory's lock


class _Run:
    """What the loop maintains around the trainer; ranks > 0 never touch the run directory, not even to
    read it: on another node it is not there (or, worse, an unrelated directory of the same name is)."""

    def __init__(self, config: TrainConfig, run_dir: Path, trainer: Trainer, shard: Shard) -> None:
        self.config, self.run_dir, self.trainer, self.shard = config, run_dir, trainer, shard
        self.main = shard.is_main
        self.books = Bookkeeping()
        self.store = CheckpointDir(run_dir, keep=config.keep_checkpoints)
        self.kind: DataKind | None = None  # rank 0's metrics and pictures
        self.monitor: HeldOutMonitor | None = None  # rank 0's held-out critic monitor (monitor_holdout)
        self.overfit: dict[str, Any] | None = None  # the overfitting warning, once it fired
        self.plots: list[Path] = []
        self.metrics: dict[str, float] = {}
        self.saved: Path | None = None
        self.seconds = 0.0
        self.started = 0.0
        self.lock: RunLock | None = None  # rank 0's lock on the run directory, released when the run ends
        self.lines: _LogLines | None = None  # plain progress lines (no terminal)

    @classmethod
    def start(
        cls,
        config: TrainConfig,
        run_dir: Path,
        overwrite: bool,
        resume: ResumePoint | None,
        force: bool,
        shard: Shard,
    ) -> _Run:
        """The trainer, the run directory (new, or the resumed one rewound to its checkpoint) and the kind.

        Rank 0 holds the run directory's lock (:class:`~wgangp.run.lock.RunLock`) from here to the end of
        the run: a resumed run's before anything else, a new run's once its directory exists.
        """
        directory = resume.run_dir if resume is not None else run_dir
        # A resumed text or sequences run encodes its data with its saved charmap or statistics.
        codec = resume.state.get("data_codec") if resume is not None else None
        lock = RunLock(directory) if shard.is_main else None
        if lock is not None and resume is not None:
            lock.acquire()  # a second `--resume` of this run stops here, naming this process
        try:
            trainer = Trainer(config, shard=shard, codec=codec)
            if isinstance(trainer.data, ArraySampler):
                trainer.data.load()  # a bad data path fails before any file is written
            trainer.check_memory()  # a batch that cannot fit fails before any file is written
            run = cls(config, directory, trainer, shard)
            run.lock = lock
            if resume is None:
                prepare = functools.partial(
                    prepare_run_dir, run.run_dir, config, overwrite=overwrite, lock=lock
                )
                run_on_main(shard, prepare)
            else:
                check_resume(resume, config, force=force)
                restore_trainer(trainer, resume.state, force=force)
                restore_global_rng(resume.state["global_rng"])
                run.books.load_state_dict(resume.state["run"], trainer.device)
                # Accepted: now bring the directory back to the resumed step (rank 0, once every rank read).
                run_on_main(shard, run.rewind)
            if run.main:
                run.kind = kind_for(config, trainer.data, run.run_dir)
                _log_cpu_bf16(config, trainer.device)
                run.monitor = run.kind.monitor(trainer)
                if run.monitor is not None and resume is not None and "monitor" in resume.state:
                    run.monitor.load_state_dict(resume.state["monitor"]["state"])
                    run.overfit = resume.state["monitor"]["overfit"]
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        run.started = time.perf_counter() - run.books.seconds
        return run

    def rewind(self) -> None:
        """Drop what a stopped run wrote after the checkpoint it resumes from."""
        try:
            self.store.remove_temp_files()
            self.store.quarantine_after(self.trainer.step)
            self.store.drop_best_after(self.trainer.step)
            rewind_metrics(self.run_dir, self.trainer.step)
            write_config(self.run_dir, self.config)
        except OSError as err:
            raise UserError(f"cannot write to run directory {self.run_dir}: {err.strerror or err}") from None

    @contextlib.contextmanager
    def session(
        self, *, progress: bool, tensorboard: bool
    ) -> Iterator[tuple[StopRequest, RunLogger | None, Any]]:
        """Disk errors in one line, stop signals, the logger (rank 0) and the progress bar."""
        with contextlib.ExitStack() as stack:
            if self.lock is not None:
                stack.callback(self.lock.release)  # after everything below, on any exit
            if self.main:
                stack.enter_context(_disk_errors(self.run_dir, self.store))
            stop = stack.enter_context(StopRequest())
            log = stack.enter_context(RunLogger(self.run_dir, tensorboard=tensorboard)) if self.main else None
            bar = stack.enter_context(
                tqdm(
                    initial=self.trainer.step,
                    total=self.config.steps,
                    disable=not (progress and self.main),
                    unit="it",
                    dynamic_ncols=True,
                    desc=self.config.loss,
                )
            )
            yield stop, log, bar

    def clock(self) -> float:
        """Training time so far, over every process that ran this run (resume)."""
        return time.perf_counter() - self.started

    def check(self, stats: dict[str, Any], stopping: bool) -> bool:
        """Stop at a non-finite term (this state is never saved; the last checkpoint stays the newest);
        returns whether a stop was requested on any rank.

        fp16: an overflow is the GradScaler's to handle (it skips that update and halves the scale; at its
        starting 2^16 the penalty's double backward overflows by design); a real divergence still stops at
        the weights check before the next checkpoint.
        """
        scaled = self.config.precision == "fp16"
        term = None if self.config.skip_nonfinite or scaled else first_nonfinite(stats)
        if self.shard.distributed:
            # Every rank leaves the loop at the same step, or the others would wait at a collective.
            stopping, anywhere = reduce_flags([stopping, term is not None], self.trainer.device)
            term = term or ("term on another process" if anywhere else None)
        if term is not None:
            _stop_nonfinite(term.replace("_", " "), self.trainer.step, self.store if self.main else None)
        return stopping

    def log_row(self, log: RunLogger | None, bar: Any) -> None:
        row = self.books.means()
        if self.shard.distributed:
            row = reduce_means(row, self.shard.weight(self.config.batch_size), self.trainer.device)
        if log is None or self.kind is None:  # ranks > 0 only take part in the reduction
            return
        if "grad_norm" not in row:
            probe = self.kind.probe_points(self.config.batch_size)
            row["grad_norm"] = float(self.trainer.probe_grad_norm(probe))
        if self.config.skip_nonfinite:
            row["skipped_updates"] = self.trainer.skipped_updates
        row["time"] = self.clock()
        log.write(self.trainer.step, row)
        if self.lines is not None:
            self.lines.print(self.trainer.step, row)
        if "wasserstein" in row:
            bar.set_postfix(W=f"{row['wasserstein']:.3f}", grad=f"{row['grad_norm']:.2f}", refresh=False)

    def evaluate(self, log: RunLogger) -> None:
        assert self.kind is not None  # rank 0
        self.metrics = self.kind.evaluate(self.trainer)
        if self.monitor is not None:
            self.metrics |= self.monitor()
            self.warn_overfitting()
        log.write(self.trainer.step, self.metrics, group="eval")
        if self.books.improves(self.metrics):
            self.store.save_best(self.checkpoint())

    def warn_overfitting(self) -> None:
        """The first eval at which the monitor fires: one warning line, and the step for summary.json."""
        assert self.monitor is not None
        if self.overfit is not None or not self.metrics["w_overfit"]:
            return
        k, patience = self.config.overfit_sigmas, self.config.overfit_patience
        self.overfit = {
            "step": self.trainer.step,
            "w_gap": self.metrics["w_gap"],
            "w_gap_se": self.metrics["w_gap_se"],
            "overfit_sigmas": k,
            "overfit_patience": patience,
        }
        warnings.warn(
            f"the critic is overfitting its training data at step {self.trainer.step}: the estimate on "
            f"training samples exceeds the held-out one by {self.metrics['w_gap']:.4g} "
            f"(> {k:g} SE = {k * self.metrics['w_gap_se']:.4g}) for {patience} evals in a row",
            OverfitWarning,
            stacklevel=2,
        )

    def draw(self, name: str, log: RunLogger | None) -> None:
        assert self.kind is not None  # rank 0
        path = self.kind.draw(self.trainer, self.run_dir, name, log)
        self.plots.extend([path] if path else [])

    def checkpoint(self) -> dict[str, Any]:
        state = self.trainer.state_dict() | {
            "global_rng": capture_global_rng(),
            "run": self.books.state_dict(self.clock()),
        }
        if self.monitor is not None:
            state["monitor"] = {"state": self.monitor.state_dict(), "overfit": self.overfit}
        return state

    def save(self) -> None:
        trainer = self.trainer
        if not all_finite([*trainer.generator.parameters(), *trainer.critic.parameters()]):
            _stop_nonfinite(
                "weights (a non-finite gradient)", trainer.step, self.store if self.main else None
            )
        if self.main:
            self.saved = self.store.save(self.checkpoint())

    def interrupted(self, stop: StopRequest) -> RunInterrupted:
        return RunInterrupted(
            f"stopped by {stop.name} at step {self.trainer.step}; checkpoint {self.saved or 'saved by rank 0'}; "
            f"continue with: wgangp train --resume {shlex.quote(str(self.run_dir))}",
            exit_code=stop.exit_code,
        )

    def finish(self) -> RunResult:
        """The training curves and ``summary.json`` (rank 0), and what the run reports."""
        result = RunResult(self.run_dir, self.trainer.step, self.seconds, self.metrics, self.plots)
        if not self.main:
            return result
        from wgangp.pictures.plots import plot_curves

        curves = self.run_dir / "plots" / "curves.png"
        overlays = MONITOR_CURVES if self.monitor is not None else None
        plot_curves(curves, read_metrics(self.run_dir), keys=CURVE_KEYS, overlays=overlays)
        self.plots.append(curves)
        summary: dict[str, Any] = {"steps": self.trainer.step, "seconds": self.seconds, **self.metrics}
        if self.monitor is not None:
            summary["overfitting"] = self.overfit is not None
            summary["overfitting_warning"] = self.overfit
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return result


class _LogLines:
    """One plain progress line per log row: ``step 100/2000  45.1 it/s  ETA 0:00:42  W 0.123  ‖∇‖ 0.98``."""

    def __init__(self, total: int, step: int) -> None:
        self.total = total
        self.last_step, self.last_time = step, time.perf_counter()

    def print(self, step: int, row: dict[str, Any]) -> None:
        now = time.perf_counter()
        rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
        self.last_step, self.last_time = step, now
        eta = round((self.total - step) / rate) if rate > 0 else 0
        parts = [f"step {step}/{self.total}", f"{rate:.3g} it/s", f"ETA {_clock_text(eta)}"]
        if "wasserstein" in row:
            parts.append(f"W {row['wasserstein']:.4g}")
        if "grad_norm" in row:
            parts.append(f"‖∇‖ {row['grad_norm']:.3g}")
        print("  ".join(parts), flush=True)


def _clock_text(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def _log_cpu_bf16(config: TrainConfig, device: Any) -> None:
    """bf16 on a CPU: say whether it has native bf16 instructions (else autocast emulates them)."""
    if config.precision != "bf16" or getattr(device, "type", "") != "cpu":
        return
    import warnings

    from wgangp.step.amp import cpu_bf16_support

    native, detail = cpu_bf16_support()
    if native:
        text = f"this CPU has native bf16 ({detail}); bf16 may still not be faster than fp32 for small models"
    else:
        text = f"this CPU has no native bf16 ({detail}): bf16 is emulated and is likely slower than fp32"
    warnings.warn(f"precision bf16 on the CPU: {text}", stacklevel=2)


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
