"""``wgangp compare``: WGAN-GP against its baselines on the same data, networks, seed and budget.

Each method is trained with :class:`~wgangp.trainer.Trainer` from ``resolve_config(preset, loss=method)``,
so each brings its own optimizer recipe (WGAN-GP: Adam; clipping: RMSProp 5e-5; GAN: Adam 2e-4, one
critic step) while the networks, data stream and seed are shared. The budget is the same for every method:
``steps`` generator iterations, or ``seconds`` of training time (evaluation and logging are not counted).

What depends on the kind of data — how a generator is scored, how its samples are drawn, which metric
decides "better" — lives behind :class:`DatasetKind`; :func:`dataset_kind` picks it. The toy sets are
:class:`ToyKind`; another kind (sklearn's digits) plugs in there without touching the loop.
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import torch
from torch import Tensor

from wgangp.checkpoint import CheckpointDir
from wgangp.config import TrainConfig, resolve_config
from wgangp.data.toy import TOY_DATASETS, mode_centres
from wgangp.errors import UserError
from wgangp.run import CONFIG_NAME, ToyEvaluator
from wgangp.trainer import Trainer

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "COMPARE_DATASETS",
    "METHODS",
    "RESULTS_FORMAT",
    "Budget",
    "DatasetKind",
    "MethodRun",
    "MetricSpec",
    "ToyKind",
    "aggregate",
    "dataset_kind",
    "judge",
    "method_config",
    "run_comparison",
    "run_method",
]

RESULTS_FORMAT = 1
METHODS: tuple[str, ...] = ("wgan-gp", "wgan-clip", "gan")
METHOD_LABELS: dict[str, str] = {
    "wgan-gp": "WGAN-GP",
    "wgan-clip": "WGAN (weight clipping)",
    "gan": "standard GAN",
}
# The datasets `compare` accepts; a new DatasetKind adds its names here and a branch in dataset_kind().
COMPARE_DATASETS: tuple[str, ...] = (*TOY_DATASETS, "digits")
# Points per panel in the samples figure.
SAMPLES_DRAWN = 500
# The training stats drawn as curves, in panel order (mean ‖∇D(x̂)‖ is probed the same way for every loss).
CURVE_KEYS: tuple[str, ...] = ("wasserstein", "grad_norm", "critic_loss", "generator_loss")


@dataclass(frozen=True)
class MetricSpec:
    """One column of the metrics table: the key in the evaluator's dict, its label, and which way is better."""

    key: str
    label: str
    better: Literal["higher", "lower"]


class DatasetKind(Protocol):
    """What ``compare`` needs to know about a kind of data.

    ``metrics`` are the table's columns; ``ranking`` the keys that decide whether one method beats another,
    most important first (ties on one key go to the next); ``claim`` says that in words.
    """

    metrics: tuple[MetricSpec, ...]
    ranking: tuple[MetricSpec, ...]
    claim: str

    def evaluate(self, trainer: Trainer) -> dict[str, float]:
        """Metrics of the trainer's generator (fixed latents and real set: comparable across runs)."""
        ...

    def probe_points(self, n: int) -> Tensor:
        """``n`` fixed real points at which mean ‖∇D(x̂)‖ is probed."""
        ...

    def draw_samples(self, ax: Axes, trainer: Trainer, *, title: str) -> None:
        """The generator's samples on ``ax`` (toy: over the critic's value surface)."""
        ...


class ToyKind:
    """The 2-d toy sets: W1 for all; modes covered and high-quality fraction for the Gaussian mixtures."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.evaluator = ToyEvaluator(config)
        w1 = MetricSpec("w1", "W1 ↓", "lower")
        if mode_centres(config.dataset) is None:
            self.metrics: tuple[MetricSpec, ...] = (w1,)
            self.ranking: tuple[MetricSpec, ...] = (w1,)
            self.claim = "WGAN-GP reaches a lower W1 than weight clipping"
        else:
            modes = MetricSpec("modes_covered", "modes covered ↑", "higher")
            quality = MetricSpec("high_quality_fraction", "high-quality fraction ↑", "higher")
            self.metrics = (w1, modes, quality)
            self.ranking = (modes, w1)
            self.claim = "WGAN-GP covers more modes than weight clipping (or as many, with a lower W1)"

    def evaluate(self, trainer: Trainer) -> dict[str, float]:
        return self.evaluator(trainer)

    def probe_points(self, n: int) -> Tensor:
        return self.evaluator.real[:n]

    def draw_samples(self, ax: Axes, trainer: Trainer, *, title: str) -> None:
        from wgangp.plots import draw_toy

        # A few hundred points show the shape; thousands only make the PNG (and the HTML) heavy.
        n = min(self.config.eval_samples, SAMPLES_DRAWN)
        fake = trainer.sample(n, seed=self.evaluator.seed).cpu()
        real = self.evaluator.real[:n]
        draw_toy(ax, real, fake, trainer.critic, title=title, colorbar=False, legend=False, resolution=96)


class DigitsKind:
    """sklearn's digits: Fréchet distance and KID in the features of a classifier trained on the real digits,
    and the classes its confident predictions cover (:mod:`wgangp.metrics.images`).

    The classifier is trained once, cached in ``cache_dir``, and shared by every method and seed.
    """

    samples_title = "Samples (a fixed latent batch)"

    def __init__(self, config: TrainConfig, cache_dir: Path | None = None) -> None:
        from wgangp.data import ArraySampler, build_sampler
        from wgangp.metrics.images import classifier_metrics

        self.config = config
        fd = MetricSpec("fd", "classifier FD ↓", "lower")
        kid = MetricSpec("kid", "classifier KID ↓", "lower")
        classes = MetricSpec("classes_covered", "classes covered ↑", "higher")
        self.metrics: tuple[MetricSpec, ...] = (fd, kid, classes)
        self.ranking: tuple[MetricSpec, ...] = (fd,)
        self.claim = "WGAN-GP reaches a lower classifier-space Fréchet distance than weight clipping"
        self.scorer = classifier_metrics(config, cache_dir=cache_dir, reference_samples=config.eval_samples)
        sampler = build_sampler(config, torch.device("cpu"))
        assert isinstance(sampler, ArraySampler)
        self.real = sampler.reference(config.batch_size, seed=config.seed + 1_000_003)
        self.seed = config.seed + 1_000_004

    def evaluate(self, trainer: Trainer) -> dict[str, float]:
        metrics = self.scorer(trainer.sample(self.config.eval_samples, seed=self.seed).cpu())
        return {key: float(value) for key, value in metrics.items()}

    def probe_points(self, n: int) -> Tensor:
        return self.real[:n]

    def draw_samples(self, ax: Axes, trainer: Trainer, *, title: str) -> None:
        from wgangp.grid import image_grid

        grid = image_grid(trainer.sample(36, seed=self.seed).cpu())
        ax.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray", interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(title)


def dataset_kind(config: TrainConfig, cache_dir: Path | None = None) -> DatasetKind:
    """The :class:`DatasetKind` for ``config.dataset``."""
    if config.dataset in TOY_DATASETS:
        return ToyKind(config)
    if config.dataset == "digits":
        return DigitsKind(config, cache_dir)
    raise UserError(
        f"compare does not support dataset {config.dataset!r}; choose {', '.join(COMPARE_DATASETS)}"
    )


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

    With a time budget the step count is lifted (the clock stops the run); ``lr_decay="linear"`` then
    decays over that lifted count, i.e. not at all: use a step budget with a decaying schedule.
    """
    overrides: dict[str, Any] = {"dataset": dataset, "seed": seed}
    overrides["steps"] = budget.steps if budget.steps is not None else 1_000_000_000
    if device is not None:
        overrides["device"] = device
    return resolve_config(preset, loss=method, sets=list(sets), overrides=overrides)


