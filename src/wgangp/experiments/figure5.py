"""The paper's Figure 5 (§5.6, "meaningful loss curves"), on sklearn's digits.

Gulrajani et al. 2017 (arXiv:1704.00028), §5.6 and Fig. 5:

- **5a** — the negative critic loss ``−L_D`` of WGAN-GP tracks sample quality over training: it falls
  as the samples improve. Here: the ``digits`` preset's run, ``−L_D`` (the log rows' window mean, penalty
  included, as the paper plots it) and the classifier-feature FD at every eval, and their Pearson and
  Spearman correlation (:func:`~wgangp.metrics.monitor.loss_quality_correlation`; both fall, so a
  meaningful curve gives a value near +1).
- **5b** — on a small training set the critic overfits: its estimate ``E[D(x)] − E[D(x̃)]`` on the
  training points rises above the one on held-out points (the paper: 1,000 MNIST digits, WGAN-GP and
  weight clipping). Here: ``train_subset`` digits, the held-out monitor (``monitor_holdout``) on, one run
  with WGAN-GP and one with the clipping recipe (RMSProp 5e-5, c = 0.01), same networks and data.

Every run goes through :func:`wgangp.run.loop.train` into ``OUT/runs/<name>/`` (so each can be
``wgangp eval``-ed); the figure and its numbers are functions of those runs' ``metrics.jsonl``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wgangp.config import TrainConfig, resolve_config
from wgangp.metrics.monitor import loss_quality_correlation, overfit_flags, paired_series
from wgangp.pictures.plots import new_figure, save_figure
from wgangp.run.log import read_metrics
from wgangp.run.loop import train

__all__ = ["FIG5B_LOSSES", "figure5_configs", "plot_figure_5", "summarise_figure_5", "write_figure_5"]

FIG5B_LOSSES: tuple[str, ...] = ("wgan-gp", "wgan-clip")
TRAIN_SUBSET = 200  # digits trained on in 5b (the paper: 1,000 of MNIST's 60,000; ours: 200 of 1,797)
HOLDOUT = 500  # held-out digits the monitor scores


def figure5_configs(
    *,
    steps: int = 2000,
    eval_every: int = 100,
    train_subset: int = TRAIN_SUBSET,
    holdout: int = HOLDOUT,
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, TrainConfig]:
    """The runs of Figure 5: ``"5a"`` (the digits preset, all data) and ``"5b-<loss>"`` per 5b loss.

    Without the preset's latent code: the figure is about the critic's own loss, which InfoGAN's
    cross-entropy term would join. ``overrides`` go on top of every run (smaller networks in tests).
    """
    common = {
        "steps": steps,
        "eval_every": eval_every,
        "seed": seed,
        "plot_every": 10**9,
        "latent_codes": 0,
    } | dict(overrides or {})
    common.setdefault("log_every", min(eval_every, 50))
    common.setdefault("checkpoint_every", steps)
    configs = {"5a": resolve_config("digits", overrides=common)}
    monitor = {"train_subset": train_subset, "monitor_holdout": holdout}
    for loss in FIG5B_LOSSES:
        configs[f"5b-{loss}"] = resolve_config("digits", loss=loss, overrides=common | monitor)
    return configs


def summarise_figure_5(
    rows: Mapping[str, Sequence[Mapping[str, Any]]], *, penalty_weight: float
) -> dict[str, Any]:
    """The numbers of Figure 5 from each run's ``metrics.jsonl`` rows (keyed as :func:`figure5_configs`).

    5a: the paired ``(step, −L_D, FD)`` series, ``L_D = critic_loss + λ·penalty`` (the loss the critic
    minimises, penalty included, as the paper plots it; ``penalty_weight`` is the 5a run's λ), and their
    correlations; also those of the critic's estimate ``wasserstein = −critic_loss`` alone. 5b, per loss:
    the monitor's series, the last eval's gap and z, the largest z, and the first step the overfitting
    detector (default k, patience) fires.
    """
    penalised = [
        {**row, "penalised_loss": row["critic_loss"] + penalty_weight * row["penalty"]}
        if "critic_loss" in row and "penalty" in row
        else row
        for row in rows["5a"]
    ]
    steps, neg_loss, fd = paired_series(penalised, loss_key="penalised_loss", quality_key="fd")
    _, neg_unpenalised, _ = paired_series(rows["5a"], loss_key="critic_loss", quality_key="fd")
    out: dict[str, Any] = {
        "5a": {
            "steps": steps,
            "neg_critic_loss": neg_loss,
            "fd": fd,
            "correlation": loss_quality_correlation(neg_loss, fd),
            "estimate": neg_unpenalised,  # −critic_loss = E[D(x)] − E[D(x̃)] on the training batches
            "estimate_correlation": loss_quality_correlation(neg_unpenalised, fd),
        },
        "5b": {},
    }
    for name, run_rows in rows.items():
        if not name.startswith("5b-"):
            continue
        evals = [row for row in run_rows if "w_gap" in row]
        series = {
            key: [float(row[key]) for row in evals] for key in ("w_train", "w_val", "w_gap", "w_gap_se")
        }
        flags = overfit_flags(series["w_gap"], series["w_gap_se"])
        z = [g / s if s > 0 else 0.0 for g, s in zip(series["w_gap"], series["w_gap_se"], strict=True)]
        eval_steps = [int(row["step"]) for row in evals]
        out["5b"][name.removeprefix("5b-")] = {
            "steps": eval_steps,
            **series,
            "final_gap": series["w_gap"][-1],
            "final_z": z[-1],
            "max_z": max(z),
            "overfit_step": next((s for s, f in zip(eval_steps, flags, strict=True) if f), None),
        }
    return out


def plot_figure_5(path: str | Path, summary: Mapping[str, Any]) -> None:
    """5a: ``−L_D`` and FD against the step, and FD against ``−L_D``; 5b: train vs held-out estimates."""
    a, b = summary["5a"], summary["5b"]
    fig = new_figure(4.2 * (2 + len(b)), 3.6)
    ax = fig.add_subplot(1, 2 + len(b), 1)
    ax.plot(a["steps"], a["neg_critic_loss"], color="tab:blue", linewidth=1.2)
    ax.set_xlabel("generator iteration")
    ax.set_ylabel("negative critic loss −L_D (with penalty)", color="tab:blue")
    twin = ax.twinx()
    twin.plot(a["steps"], a["fd"], color="tab:red", linewidth=1.0)
    twin.set_ylabel("classifier FD", color="tab:red")
    twin.set_yscale("log")
    ax.set_title("(a) WGAN-GP, digits")
    ax = fig.add_subplot(1, 2 + len(b), 2)
    ax.scatter(a["neg_critic_loss"], a["fd"], c=a["steps"], cmap="viridis", s=14)
    ax.set_xlabel("−L_D")
    ax.set_ylabel("FD")
    ax.set_yscale("log")
    r = a["correlation"]
    ax.set_title(f"(a) Pearson {r['pearson']:.2f}, Spearman {r['spearman']:.2f}", fontsize="medium")
    ax.grid(True, alpha=0.3)
    for index, (loss, run) in enumerate(b.items()):
        ax = fig.add_subplot(1, 2 + len(b), 3 + index)
        steps = np.asarray(run["steps"], dtype=float)
        for key, label in (("w_train", "training digits"), ("w_val", "held-out digits")):
            ax.plot(steps, run[key], linewidth=1.2, label=label)
        gap, se = np.asarray(run["w_gap"]), np.asarray(run["w_gap_se"])
        ax.fill_between(steps, np.asarray(run["w_val"]), np.asarray(run["w_val"]) + gap, alpha=0.15)
        fired = run["overfit_step"]
        if fired is not None:
            ax.axvline(fired, color="k", linestyle=":", linewidth=1.0, label=f"overfitting from {fired}")
        ax.set_title(
            f"(b) {loss}: gap {gap[-1]:.3g} = {gap[-1] / max(se[-1], 1e-30):.1f} SE", fontsize="medium"
        )
        ax.set_xlabel("generator iteration")
        ax.set_ylabel("E[D(x)] − E[D(x̃)]")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    save_figure(fig, path)


def write_figure_5(out: str | Path, **options: Any) -> tuple[Path, dict[str, Any]]:
    """Train Figure 5's runs into ``OUT/runs/`` and write ``OUT/figure_5.png`` and ``OUT/figure_5.json``.

    ``options`` are :func:`figure5_configs`'. Returns the PNG's path and the summary.
    """
    out = Path(out)
    rows = {}
    configs = figure5_configs(**options)
    for name, config in configs.items():
        run = train(config, out / "runs" / name, overwrite=True, progress=False, tensorboard=False)
        rows[name] = read_metrics(run.run_dir)
    summary = summarise_figure_5(rows, penalty_weight=configs["5a"].penalty_weight)
    summary |= {"configs": {k: v.to_dict() for k, v in configs.items()}}
    path = out / "figure_5.png"
    plot_figure_5(path, summary)
    path.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    return path, summary
