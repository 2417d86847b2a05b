"""``wgangp robustness``: the paper's random-architecture study (Sec. 5.1, Table 2), on the study engine.

Reference: Gulrajani et al. 2017 (arXiv:1704.00028), Sec. 5.1: 200 architectures drawn from Table 1's
factors, each trained with the standard GAN and with WGAN-GP; a run succeeds at threshold ``t`` when its
Inception score exceeds ``t``, and Table 2 counts the architectures where only one, both or neither succeed.

Here the data are sklearn's 8×8 digits and the score is the dataset classifier's Inception-style score
``exp E_x KL(p(y|x) ‖ p(y))`` (:mod:`wgangp.metrics.score`), with thresholds as fractions of the real digits'
score (:data:`~wgangp.experiments.study.THRESHOLD_FRACTIONS`). Every run trains ``steps`` generator iterations
(the same budget for both losses, each with its own recipe: the ``digits`` preset for WGAN-GP, the GAN's
``--loss`` recipe), then is scored on ``eval_samples`` samples (score and classifier FD) and leaves a sample
grid ``<run_id>.png`` beside its ``<run_id>.json``.

The runs are independent: :func:`~wgangp.experiments.study.run_study` runs one shard of them on ``jobs``
processes, skipping finished ones, and :func:`write_robustness_report` builds ``report.md``, ``report.html``
and ``results.json`` from the results of every shard alone (``--merge``). :mod:`wgangp.experiments.figure2`
runs Figure 2's study on the same machinery.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import html
import json
import math
import os
import platform
import re
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from wgangp.config import TrainConfig, resolve_config
from wgangp.errors import UserError
from wgangp.experiments.methods import method_label
from wgangp.experiments.study import (
    DIGITS_FACTORS,
    THRESHOLD_FRACTIONS,
    Study,
    counts_markdown,
    merge,
    robustness_study,
    run_study,
    score_pairs,
    success_counts,
)

__all__ = [
    "EVAL_SEED",
    "GRID_IMAGES",
    "RESULTS_FORMAT",
    "RUNS_DIR",
    "RunSettings",
    "architecture_keys",
    "collect",
    "describe_architecture",
    "environment_of",
    "finish_study",
    "format_value",
    "make_robustness_study",
    "markdown_to_html",
    "plot_pairs",
    "prepare_scorer",
    "recipes_text",
    "reference_scores",
    "run_config",
    "train_and_score",
    "write_documents",
    "write_robustness_report",
]

EVAL_SEED = 1  # latents of the scored samples (the same for every run)
GRID_SEED = 2  # latents of each run's sample grid
GRID_IMAGES = 36  # images per run's grid (6 × 6)
SCORE_SPLITS = 10  # the Inception score's convention: the mean over 10 splits
RESULTS_FORMAT = 1
RUNS_DIR = "runs"  # a study directory's per-run results (<run_id>.json, <run_id>.png) and classifier

# Architecture field → config key of model=factored (wgangp.models.architecture_of is the inverse).
_CONFIG_KEYS: dict[str, str] = {
    "generator": "generator_model",
    "activation": "activation",
    "critic_activation": "critic_activation",
    "depth": "conv_depth",
    "width": "conv_width",
    "generator_filters": "generator_filters",
    "critic_filters": "critic_filters",
    "generator_norm": "generator_norm",
    "critic_norm": "critic_norm",
    "residual": "residual",
    "mlp_width": "width",
    "mlp_depth": "depth",
}


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """What every run of a study shares: data, recipe preset and budget. Part of each spec (and study id)."""

    dataset: str = "digits"  # the study's data (only labelled image sets can be scored)
    # The WGAN-GP recipe; the other losses apply their --loss recipe on top. Not `digits`: that preset is
    # tuned for one long run and may be retuned again, and a spec holds the preset's name (not its values),
    # so a study must name a recipe that stays put. digits-dcgan (Adam 1e-3, n_critic 5, λ = 10) is the one
    # the README's Table 2 and Figure 2 were measured with.
    preset: str = "digits-dcgan"
    # Generator iterations per run, the same for every loss (paper: 100k/200k). 200 keeps 20 architectures
    # × 2 losses within ~10 min on 2 cores (--jobs 2): ~0.1 CPU s per WGAN-GP iteration at 8×8.
    steps: int = 200
    batch_size: int = 64
    eval_samples: int = 1000  # samples scored per run (score over 10 splits, FD against as many real)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def architecture_keys(architecture: Mapping[str, Any]) -> dict[str, Any]:
    """An Architecture dict as config keys of ``model=factored``."""
    return {_CONFIG_KEYS[name]: value for name, value in architecture.items()}


def run_config(spec: Mapping[str, Any], *, device: str = "cpu") -> TrainConfig:
    """The training config of one run spec: preset → the loss's recipe → the architecture and settings."""
    train = spec["train"]
    overrides: dict[str, Any] = {
        "dataset": train["dataset"],
        "model": "factored",
        "seed": int(spec["seed"]),
        "steps": int(train["steps"]),
        "batch_size": int(train["batch_size"]),
        "eval_samples": int(train["eval_samples"]),
        "device": device,
        **architecture_keys(spec["architecture"]),
    }
    return resolve_config(train["preset"], loss=spec["loss"], overrides=overrides)


