"""``wgangp compare``: WGAN-GP against its baselines on the same data, networks, seed and budget.

Each method is trained with :class:`~wgangp.trainer.Trainer` from the preset and the method's recipe
(:data:`wgangp.config.METHOD_RECIPES`), so each brings its own optimizer (WGAN-GP: Adam; WGAN-GP with
RMSProp, the paper's Figure 3 control: RMSProp 5e-5; clipping: RMSProp 5e-5; GAN: Adam 2e-4, one critic
step) while the networks, data stream and seed are shared. The budget is the same for every method:
``steps`` generator iterations, or ``seconds`` of training time (evaluation and logging are not counted).

What depends on the kind of data — how a generator is scored, how its samples are drawn, which metric
decides "better" — lives behind :class:`~wgangp.evaluation.DataKind` (:mod:`wgangp.evaluation`); a kind
that ranks methods and needs no data path is offered here without touching this module. The report is
then a function of ``results.json`` and the pictures drawn here (:mod:`wgangp.experiments.report`).
"""

from __future__ import annotations

import json
import math
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from wgangp.config import METHOD_RECIPES, TrainConfig, resolve_config
from wgangp.data import build_sampler
from wgangp.data.toy import TOY_DATASETS
from wgangp.errors import UserError
from wgangp.evaluation import DataKind, MetricSpec, comparable_datasets, kind_for
from wgangp.experiments.methods import METHODS, PENALTY_METHODS, check_methods, method_label
from wgangp.run.checkpoint import CheckpointDir
from wgangp.run.rundir import CONFIG_NAME
from wgangp.step.update import accumulate
from wgangp.trainer import Trainer

__all__ = [
    "RESULTS_FORMAT",
    "Budget",
    "MethodRun",
    "aggregate",
    "dataset_kind",
    "judge",
    "judge_methods",
    "method_config",
    "run_comparison",
    "run_method",
]

RESULTS_FORMAT = 1


def dataset_kind(config: TrainConfig, cache_dir: Path | None = None) -> DataKind:
    """The data kind of ``config.dataset`` if ``compare`` can rank methods on it (:mod:`wgangp.evaluation`)."""
    if config.dataset not in comparable_datasets():
        raise UserError(
            f"compare does not support dataset {config.dataset!r}; choose {', '.join(comparable_datasets())}"
        )
    sampler = None if config.dataset in TOY_DATASETS else build_sampler(config, torch.device("cpu"))
    return kind_for(config, sampler, cache_dir)


@dataclass(frozen=True)
class Budget:
    """The same budget for every method: ``steps`` generator iterations, or ``seconds`` of training time."""

    steps: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if (self.steps is None) == (self.seconds is None):
            raise UserError("give exactly one budget: --steps N or --budget SECONDS")
        if self.steps is not None and self.steps < 1:
            raise UserError(f"--steps must be >= 1; got {self.steps}")
        if self.seconds is not None and not (math.isfinite(self.seconds) and self.seconds > 0):
            raise UserError(f"--budget must be a positive number of seconds; got {self.seconds}")

    def describe(self) -> str:
        if self.steps is not None:
            return f"{self.steps} generator iterations per method"
        return f"{self.seconds:g} s of training time per method"

    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "seconds": self.seconds}


def method_config(
    method: str,
    *,
    dataset: str,
    seed: int,
    budget: Budget,
    preset: str = "fast",
    sets: Sequence[str] = (),
    device: str | None = None,
) -> TrainConfig:
    """The config of one method: preset → the method's recipe → dataset, seed, steps → ``--set``.

    The recipe (:data:`~wgangp.config.METHOD_RECIPES`) sits where ``--loss`` puts a loss recipe: over the
    preset, under the dataset/seed/steps and ``--set``. With a time budget the step count is lifted (the
    clock stops the run); ``lr_decay="linear"`` then decays over that lifted count, i.e. not at all: use a
    step budget with a decaying schedule.
    """
    if method not in METHOD_RECIPES:
        raise UserError(f"unknown method {method!r}; choose from {', '.join(METHOD_RECIPES)}")
    overrides: dict[str, Any] = {**METHOD_RECIPES[method], "dataset": dataset, "seed": seed}
    overrides["steps"] = budget.steps if budget.steps is not None else 1_000_000_000
    if device is not None:
        overrides["device"] = device
    return resolve_config(preset, sets=list(sets), overrides=overrides)


