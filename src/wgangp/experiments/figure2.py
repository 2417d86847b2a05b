"""``wgangp figure 2``: the paper's seven architectures × four losses (Sec. 5.2, Figure 2), on the digits.

Reference: Gulrajani et al. 2017 (arXiv:1704.00028), Sec. 5.2 / Figure 2: the DCGAN baseline; no BatchNorm
and constant filters in G; a 4-layer 512-unit ReLU MLP G; no normalisation anywhere; gated
multiplicative nonlinearities; tanh nonlinearities; a 101-layer ResNet — each trained with DCGAN (the
standard GAN), LSGAN, WGAN with weight clipping and WGAN-GP. "Only WGAN-GP trained all of them."

The architectures are :func:`~wgangp.models.factored.figure2_architectures` at the digits' scale (the
ResNet cut to 26 layers for the CPU) with each loss's critic norm (BatchNorm for the baselines, LayerNorm for
WGAN-GP, as gan_64x64.py's ``Normalize``). Each of the 28 runs trains ``steps`` generator iterations with its
loss's recipe and is scored like a robustness run (:mod:`wgangp.experiments.robustness`): one sample grid per
cell, the classifier score and FD in a table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from wgangp.experiments.methods import method_label
from wgangp.experiments.robustness import (
    RESULTS_FORMAT,
    RUNS_DIR,
    RunSettings,
    describe_architecture,
    environment_of,
    format_value,
    plot_pairs,
    recipes_text,
    reference_scores,
    run_config,
    write_documents,
)
from wgangp.experiments.study import Study, figure2_study

__all__ = ["FIGURE2_LOSSES", "make_figure2_study", "write_figure2_report"]

FIGURE2_LOSSES: tuple[str, ...] = ("gan", "lsgan", "wgan-clip", "wgan-gp")  # the figure's columns
LOSS_TITLES: dict[str, str] = {
    "gan": "DCGAN",
    "lsgan": "LSGAN",
    "wgan-clip": "WGAN (clipping)",
    "wgan-gp": "WGAN-GP",
}


def make_figure2_study(seed: int, settings: RunSettings) -> Study:
    """The seven architectures (digits scale) × :data:`FIGURE2_LOSSES`, every run with ``settings``."""
    base = figure2_study("digits", seed, losses=FIGURE2_LOSSES)
    return Study(base.name, tuple(spec | {"train": settings.to_dict()} for spec in base.runs))


def write_figure2_report(results: Sequence[Mapping[str, Any]], out_dir: Path) -> dict[str, Any]:
    """``results.json``, ``report.md``, ``report.html`` and ``figure_2.png`` of a complete Figure 2 study."""
    first = results[0]["spec"]
    reference = reference_scores(run_config(first, device="cpu"), out_dir / RUNS_DIR)
    cells: dict[str, dict[str, Mapping[str, Any]]] = {}
    for result in results:
        cells.setdefault(result["spec"]["architecture_name"], {})[result["spec"]["loss"]] = result
    names = list(cells)
    losses = [loss for loss in FIGURE2_LOSSES if any(loss in cells[n] for n in names)]
    picture = plot_pairs(
        out_dir / "figure_2.png",
        out_dir / RUNS_DIR,
        [
            (
                name,
                [
                    (
                        f"{LOSS_TITLES[loss]} {format_value(cells[name][loss]['metrics']['score'])}",
                        f"{name}-{loss}.png",
                    )
                    for loss in losses
                ],
            )
            for name in names
        ],
        per_line=1,
    )
    trained = {
        loss: sum(
            1
            for n in names
            if cells[n][loss]["metrics"]["score"] > 0.5 * reference["real_score"]
            and not cells[n][loss]["metrics"].get("diverged")
        )
        for loss in losses
    }
    summary: dict[str, Any] = {
        "format_version": RESULTS_FORMAT,
        "study": results[0]["study"],
        "study_id": results[0]["study_id"],
        "settings": dict(first["train"]),
        "seed": int(first["seed"]),
        "reference": reference,
        "losses": losses,
        "architectures": [
            {
                "name": name,
                "label": describe_architecture(cells[name]["gan"]["spec"]["architecture"]),
                "runs": {loss: dict(cells[name][loss]["metrics"]) for loss in losses},
            }
            for name in names
        ],
        "trained_half_real": trained,
        "environment": environment_of(results),
        "images": {"figure": picture.name},
    }
    write_documents(out_dir, summary, _markdown(summary), "Figure 2: seven architectures × four losses")
    return summary


def _markdown(summary: Mapping[str, Any]) -> str:
    s, ref, losses = summary["settings"], summary["reference"], summary["losses"]
    lines = [
        "# Figure 2: seven architectures × four losses",
        "",
        f"The paper's seven architectures scaled to {s['dataset']} (study {summary['study_id']}, seed "
        f"{summary['seed']}), each trained with {', '.join(LOSS_TITLES[x] for x in losses)} for {s['steps']} "
        f"generator iterations at batch {s['batch_size']} ({recipes_text(s, losses)}).",
        "",
        f"Cells: the {s['dataset']} classifier's score exp E KL(p(y|x) ‖ p(y)) / classifier FD on "
        f"{s['eval_samples']} samples. Real {s['dataset']}: **{ref['real_score']:.3g}**; uniform noise "
        f"{ref['noise_score']:.3g}.",
        "",
        "| architecture | " + " | ".join(LOSS_TITLES[x] for x in losses) + " |",
        "|---|" + "---|" * len(losses),
    ]
    for arch in summary["architectures"]:
        row = []
        for loss in losses:
            m = arch["runs"][loss]
            row.append(
                f"{format_value(m['score'])} / {format_value(m['fd'])}"
                + (" (diverged)" if m.get("diverged") else "")
            )
        lines.append(f"| {arch['name']} ({arch['label']}) | " + " | ".join(row) + " |")
    trained = summary["trained_half_real"]
    lines += [
        "",
        "Architectures whose score exceeds half the real score: "
        + ", ".join(
            f"{method_label(x) if x != 'gan' else 'DCGAN'} {trained[x]}/{len(summary['architectures'])}"
            for x in losses
        )
        + ".",
        "",
        f"![Figure 2]({summary['images']['figure']})",
        "",
        f"Training: {summary['environment']['train_cpu_seconds_total']:.0f} CPU seconds in all. "
        f"Sample grids per cell: `{RUNS_DIR}/<architecture>-<loss>.png`; raw numbers: `results.json`.",
        "",
    ]
    return "\n".join(lines)
