"""The paper's Figure 1: what weight clipping does to a critic, and what the gradient penalty does instead.

Gulrajani et al. 2017 (arXiv:1704.00028), Sec. 3 and Fig. 1:

- **1a** — the value surface of a critic trained to (near) optimality against a generator held fixed at
  "real data + N(0, 1) noise", weight clipping vs gradient penalty. Clipping biases the critic towards
  overly simple functions; the penalised critic follows the data. Each arm uses its official optimizer
  (clipping: RMSProp 5e-5 as WGAN; penalty: Adam 1e-4 (0.5, 0.9) as ``gan_toy.py``); ``lr=`` gives both
  one Adam instead (the quick CI run).
- **1b** — swiss roll, 12-layer ReLU MLPs without normalisation: ``‖∂L_D/∂h_l‖`` for each hidden layer
  ``l`` explodes or vanishes under clipping (``c ∈ {0.1, 0.01, 0.001}``) and stays flat with the penalty;
  clipping piles the weights at ``±c``.

Both reuse :class:`~wgangp.trainer.Trainer` (its critic step is exactly Algorithm 1's, clipping and penalty
included); this module adds only the measurements and the pictures.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from wgangp.config import resolve_config
from wgangp.data.toy import TOY_DATASETS, ToySampler
from wgangp.losses import clip_weights_, wasserstein_critic_loss
from wgangp.metrics.toy import wasserstein1
from wgangp.models.mlp import MLPCritic, MLPGenerator
from wgangp.penalty import gradient_norms
from wgangp.pictures.plots import critic_surface, new_figure, save_figure
from wgangp.storage import write_text_atomic
from wgangp.trainer import Trainer

__all__ = [
    "FIG1A_ITERATIONS",
    "FIG1A_QUICK",
    "FIG1B_QUICK",
    "FIG1B_STEPS",
    "Figure1aPanel",
    "Figure1bRun",
    "NoisyData",
    "fraction_at_bound",
    "layer_gradient_norms",
    "plot_figure_1a",
    "plot_figure_1b",
    "run_figure_1a",
    "run_figure_1b",
    "write_figure_1a",
    "write_figure_1b",
]

FIG1B_CLIP_VALUES: tuple[float, ...] = (0.1, 0.01, 0.001)
FIG1A_ITERATIONS = 5000  # critic steps of Fig. 1a at the official recipes (README: what they recover)
FIG1B_STEPS = 200  # generator iterations of Fig. 1b
# `wgangp figure 1a|1b --quick`: the reduced runs CI (and a first look) can afford. 1a's shares one Adam
# 1e-3 between both arms (it converges in fewer steps than the official recipes); 1b's is 30 iterations.
FIG1A_QUICK: dict[str, Any] = {"iterations": 500, "width": 128, "lr": 1e-3}
FIG1B_QUICK: dict[str, Any] = {"steps": 30, "batch_size": 64}
HISTOGRAM_BINS = 40  # bins over [−c, c] of the weight histograms Fig. 1b records over iterations


class NoisyData(nn.Module):
    """The fixed "generator" of Fig. 1a: ``x̃ = x + σ·n``, ``x ~ P_r``, ``n ~ N(0, I)``; ignores its input.

    It has no parameters; fresh real points come from its own sampler, noise from its own generator, so a
    critic trained against it sees the same stream for a given seed. Input ``z``: ``[N, ·]``, output ``[N, 2]``.
    """

    def __init__(self, dataset: str, *, noise_std: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        self.data = ToySampler(dataset, 1, seed=seed)
        self.noise = torch.Generator().manual_seed(seed + 1)
        self.noise_std = noise_std

    def forward(self, z: Tensor) -> Tensor:
        real = self.data.sample(z.shape[0])  # [N, 2]
        return (real + self.noise_std * torch.randn(real.shape, generator=self.noise)).to(z.device)


# --- Figure 1a -----------------------------------------------------------------------------------------


@dataclass
class Figure1aPanel:
    """One critic of Fig. 1a and how close to optimal it got.

    ``w_estimate = E[D(x)] − E[D(x̃)]`` on held-out points; ``lipschitz = max ‖∇D‖`` over the grid and those
    points; ``w1`` the exact empirical W1 between them. ``w_estimate / lipschitz`` is (up to the max being
    taken on samples) a lower bound on W1, so ``recovered = w_estimate / (lipschitz · w1)`` is the fraction
    of the true distance that this critic, rescaled to be 1-Lipschitz, can see: 1 is an optimal critic.
    """

    dataset: str
    loss: str
    surface: tuple[np.ndarray, np.ndarray, np.ndarray]
    real: Tensor
    fake: Tensor
    w_estimate: float
    lipschitz: float
    w1: float
    optimizer: str = ""
    lr: float = 0.0
    iterations: int = 0
    history: list[dict[str, float]] = field(default_factory=list)  # the same numbers every record_every steps

    @property
    def recovered(self) -> float:
        return self.w_estimate / (self.lipschitz * self.w1)

    def summary(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "loss": self.loss,
            "w_estimate": self.w_estimate,
            "lipschitz": self.lipschitz,
            "w1": self.w1,
            "recovered": self.recovered,
            "optimizer": self.optimizer,
            "lr": self.lr,
            "iterations": self.iterations,
            "history": self.history,
        }


def _max_gradient_norm(critic: nn.Module, points: Tensor) -> float:
    x = points.detach().clone().requires_grad_(True)
    (grads,) = torch.autograd.grad(critic(x).sum(), x)
    return float(gradient_norms(grads).max())


def run_figure_1a(
    dataset: str,
    loss: str,
    *,
    iterations: int = FIG1A_ITERATIONS,
    width: int = 512,
    penalty_weight: float = 10.0,
    lr: float | None = None,
    batch_size: int = 256,
    eval_samples: int = 1000,
    resolution: int = 128,
    seed: int = 0,
    record_every: int | None = None,
) -> Figure1aPanel:
    """Train a critic against :class:`NoisyData` for ``iterations`` critic steps and measure it.

    The critic is the toy MLP (``width`` × 3, ReLU) updated by :meth:`Trainer.critic_step`, with the loss's
    own constraint (clip at ±0.01, or the two-sided penalty with weight ``penalty_weight``, the paper's 10).
    ``lr=None`` trains each arm with its official recipe (the ``toy`` preset and the loss's recipe:
    clipping RMSProp 5e-5, penalty Adam 1e-4 (0.5, 0.9)); a number gives both Adam(``lr``, (0.5, 0.9)).
    ``record_every`` also measures the critic every that many steps (``history``: step, W estimate,
    max ‖∇D‖, recovered fraction), so a run says how many steps it took to get where it got.
    """
    overrides: dict[str, Any] = {
        "dataset": dataset,
        "width": width,
        "batch_size": batch_size,
        "penalty_weight": penalty_weight,
        "seed": seed,
        "device": "cpu",
    }
    if lr is not None:
        overrides |= {"optimizer": "adam", "lr_critic": lr, "beta1": 0.5, "beta2": 0.9}
    config = resolve_config("toy", loss=loss, overrides=overrides)
    trainer = Trainer(config)
    trainer.generator = NoisyData(dataset, seed=seed + 7)

    held_out = NoisyData(dataset, seed=seed + 1_000_003)
    real = ToySampler(dataset, 1, seed=seed + 1_000_005).sample(eval_samples)  # [n, 2]
    fake = held_out(torch.empty(eval_samples, 0))  # [n, 2]
    w1 = wasserstein1(fake, real)
    axis = torch.linspace(-3.0, 3.0, resolution, dtype=torch.float32)  # critic_surface's grid
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), dim=-1).reshape(-1, 2)  # [R·R, 2]
    points = torch.cat([grid, real, fake])
    critic = trainer.critic

    def measure() -> tuple[float, float]:
        with torch.no_grad():
            w_estimate = -float(wasserstein_critic_loss(critic(real), critic(fake)))
        return w_estimate, _max_gradient_norm(critic, points)

    history = []
    for step in range(1, iterations + 1):
        trainer.critic_step()
        if record_every is not None and (step % record_every == 0 or step == iterations):
            w, lipschitz = measure()
            history.append(
                {"step": step, "w_estimate": w, "lipschitz": lipschitz, "recovered": w / (lipschitz * w1)}
            )
    w_estimate, lipschitz = measure()
    surface = critic_surface(critic, resolution=resolution)
    return Figure1aPanel(
        dataset=dataset,
        loss=loss,
        surface=surface,
        real=real,
        fake=fake,
        w_estimate=w_estimate,
        lipschitz=lipschitz,
        w1=w1,
        optimizer=f"{config.optimizer} {config.lr_critic:g}",
        lr=config.lr_critic,
        iterations=iterations,
        history=history,
    )


def plot_figure_1a(path: str | os.PathLike[str], panels: list[Figure1aPanel], *, points: int = 300) -> None:
    """Fig. 1a as a PNG: one column per dataset, rows weight clipping (top) and gradient penalty (bottom)."""
    datasets = list(dict.fromkeys(p.dataset for p in panels))
    losses = list(dict.fromkeys(p.loss for p in panels))
    fig = new_figure(3.2 * len(datasets), 3.1 * len(losses))
    for panel in panels:
        row, col = losses.index(panel.loss), datasets.index(panel.dataset)
        ax = fig.add_subplot(len(losses), len(datasets), row * len(datasets) + col + 1)
        xs, ys, values = panel.surface
        ax.contourf(xs, ys, values, levels=20, cmap="viridis")
        ax.contour(xs, ys, values, levels=20, colors="k", linewidths=0.3, alpha=0.5)
        real = panel.real[:points].numpy()
        ax.scatter(real[:, 0], real[:, 1], c="orange", marker="+", s=10, linewidths=0.6)
        ax.set_xlim(float(xs[0]), float(xs[-1]))
        ax.set_ylim(float(ys[0]), float(ys[-1]))
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        name = {"wgan-clip": "weight clipping", "wgan-gp": "gradient penalty"}.get(panel.loss, panel.loss)
        ax.set_title(
            f"{panel.dataset}: {name} ({panel.optimizer})\nrecovers {panel.recovered:.0%} of W1",
            fontsize="small",
        )
    save_figure(fig, path)


# --- Figure 1b -----------------------------------------------------------------------------------------


def layer_gradient_norms(critic: MLPCritic, real: Tensor, fake: Tensor) -> Tensor:
    """``‖∂L_D/∂h_l‖`` for every hidden activation ``h_l`` (ReLU output) of an MLP critic, first layer first.

    ``L_D = E[D(x̃)] − E[D(x)]`` on the batch (the Wasserstein part, the same for every constraint); the norm
    is taken over the whole ``[B, width]`` activation. Returns float64 ``[depth]``.
    """
    activations: list[Tensor] = []

    def keep(_module: nn.Module, _inputs: Any, output: Tensor) -> None:
        output.retain_grad()
        activations.append(output)

    hooks = [m.register_forward_hook(keep) for m in critic.modules() if isinstance(m, nn.ReLU)]
    try:
        # One forward over both halves, so each layer's activation is one tensor [2B, width].
        real_scores, fake_scores = critic(torch.cat([real, fake])).split([real.shape[0], fake.shape[0]])
        loss = wasserstein_critic_loss(real_scores, fake_scores)
    finally:
        for hook in hooks:
            hook.remove()
    loss.backward(inputs=activations)
    norms = [h.grad.double().norm() for h in activations if h.grad is not None]
    return torch.stack(norms)


def fraction_at_bound(module: nn.Module, clip_value: float, *, tolerance: float = 0.01) -> float:
    """Fraction of the Linear layers' weights with ``|w| ≥ (1 − tolerance)·c``: within 1% of ``±c``."""
    weights = torch.cat([m.weight.detach().flatten() for m in module.modules() if isinstance(m, nn.Linear)])
    return float((weights.abs() >= (1.0 - tolerance) * clip_value).double().mean())


@dataclass
class Figure1bRun:
    """One run of Fig. 1b: its per-layer gradient norms, its critic's weights and the numbers the paper reads."""

    label: str
    clip_value: float | None
    layer_norms: np.ndarray  # [depth], float64
    weights: np.ndarray  # all Linear weights of the critic, flattened
    at_bound: float | None  # fraction of weights within 1% of ±c (clipping only)
    steps: int
    extra: dict[str, float] = field(default_factory=dict)
    # Clipping, every record_every iterations: the step, the fraction at ±c, and the weight histogram
    # (HISTOGRAM_BINS equal bins over [−c, c]).
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def span(self) -> float:
        """``max_l ‖∂L/∂h_l‖ / min_l ‖∂L/∂h_l‖``: 1 is flat; ≫ 1 is exploding or vanishing."""
        return float(self.layer_norms.max() / self.layer_norms.min())

    @property
    def trend(self) -> str:
        """``exploding`` if the norm grows towards the input (backwards), ``vanishing`` if it shrinks."""
        first, last = self.layer_norms[0], self.layer_norms[-1]
        if self.span < 3.0:
            return "flat"
        return "exploding" if first > last else "vanishing"

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "clip_value": self.clip_value,
            "steps": self.steps,
            "layer_norms": [float(v) for v in self.layer_norms],
            "span": self.span,
            "trend": self.trend,
            "fraction_at_bound": self.at_bound,
            **self.extra,
            "history": self.history,
        }


