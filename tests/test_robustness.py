"""``wgangp robustness`` and ``wgangp figure 2`` end to end, reduced: 2 architectures and a few iterations.

Checks the paper's counts table and the report's structure, that shards partition the study and merge
into the same results as one run (also with ``--jobs 2``), that reruns skip finished runs and redo only
missing ones, and that the classifier score ranks real digits far above noise.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from wgangp.cli import main
from wgangp.experiments.robustness import (
    RUNS_DIR,
    RunSettings,
    make_robustness_study,
    reference_scores,
    run_config,
)
from wgangp.experiments.study import THRESHOLD_FRACTIONS
from wgangp.models.factored import FIGURE2

REDUCED = ["--architectures", "2", "--steps", "2", "--eval-samples", "100", "--device", "cpu"]
RUN_IDS = ["arch000-gan", "arch000-wgan-gp", "arch001-gan", "arch001-wgan-gp"]
SCORE_KEYS = ("score", "score_std", "fd", "classes_covered", "confident_fraction", "steps", "diverged")


def results_of(directory: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (directory / RUNS_DIR).glob("arch*.json")}


def scores(results: dict[str, dict]) -> dict[str, tuple]:
    return {run_id: tuple(r["metrics"][k] for k in SCORE_KEYS) for run_id, r in results.items()}


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("robustness") / "full"
    assert main(["robustness", *REDUCED, "--out", str(out)]) == 0
    return out


def test_report_holds_the_papers_counts_table(full):
    summary = json.loads((full / "results.json").read_text())
    real = summary["reference"]["real_score"]
    assert summary["architectures_count"] == 2
    assert [row["threshold"] for row in summary["counts"]] == pytest.approx(
        [f * real for f in THRESHOLD_FRACTIONS], rel=1e-12
    )
    pairs = [(a["gan"]["score"], a["wgan-gp"]["score"]) for a in summary["architectures"]]
    for row in summary["counts"]:
        t = row["threshold"]
        assert row["only_gan"] == sum(g > t >= w for g, w in pairs)
        assert row["only_wgangp"] == sum(w > t >= g for g, w in pairs)
        assert row["both"] == sum(g > t and w > t for g, w in pairs)
        assert row["only_gan"] + row["only_wgangp"] + row["both"] + row["neither"] == 2
    for arch in summary["architectures"]:
        for loss in ("gan", "wgan-gp"):
            metrics = arch[loss]
            assert metrics["steps"] == 2 and metrics["diverged"] is None
            assert 1.0 <= metrics["score"] <= 10.0 and metrics["fd"] > 0
    markdown = (full / "report.md").read_text()
    assert "| Min. score | Only GAN | Only WGAN-GP | Both succeeded | Both failed |" in markdown
    assert markdown.count("% of real) |") == len(THRESHOLD_FRACTIONS)
    assert all(f"{RUNS_DIR}/{run_id}.png" in markdown for run_id in RUN_IDS)
    page = (full / "report.html").read_text()
    assert page.count("<table>") == 2 and page.count("data:image/png;base64,") == 2 * 2 + 1
    assert (full / "samples.png").stat().st_size > 1000
    assert sorted(p.name for p in (full / RUNS_DIR).glob("*.png")) == [f"{r}.png" for r in RUN_IDS]


def test_the_same_command_draws_the_same_architectures(full):
    summary = json.loads((full / "results.json").read_text())
    settings = RunSettings(steps=2, eval_samples=100)
    assert make_robustness_study(2, 0, settings).study_id == summary["study_id"]
    drawn = [
        spec["architecture"] for spec in make_robustness_study(2, 0, settings).runs if spec["loss"] == "gan"
    ]
    assert [a["architecture"] for a in summary["architectures"]] == drawn
    assert make_robustness_study(2, 1, settings).study_id != summary["study_id"]


def test_rerun_skips_finished_runs_and_redoes_missing_ones(full, tmp_path, capsys):
    import shutil

    study = tmp_path / "study"
    shutil.copytree(full, study)
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (study / RUNS_DIR).glob("arch*.json")}
    assert main(["robustness", *REDUCED, "--out", str(study)]) == 0
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (study / RUNS_DIR).glob("arch*.json")}
    assert after == before  # nothing retrained
    (study / RUNS_DIR / "arch001-gan.json").unlink()
    assert main(["robustness", *REDUCED, "--out", str(study)]) == 0
    redone = results_of(study)
    assert sorted(redone) == RUN_IDS
    assert scores(redone) == scores(results_of(full))
    for name in ("arch000-gan.json", "arch000-wgan-gp.json", "arch001-wgan-gp.json"):
        assert (study / RUNS_DIR / name).stat().st_mtime_ns == before[name][0]
    capsys.readouterr()


def test_shards_partition_the_study_and_merge_into_the_single_run(full, tmp_path, capsys):
    a, b, merged = tmp_path / "a", tmp_path / "b", tmp_path / "merged"
    assert main(["robustness", *REDUCED, "--shard", "0/2", "--out", str(a)]) == 0
    assert "shard 0/2 done: 2 of 4 runs" in capsys.readouterr().out
    assert main(["robustness", *REDUCED, "--shard", "1/2", "--jobs", "2", "--out", str(b)]) == 0
    assert sorted(results_of(a)) == ["arch000-gan", "arch001-gan"]  # every 2nd run from the 0th
    assert sorted(results_of(b)) == ["arch000-wgan-gp", "arch001-wgan-gp"]
    assert not (a / "report.md").exists() and not (b / "report.md").exists()
    # Merging one shard alone is refused: the table needs every run.
    assert main(["robustness", "--merge", str(a), "--out", str(tmp_path / "half")]) == 2
    assert "2 of 4 runs have no result yet" in capsys.readouterr().err
    assert main(["robustness", "--merge", str(a), str(b), "--out", str(merged)]) == 0
    assert scores(results_of(merged)) == scores(results_of(full))  # spawned jobs train the same runs
    got, want = (json.loads((d / "results.json").read_text()) for d in (merged, full))
    assert got["counts"] == want["counts"] and got["study_id"] == want["study_id"]
    assert sorted(p.name for p in (merged / RUNS_DIR).glob("*.png")) == [f"{r}.png" for r in RUN_IDS]


def test_a_directory_of_another_study_is_refused(full, tmp_path, capsys):
    import shutil

    study = tmp_path / "study"
    shutil.copytree(full, study)
    before = sorted(p.name for p in study.rglob("*"))
    assert main(["robustness", *REDUCED, "--seed", "1", "--out", str(study)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds another study" in err
    assert sorted(p.name for p in study.rglob("*")) == before


def test_the_score_ranks_real_digits_far_above_noise(tmp_path):
    settings = RunSettings()  # 1000 samples, 10 splits
    spec = {"seed": 0, "loss": "gan", "architecture": {}, "train": settings.to_dict()}
    reference = reference_scores(run_config(spec, device="cpu"), tmp_path)
    assert 8.5 <= reference["real_score"] <= 9.6  # K = 10 classes at most
    assert 2.5 <= reference["noise_score"] <= 5.0
    assert reference["real_score"] - reference["noise_score"] >= 4.0
    assert reference["classifier_accuracy"] >= 0.95


def test_figure_2_trains_seven_architectures_with_four_losses(tmp_path, capsys):
    out = tmp_path / "figures"
    argv = ["figure", "2", "--iterations", "1", "--eval-samples", "100", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    report = out / "figure_2"
    summary = json.loads((report / "results.json").read_text())
    assert [a["name"] for a in summary["architectures"]] == list(FIGURE2)
    assert summary["losses"] == ["gan", "lsgan", "wgan-clip", "wgan-gp"]
    for arch in summary["architectures"]:
        for metrics in arch["runs"].values():
            assert metrics["steps"] == 1 and math.isfinite(metrics["score"])
    runs = {p.stem: json.loads(p.read_text())["spec"] for p in (report / RUNS_DIR).glob("*-*.json")}
    assert len(runs) == 28
    # The paper's Normalize: BatchNorm critics for the baselines, LayerNorm for WGAN-GP.
    assert runs["dcgan-gan"]["architecture"]["critic_norm"] == "batch"
    assert runs["dcgan-wgan-gp"]["architecture"]["critic_norm"] == "layer"
    assert runs["no-norm-wgan-clip"]["architecture"]["critic_norm"] == "none"
    markdown = (report / "report.md").read_text()
    assert "| architecture | DCGAN | LSGAN | WGAN (clipping) | WGAN-GP |" in markdown
    assert sum(line.startswith(f"| {name} (") for name in FIGURE2 for line in markdown.splitlines()) == 7
    assert (report / "figure_2.png").stat().st_size > 1000
    assert "figure:" in capsys.readouterr().out


def test_studies_train_on_the_fixed_digits_dcgan_recipe():
    # A spec holds the preset's name, so the studies must name a preset whose values stay put: the one
    # Table 2 and Figure 2 were measured with (DCGAN-era digits: Adam 1e-3, n_critic 5, λ = 10).
    settings = RunSettings()
    assert settings.preset == "digits-dcgan"
    (spec,) = [s for s in make_robustness_study(1, 0, settings).runs if s["loss"] == "wgan-gp"]
    config = run_config(spec)
    assert (config.n_critic, config.penalty_weight, config.lr_critic, config.lr_decay) == (
        5,
        10.0,
        1e-3,
        "none",
    )
    assert (
        config.ema_decay == 0.0 and config.model == "factored" and spec["train"]["preset"] == "digits-dcgan"
    )