@dataclass
class MethodRun:
    """One method on one seed: its training curves, evaluations over time, and final metrics."""

    method: str
    seed: int
    steps: int = 0
    seconds: float = 0.0
    # This process's CPU time over the same iterations: on a loaded machine, the honest clock.
    cpu_seconds: float = 0.0
    curves: list[dict[str, float]] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    diverged: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "seed": self.seed,
            "steps": self.steps,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "diverged": self.diverged,
            "metrics": self.metrics,
            "curves": self.curves,
            "evals": self.evals,
        }


def _sync(device: torch.device) -> None:
    # The step functions return lazy tensors; on a GPU the clock must wait for the kernels.
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_method(
    trainer: Trainer,
    kind: DataKind,
    budget: Budget,
    *,
    progress: Any = None,
    method: str | None = None,
) -> MethodRun:
    """Train ``trainer`` within ``budget``, logging window means every ``log_every`` and metrics every ``eval_every``.

    Only the training iterations are timed. A run whose losses go non-finite stops there and is reported as
    diverged (with the metrics of its last finite evaluation) instead of ending the whole comparison.
    ``method`` names the run (default: the config's loss).
    """
    cfg = trainer.config
    run = MethodRun(method=method or cfg.loss, seed=cfg.seed)
    probe = kind.probe_points(cfg.batch_size)
    window: dict[str, Tensor] = {}
    counts: dict[str, int] = {}
    while True:
        # Update the critic ×n_critic, then the generator (timed).
        _sync(trainer.device)
        start, cpu_start = time.perf_counter(), time.process_time()
        stats = trainer.train_iteration()
        _sync(trainer.device)
        run.seconds += time.perf_counter() - start
        run.cpu_seconds += time.process_time() - cpu_start
        step = trainer.step
        accumulate(window, counts, stats)
        if progress is not None:
            progress.update(1)
        out_of_budget = (budget.steps is not None and step >= budget.steps) or (
            budget.seconds is not None and run.seconds >= budget.seconds
        )

        # Log window means; the probe measures ‖∇D(x̂)‖ the same way for every loss.
        if step % cfg.log_every == 0 or out_of_budget:
            row = {key: float(value) / counts[key] for key, value in window.items()}
            row["grad_norm"] = float(trainer.probe_grad_norm(probe))
            window, counts = {}, {}
            bad = [k for k in ("critic_loss", "generator_loss") if not math.isfinite(row.get(k, 0.0))]
            if bad:
                run.diverged = f"non-finite {bad[0].replace('_', ' ')} at step {step}"
                break
            run.curves.append({"step": step, "time": run.seconds, **row})

        # Evaluate.
        if step % cfg.eval_every == 0 or out_of_budget:
            run.metrics = kind.evaluate(trainer)
            run.evals.append({"step": step, "time": run.seconds, **run.metrics})
        if out_of_budget:
            break
    run.steps = trainer.step
    return run


