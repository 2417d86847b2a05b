"""The study engine: seeded draws, shards, resumable runs, jobs=2 ≡ jobs=1, merge refusals, Table 2 counts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from wgangp.errors import UserError
from wgangp.experiments.study import (
    DIGITS_FACTORS,
    PAPER_FACTORS,
    Study,
    counts_markdown,
    draw_architectures,
    figure2_study,
    merge,
    parse_shard,
    robustness_study,
    run_study,
    score_pairs,
    select_shard,
    success_counts,
)
from wgangp.models.factored import Architecture


def fake_run(spec: dict) -> dict:
    """A cheap deterministic 'training': a score from the spec, and the process that ran it."""
    arch = spec["architecture"]
    score = 1.0 + arch["depth"] / 10 + arch["width"] / 100 + (0.5 if spec["loss"] == "wgan-gp" else 0.0)
    return {"score": score, "pid": os.getpid()}


def failing_run(spec: dict) -> dict:
    if spec["index"] == 1:
        raise ValueError("diverged")
    return fake_run(spec)


def small_study(k: int = 5, seed: int = 0) -> Study:
    return robustness_study(k, seed, DIGITS_FACTORS)


# ---------------------------------------------------------------------------------------------------------
# Draws and specs.
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", [PAPER_FACTORS, DIGITS_FACTORS], ids=["paper", "digits"])
def test_draws_are_seeded_and_inside_the_table(table):
    drawn = draw_architectures(50, 7, table)
    assert drawn == draw_architectures(50, 7, table)
    assert drawn != draw_architectures(50, 8, table)
    assert draw_architectures(20, 7, table) == drawn[:20]
    for arch in drawn:
        assert all(arch[f] in values for f, values in table.items())
        assert arch["critic_activation"] == arch["activation"]
        Architecture.from_dict(arch)
    assert {a["depth"] for a in drawn} == set(table["depth"])  # 50 draws reach every depth


def test_robustness_study_pairs_losses_and_maps_the_critic_norm():
    study = small_study(6)
    assert len(study.runs) == 12 and study.runs[0]["run_id"] == "arch000-gan"
    for gan, wgangp in zip(study.runs[::2], study.runs[1::2], strict=True):
        assert gan["index"] == wgangp["index"] and gan["seed"] == wgangp["seed"]
        assert wgangp["architecture"]["critic_norm"] != "batch"
        if gan["architecture"]["critic_norm"] == "batch":
            assert wgangp["architecture"]["critic_norm"] == "layer"
    assert small_study(6).study_id == study.study_id != small_study(6, seed=1).study_id


def test_figure2_study_is_seven_architectures_by_four_losses():
    study = figure2_study("digits")
    assert len(study.runs) == 28 and len({r["run_id"] for r in study.runs}) == 28
    assert figure2_study("paper").study_id != study.study_id
    with pytest.raises(UserError, match="scale"):
        figure2_study("huge")


def test_study_refuses_repeated_or_missing_run_ids():
    with pytest.raises(ValueError, match="repeat"):
        Study("s", ({"run_id": "a"}, {"run_id": "a"}))
    with pytest.raises(ValueError, match="run_id"):
        Study("s", ({"x": 1},))


# ---------------------------------------------------------------------------------------------------------
# Shards.
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [("0/1", (0, 1)), ("2/3", (2, 3)), (" 1/2 ", (1, 2))])
def test_parse_shard(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["3/2", "2/2", "-1/2", "1/0", "1", "a/b", "1/2/3", ""])
def test_malformed_shards_are_refused(text):
    with pytest.raises(UserError, match="--shard"):
        parse_shard(text)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 13])
def test_shards_partition_the_runs_exactly(n):
    runs = small_study(6).runs
    shards = [select_shard(runs, i, n) for i in range(n)]
    ids = [r["run_id"] for shard in shards for r in shard]
    assert sorted(ids) == sorted(r["run_id"] for r in runs) and len(ids) == len(runs)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


# ---------------------------------------------------------------------------------------------------------
# Running, resuming, merging.
# ---------------------------------------------------------------------------------------------------------


def test_results_are_written_and_a_rerun_skips_finished_runs(tmp_path):
    study = small_study(3)
    first = run_study(study, fake_run, tmp_path, shard=(0, 2))
    assert [r["run_id"] for r in first] == [r["run_id"] for r in study.runs[0::2]]
    for result in first:
        saved = json.loads((tmp_path / f"{result['run_id']}.json").read_text())
        assert saved == result and saved["study_id"] == study.study_id
        assert saved["metrics"]["score"] == fake_run(saved["spec"])["score"]
    assert not list(tmp_path.glob(".*.tmp"))

    calls: list[str] = []

    def counting(spec):
        calls.append(spec["run_id"])
        return fake_run(spec)

    again = run_study(study, counting, tmp_path)  # all shards now: only the other half runs
    assert sorted(calls) == sorted(r["run_id"] for r in study.runs[1::2])
    assert [r["run_id"] for r in again] == [r["run_id"] for r in study.runs]
    calls.clear()
    run_study(study, counting, tmp_path)
    assert calls == []


def test_jobs_two_gives_the_same_results_as_jobs_one(tmp_path):
    study = small_study(4)
    one = run_study(study, fake_run, tmp_path / "one", jobs=1)
    two = run_study(study, fake_run, tmp_path / "two", jobs=2)
    strip = [{**r, "metrics": {"score": r["metrics"]["score"]}} for r in one]
    assert [{**r, "metrics": {"score": r["metrics"]["score"]}} for r in two] == strip
    assert {r["metrics"]["pid"] for r in two}.isdisjoint({os.getpid()})  # really in other processes


def test_failed_runs_are_reported_after_the_others_finish(tmp_path):
    study = small_study(3)
    with pytest.raises(RuntimeError, match=r"2 run\(s\).*arch001-gan.*diverged"):
        run_study(study, failing_run, tmp_path)
    assert sorted(p.stem for p in tmp_path.glob("arch*.json")) == [
        "arch000-gan",
        "arch000-wgan-gp",
        "arch002-gan",
        "arch002-wgan-gp",
    ]


def test_a_directory_of_another_study_is_refused(tmp_path):
    run_study(small_study(2), fake_run, tmp_path)
    with pytest.raises(UserError, match="holds study"):
        run_study(small_study(2, seed=5), fake_run, tmp_path)


def test_merge_joins_shards_and_refuses_other_studies(tmp_path):
    study = small_study(4)
    for i in range(3):
        run_study(study, fake_run, tmp_path / f"shard{i}", shard=(i, 3))
    merged = merge(tmp_path / f"shard{i}" for i in range(3))
    assert [r["run_id"] for r in merged] == sorted(r["run_id"] for r in study.runs)
    assert merge([tmp_path / "shard0", tmp_path / "shard0"]) == merge([tmp_path / "shard0"])

    run_study(small_study(4, seed=9), fake_run, tmp_path / "other")
    with pytest.raises(UserError, match="merge one study at a time") as info:
        merge([tmp_path / "shard0", tmp_path / "other"])
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="no such"):
        merge([tmp_path / "missing"])


def test_score_pairs_from_merged_results(tmp_path):
    study = small_study(3)
    results = run_study(study, fake_run, tmp_path)
    pairs = score_pairs(results)
    assert len(pairs) == 3
    for (gan, wgangp), spec in zip(pairs, study.runs[::2], strict=True):
        assert wgangp - gan == pytest.approx(0.5) and gan == fake_run(spec)["score"]
    with pytest.raises(UserError, match="lack"):
        score_pairs(results[:-1])


# ---------------------------------------------------------------------------------------------------------
# Table 2 counts.
# ---------------------------------------------------------------------------------------------------------

PAIRS = [(0.5, 8.0), (6.0, 6.0), (2.0, 9.5), (9.5, 1.0), (0.9, 0.9), (5.0, 5.1)]


def test_counts_on_a_hand_made_case():
    rows = success_counts(PAIRS, [1.0, 5.0, 9.0])
    # t=1: only GAN (9.5, 1.0) [1.0 is not > 1]; only WGAN-GP (0.5, 8); both: (6,6), (2,9.5), (5,5.1); neither (0.9, 0.9).
    # t=5: only GAN (9.5,1); only WGAN-GP (0.5,8), (2,9.5), (5,5.1) [5 is not > 5]; both (6,6); neither (0.9,0.9).
    # t=9: only GAN (9.5,1); only WGAN-GP (2,9.5); both none; neither 4.
    assert [(r["only_gan"], r["only_wgangp"], r["both"], r["neither"]) for r in rows] == [
        (1, 1, 3, 1),
        (1, 3, 1, 1),
        (1, 1, 0, 4),
    ]
    assert all(sum(r[k] for k in ("only_gan", "only_wgangp", "both", "neither")) == len(PAIRS) for r in rows)


def test_counts_render_as_the_papers_table():
    text = counts_markdown(success_counts(PAIRS, [5.0]), real_score=10.0)
    assert text.splitlines() == [
        "| Min. score | Only GAN | Only WGAN-GP | Both succeeded | Both failed |",
        "|---:|---:|---:|---:|---:|",
        "| 5.00 (50% of real) | 1 | 3 | 1 | 1 |",
    ]
    assert counts_markdown(success_counts(PAIRS, [1.0])).splitlines()[2] == "| 1.00 | 1 | 1 | 3 | 1 |"


def test_result_files_are_plain_json(tmp_path: Path):
    run_study(small_study(1), fake_run, tmp_path)
    manifest = json.loads((tmp_path / "study.json").read_text())
    assert manifest["study_id"] == small_study(1).study_id and len(manifest["runs"]) == 2
