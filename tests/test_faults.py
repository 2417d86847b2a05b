"""Faults: non-finite terms (stop or skip), disk full mid-run, SIGINT/SIGTERM, and SIGKILL at random moments."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import wgangp
from wgangp.cli import main
from wgangp.config import resolve_config
from wgangp.run.checkpoint import CheckpointDir, load_checkpoint
from wgangp.run.loop import load_run, train
from wgangp.step import update as step_module
from wgangp.step.faults import first_nonfinite
from wgangp.trainer import Trainer

SMALL = {
    "width": 16,
    "depth": 2,
    "batch_size": 32,
    "eval_samples": 64,
    "log_every": 1,
    "eval_every": 5,
    "plot_every": 10**6,
    "checkpoint_every": 2,
}
TINY = [arg for key, value in SMALL.items() for arg in ("--set", f"{key}={value}")]
QUIET = ["--no-progress", "--no-tensorboard"]
NAN = float("nan")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"critic_loss": 1.0, "penalty": 2.0, "generator_loss": 3.0}, None),
        ({"critic_loss": 1.0, "penalty": NAN, "generator_loss": NAN}, "penalty"),
        ({"critic_loss": float("-inf"), "generator_loss": NAN}, "critic_loss"),
        ({"critic_loss": 1.0, "generator_loss": float("inf"), "wasserstein": NAN}, "generator_loss"),
        ({"wasserstein": NAN}, None),  # only the terms of the objective are checked
    ],
)
def test_first_nonfinite(values, expected):
    assert first_nonfinite({k: torch.tensor(v) for k, v in values.items()}) == expected


def _inject_nan(monkeypatch, term: str, call: int) -> None:
    """Make the update step's ``term`` non-finite at its ``call``-th evaluation (1-based)."""
    name = {"critic loss": "critic_loss", "penalty": "penalty_and_norms", "generator loss": "generator_loss"}
    original = getattr(step_module, name[term])
    calls = 0

    def poisoned(*args, **kwargs):
        nonlocal calls
        calls += 1
        out = original(*args, **kwargs)
        if calls != call:
            return out
        if isinstance(out, tuple):  # the penalty with its norms
            return (out[0] * NAN, *out[1:])
        return out * NAN

    monkeypatch.setattr(step_module, name[term], poisoned)


@pytest.mark.parametrize(
    ("term", "call", "step"),
    [("critic loss", 22, 5), ("penalty", 25, 5), ("generator loss", 5, 5)],  # n_critic = 5
)
def test_nan_stops_the_run_naming_step_and_term(tmp_path, monkeypatch, capsys, term, call, step):
    _inject_nan(monkeypatch, term, call)
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--steps", "20", *TINY, *QUIET]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"non-finite {term} at step {step}; stopped" in err and "step_0000004.pt" in err
    # The last good checkpoint is kept, loads, and nothing of the bad step reached the disk.
    assert [s for s, _ in CheckpointDir(run).step_files()] == [2, 4]
    trainer = load_run(run)
    assert trainer.step == 4
    assert all(torch.isfinite(p).all() for p in trainer.generator.parameters())
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 4


def test_skip_nonfinite_drops_the_update_and_counts_it(monkeypatch):
    config = resolve_config("fast", overrides=SMALL | {"steps": 3, "skip_nonfinite": True})
    trainer = Trainer(config, device=torch.device("cpu"))
    trainer.train_iteration()
    generator = [p.clone() for p in trainer.generator.parameters()]
    moments = [s["exp_avg"].clone() for s in trainer.generator_opt.state.values()]
    _inject_nan(monkeypatch, "generator loss", 1)
    stats = trainer.train_iteration()
    assert "generator_loss" not in stats and torch.isfinite(stats["critic_loss"])
    assert trainer.skipped_updates == 1 and trainer.step == 2
    assert all(torch.equal(a, b) for a, b in zip(generator, trainer.generator.parameters(), strict=True))
    exp_avg = [s["exp_avg"] for s in trainer.generator_opt.state.values()]
    assert all(torch.equal(a, b) for a, b in zip(moments, exp_avg, strict=True))


def test_skip_nonfinite_run_completes_and_logs_the_count(tmp_path, monkeypatch, capsys):
    _inject_nan(monkeypatch, "penalty", 12)  # step 3, third critic update
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--steps", "6", "--skip-nonfinite", *TINY, *QUIET]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    skipped = {r["step"]: r["skipped_updates"] for r in rows if "skipped_updates" in r}
    assert skipped == {1: 0, 2: 0, 3: 1, 4: 1, 5: 1, 6: 1}
    assert all(isinstance(r["penalty"], float) for r in rows if "penalty" in r)  # mean of the applied ones