def run_figure_1b(
    clip_value: float | None,
    *,
    steps: int = FIG1B_STEPS,
    width: int = 512,
    depth: int = 12,
    batch_size: int = 256,
    penalty_weight: float = 10.0,
    measure_samples: int = 1024,
    seed: int = 0,
    record_every: int | None = None,
) -> Figure1bRun:
    """Train a GAN with ``depth``-layer ReLU MLPs on the swiss roll and measure the critic's gradients.

    ``clip_value=None`` is WGAN-GP (Adam 1e-4, β = (0.5, 0.9), λ = ``penalty_weight``, the paper's 10);
    otherwise WGAN with clipping at ``±clip_value`` and its own recipe (RMSProp 5e-5). Both start from the
    official code's He initialisation (``init="official"``): with PyTorch's default init a 12-layer ReLU
    MLP's gradients vanish by themselves, and the figure is about the constraint, not the init.
    Under clipping, ``record_every`` records the weights' histogram and the fraction at ``±c`` every that
    many iterations (and after the last), so a run shows how fast the weights pile at the bound.
    """
    loss = "wgan-gp" if clip_value is None else "wgan-clip"
    overrides: dict[str, Any] = {
        "dataset": "swissroll",
        "width": width,
        "depth": depth,
        "batch_size": batch_size,
        "steps": steps,
        "seed": seed,
        "device": "cpu",
        "penalty_weight": penalty_weight,
    }
    if clip_value is not None:
        overrides["clip_value"] = clip_value
    config = resolve_config("toy", loss=loss, overrides=overrides)
    trainer = Trainer(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        trainer.generator.load_state_dict(
            MLPGenerator(config.latent_dim, 2, width=width, depth=depth, init="official").state_dict()
        )
        trainer.critic.load_state_dict(MLPCritic(2, width=width, depth=depth, init="official").state_dict())
    if clip_value is not None:
        # WGAN clips after every update; clipping once first puts the starting point inside the constraint.
        clip_weights_(trainer.critic, clip_value)
    # With c = 0.001 the generator's gradients and RMSProp's squared averages fall below float32's normal
    # range; subnormal arithmetic is ~100× slower on CPUs. Flushing them to 0 changes nothing measured here
    # (the smallest layer norm is ~1e-23, far above 1e-38).
    flush = torch.set_flush_denormal(True)
    history: list[dict[str, Any]] = []
    if clip_value is not None and record_every is not None:
        history.append(_weight_record(trainer.critic, clip_value, 0))
    try:
        for step in range(1, steps + 1):
            trainer.train_iteration()
            if (
                clip_value is not None
                and record_every is not None
                and (step % record_every == 0 or step == steps)
            ):
                history.append(_weight_record(trainer.critic, clip_value, step))
    finally:
        if flush:
            torch.set_flush_denormal(False)

    real = ToySampler("swissroll", 1, seed=seed + 1_000_003).sample(measure_samples)  # [n, 2]
    fake = trainer.sample(measure_samples, seed=seed + 1_000_004)  # [n, 2]
    critic = trainer.critic
    assert isinstance(critic, MLPCritic)
    norms = layer_gradient_norms(critic, real, fake).numpy()
    critic.zero_grad(set_to_none=True)
    weights = torch.cat([m.weight.detach().flatten() for m in critic.modules() if isinstance(m, nn.Linear)])
    label = "gradient penalty" if clip_value is None else f"weight clipping c={clip_value:g}"
    return Figure1bRun(
        label=label,
        clip_value=clip_value,
        layer_norms=norms,
        weights=weights.numpy(),
        at_bound=None if clip_value is None else fraction_at_bound(critic, clip_value),
        steps=steps,
        extra={"w1": wasserstein1(fake, real)},
        history=history,
    )


def _weight_record(critic: nn.Module, clip_value: float, step: int) -> dict[str, Any]:
    weights = torch.cat([m.weight.detach().flatten() for m in critic.modules() if isinstance(m, nn.Linear)])
    counts = torch.histc(weights.double(), bins=HISTOGRAM_BINS, min=-clip_value, max=clip_value)
    return {
        "step": step,
        "fraction_at_bound": fraction_at_bound(critic, clip_value),
        "histogram": [int(c) for c in counts],
    }


def plot_figure_1b(path: str | os.PathLike[str], runs: list[Figure1bRun]) -> None:
    """Fig. 1b as a PNG: log-scale ``‖∂L_D/∂h_l‖`` per layer (left) and a weight histogram per run (right)."""
    tracked = [run for run in runs if run.history]
    extra = 1 if tracked else 0
    fig = new_figure(4.6 + 2.6 * len(runs) + 3.4 * extra, 3.4 + 3.0 * extra)
    grid = fig.add_gridspec(
        1 + extra,
        1 + len(runs) + extra,
        width_ratios=[1.8] + [1.0] * len(runs) + [1.3] * extra,
        height_ratios=[1.0] * (1 + extra),
    )
    ax = fig.add_subplot(grid[0, 0])
    clip_colors = iter(["tab:red", "tab:orange", "tab:purple", "tab:brown", "tab:pink"])
    colors = [("tab:blue" if run.clip_value is None else next(clip_colors, "tab:gray")) for run in runs]
    for run, color in zip(runs, colors, strict=True):
        layers = np.arange(1, len(run.layer_norms) + 1)
        style = "-o" if run.clip_value is None else "--s"
        ax.semilogy(
            layers, run.layer_norms, style, color=color, markersize=3, label=f"{run.label} (×{run.span:.3g})"
        )
    ax.set_xlabel("critic layer l")
    ax.set_ylabel("‖∂L_D / ∂h_l‖")
    ax.set_title("gradient norm per layer (log scale)", fontsize="medium")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="x-small")
    for index, run in enumerate(runs):
        hist = fig.add_subplot(grid[0, index + 1])
        hist.hist(run.weights, bins=60, color=colors[index])
        hist.set_title(run.label, fontsize="small")
        hist.set_yticks([])
        if run.at_bound is not None:
            hist.set_xlabel(f"{run.at_bound:.0%} within 1% of ±c", fontsize="small")
        hist.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
    if tracked:
        # The histograms over iterations, read at the bound: the fraction of weights within 1% of ±c.
        ax = fig.add_subplot(grid[0, -1])
        for run in tracked:
            ax.plot(
                [r["step"] for r in run.history],
                [r["fraction_at_bound"] for r in run.history],
                "-",
                color=colors[runs.index(run)],
                label=run.label,
            )
        ax.axhline(0.5, color="k", linewidth=0.6, linestyle=":")
        ax.set_ylim(0.0, 1.0)
        ax.set_xlabel("generator iteration")
        ax.set_title("weights within 1% of ±c", fontsize="medium")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small")
        # Under each tracked run's histogram, the histograms themselves over iterations (log counts).
        for run in tracked:
            _plot_histograms_over_iterations(fig.add_subplot(grid[1, runs.index(run) + 1]), run)
    save_figure(fig, path)