def aggregate(values: Sequence[float]) -> dict[str, float]:
    """``{"mean", "std", "n"}``; std is the sample std (n − 1), 0 for one value."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    std = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return {"mean": statistics.fmean(finite), "std": std, "n": len(finite)}


def judge(
    summary: dict[str, dict[str, dict[str, float]]],
    ranking: Sequence[MetricSpec],
    first: str = "wgan-gp",
    second: str = "wgan-clip",
) -> dict[str, Any]:
    """Whether method ``first`` beats ``second`` (default: WGAN-GP vs weight clipping): compare the mean of
    each ranking metric in order.

    The first metric on which the two means differ decides; equal on all is not a win. The result holds
    ``holds``, ``decided_by`` (a metric key or ``None``), ``compared`` (``[first, second]``) and the two
    deciding means under the methods' names.
    """
    a_stats, b_stats = summary.get(first, {}), summary.get(second, {})
    for spec in ranking:
        a, b = (
            a_stats.get(spec.key, {}).get("mean", math.nan),
            b_stats.get(spec.key, {}).get("mean", math.nan),
        )
        if not (math.isfinite(a) and math.isfinite(b)):
            continue
        if a != b:
            holds = a > b if spec.better == "higher" else a < b
            return {"holds": holds, "decided_by": spec.key, "compared": [first, second], first: a, second: b}
    return {"holds": False, "decided_by": None, "compared": [first, second], first: None, second: None}


def judge_methods(
    summary: dict[str, dict[str, dict[str, float]]],
    ranking: Sequence[MetricSpec],
    methods: Sequence[str],
    claim: str,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The claim's verdict and every pairwise verdict between the methods that were run.

    The claim (``claim``: a WGAN-GP arm beats weight clipping) is judged between the first WGAN-GP arm run
    (``wgan-gp``, else ``wgan-gp-rmsprop``) and ``wgan-clip``; without either, ``holds`` is ``None``,
    ``compared`` lists the one that was run and ``not_tested`` says what was missing. The pairs put each WGAN-GP arm first against every other method,
    then the remaining methods in ``methods`` order, so ``--methods wgan-gp,gan`` still says which is better.
    """
    gp = next((m for m in PENALTY_METHODS if m in methods), None)
    if gp is not None and "wgan-clip" in methods:
        verdict = {"text": claim, **judge(summary, ranking, gp, "wgan-clip")}
        if gp != "wgan-gp":
            verdict["text"] = f"{claim} (WGAN-GP arm: {method_label(gp)})"
    else:
        missing = [
            name
            for name, have in (
                ("WGAN-GP arm (wgan-gp or wgan-gp-rmsprop)", gp),
                ("wgan-clip", "wgan-clip" in methods),
            )
            if not have
        ]
        verdict = {
            "text": claim,
            "holds": None,
            "decided_by": None,
            "compared": [m for m in (gp, "wgan-clip") if m is not None and m in methods],
            "not_tested": f"--methods has no {' and no '.join(missing)}",
        }
    ordered = [m for m in PENALTY_METHODS if m in methods] + [m for m in methods if m not in PENALTY_METHODS]
    pairs = [judge(summary, ranking, a, b) for i, a in enumerate(ordered) for b in ordered[i + 1 :]]
    return verdict, pairs