def test_disk_full_mid_run_is_one_line_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    saves = 0
    real_save = torch.save

    def fills_up(obj, f, *args, **kwargs):
        nonlocal saves
        saves += 1
        if saves == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", fills_up)
    run = tmp_path / "run"
    argv = ["train", "--out", str(run), "--steps", "20", *TINY, "--set", "eval_every=1000", *QUIET]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err
    assert "step_0000004.pt is intact" in err
    monkeypatch.setattr(torch, "save", real_save)
    assert load_run(run).step == 4
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_0000002.pt", "step_0000004.pt"]


def _env() -> dict[str, str]:
    src = str(Path(wgangp.__file__).resolve().parents[1])
    return os.environ | {"PYTHONPATH": src, "OMP_NUM_THREADS": "1"}


def _last_logged_step(run: Path) -> int:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return 0
    steps = [0]
    for line in path.read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except (json.JSONDecodeError, KeyError):
            continue
    return max(steps)


def _wait_for_progress(proc: subprocess.Popen, run: Path, beyond: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and _last_logged_step(run) <= beyond:
        assert time.monotonic() < deadline, "no training progress"
        time.sleep(0.02)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_finishes_the_step_checkpoints_and_exits(tmp_path, sig, code):
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "wgangp", "train", "--out", str(run), "--steps", "100000", *TINY, *QUIET]
    proc = subprocess.Popen(argv, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for_progress(proc, run, beyond=3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    step = _last_logged_step(run)
    assert err.count("\n") == 1
    assert f"stopped by {sig.name} at step {step}; checkpoint" in err and "--resume" in err
    assert load_checkpoint(run / "checkpoints" / f"step_{step:07d}.pt")["step"] == step
    assert main(["train", "--resume", str(run), "--steps", str(step + 1), *QUIET]) == 0


def _kill_resume_trials(tmp_path: Path, trials: int, seed: int) -> list[dict]:
    """SIGKILL ``wgangp train`` at seeded random moments, resume each time, let the last one finish."""
    rng = random.Random(seed)
    run, every, steps = tmp_path / "run", SMALL["checkpoint_every"] + 1, 20 * trials + 20
    tiny = [*TINY, "--set", f"checkpoint_every={every}", "--set", "keep_checkpoints=2", *QUIET]
    new = [sys.executable, "-m", "wgangp", "train", "--out", str(run), "--steps", str(steps), *tiny]
    resume = [sys.executable, "-m", "wgangp", "train", "--resume", str(run), *QUIET]
    results = []
    for trial in range(trials + 1):
        has_checkpoint = CheckpointDir(run).step_files()
        argv = resume if has_checkpoint else [*new, "--overwrite"]
        before = _last_logged_step(run)
        proc = subprocess.Popen(argv, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if trial == trials:  # the last one runs to the end
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
            break
        if rng.random() < 0.2:
            time.sleep(rng.uniform(0.0, 3.0))  # anywhere, start-up included
        else:
            _wait_for_progress(proc, run, beyond=before)
            time.sleep(rng.uniform(0.0, 0.3))
        proc.kill()
        proc.communicate()
        reached = _last_logged_step(run)
        _, state = CheckpointDir(run).latest() if CheckpointDir(run).step_files() else (None, {"step": 0})
        results.append({"trial": trial, "reached": reached, "checkpoint": state["step"]})
        # Never more than one checkpoint interval lost, and every checkpoint on disk loads.
        assert reached - state["step"] <= every, results
        for path in (run / "checkpoints").glob("*.pt"):
            load_checkpoint(path)
        assert reached < steps, "the run finished before it was killed; give it more steps"

    # The finished run: every step logged exactly once, the final checkpoint, and the same weights as
    # a run that was never killed.
    train_steps = [
        r["step"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "penalty" in r
    ]
    assert train_steps == list(range(1, steps + 1))
    for path in [*(run / "checkpoints").glob("*.pt"), run / "checkpoint.pt"]:
        assert load_checkpoint(path)["step"] <= steps
    killed = load_run(run)
    assert killed.step == steps
    config = resolve_config(
        "fast", overrides=SMALL | {"checkpoint_every": every, "steps": steps, "keep_checkpoints": 2}
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        straight = train(config, tmp_path / "straight", progress=False, tensorboard=False).run_dir
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(load_run(straight).generator.parameters(), killed.generator.parameters(), strict=True):
        assert torch.equal(a, b)
    return results


def test_sigkill_at_random_moments_then_resume(tmp_path):
    results = _kill_resume_trials(tmp_path, trials=5, seed=0)
    assert len(results) == 5


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_20_times(tmp_path):
    results = _kill_resume_trials(tmp_path, trials=20, seed=1)
    assert len(results) == 20