def _plot_histograms_over_iterations(ax: Any, run: Figure1bRun) -> None:
    """One row per record: the weights' histogram over ``[−c, c]`` (``HISTOGRAM_BINS`` bins), log10(1 + count)."""
    assert run.clip_value is not None
    steps = np.array([r["step"] for r in run.history], dtype=float)  # [R]
    counts = np.array([r["histogram"] for r in run.history], dtype=float)  # [R, bins]
    if len(steps) > 1:
        mids = (steps[1:] + steps[:-1]) / 2
        rows = np.concatenate([[steps[0]], mids, [steps[-1]]])  # [R + 1] row edges
    else:
        rows = np.array([steps[0] - 0.5, steps[0] + 0.5])
    c = run.clip_value
    mesh = ax.pcolormesh(np.linspace(-c, c, counts.shape[1] + 1), rows, np.log10(1 + counts), cmap="viridis")
    ax.set_xlabel("weight value", fontsize="small")
    ax.set_ylabel("generator iteration", fontsize="small")
    ax.set_title(f"{run.label}: histogram over iterations", fontsize="small")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
    ax.figure.colorbar(mesh, ax=ax, label="log10(1 + count)")


# --- Writing the figures -------------------------------------------------------------------------------


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")


def write_figure_1a(
    out_dir: str | Path,
    *,
    datasets: Sequence[str] = TOY_DATASETS,
    iterations: int = FIG1A_ITERATIONS,
    width: int = 512,
    batch_size: int = 256,
    resolution: int = 128,
    seed: int = 0,
    lr: float | None = None,
    record_every: int | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Run Fig. 1a (clipping and penalty on each dataset) and write ``figure_1a.png`` and ``figure_1a.json``.

    ``lr=None``: each arm's official optimizer; ``record_every``: each panel's history (:func:`run_figure_1a`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    panels = [
        run_figure_1a(
            dataset,
            loss,
            iterations=iterations,
            width=width,
            batch_size=batch_size,
            resolution=resolution,
            seed=seed,
            lr=lr,
            record_every=record_every,
        )
        for loss in ("wgan-clip", "wgan-gp")
        for dataset in datasets
    ]
    path = out / "figure_1a.png"
    plot_figure_1a(path, panels)
    summary = {
        "iterations": iterations,
        "width": width,
        "batch_size": batch_size,
        "seed": seed,
        "recipe": "official" if lr is None else f"adam {lr:g} for both arms",
        "panels": [p.summary() for p in panels],
    }
    _write_json(path.with_suffix(".json"), summary)
    return path, summary


def write_figure_1b(
    out_dir: str | Path,
    *,
    clip_values: Sequence[float] = FIG1B_CLIP_VALUES,
    steps: int = FIG1B_STEPS,
    width: int = 512,
    depth: int = 12,
    batch_size: int = 256,
    seed: int = 0,
    record_every: int | None = None,
    penalty: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Run Fig. 1b (each ``c``, and the penalty unless ``penalty=False``); write ``figure_1b.png`` / ``.json``."""
    if not clip_values and not penalty:
        raise ValueError("figure 1b needs at least one run: clip values or the penalty")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = [
        run_figure_1b(
            c,
            steps=steps,
            width=width,
            depth=depth,
            batch_size=batch_size,
            seed=seed,
            record_every=record_every,
        )
        for c in (*clip_values, *([None] if penalty else []))
    ]
    path = out / "figure_1b.png"
    plot_figure_1b(path, runs)
    summary = {
        "steps": steps,
        "width": width,
        "depth": depth,
        "batch_size": batch_size,
        "seed": seed,
        "runs": [r.summary() for r in runs],
    }
    _write_json(path.with_suffix(".json"), summary)
    return path, summary