def _save_run(trainer: Trainer, run_dir: Path) -> None:
    """A standard run directory (config + checkpoint), so ``wgangp eval`` and ``sample`` work on it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_NAME).write_text(json.dumps(trainer.config.to_dict(), indent=2) + "\n")
    CheckpointDir(run_dir, keep=1).save(trainer.state_dict())


def _floor(metrics: Sequence[MetricSpec], runs: dict[str, list[MethodRun]]) -> dict[str, float]:
    """The real-vs-real floor of each metric, where the kind reports one (``<key>_floor``; text, sequences)."""
    reported = next((r.metrics for method_runs in runs.values() for r in method_runs if r.metrics), {})
    return {s.key: reported[f"{s.key}_floor"] for s in metrics if f"{s.key}_floor" in reported}


def plot_compare_samples(path: Path, kind: DataKind, pictures: Sequence[tuple[str, int, Trainer]]) -> Path:
    """One panel per (seed, method): rows are seeds, columns methods, drawn by ``kind.draw_panel``."""
    from wgangp.pictures.plots import new_figure, save_figure

    methods = list(dict.fromkeys(m for m, _, _ in pictures))
    seeds = list(dict.fromkeys(s for _, s, _ in pictures))
    fig = new_figure(3.0 * len(methods), 3.0 * len(seeds))
    for method, seed, trainer in pictures:
        index = seeds.index(seed) * len(methods) + methods.index(method) + 1
        ax = fig.add_subplot(len(seeds), len(methods), index)
        kind.draw_panel(ax, trainer, title=f"{method_label(method)}, seed {seed}\nstep {trainer.step}")
        ax.title.set_fontsize("small")
    save_figure(fig, path)
    return path


def run_comparison(
    dataset: str,
    out_dir: str | Path,
    *,
    budget: Budget,
    seeds: int = 1,
    first_seed: int = 0,
    preset: str = "fast",
    sets: Sequence[str] = (),
    device: str | None = None,
    methods: Sequence[str] = METHODS,
    progress: bool = True,
) -> dict[str, Any]:
    """Train every method on every seed, then write ``results.json``, ``report.md`` and ``report.html``.

    Returns the results dict (the content of ``results.json``).
    """
    from tqdm.auto import tqdm

    from wgangp.experiments.report import plot_compare_curves, write_report

    if dataset not in comparable_datasets():
        raise UserError(f"--dataset must be one of {', '.join(comparable_datasets())}; got {dataset!r}")
    if seeds < 1:
        raise UserError(f"--seeds must be >= 1; got {seeds}")
    methods = check_methods(methods)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {out} exists and is not a directory")
    seed_list = [first_seed + k for k in range(seeds)]
    configs = {
        m: [
            method_config(m, dataset=dataset, seed=s, budget=budget, preset=preset, sets=sets, device=device)
            for s in seed_list
        ]
        for m in methods
    }
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot write to output directory {out}: {err.strerror or err}") from None
    kind = dataset_kind(configs[methods[0]][0], cache_dir=out)

    runs: dict[str, list[MethodRun]] = {m: [] for m in methods}
    pictures: list[tuple[str, int, Trainer]] = []  # first seeds' trainers for the samples figure
    for seed_index, seed in enumerate(seed_list):
        for method in methods:
            config = configs[method][seed_index]
            trainer = Trainer(config)
            total = budget.steps if budget.steps is not None else None
            with tqdm(total=total, disable=not progress, unit="it", desc=f"{method} seed {seed}") as bar:
                run = run_method(
                    trainer, dataset_kind(config, cache_dir=out), budget, progress=bar, method=method
                )
            runs[method].append(run)
            _save_run(trainer, out / "runs" / f"{method}-seed{seed}")
            if seed_index < 3:
                pictures.append((method, seed, trainer))

    summary = {
        m: {
            spec.key: aggregate([r.metrics.get(spec.key, math.nan) for r in runs[m]]) for spec in kind.metrics
        }
        | {
            "steps": aggregate([float(r.steps) for r in runs[m]]),
            "seconds": aggregate([r.seconds for r in runs[m]]),
            "cpu_seconds": aggregate([r.cpu_seconds for r in runs[m]]),
        }
        for m in methods
    }
    claim, pairs = judge_methods(summary, kind.ranking, methods, kind.claim)
    results: dict[str, Any] = {
        "format_version": RESULTS_FORMAT,
        "dataset": dataset,
        "preset": preset,
        "sets": list(sets),
        "budget": budget.to_dict(),
        "seeds": seed_list,
        "methods": list(methods),
        "metrics": [{"key": s.key, "label": s.label, "better": s.better} for s in kind.metrics],
        "summary": summary,
        "claim": claim,
        "pairs": pairs,
        "floor": _floor(kind.metrics, runs),
        "configs": {m: configs[m][0].to_dict() for m in methods},
        "runs": {m: [r.to_dict() for r in runs[m]] for m in methods},
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": str(pictures[0][2].device) if pictures else "cpu",
            "threads": torch.get_num_threads(),
        },
    }
    images = {
        "samples": plot_compare_samples(out / "samples.png", kind, pictures),
        "curves": plot_compare_curves(out / "curves.png", results),
    }
    results["images"] = {name: path.name for name, path in images.items()}
    write_report(out, results)
    return results
