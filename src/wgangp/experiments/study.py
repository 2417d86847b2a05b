"""Studies of many independent runs: a deterministic run list, shards, a local pool, resumable results, merge.

Reference: Gulrajani et al. 2017 (arXiv:1704.00028), Sec. 5.1 / Table 2 (200 random architectures, each
trained with the standard GAN and with WGAN-GP) and Sec. 5.2 / Figure 2 (seven architectures × four losses).

The engine knows nothing about training. A :class:`Study` is a name and a fixed tuple of run specs (plain
JSON dicts with a unique ``run_id``); its :attr:`Study.study_id` hashes both, and every result carries it.
:func:`run_study` runs one shard of the specs (``--shard i/n`` takes every n-th run from the i-th, 0-based,
as a SLURM array's ``SLURM_ARRAY_TASK_ID``) with a picklable ``run_fn(spec) -> metrics`` on ``jobs`` spawned
processes, writing ``<out>/<run_id>.json`` atomically as each run ends and skipping runs whose result exists
(rerun the same command to resume). :func:`merge` reads the result directories of all shards and refuses
results of different studies.

For Table 2, :func:`success_counts` counts the architectures where only the GAN, only WGAN-GP, both or
neither exceed each threshold, and :func:`counts_markdown` renders them as the paper's table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from wgangp.errors import UserError
from wgangp.storage import write_text_atomic

__all__ = [
    "DIGITS_FACTORS",
    "PAPER_FACTORS",
    "PAPER_THRESHOLDS",
    "THRESHOLD_FRACTIONS",
    "Study",
    "counts_markdown",
    "draw_architectures",
    "figure2_study",
    "merge",
    "parse_shard",
    "robustness_study",
    "run_study",
    "score_pairs",
    "select_shard",
    "success_counts",
]

RunFn = Callable[[dict[str, Any]], Mapping[str, Any]]
FactorTable = Mapping[str, Sequence[Any]]

# Table 1 of the paper. "activation" sets both networks' nonlinearity; critic_norm "batch" is the paper's
# "yes" (BatchNorm for the GAN, LayerNorm for WGAN-GP: Architecture.for_loss).
PAPER_FACTORS: dict[str, tuple[Any, ...]] = {
    "activation": ("relu", "leaky_relu", "softplus", "tanh"),
    "depth": (4, 8, 12, 20),
    "generator_norm": ("batch", "none"),
    "critic_norm": ("batch", "none"),
    "width": (32, 64, 128),
}
# The same factors scaled to 8×8 digits on a CPU.
DIGITS_FACTORS: dict[str, tuple[Any, ...]] = PAPER_FACTORS | {"depth": (2, 4, 6, 8), "width": (8, 16, 32)}

PAPER_THRESHOLDS: tuple[float, ...] = (1.0, 3.0, 5.0, 7.0, 9.0)  # Table 2's minimum Inception scores
# Thresholds for the digits as fractions of the real digits' score: the paper's 1, 3, 5, 7, 9 read as tenths.
THRESHOLD_FRACTIONS: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)

RESULT_VERSION = 1


def draw_architectures(k: int, seed: int, factor_table: FactorTable = PAPER_FACTORS) -> list[dict[str, Any]]:
    """``k`` architectures drawn uniformly and independently (with repetition) from ``factor_table``.

    Each is a dict of :class:`~wgangp.models.factored.Architecture` fields; the factor ``activation`` sets
    both ``activation`` and ``critic_activation``. The same ``(k, seed, table)`` gives the same list, and a
    longer list starts with the shorter one (paper Sec. 5.1: 200 draws from Table 1).
    """
    if k < 0:
        raise UserError(f"the number of architectures must be ≥ 0; got {k}")
    rng = random.Random(seed)
    drawn = []
    for _ in range(k):
        arch: dict[str, Any] = {}
        for factor in sorted(factor_table):
            value = rng.choice(list(factor_table[factor]))
            if factor == "activation":
                arch["critic_activation"] = value
            arch[factor] = value
        drawn.append(arch)
    return drawn


@dataclass(frozen=True)
class Study:
    """A named, ordered tuple of run specs (JSON dicts, each with a unique ``run_id``)."""

    name: str
    runs: tuple[dict[str, Any], ...]

    def __post_init__(self) -> None:
        ids = [spec.get("run_id") for spec in self.runs]
        if any(not isinstance(i, str) or not i or "/" in i or i.startswith(".") for i in ids):
            raise ValueError("every run spec needs a run_id: a non-empty file name")
        if len(set(ids)) != len(ids):
            raise ValueError(f"run ids repeat in study {self.name}")
        json.dumps(self.runs, sort_keys=True)  # plain JSON only: a TypeError here names the bad value

    @property
    def study_id(self) -> str:
        """The first 16 hex digits of the SHA-256 of the canonical JSON of the name and the runs."""
        text = json.dumps({"name": self.name, "runs": self.runs}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` → ``(i, n)`` with ``0 ≤ i < n`` (0-based, as ``SLURM_ARRAY_TASK_ID``); else a UserError."""
    parts = text.strip().split("/")
    try:
        index, count = (int(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        index = count = None
    if index is None or count is None or count < 1 or not 0 <= index < count:
        raise UserError(f"--shard must be i/n with 0 ≤ i < n (e.g. 0/4); got {text!r}")
    return index, count


def select_shard(runs: Sequence[dict[str, Any]], index: int, count: int) -> list[dict[str, Any]]:
    """Every ``count``-th run from the ``index``-th: the shards ``0/n … (n−1)/n`` partition the runs."""
    return list(runs[index::count])


def _write_json(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def _read_result(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: not a study result ({err})") from None
    if not isinstance(data, dict) or not {"study_id", "run_id", "metrics"} <= set(data):
        raise UserError(f"{path}: not a study result (no study_id, run_id, metrics)")
    return data


def _run_one(run_fn: RunFn, spec: dict[str, Any], study: Study, path: Path) -> dict[str, Any]:
    """Train one run and write its result atomically (in the worker, so a finished run is never lost)."""
    metrics = dict(run_fn(dict(spec)))
    result = {
        "format_version": RESULT_VERSION,
        "study": study.name,
        "study_id": study.study_id,
        "run_id": spec["run_id"],
        "spec": spec,
        "metrics": metrics,
    }
    _write_json(path, result)
    return result


def run_study(
    study: Study,
    run_fn: RunFn,
    out_dir: str | Path,
    *,
    shard: tuple[int, int] = (0, 1),
    jobs: int = 1,
) -> list[dict[str, Any]]:
    """Run this shard's runs that have no result in ``out_dir`` yet; return the shard's results in run order.

    ``run_fn`` must be picklable (a module-level function) when ``jobs > 1``: runs go to ``jobs`` processes
    started with ``spawn``. ``out_dir/study.json`` records the study; a directory of another study is refused.
    Runs that raise are reported together in one ``RuntimeError`` after the others have finished.
    """
    if jobs < 1:
        raise UserError(f"--jobs must be ≥ 1; got {jobs}")
    index, count = shard
    if count < 1 or not 0 <= index < count:
        raise UserError(f"--shard must be i/n with 0 ≤ i < n; got {index}/{count}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "study.json"
    if manifest.is_file():
        saved = json.loads(manifest.read_text()).get("study_id")
        if saved != study.study_id:
            raise UserError(
                f"{out} holds study {saved}, not {study.name} ({study.study_id}): use another directory"
            )
    else:
        _write_json(manifest, {"name": study.name, "runs": list(study.runs), "study_id": study.study_id})
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for spec in select_shard(study.runs, index, count):
        path = out / f"{spec['run_id']}.json"
        if path.is_file():
            done = _read_result(path)
            if done["study_id"] != study.study_id:
                raise UserError(f"{path} belongs to study {done['study_id']}, not {study.study_id}")
            results[spec["run_id"]] = done
        else:
            todo.append((spec, path))
    failed: list[str] = []
    if jobs == 1:
        for spec, path in todo:
            try:
                results[spec["run_id"]] = _run_one(run_fn, spec, study, path)
            except Exception as err:  # one bad run must not stop the study
                failed.append(f"{spec['run_id']} ({type(err).__name__}: {err})")
    else:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures: list[tuple[str, Future[dict[str, Any]]]] = [
                (spec["run_id"], pool.submit(_run_one, run_fn, spec, study, path)) for spec, path in todo
            ]
            for run_id, future in futures:
                try:
                    results[run_id] = future.result()
                except Exception as err:
                    failed.append(f"{run_id} ({type(err).__name__}: {err})")
    if failed:
        raise RuntimeError(f"{len(failed)} run(s) of study {study.name} failed: {'; '.join(failed)}")
    return [results[spec["run_id"]] for spec in select_shard(study.runs, index, count)]


def merge(dirs: Iterable[str | Path]) -> list[dict[str, Any]]:
    """All results in ``dirs`` (the shards' output directories), one per run id, sorted by run id.

    Results of different studies (another ``study_id``) are a UserError naming the two ids and the file.
    """
    found: dict[str, dict[str, Any]] = {}
    study_id: str | None = None
    first: Path | None = None
    for directory in dirs:
        root = Path(directory)
        if not root.is_dir():
            raise UserError(f"{root}: no such result directory")
        for path in sorted(root.glob("*.json")):
            if path.name == "study.json":
                continue
            result = _read_result(path)
            if study_id is None:
                study_id, first = result["study_id"], path
            elif result["study_id"] != study_id:
                raise UserError(
                    f"{path} is from study {result['study_id']}, {first} from {study_id}: merge one study at a time"
                )
            found.setdefault(result["run_id"], result)
    return [found[run_id] for run_id in sorted(found)]


# ---------------------------------------------------------------------------------------------------------
# The paper's two studies.
# ---------------------------------------------------------------------------------------------------------


def robustness_study(
    k: int,
    seed: int,
    factor_table: FactorTable = DIGITS_FACTORS,
    *,
    losses: Sequence[str] = ("gan", "wgan-gp"),
    name: str = "robustness",
) -> Study:
    """Table 2's study: ``k`` drawn architectures × ``losses``, run ids ``arch007-wgan-gp``.

    Each spec: ``run_id``, ``index`` (the architecture's), ``loss``, ``seed`` (``seed + index``, the same for
    both losses) and ``architecture`` (Architecture fields, critic norm already mapped for the loss).
    """
    from wgangp.models.factored import Architecture

    runs = []
    for index, factors in enumerate(draw_architectures(k, seed, factor_table)):
        arch = Architecture.from_dict(factors)
        for loss in losses:
            runs.append(
                {
                    "run_id": f"arch{index:03d}-{loss}",
                    "index": index,
                    "loss": loss,
                    "seed": seed + index,
                    "architecture": dataclasses.asdict(arch.for_loss(loss)),
                }
            )
    return Study(name, tuple(runs))


def figure2_study(
    scale: str = "digits",
    seed: int = 0,
    *,
    losses: Sequence[str] = ("gan", "lsgan", "wgan-clip", "wgan-gp"),
    name: str = "figure2",
) -> Study:
    """Figure 2's study: the seven architectures × ``losses`` (DCGAN, LSGAN, clipping, WGAN-GP), ids ``tanh-lsgan``."""
    from wgangp.models.factored import figure2_architectures

    if scale not in ("paper", "digits"):
        raise UserError(f"scale must be paper or digits; got {scale!r}")
    runs = [
        {
            "run_id": f"{arch_name}-{loss}",
            "architecture_name": arch_name,
            "loss": loss,
            "seed": seed,
            "architecture": dataclasses.asdict(arch.for_loss(loss)),
        }
        for arch_name, arch in figure2_architectures("paper" if scale == "paper" else "digits").items()
        for loss in losses
    ]
    return Study(name, tuple(runs))


def score_pairs(
    results: Sequence[Mapping[str, Any]], *, key: str = "score", gan: str = "gan", wgangp: str = "wgan-gp"
) -> list[tuple[float, float]]:
    """``(gan_score, wgangp_score)`` per architecture index of a robustness study's merged results.

    An architecture with only one of the two results is a UserError (merge every shard first).
    """
    by_index: dict[int, dict[str, float]] = {}
    for result in results:
        spec = result["spec"]
        by_index.setdefault(int(spec["index"]), {})[spec["loss"]] = float(result["metrics"][key])
    incomplete = sorted(i for i, scores in by_index.items() if not {gan, wgangp} <= set(scores))
    if incomplete:
        raise UserError(
            f"{len(incomplete)} architectures lack a {gan} or {wgangp} result (first: {incomplete[0]})"
        )
    return [(by_index[i][gan], by_index[i][wgangp]) for i in sorted(by_index)]


def success_counts(
    pairs: Sequence[tuple[float, float]], thresholds: Sequence[float]
) -> list[dict[str, float]]:
    """Per threshold ``t``: architectures where only the GAN, only WGAN-GP, both or neither score ``> t``.

    ``pairs``: ``(gan_score, wgangp_score)`` per architecture (paper Table 2; e.g. t = 5: 0 / 147 / 42 / 11).
    """
    rows = []
    for t in thresholds:
        gan_ok = [g > t for g, _ in pairs]
        wgan_ok = [w > t for _, w in pairs]
        rows.append(
            {
                "threshold": float(t),
                "only_gan": sum(g and not w for g, w in zip(gan_ok, wgan_ok, strict=True)),
                "only_wgangp": sum(w and not g for g, w in zip(gan_ok, wgan_ok, strict=True)),
                "both": sum(g and w for g, w in zip(gan_ok, wgan_ok, strict=True)),
                "neither": sum(not g and not w for g, w in zip(gan_ok, wgan_ok, strict=True)),
            }
        )
    return rows


def counts_markdown(rows: Sequence[Mapping[str, float]], *, real_score: float | None = None) -> str:
    """The counts as the paper's Table 2 in Markdown; with ``real_score``, each threshold's fraction of it."""
    head = "| Min. score | Only GAN | Only WGAN-GP | Both succeeded | Both failed |"
    lines = [head, "|---:|---:|---:|---:|---:|"]
    for row in rows:
        t = f"{row['threshold']:.2f}"
        if real_score:
            t += f" ({row['threshold'] / real_score:.0%} of real)"
        counts = (int(row[k]) for k in ("only_gan", "only_wgangp", "both", "neither"))
        lines.append(f"| {t} | " + " | ".join(map(str, counts)) + " |")
    return "\n".join(lines) + "\n"
