"""The comparison report: the training-curves picture and the documents, built from the results alone.

``write_report`` turns the results dict of :func:`wgangp.experiments.compare.run_comparison` into ``results.json``,
``report.md`` (images beside it) and ``report.html`` (self-contained: images as base64 data URIs). Nothing
here trains or evaluates; the documents are a function of the results and the PNGs alone.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

from wgangp.data.toy import TOY_DATASETS
from wgangp.experiments.methods import CURVE_KEYS, CURVE_METRICS, METHOD_COLORS, method_label
from wgangp.pictures.plots import new_figure, save_figure
from wgangp.storage import write_text_atomic

__all__ = [
    "data_uri",
    "finite_or_null",
    "format_mean_std",
    "markdown_table",
    "pair_lines",
    "plot_compare_curves",
    "write_report",
]


def plot_compare_curves(path: Path, results: dict[str, Any]) -> Path:
    """Training curves of every method and seed: rows against step and training time, one column per stat.

    Columns: the critic's Wasserstein estimate ``E[D(x)] − E[D(x̃)]`` (for the GAN: the logit gap), mean
    ``‖∇D(x̂)‖`` (log scale), the losses, then over the evaluations the first metric and those of
    :data:`~wgangp.experiments.methods.CURVE_METRICS` the kind has (labelled images: the classifier score).
    """
    first = results["metrics"][0]["key"]
    labels = {m["key"]: m["label"] for m in results["metrics"]}
    evaluated = [first, *(k for k in CURVE_METRICS if k in labels and k != first)]
    columns = [*CURVE_KEYS, *evaluated]
    titles = {
        "wasserstein": "E[D(x)] − E[D(x̃)]",
        "grad_norm": "mean ‖∇D(x̂)‖",
        "critic_loss": "critic loss",
        "generator_loss": "generator loss",
        **{key: labels[key] for key in evaluated},
    }
    fig = new_figure(3.2 * len(columns), 5.4)
    for row, axis in enumerate(("step", "time")):
        for col, key in enumerate(columns):
            ax = fig.add_subplot(2, len(columns), row * len(columns) + col + 1)
            for method in results["methods"]:
                for index, run in enumerate(results["runs"][method]):
                    rows = run["evals"] if key in evaluated else run["curves"]
                    points = [(r[axis], r[key]) for r in rows if key in r and math.isfinite(r[key])]
                    if not points:
                        continue
                    xs, ys = zip(*points, strict=True)
                    ax.plot(
                        xs,
                        ys,
                        color=METHOD_COLORS.get(method),
                        alpha=0.9 if index == 0 else 0.45,
                        linewidth=1.0,
                        marker="o" if len(points) == 1 else None,  # one eval: a point, not a blank panel
                        markersize=4,
                        label=method_label(method) if index == 0 else None,
                    )
            if key == "grad_norm":
                ax.set_yscale("log")
            ax.set_title(titles[key], fontsize="small")
            ax.set_xlabel("generator iteration" if axis == "step" else "training time (s)", fontsize="small")
            ax.grid(True, alpha=0.3)
            ax.tick_params(labelsize="x-small")
            if row == 0 and col == 0:
                ax.legend(fontsize="x-small")
    save_figure(fig, path)
    return path


def format_mean_std(stats: dict[str, float], *, digits: int = 3) -> str:
    """``mean ± std`` (just ``mean`` for one seed); ``—`` when there is no finite value."""
    mean, std, n = stats.get("mean", math.nan), stats.get("std", math.nan), stats.get("n", 0)
    if not n or not math.isfinite(mean):
        return "—"
    if n == 1:
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} ± {std:.2g}"


def _table_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["method", *(m["label"] for m in results["metrics"]), "iterations", "train time (s)"]
    rows = []
    for method in results["methods"]:
        summary = results["summary"][method]
        cells = [format_mean_std(summary[m["key"]]) for m in results["metrics"]]
        steps = summary["steps"]
        iterations = f"{steps['mean']:.0f}" + (f" ± {steps['std']:.0f}" if steps["n"] > 1 else "")
        cells += [iterations, format_mean_std(summary["seconds"])]
        diverged = sum(1 for r in results["runs"][method] if r["diverged"])
        name = method_label(method) + (f" ({diverged} diverged)" if diverged else "")
        rows.append([name, *cells])
    floor = results.get("floor") or {}
    if floor:  # what real data score against real data: the best a generator can do with as many samples
        cells = [f"{floor[m['key']]:.3g}" if m["key"] in floor else "—" for m in results["metrics"]]
        rows.append(["real vs real (floor)", *cells, "—", "—"])
    return header, rows


def markdown_table(results: dict[str, Any]) -> str:
    """The metrics table (mean ± std over seeds) as GitHub Markdown."""
    header, rows = _table_rows(results)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _claim_text(results: dict[str, Any]) -> str:
    claim = results["claim"]
    if claim["holds"] is None:
        return f"Claim: {claim['text']} — **not tested** here ({claim['not_tested']})."
    verdict = "holds" if claim["holds"] else "does not hold"
    detail = ""
    if claim["decided_by"] is not None:
        first, second = claim["compared"]
        detail = (
            f" (decided by {claim['decided_by']}: {method_label(first)} {claim[first]:.4g}"
            f" vs {method_label(second)} {claim[second]:.4g}, means over seeds)"
        )
    return f"Claim: {claim['text']} — **{verdict}** here{detail}."


def pair_lines(results: dict[str, Any]) -> list[str]:
    """One line per pair of methods run: which is better on the kind's ranking metrics (means over seeds)."""
    lines = []
    for pair in results.get("pairs", []):
        first, second = pair["compared"]
        a, b = method_label(first), method_label(second)
        if pair["decided_by"] is None:
            lines.append(f"{a} vs {b}: no difference on the ranking metrics")
            continue
        winner, loser = (a, b) if pair["holds"] else (b, a)
        x, y = _distinct(pair[first], pair[second])
        lines.append(f"{winner} beats {loser} on {pair['decided_by']} ({a} {x} vs {b} {y})")
    return lines


