"""1-d signals end to end: train on a test-made sine set, the metrics with their floor, the series format
saved in the run, de-standardised samples without the data, bit-exact resume, step paths, torchrun."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from torchrun_util import assert_same_training, checkpoint_state, torchrun
from wgangp.cli import main
from wgangp.config import resolve_config
from wgangp.data import SeriesFormat
from wgangp.data.sequences import load_series
from wgangp.metrics.signals import signal_metrics
from wgangp.run.checkpoint import load_checkpoint
from wgangp.run.log import read_metrics
from wgangp.trainer import Trainer

QUIET = ["--no-progress", "--no-tensorboard", "--device", "cpu"]
SMALL = {
    "width": 16,
    "depth": 1,
    "batch_size": 16,
    "n_critic": 2,
    "held_out": 40,
    "eval_samples": 40,
    "log_every": 1,
    "eval_every": 2,
    "plot_every": 2,
    "checkpoint_every": 2,
    "keep_checkpoints": 10,
    # The preset decays its learning rate linearly over `steps`; the resume tests extend a split run's
    # --steps, which would change that schedule, so these small runs keep a constant rate.
    "lr_decay": "none",
}


def make_sines(path: Path, n: int = 4000, length: int = 32, *, seed: int = 0) -> np.ndarray:
    """Noisy sines of random phase and frequency (2–5 cycles per series), offset 3 and amplitude 2."""
    rng = np.random.default_rng(seed)
    steps = np.arange(length)
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    freq = rng.uniform(2, 5, (n, 1)) / length
    x = 3.0 + 2.0 * np.sin(2 * np.pi * freq * steps + phase) + 0.2 * rng.standard_normal((n, length))
    np.save(path, x.astype(np.float32))
    return x


def sets(**extra: object) -> list[str]:
    return [arg for k, v in (SMALL | extra).items() for arg in ("--set", f"{k}={v}")]


@pytest.fixture(autouse=True)
def _one_process_here(monkeypatch):
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def sines(tmp_path) -> Path:
    path = tmp_path / "sines.npy"
    make_sines(path, 400)
    return path


def train(out: Path, data: Path, steps: int, *extra: str) -> int:
    args = ["train", "--dataset", "sequences", "--data-path", str(data), "--out", str(out)]
    return main([*args, "--steps", str(steps), *sets(), *extra, *QUIET])


def test_sequences_run_logs_w1_with_floor_plots_and_saves_the_format(tmp_path, sines):
    out = tmp_path / "run"
    assert train(out, sines, 4) == 0
    evals = [r for r in read_metrics(out) if "spectral_w1" in r]
    assert [r["step"] for r in evals] == [2, 4]
    data = load_series(sines, held_out=40)
    assert data.stats is not None
    units = data.stats.destandardize
    floor = signal_metrics(units(data.held_out), units(data.train))
    for row in evals:
        assert row["value_w1_floor"] == pytest.approx(floor["value_w1"], rel=1e-6)
        assert row["spectral_w1_floor"] == pytest.approx(floor["spectral_w1"], rel=1e-6)
        assert 0 < row["spectral_w1"] <= 0.5 and row["value_w1"] > 0
    assert (out / "plots" / "step_0000002.png").stat().st_size > 5_000
    state = load_checkpoint(out / "checkpoints" / "step_0000004.pt")
    assert SeriesFormat.from_dict(state["data_codec"]) == SeriesFormat(1, 32, data.stats)


def test_sample_npy_is_in_the_data_units_without_the_data(tmp_path, sines):
    out = tmp_path / "run"
    assert train(out, sines, 2) == 0
    trainer = Trainer(
        resolve_config("sequences", overrides={"data_path": str(sines), "device": "cpu"} | SMALL)
    )
    raw = trainer.sample(1, seed=0)  # to compare shapes only; weights differ from the run's
    assert raw.shape == (1, 1, 32)
    state = load_checkpoint(out / "checkpoints" / "step_0000002.pt")
    fmt = SeriesFormat.from_dict(state["data_codec"])
    sines.unlink()
    assert main(["sample", str(out), "-n", "50", "--out", str(tmp_path / "s.npy"), "--device", "cpu"]) == 0
    series = np.load(tmp_path / "s.npy")
    assert series.shape == (50, 1, 32)
    # The same latents through the saved generator, de-standardised by the saved statistics.
    from wgangp.run.rundir import load_run

    loaded = load_run(out, device="cpu")
    expected = fmt.to_units(loaded.sample(50, seed=0)).numpy()
    np.testing.assert_allclose(series, expected, rtol=0, atol=1e-6)
    assert fmt.stats is not None and fmt.stats.mean[0] == pytest.approx(3.0, abs=0.1)


def test_eval_reports_signal_metrics(tmp_path, sines, capsys):
    out = tmp_path / "run"
    assert train(out, sines, 2) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--samples", "30", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == 30 and {"value_w1", "spectral_w1", "spectral_w1_floor"} <= set(report)


def test_resume_is_bit_exact(tmp_path, sines):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train(straight, sines, 4) == 0
    assert train(split, sines, 2) == 0
    assert main(["train", "--resume", str(split), "--steps", "4", *QUIET]) == 0
    a, b = (load_checkpoint(d / "checkpoints" / "step_0000004.pt") for d in (straight, split))
    for net in ("generator", "critic"):
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), f"{net}.{key}"
    rows = lambda d: [r for r in read_metrics(d) if "spectral_w1" in r]  # noqa: E731
    assert rows(straight) == rows(split)


@pytest.mark.parametrize("extra", [{"precision": "bf16"}, {"penalty_every": 2}, {"standardize": False}])
def test_sequences_train_on_other_paths(sines, extra):
    config = resolve_config("sequences", overrides={"data_path": str(sines), "device": "cpu"} | SMALL | extra)
    trainer = Trainer(config)
    for _ in range(2):
        stats = trainer.train_iteration()
    assert all(bool(torch.isfinite(v)) for v in stats.values())
    assert isinstance(trainer.codec, SeriesFormat)
    assert (trainer.codec.stats is None) == (extra.get("standardize") is False)


@pytest.mark.parametrize(("preset", "kind"), [("sequences", "two-sided"), ("sequences-r1", "zero-centered")])
def test_sequences_presets_use_the_spectrum_branch(sines, preset, kind):
    config = resolve_config(preset, overrides={"data_path": str(sines), "device": "cpu"} | SMALL)
    assert config.critic_spectrum and config.penalty_kind == kind
    assert config.penalty_at == ("interpolates" if kind == "two-sided" else "real")
    trainer = Trainer(config)
    assert trainer.critic.spectrum is not None
    stats = trainer.train_iteration()
    assert all(bool(torch.isfinite(v)) for v in stats.values())


def test_two_processes_train_sequences_as_one(tmp_path, sines):
    # The spectrum branch sees |rfft| ≥ 0, so some of its first-layer ReLUs start active on every sample: their
    # bias gradient is rounding noise that Adam (eps 1e-8) turns into a ±lr step of either sign, and a later
    # real gradient hides that from the second-moment check. eps 1e-3 damps those steps to ~1e-7 and leaves
    # the others at half size or more, the same in both runs.
    quiet_adam = sets(optimizer_eps=1e-3)
    args = ["--dataset", "sequences", "--data-path", str(sines), "--steps", "2", *quiet_adam, *QUIET]
    torchrun(2, ["--out", str(tmp_path / "two"), *args])
    assert main(["train", "--out", str(tmp_path / "one"), *args]) == 0
    a, b = (checkpoint_state(tmp_path / d, 2) for d in ("two", "one"))
    assert a["data_codec"] == b["data_codec"]
    assert_same_training(a, b)


SLOW = pytest.mark.skipif(os.environ.get("WGANGP_SLOW") != "1", reason="long run; WGANGP_SLOW=1 runs it")
# The presets' measured ends on make_sines, seed 0 (README "Sequences"): `sequences` (WGAN-GP's penalty, the
# spectrum branch) 2.62–2.92× its floor on one or two threads, `sequences-r1` 0.79–1.36×; the bound leaves
# the ±0.5× swing between evaluations.
MEASURED_SPECTRAL_RATIO = 3.5


def _last_evaluation(root: Path, preset: str) -> dict[str, float]:
    """A preset trained to its end on the sines (about 3 CPU-minutes): its last evaluation."""
    make_sines(root / "sines.npy")
    out = root / "run"
    args = ["train", "--dataset", "sequences", "--data-path", str(root / "sines.npy"), "--out", str(out)]
    assert main([*args, "--preset", preset, *QUIET]) == 0
    return [r for r in read_metrics(out) if "spectral_w1" in r][-1]


@pytest.fixture(scope="module")
def preset_last(tmp_path_factory) -> dict[str, float]:
    return _last_evaluation(tmp_path_factory.mktemp("sequences-preset"), "sequences")


@pytest.fixture(scope="module")
def r1_last(tmp_path_factory) -> dict[str, float]:
    return _last_evaluation(tmp_path_factory.mktemp("sequences-r1-preset"), "sequences-r1")


@pytest.mark.slow
@SLOW
def test_sequences_preset_reaches_its_measured_level(preset_last):
    floor = preset_last["spectral_w1_floor"]
    assert floor <= preset_last["spectral_w1"] <= MEASURED_SPECTRAL_RATIO * floor


@pytest.mark.slow
@SLOW
@pytest.mark.xfail(
    strict=True, reason="issue 14's target, not met with WGAN-GP's penalty: see README 'Sequences'"
)
def test_sequences_preset_reaches_twice_the_spectral_floor(preset_last):
    assert preset_last["spectral_w1"] <= 2 * preset_last["spectral_w1_floor"]


@pytest.mark.slow
@SLOW
def test_sequences_r1_preset_reaches_twice_the_spectral_floor(r1_last):
    # Issue 14's signals target, met by the zero-centred penalty on real data with the spectrum branch. The
    # floor is one draw of two real subsets, so a good generator can end under it (2 threads, seed 0: 0.79×).
    assert 0 < r1_last["spectral_w1"] <= 2 * r1_last["spectral_w1_floor"]