@dataclass
class MethodRun:
    """One method on one seed: its training curves, evaluations over time, and final metrics."""

    method: str
    seed: int
    steps: int = 0
    seconds: float = 0.0
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
    kind: DatasetKind,
    budget: Budget,
    *,
    progress: Any = None,
) -> MethodRun:
    """Train ``trainer`` within ``budget``, logging window means every ``log_every`` and metrics every ``eval_every``.

    Only the training iterations are timed. A run whose losses go non-finite stops there and is reported as
    diverged (with the metrics of its last finite evaluation) instead of ending the whole comparison.
    """
    cfg = trainer.config
    run = MethodRun(method=cfg.loss, seed=cfg.seed)
    probe = kind.probe_points(cfg.batch_size)
    window: dict[str, Tensor] = {}
    window_len = 0
    while True:
        # Update the critic ×n_critic, then the generator (timed).
        _sync(trainer.device)
        start = time.perf_counter()
        stats = trainer.train_iteration()
        _sync(trainer.device)
        run.seconds += time.perf_counter() - start
        step = trainer.step
        for key, value in stats.items():
            window[key] = window[key] + value if key in window else value
        window_len += 1
        if progress is not None:
            progress.update(1)
        out_of_budget = (budget.steps is not None and step >= budget.steps) or (
            budget.seconds is not None and run.seconds >= budget.seconds
        )

        # Log window means; the probe measures ‖∇D(x̂)‖ the same way for every loss.
        if step % cfg.log_every == 0 or out_of_budget:
            row = {key: float(value) / window_len for key, value in window.items()}
            row["grad_norm"] = float(trainer.probe_grad_norm(probe))
            window, window_len = {}, 0
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


def judge(summary: dict[str, dict[str, dict[str, float]]], ranking: Sequence[MetricSpec]) -> dict[str, Any]:
    """Whether WGAN-GP beats weight clipping: compare the mean of each ranking metric in order.

    The first metric on which the two means differ decides; equal on all is not a win.
    """
    gp, clip = summary.get("wgan-gp", {}), summary.get("wgan-clip", {})
    for spec in ranking:
        a, b = gp.get(spec.key, {}).get("mean", math.nan), clip.get(spec.key, {}).get("mean", math.nan)
        if not (math.isfinite(a) and math.isfinite(b)):
            continue
        if a != b:
            holds = a > b if spec.better == "higher" else a < b
            return {"holds": holds, "decided_by": spec.key, "wgan-gp": a, "wgan-clip": b}
    return {"holds": False, "decided_by": None, "wgan-gp": None, "wgan-clip": None}


def _save_run(trainer: Trainer, run_dir: Path) -> None:
    """A standard run directory (config + checkpoint), so ``wgangp eval`` and ``sample`` work on it."""
    import json

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_NAME).write_text(json.dumps(trainer.config.to_dict(), indent=2) + "\n")
    CheckpointDir(run_dir, keep=1).save(trainer.state_dict())


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

    from wgangp.report import plot_compare_curves, plot_compare_samples, write_report

    if dataset not in COMPARE_DATASETS:
        raise UserError(f"--dataset must be one of {', '.join(COMPARE_DATASETS)}; got {dataset!r}")
    if seeds < 1:
        raise UserError(f"--seeds must be >= 1; got {seeds}")
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
                run = run_method(trainer, dataset_kind(config), budget, progress=bar)
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
        }
        for m in methods
    }
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
        "claim": {"text": kind.claim, **judge(summary, kind.ranking)},
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