def prepare_scorer(config: TrainConfig, cache_dir: Path) -> Any:
    """The dataset classifier and real features (trained once, cached as ``classifier.pt`` in ``cache_dir``)."""
    from wgangp.metrics.images import classifier_metrics

    return classifier_metrics(config, cache_dir=cache_dir, reference_samples=config.eval_samples)


def reference_scores(config: TrainConfig, cache_dir: Path) -> dict[str, float]:
    """The score of ``eval_samples`` real images and of as many uniform-noise images: the scale's two ends."""
    from wgangp.data import labelled_images
    from wgangp.data.sampler import epoch_order
    from wgangp.metrics.images import to_unit
    from wgangp.metrics.score import classifier_score

    scorer = prepare_scorer(config, cache_dir)
    images, _ = labelled_images(config, "train")
    n = min(config.eval_samples, images.shape[0])
    real = to_unit(images[epoch_order(images.shape[0], EVAL_SEED, 0)[:n]])  # [n, C, R, R]
    noise = torch.rand(real.shape, generator=torch.Generator().manual_seed(EVAL_SEED)) * 2 - 1
    real_score, real_std = classifier_score(scorer, real, splits=SCORE_SPLITS)
    noise_score, _ = classifier_score(scorer, noise, splits=SCORE_SPLITS)
    return {
        "real_score": real_score,
        "real_score_std": real_std,
        "noise_score": noise_score,
        "classifier_accuracy": scorer.accuracy,
    }


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """``threads`` torch threads inside, the caller's count restored after: a study's classifier and runs
    compute the same numbers here as in a worker (CPU reductions split differently over threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_and_score(
    spec: dict[str, Any], *, out_dir: str, device: str = "cpu", threads: int = 1
) -> dict[str, Any]:
    """Train one run of a study, score its final generator and write its sample grid ``<run_id>.png``.

    Runs in a worker process (``spawn``), or here with ``--jobs 1``: one torch thread each, so ``--jobs J``
    uses J cores. Training stops at the first non-finite loss; such a run is reported as diverged with the
    floor score 1 (no class information) and no FD.
    """
    with torch_threads(threads):
        return _train_and_score(spec, out_dir=out_dir, device=device)


def _train_and_score(spec: dict[str, Any], *, out_dir: str, device: str) -> dict[str, Any]:
    from wgangp.metrics.score import classifier_score
    from wgangp.pictures.grid import save_grid
    from wgangp.trainer import Trainer

    out = Path(out_dir)
    config = run_config(spec, device=device)
    trainer = Trainer(config)
    scorer = prepare_scorer(config, out)
    diverged: str | None = None
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(config.steps):
        stats = trainer.train_iteration()
        bad = [
            k for k in ("critic_loss", "generator_loss") if k in stats and not math.isfinite(float(stats[k]))
        ]
        if bad:
            diverged = f"non-finite {bad[0].replace('_', ' ')} at step {trainer.step}"
            break
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    fakes = trainer.sample(config.eval_samples, seed=EVAL_SEED).cpu()  # [n, C, R, R]
    metrics: dict[str, Any] = {
        "steps": trainer.step,
        "train_seconds": wall,
        "train_cpu_seconds": cpu,
        "diverged": diverged,
        "device": str(trainer.device),
    }
    if diverged is None and bool(torch.isfinite(fakes).all()):
        score, score_std = classifier_score(scorer, fakes, splits=SCORE_SPLITS)
        quality = scorer(fakes)
        metrics |= {"score": score, "score_std": score_std, "fd": quality["fd"]}
        metrics |= {k: quality[k] for k in ("classes_covered", "confident_fraction")}
    else:
        diverged = diverged or "non-finite samples"
        metrics |= {"diverged": diverged, "score": 1.0, "score_std": 0.0, "fd": None}
        fakes = torch.nan_to_num(fakes, nan=0.0).clamp(-1, 1)
    grid = trainer.sample(GRID_IMAGES, seed=GRID_SEED).cpu()
    save_grid(torch.nan_to_num(grid, nan=0.0).clamp(-1, 1), out / f"{spec['run_id']}.png", scale=2)
    return metrics


def make_robustness_study(architectures: int, seed: int, settings: RunSettings) -> Study:
    """Table 2's study on the digits: ``architectures`` draws from the scaled factors × (GAN, WGAN-GP)."""
    if architectures < 1:
        raise UserError(f"--architectures must be ≥ 1; got {architectures}")
    base = robustness_study(architectures, seed, DIGITS_FACTORS)
    runs = tuple(spec | {"train": settings.to_dict()} for spec in base.runs)
    return Study(base.name, runs)