def _distinct(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` to 4 significant digits, or as many more as it takes to tell them apart."""
    for digits in range(4, 17):
        x, y = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if x != y:
            break
    return x, y


def _title(results: dict[str, Any]) -> str:
    return " vs ".join(method_label(m) for m in results["methods"]) + f": {results['dataset']}"


def _samples_heading(results: dict[str, Any]) -> str:
    if results["dataset"] in TOY_DATASETS:
        return "Samples over the critic's value surface"
    if results["dataset"] == "text":
        return "Samples (decoded text of a fixed latent batch)"
    return "Samples (a fixed latent batch)"


def _network(config: dict[str, Any]) -> str:
    if config.get("model", "mlp") == "mlp":
        return f"MLP {config['width']}×{config['depth']}"
    if config["model"] == "resnet1d":
        return f"1-D ResNet width {config['width']}, {config['depth']} blocks"
    return f"{config['model']} width {config['conv_width']} at {config['resolution']}×{config['resolution']}"


def _recipe(method: str, config: dict[str, Any]) -> str:
    text = (
        f"{method_label(method)}: {config['optimizer']} lr {config['lr_critic']:g}, n_critic {config['n_critic']}, "
        f"{_network(config)}"
    )
    if config["loss"] == "wgan-gp":
        text += f", λ = {config['penalty_weight']:g}"
    elif config["loss"] == "wgan-clip":
        text += f", c = {config['clip_value']:g}"
    return text


def _intro(results: dict[str, Any]) -> list[str]:
    budget = results["budget"]
    what = (
        f"{budget['steps']} generator iterations per method"
        if budget["steps"] is not None
        else f"{budget['seconds']:g} s of training time per method"
    )
    env = results["environment"]
    seeds = ", ".join(map(str, results["seeds"]))
    return [
        f"Dataset **{results['dataset']}**, preset `{results['preset']}`, budget {what}, seeds {seeds}.",
        "Same networks, data stream and seed for every method; each uses its own optimizer recipe: "
        + "; ".join(_recipe(m, results["configs"][m]) for m in results["methods"])
        + ".",
        f"torch {env['torch']} on {env['device']}, {env['threads']} CPU thread(s).",
    ]


def _markdown(results: dict[str, Any]) -> str:
    images = results["images"]
    parts = [
        f"# {_title(results)}",
        "",
        *_intro(results),
        "",
        "## Metrics (mean ± std over seeds, final generator)",
        "",
        markdown_table(results),
        "",
        _claim_text(results),
        "",
        *(f"- {line}" for line in pair_lines(results)),
        "",
        f"## {_samples_heading(results)}",
        "",
        f"![samples]({images['samples']})",
        "",
        "## Training curves",
        "",
        f"![curves]({images['curves']})",
        "",
        "Raw numbers: `results.json`; each run's checkpoint: `runs/<method>-seed<k>/` "
        "(works with `wgangp eval` and `wgangp sample`).",
        "",
    ]
    return "\n".join(parts)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _html(results: dict[str, Any], out_dir: Path) -> str:
    header, rows = _table_rows(results)
    esc = html.escape
    table = "<table>\n<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>\n"
    table += "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>\n" for row in rows)
    table += "</table>"
    claim = esc(_claim_text(results)).replace("**", "")
    pairs = "".join(f"<li>{esc(line)}</li>" for line in pair_lines(results))
    images = {name: _data_uri(out_dir / file) for name, file in results["images"].items()}
    intro = "".join(f"<p>{esc(line)}</p>" for line in _intro(results))
    title = _title(results)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: sans-serif; max-width: 1400px; margin: 2em auto; padding: 0 1em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 10px; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>{esc(title)}</h1>
{intro}
<h2>Metrics (mean ± std over seeds, final generator)</h2>
{table}
<p>{claim}</p>
<ul>{pairs}</ul>
<h2>{esc(_samples_heading(results))}</h2>
<img alt="samples" src="{images["samples"]}">
<h2>Training curves</h2>
<img alt="curves" src="{images["curves"]}">
</body></html>
"""


def write_report(out_dir: str | Path, results: dict[str, Any]) -> dict[str, Path]:
    """Write ``results.json``, ``report.md`` and ``report.html`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    paths = {"json": out / "results.json", "md": out / "report.md", "html": out / "report.html"}
    write_text_atomic(paths["json"], json.dumps(_finite_or_null(results), indent=1, allow_nan=False) + "\n")
    write_text_atomic(paths["md"], _markdown(results))
    write_text_atomic(paths["html"], _html(results, out))
    return paths


def _finite_or_null(value: Any) -> Any:
    """JSON has no NaN or inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    return value


# Shared with the studies' reports (wgangp.experiments.robustness): JSON without NaN, PNG URIs.
finite_or_null = _finite_or_null
data_uri = _data_uri
