"""What tripped a new user up (issue 12), end to end through the CLI: locks, restarts, sampling at any
size, the config the run will use, plain progress lines, vectors defaults, SWD for image folders, curves."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib
import torch

from wgangp.cli import main
from wgangp.run.lock import RunLock
from wgangp.run.log import read_metrics

TINY = [
    *("--set", "width=16", "--set", "depth=2", "--set", "batch_size=32", "--set", "eval_samples=64"),
    *("--set", "log_every=2", "--set", "eval_every=2", "--set", "plot_every=100"),
    *("--set", "checkpoint_every=2", "--no-tensorboard"),
]
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("run") / "run"
    assert main(["train", "--out", str(path), "--steps", "4", "--no-progress", *TINY]) == 0
    return path


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_second_resume_in_another_process_exits_2_naming_the_holder(run: Path, tmp_path: Path) -> None:
    held = tmp_path / "held"
    subprocess.run(["cp", "-r", str(run), str(held)], check=True)
    with RunLock(held):
        before = _snapshot(held)
        env = os.environ | {"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
        result = subprocess.run(
            [sys.executable, "-m", "wgangp", "train", "--resume", str(held), "--steps", "8"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1
        assert f"is in use by process {os.getpid()}" in result.stderr
        assert _snapshot(held) == before
        # Readers take no lock: eval and sample work while the run is held.
        out = tmp_path / "s.npy"
        for argv in (["eval", str(held)], ["sample", str(held), "-n", "10", "--out", str(out)]):
            reader = subprocess.run(
                [sys.executable, "-m", "wgangp", *argv], capture_output=True, text=True, env=env, timeout=120
            )
            assert reader.returncode == 0, reader.stderr
    # Released: the same resume now goes through.
    assert main(["train", "--resume", str(held), "--steps", "6", "--no-progress"]) == 0


def test_a_run_dir_without_checkpoint_is_restarted_with_a_warning(run: Path, tmp_path: Path, capsys) -> None:
    early = tmp_path / "early"
    early.mkdir()
    (early / "config.json").write_text((run / "config.json").read_text())
    (early / "metrics.jsonl").write_text('{"step": 2, "kind": "train"}\n')
    assert main(["train", "--out", str(early), "--steps", "4", "--no-progress", *TINY]) == 0
    assert "stopped before its first checkpoint; starting it afresh" in capsys.readouterr().err
    assert [r["step"] for r in read_metrics(early) if r["kind"] == "train"] == [2, 4]  # the stale row went
    assert (early / "checkpoint.pt").is_file()


def test_hints_quote_paths_for_the_shell(run: Path, tmp_path: Path, capsys) -> None:
    spaced = tmp_path / "sp ace"
    subprocess.run(["cp", "-r", str(run), str(spaced)], check=True)
    assert main(["train", "--out", str(spaced), *TINY]) == 2
    assert f"pass --resume '{spaced}' to continue it" in capsys.readouterr().err


def test_plain_progress_lines_without_a_terminal(tmp_path: Path, capsys) -> None:
    assert main(["train", "--out", str(tmp_path / "r"), "--steps", "6", "--no-progress", *TINY]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    pattern = r"step (\d+)/6  [\d.e+]+ it/s  ETA \d+:\d\d:\d\d  W [-\d.e+]+  ‖∇‖ [\d.e+]+"
    matches = [re.fullmatch(pattern, line) for line in lines]
    assert [int(m.group(1)) if m else None for m in matches] == [2, 4, 6], lines


def test_dry_run_prints_the_resolved_config_and_writes_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--preset", "toy", "--loss", "wgan-clip", "--steps", "7", "--set", "width=24"]
    assert main([*argv, "--dry-run", "--out", "r"]) == 0
    assert list(tmp_path.iterdir()) == []
    text = capsys.readouterr().out
    table = tomllib.loads(text)["train"]
    from wgangp.config import resolve_config

    assert (
        table == resolve_config("toy", loss="wgan-clip", sets=["width=24"], overrides={"steps": 7}).to_dict()
    )
    assert re.search(r"^optimizer = \"rmsprop\"$", text, re.M) and "width = 24\n" in text


def test_help_config_shows_the_active_preset_beside_the_defaults(capsys) -> None:
    assert main(["train", "--dataset", "digits", "--help-config"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.strip().startswith("penalty_weight"))
    assert re.search(r"default 0\.1 +preset digits \*1\.0 ", row), row
    same = next(line for line in out.splitlines() if line.strip().startswith("beta2"))
    assert "preset digits  0.9" in same


@pytest.mark.parametrize(("argv", "steps"), [(["--set", "steps=1e3"], 1000), (["--steps", "2e3"], 2000)])
def test_one_rule_for_integers(argv: list[str], steps: int, capsys) -> None:
    assert main(["train", *argv, "--dry-run"]) == 0
    assert tomllib.loads(capsys.readouterr().out)["train"]["steps"] == steps


def test_toml_keys_at_the_top_level_and_in_train_combine(tmp_path: Path, capsys) -> None:
    (tmp_path / "c.toml").write_text("width = 24\n[train]\nsteps = 5\n")
    assert main(["train", "--config", str(tmp_path / "c.toml"), "--dry-run"]) == 0
    table = tomllib.loads(capsys.readouterr().out)["train"]
    assert (table["width"], table["steps"]) == (24, 5)


def test_sample_streams_in_chunks_equal_to_one_draw(run: Path, tmp_path: Path, monkeypatch) -> None:
    from wgangp.run import samples
    from wgangp.run.rundir import load_run

    monkeypatch.setattr(samples, "CHUNK_BYTES", 8 * 100)  # 100 toy points per chunk
    assert samples.chunk_rows((2,), 2) == 96  # a multiple of 16 values (torch's CPU normal blocks)
    assert main(["sample", str(run), "-n", "1000", "--out", str(tmp_path / "s.npy"), "--seed", "3"]) == 0
    expected = load_run(run).sample(1000, seed=3).numpy()
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), expected)
    assert main(["sample", str(run), "-n", "1000", "--out", str(tmp_path / "s.npz"), "--seed", "3"]) == 0
    with np.load(tmp_path / "s.npz") as archive:
        assert archive.files == ["samples"]
        np.testing.assert_array_equal(archive["samples"], expected)
    assert not list(tmp_path.glob(".*tmp"))


def test_sample_overwrite_replaces(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.npy"
    np.save(out, np.zeros(1))
    assert main(["sample", str(run), "-n", "5", "--out", str(out), "--overwrite"]) == 0
    assert np.load(out).shape == (5, 2)


def test_vectors_default_latent_dim_to_d_and_standardise(tmp_path: Path, capsys) -> None:
    g = np.random.default_rng(0)
    data = (g.normal(size=(512, 10)) * np.arange(1, 11) + 100).astype(np.float32)
    np.save(tmp_path / "v.npy", data)
    out = tmp_path / "r"
    argv = ["train", "--dataset", "vectors", "--data-path", str(tmp_path / "v.npy"), "--out", str(out)]
    assert main([*argv, "--steps", "2", "--set", "standardize=true", "--no-progress", *TINY]) == 0
    assert "latent_dim = 10, the data's dimension D" in capsys.readouterr().err
    assert json.loads((out / "config.json").read_text())["latent_dim"] == 10
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    torch.testing.assert_close(
        state["feature_scaling"]["mean"], torch.from_numpy(data.mean(0)), rtol=1e-5, atol=1e-4
    )
    torch.testing.assert_close(
        state["feature_scaling"]["std"], torch.from_numpy(data.std(0, ddof=1)), rtol=1e-4, atol=0
    )
    # Samples come back in the data's units (means near 100, not 0).
    assert main(["sample", str(out), "-n", "2000", "--out", str(tmp_path / "s.npy")]) == 0
    means = np.load(tmp_path / "s.npy").mean(0)
    assert np.all((means > 90) & (means < 110)), means
    # An explicit latent_dim is kept.
    capsys.readouterr()
    assert main([*argv[:-2], "--set", "latent_dim=3", "--dry-run"]) == 0
    assert tomllib.loads(capsys.readouterr().out)["train"]["latent_dim"] == 3


@pytest.mark.parametrize(
    ("flags", "native"),
    [("fpu avx2 avx512f avx512_bf16 amx_tile", True), ("fpu avx2 avx512f", False), ("fp asimd bf16", True)],
)
def test_cpu_bf16_support_reads_the_flags(flags: str, native: bool) -> None:
    from wgangp.step.amp import cpu_bf16_support

    found, detail = cpu_bf16_support(f"processor : 0\nflags\t\t: {flags}\n")
    assert found is native and "torch kernels" in detail


def test_bf16_on_the_cpu_says_whether_it_is_native(tmp_path: Path, capsys) -> None:
    assert (
        main(
            [
                "train",
                "--out",
                str(tmp_path / "r"),
                "--steps",
                "2",
                "--precision",
                "bf16",
                "--no-progress",
                *TINY,
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert re.search(r"precision bf16 on the CPU: this CPU has (no )?native bf16", err), err


def test_metrics_rows_carry_their_kind(run: Path) -> None:
    rows = read_metrics(run)
    assert {r["kind"] for r in rows} == {"train", "eval"}
    assert all(("w1" in r) == (r["kind"] == "eval") for r in rows)


def test_a_curve_with_one_point_shows_it(tmp_path: Path, monkeypatch) -> None:
    from wgangp.experiments import report
    from wgangp.pictures import plots

    figures = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path: figures.append(fig))
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig))
    one = {"step": 10, "time": 1.0, "w1": 0.5, "wasserstein": 1.0}
    results = {
        "metrics": [{"key": "w1", "label": "W1"}],
        "methods": ["wgan-gp"],
        "runs": {"wgan-gp": [{"evals": [one], "curves": [one, one | {"step": 20, "time": 2.0}]}]},
    }
    report.plot_compare_curves(tmp_path / "c.png", results)
    plots.plot_curves(tmp_path / "p.png", [one], keys=["w1"])
    lines = [line for fig in figures for ax in fig.axes for line in ax.get_lines()]
    single = [line.get_marker() for line in lines if len(line.get_xdata()) == 1]
    several = [line.get_marker() for line in lines if len(line.get_xdata()) > 1]
    assert single == ["o", "o", "o"]  # compare's W1 panel against step and time, plot_curves' one panel
    assert several and all(marker in ("None", None, "") for marker in several)


def _image_folder(root: Path, n: int = 40, size: int = 16) -> Path:
    from PIL import Image

    root.mkdir()
    g = np.random.default_rng(0)
    for i in range(n):
        pixels = (g.random((size, size, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / f"{i:03d}.png")
    return root


def test_swd_for_an_image_folder_during_training_and_in_eval(tmp_path: Path, capsys) -> None:
    folder = _image_folder(tmp_path / "imgs")
    out = tmp_path / "r"
    argv = [
        "train", "--dataset", "folder", "--data-path", str(folder), "--out", str(out), "--steps", "2",
        "--preset", "64px-resnet", "--no-progress", "--no-tensorboard",
        *("--set", "model=dcgan", "--set", "resolution=16", "--set", "conv_width=8", "--set", "latent_dim=8"),
        *("--set", "batch_size=8", "--set", "eval_samples=32", "--set", "eval_every=2", "--set", "log_every=1"),
        *("--set", "checkpoint_every=2", "--set", "plot_every=100", "--set", "grid_samples=4"),
    ]  # fmt: skip
    assert main(argv) == 0
    evals = [r for r in read_metrics(out) if r["kind"] == "eval"]
    assert len(evals) == 1 and evals[0]["step"] == 2
    assert {"swd_16x16", "swd_mean"} <= set(evals[0]) and 0 < evals[0]["swd_mean"] < 1e4
    capsys.readouterr()
    assert main(["eval", str(out), "--samples", "32"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["swd_mean"] > 0 and scores["samples"] == 32