def _settings_of(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return dict(results[0]["spec"]["train"])


def finish_study(
    study: Study,
    out_dir: Path,
    *,
    shard: tuple[int, int],
    jobs: int,
    device: str,
) -> list[dict[str, Any]]:
    """Run this shard of ``study`` into ``out_dir`` (classifier first, so the workers only load it)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot write to output directory {out_dir}: {err.strerror or err}") from None
    runs = out_dir / RUNS_DIR
    _check_study_dir(study, runs)
    runs.mkdir(exist_ok=True)
    with torch_threads(1):  # the classifier as the workers would train it
        prepare_scorer(run_config(study.runs[0], device="cpu"), runs)
    run_fn = functools.partial(train_and_score, out_dir=str(runs), device=device)
    return run_study(study, run_fn, runs, shard=shard, jobs=jobs)


def _check_study_dir(study: Study, out_dir: Path) -> None:
    """Refuse a directory that holds another study before anything is written into it."""
    manifest = out_dir / "study.json"
    if manifest.is_file():
        try:
            saved = json.loads(manifest.read_text()).get("study_id")
        except (OSError, json.JSONDecodeError, AttributeError):
            saved = None
        if saved != study.study_id:
            raise UserError(
                f"{out_dir} holds another study ({saved}), not this {study.name} ({study.study_id}): "
                "use another --out, or the same options as the run that made it"
            )


def collect(dirs: Sequence[str | Path], out_dir: Path, *, name: str) -> list[dict[str, Any]]:
    """The merged results of the study directories ``dirs`` (one study, every run present).

    Their results, grids and manifest are copied into ``out_dir/runs`` (where the report finds the grids), so
    ``out_dir`` is a complete study directory: it can be merged again or rerun to nothing.
    """
    run_dirs = [Path(d) / RUNS_DIR for d in dirs]
    for directory in run_dirs:
        if not directory.is_dir():
            raise UserError(f"{directory.parent}: not a study directory (no {RUNS_DIR}/ inside)")
    results = merge(run_dirs)
    if not results:
        raise UserError(f"no study results in {', '.join(map(str, dirs))}")
    if results[0].get("study") != name:
        raise UserError(f"{dirs[0]} holds a {results[0].get('study')} study, not {name}")
    manifest = _manifest(run_dirs, results[0]["study_id"])
    missing = sorted({spec["run_id"] for spec in manifest["runs"]} - {r["run_id"] for r in results})
    if missing:
        raise UserError(
            f"{len(missing)} of {len(manifest['runs'])} runs have no result yet (first: {missing[0]}): "
            "finish every shard, then merge"
        )
    target_dir = out_dir / RUNS_DIR
    target_dir.mkdir(parents=True, exist_ok=True)
    names = ["study.json", "classifier.pt"]
    names += [f"{r['run_id']}{suffix}" for r in results for suffix in (".json", ".png")]
    for directory in run_dirs:  # the merged directory is a complete study directory itself
        for name in names:
            source, target = directory / name, target_dir / name
            if source.is_file() and not (target.exists() and os.path.samefile(source, target)):
                shutil.copyfile(source, target)
    return sorted(results, key=lambda r: [spec["run_id"] for spec in manifest["runs"]].index(r["run_id"]))


def _manifest(dirs: Sequence[str | Path], study_id: str) -> dict[str, Any]:
    for directory in dirs:
        path = Path(directory) / "study.json"
        if path.is_file():
            manifest = json.loads(path.read_text())
            if manifest.get("study_id") == study_id:
                return dict(manifest)
    raise UserError(f"no study.json of study {study_id} in {', '.join(map(str, dirs))}")


# ---------------------------------------------------------------------------------------------------------
# The report.
# ---------------------------------------------------------------------------------------------------------


def describe_architecture(arch: Mapping[str, Any]) -> str:
    """A short label: ``tanh/tanh, depth 6, W 16, G norm batch, D norm none`` (+ residual, mlp, filters)."""
    if arch.get("generator") == "mlp":
        generator = f"MLP G {arch['mlp_width']}×{arch['mlp_depth']}"
    else:
        generator = f"G norm {arch['generator_norm']}"
    critic = f"D norm {arch['critic_norm']}"
    if arch["critic_norm"] == "batch":
        critic += " (WGAN-GP: layer)"
    text = (
        f"{arch['activation']}/{arch['critic_activation']}, depth {arch['depth']}, W {arch['width']}, "
        f"{generator}, {critic}"
    )
    if arch.get("residual"):
        text += ", residual"
    if "constant" in (arch.get("generator_filters"), arch.get("critic_filters")):
        text += f", filters G {arch['generator_filters']} / D {arch['critic_filters']}"
    return text


def format_value(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _run_cell(result: Mapping[str, Any]) -> str:
    m = result["metrics"]
    text = f"{format_value(m['score'])} / {format_value(m['fd'])}"
    return text + (" (diverged)" if m.get("diverged") else "")


def environment_of(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    cpu = [float(r["metrics"]["train_cpu_seconds"]) for r in results]
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "devices": sorted({str(r["metrics"].get("device", "cpu")) for r in results}),
        "train_cpu_seconds_total": sum(cpu),
        "train_cpu_seconds_max": max(cpu),
    }


def plot_pairs(
    path: Path,
    out_dir: Path,
    rows: Sequence[tuple[str, Sequence[tuple[str, str]]]],
    *,
    per_line: int = 4,
) -> Path:
    """A figure of sample grids: one block per row label, its (title, grid PNG name) cells side by side.

    Blocks are laid out ``per_line`` to a line (Table 2: each architecture's GAN and WGAN-GP grids).
    """
    import matplotlib.image as mpimg

    from wgangp.pictures.plots import new_figure, save_figure

    cells = max(len(c) for _, c in rows)
    blocks = min(per_line, len(rows))
    lines = math.ceil(len(rows) / blocks)
    fig = new_figure(1.5 * cells * blocks + 0.3, 1.9 * lines + 0.2)
    fig.set_layout_engine("none")  # constrained layout shrinks the images to make room for the titles
    top = 1 - 0.55 / (1.9 * lines + 0.2)
    grid = fig.add_gridspec(
        lines, blocks * cells, left=0.01, right=0.99, bottom=0.01, top=top, wspace=0.08, hspace=0.45
    )
    for index, (label, items) in enumerate(rows):
        line, block = divmod(index, blocks)
        for j, (title, name) in enumerate(items):
            ax = fig.add_subplot(grid[line, block * cells + j])
            image = out_dir / name
            if image.is_file():
                ax.imshow(mpimg.imread(image), cmap="gray", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{label}\n{title}" if j == 0 else f"\n{title}", fontsize=6.5, loc="left")
    save_figure(fig, path)
    return path


def write_robustness_report(results: Sequence[Mapping[str, Any]], out_dir: Path) -> dict[str, Any]:
    """``results.json``, ``report.md``, ``report.html`` and ``samples.png`` of a complete robustness study."""
    settings = _settings_of(results)
    first = results[0]["spec"]
    config = run_config(first, device="cpu")
    reference = reference_scores(config, out_dir / RUNS_DIR)
    real = reference["real_score"]
    thresholds = [f * real for f in THRESHOLD_FRACTIONS]
    pairs = score_pairs(results)
    counts = success_counts(pairs, thresholds)
    by_arch: dict[int, dict[str, Mapping[str, Any]]] = {}
    for result in results:
        by_arch.setdefault(int(result["spec"]["index"]), {})[result["spec"]["loss"]] = result
    architectures = []
    for index in sorted(by_arch):
        runs = by_arch[index]
        arch = dict(runs["wgan-gp"]["spec"]["architecture"])
        arch["critic_norm_gan"] = runs["gan"]["spec"]["architecture"]["critic_norm"]
        architectures.append(
            {
                "index": index,
                "label": describe_architecture(runs["gan"]["spec"]["architecture"]),
                "architecture": runs["gan"]["spec"]["architecture"],
                "gan": runs["gan"]["metrics"],
                "wgan-gp": runs["wgan-gp"]["metrics"],
            }
        )
    picture = plot_pairs(
        out_dir / "samples.png",
        out_dir / RUNS_DIR,
        [
            (
                f"#{a['index']}: {a['label']}".replace(", G ", "\nG ", 1).replace(", MLP", "\nMLP", 1),
                [
                    (f"GAN {format_value(a['gan']['score'])}", f"arch{a['index']:03d}-gan.png"),
                    (f"WGAN-GP {format_value(a['wgan-gp']['score'])}", f"arch{a['index']:03d}-wgan-gp.png"),
                ],
            )
            for a in architectures
        ],
    )
    summary: dict[str, Any] = {
        "format_version": RESULTS_FORMAT,
        "study": results[0]["study"],
        "study_id": results[0]["study_id"],
        "settings": settings,
        "first_seed": int(min(r["spec"]["seed"] for r in results)),
        "architectures_count": len(architectures),
        "reference": reference,
        "threshold_fractions": list(THRESHOLD_FRACTIONS),
        "counts": counts,
        "architectures": architectures,
        "environment": environment_of(results),
        "images": {"samples": picture.name},
    }
    text = _robustness_markdown(summary, counts_markdown(counts, real_score=real))
    write_documents(out_dir, summary, text, "Robustness across architectures (Table 2)")
    return summary


def recipes_text(settings: Mapping[str, Any], losses: Sequence[str]) -> str:
    """Each loss's optimizer recipe over the study's preset, for the reports' introductions."""
    parts = []
    for loss in losses:
        cfg = resolve_config(settings["preset"], loss=loss)
        text = f"{method_label(loss)}: {cfg.optimizer} {cfg.lr_critic:g} β=({cfg.beta1:g}, {cfg.beta2:g}), n_critic {cfg.n_critic}"
        if loss == "wgan-gp":
            text += f", λ = {cfg.penalty_weight:g}"
        elif loss == "wgan-clip":
            text += f", c = {cfg.clip_value:g}"
        parts.append(text)
    return "; ".join(parts)


def _robustness_markdown(summary: Mapping[str, Any], counts_table: str) -> str:
    s, ref, env = summary["settings"], summary["reference"], summary["environment"]
    lines = [
        "# Robustness across architectures (the paper's Table 2)",
        "",
        f"{summary['architectures_count']} architectures drawn from the factors scaled to {s['dataset']} "
        f"(study {summary['study_id']}, first seed {summary['first_seed']}), each trained with the standard "
        f"GAN and with WGAN-GP for {s['steps']} generator iterations at batch {s['batch_size']} "
        f"({recipes_text(s, ('gan', 'wgan-gp'))}).",
        "",
        f"Score: the {s['dataset']} classifier's exp E KL(p(y|x) ‖ p(y)) on {s['eval_samples']} samples "
        f"(10 splits). Real {s['dataset']}: **{ref['real_score']:.3g}**; uniform noise: "
        f"{ref['noise_score']:.3g} (classifier test accuracy {ref['classifier_accuracy']:.3f}). A run succeeds "
        "at a threshold when its score exceeds it; thresholds are the paper's 1, 3, 5, 7, 9 read as "
        "tenths of the real score.",
        "",
        counts_table,
        "## Every architecture (score / classifier FD)",
        "",
        "| # | architecture | GAN | WGAN-GP | GAN samples | WGAN-GP samples |",
        "|---:|---|---|---|---|---|",
    ]
    for a in summary["architectures"]:
        gan = {"metrics": a["gan"]}
        gp = {"metrics": a["wgan-gp"]}
        lines.append(
            f"| {a['index']} | {a['label']} | {_run_cell(gan)} | {_run_cell(gp)} | "
            f"![]({RUNS_DIR}/arch{a['index']:03d}-gan.png) | ![]({RUNS_DIR}/arch{a['index']:03d}-wgan-gp.png) |"
        )
    lines += [
        "",
        f"![samples]({summary['images']['samples']})",
        "",
        f"Training: {env['train_cpu_seconds_total']:.0f} CPU seconds in all (longest run "
        f"{env['train_cpu_seconds_max']:.0f} s), torch {env['torch']} on {', '.join(env['devices'])}. "
        "Raw numbers: `results.json`; one result file per run beside it.",
        "",
    ]
    return "\n".join(lines)


def write_documents(out_dir: Path, summary: Mapping[str, Any], markdown: str, title: str) -> None:
    from wgangp.experiments.report import finite_or_null
    from wgangp.storage import write_text_atomic as write_text

    write_text(
        out_dir / "results.json", json.dumps(finite_or_null(summary), indent=1, allow_nan=False) + "\n"
    )
    write_text(out_dir / "report.md", markdown)
    write_text(out_dir / "report.html", markdown_to_html(markdown, out_dir, title=title))


_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_CODE = re.compile(r"`([^`]+)`")


def _inline(text: str, out_dir: Path) -> str:
    """Escape one line of our Markdown and render its images (inlined as data URIs), bold and code."""
    from wgangp.experiments.report import data_uri

    parts, last = [], 0
    for match in _IMAGE.finditer(text):
        parts.append(_style(html.escape(text[last : match.start()])))
        path = out_dir / match.group(2)
        src = data_uri(path) if path.is_file() else html.escape(match.group(2))
        parts.append(f'<img alt="{html.escape(match.group(1))}" src="{src}">')
        last = match.end()
    parts.append(_style(html.escape(text[last:])))
    return "".join(parts)


def _style(text: str) -> str:
    return _CODE.sub(r"<code>\1</code>", _BOLD.sub(r"<b>\1</b>", text))


def markdown_to_html(markdown: str, out_dir: Path, *, title: str) -> str:
    """The reports' Markdown (headings, paragraphs, pipe tables, images) as one self-contained HTML page."""
    body: list[str] = []
    table: list[list[str]] = []

    def flush() -> None:
        if table:
            head, *rows = table
            body.append("<table>")
            body.append("<tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr>")
            body.extend("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
            body.append("</table>")
            table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-:") for c in cells):
                table.append([_inline(c, out_dir) for c in cells])
            continue
        flush()
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{_inline(line[level:].strip(), out_dir)}</h{level}>")
        elif line.strip():
            body.append(f"<p>{_inline(line, out_dir)}</p>")
    flush()
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; max-width: 1400px; margin: 2em auto; padding: 0 1em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 10px; }}
img {{ max-width: 100%; image-rendering: pixelated; }}
</style></head><body>
{chr(10).join(body)}
</body></html>
"""
