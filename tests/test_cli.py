"""The CLI end to end on tiny runs: train, eval, sample, presets (bad input: tests/test_bad_inputs.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from wgangp.cli import main

TINY = [
    "--set",
    "width=16",
    "--set",
    "depth=2",
    "--set",
    "batch_size=32",
    "--set",
    "eval_samples=64",
    "--set",
    "log_every=2",
    "--set",
    "eval_every=3",
    "--set",
    "plot_every=3",
    "--set",
    "checkpoint_every=3",
    "--no-progress",
    "--no-tensorboard",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["train", "--steps", "4", "--out", str(out), *TINY]) == 0
    return out


def test_train_writes_a_complete_run(run_dir, capsys):
    for name in (
        "config.json",
        "metrics.jsonl",
        "checkpoint.pt",
        "summary.json",
        "plots/final.png",
        "plots/curves.png",
        "plots/step_0000003.png",
    ):
        assert (run_dir / name).is_file(), name
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "wasserstein" in r]
    assert [r["step"] for r in train_rows] == [2, 4]
    assert all(np.isfinite(r["grad_norm"]) and r["grad_norm"] > 0 for r in train_rows)
    assert {"w1", "modes_covered", "high_quality_fraction"} <= set(rows[-1])
    config = json.loads((run_dir / "config.json").read_text())
    assert config["steps"] == 4 and config["width"] == 16


@pytest.mark.parametrize(
    ("sets", "label"),
    [
        ([], "wgan-gp on 8gaussians"),
        (["penalty_kind=zero-centered", "penalty_at=real"], "wgan-gp (zero-centered penalty at real) on"),
    ],
)
def test_the_summary_names_a_penalty_other_than_the_papers(tmp_path, capsys, sets, label):
    args = [arg for item in sets for arg in ("--set", item)]
    assert main(["train", "--steps", "2", "--out", str(tmp_path / "run"), *TINY, *args]) == 0
    assert label in capsys.readouterr().out


def test_eval_prints_toy_metrics(run_dir, capsys):
    assert main(["eval", str(run_dir), "--samples", "100"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["step"] == 4 and metrics["samples"] == 100
    assert metrics["w1"] > 0 and 0 <= metrics["modes_covered"] <= 8


@pytest.mark.parametrize("suffix", [".npy", ".png"])
def test_sample_writes_files(run_dir, tmp_path, suffix):
    out = tmp_path / f"s{suffix}"
    assert main(["sample", str(run_dir), "-n", "50", "--out", str(out)]) == 0
    if suffix == ".npy":
        assert np.load(out).shape == (50, 2)
    else:
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sample_is_seeded(run_dir, tmp_path):
    paths = [tmp_path / f"{i}.npy" for i in range(3)]
    for path, seed in zip(paths, (1, 1, 2), strict=True):
        main(["sample", str(run_dir), "-n", "20", "--out", str(path), "--seed", str(seed)])
    a, b, c = (np.load(p) for p in paths)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_presets_and_help_config(capsys):
    assert main(["presets"]) == 0
    assert "toy-paper" in capsys.readouterr().out
    assert main(["train", "--help-config"]) == 0
    out = capsys.readouterr().out
    assert "penalty_weight" in out and "[0, inf)" in out


def test_module_entry_point_help():
    result = subprocess.run(
        [sys.executable, "-m", "wgangp", "train", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "--preset" in result.stdout and "fast" in result.stdout
