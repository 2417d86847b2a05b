"""Data parallelism (``torchrun``, gloo on CPU): N processes train as one process with the same global batch.

Each launch spawns real processes on 127.0.0.1 (a few seconds each); the one-process references run in this
process through the CLI.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from torchrun_util import (
    LAUNCH_TIMEOUT,
    QUIET,
    assert_same_training,
    checkpoint_state,
    child_env,
    running_job,
    set_args,
    torchrun,
    torchrun_argv,
    train_one_process,
)
from wgangp.cli import main
from wgangp.distributed import Shard
from wgangp.penalty import Rows
from wgangp.run.checkpoint import CheckpointDir
from wgangp.run.log import read_metrics


@pytest.fixture(autouse=True)
def _one_process_here(monkeypatch):
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory) -> Path:
    """2 processes, global batch 32, 2 generator iterations (checkpoint at 2)."""
    out = tmp_path_factory.mktemp("dist") / "two"
    torchrun(2, ["--out", str(out), "--steps", "2", *set_args(batch_size=32), *QUIET])
    return out


@pytest.mark.parametrize(
    ("total", "world", "expected"),
    [(32, 2, [(0, 16), (16, 32)]), (7, 2, [(0, 3), (3, 7)]), (10, 3, [(0, 3), (3, 6), (6, 10)])],
)
def test_shards_cover_the_global_batch_once(total, world, expected):
    rows = [Shard(r, world).rows(total) for r in range(world)]
    assert rows == [Rows(start, stop, total) for start, stop in expected]
    assert sum(Shard(r, world).weight(total) for r in range(world)) == pytest.approx(1.0, abs=1e-12)
    assert Shard().rows(total) is None and Shard().weight(total) == 1.0


def test_two_processes_train_as_one(two_process_run, tmp_path):
    train_one_process(tmp_path / "one", 2, batch_size=32)
    assert_same_training(checkpoint_state(two_process_run, 2), checkpoint_state(tmp_path / "one", 2))
    # Rank 0 alone wrote the log: each row once, as one process writes it.
    steps = [[(r["step"], sorted(r)) for r in read_metrics(d)] for d in (two_process_run, tmp_path / "one")]
    assert steps[0] == steps[1]
    assert (two_process_run / "summary.json").is_file()


def test_uneven_split_weights_shards_by_size(tmp_path):
    """31 rows over 2 processes (15 + 16): the loss, penalty and gradients are global-batch means.

    Also the fast step (``wgangp.step``, here through a lazy penalty) rather than the trainer's own.
    """
    out, fast = tmp_path / "two", {"batch_size": 31, "penalty_every": 2}
    torchrun(2, ["--out", str(out), "--steps", "2", *set_args(**fast), *QUIET])
    train_one_process(tmp_path / "one", 2, **fast)
    assert_same_training(checkpoint_state(out, 2), checkpoint_state(tmp_path / "one", 2))
    two, one = ([r for r in read_metrics(d) if "penalty" in r] for d in (out, tmp_path / "one"))
    assert len(two) == len(one) == 2
    for key in ("penalty", "critic_loss", "wasserstein", "grad_norm"):
        assert [r[key] for r in two] == pytest.approx([r[key] for r in one], rel=1e-5), key


def test_an_augmented_image_folder_trains_as_one_process(tmp_path):
    """Images decoded lazily, each process its rows only, with the paper's dequantisation and flips."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (folder := tmp_path / "images").mkdir()  # apart from the runs' own PNGs
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (10, 10), dtype=np.uint8), mode="L").save(folder / f"{i}.png")
    image = {
        "model": "dcgan",
        "resolution": 8,
        "channels": 1,
        "conv_width": 4,
        "generator_norm": "none",  # BatchNorm: see test_distributed_bn.py
        "dequantize": "true",
        "hflip": "true",
        "batch_size": 6,
        "eval_samples": 16,
    }
    args = [*QUIET[:-2], "--preset", "digits", "--dataset", "folder", "--data-path", str(folder)]
    for out, launch in ((tmp_path / "two", 2), (tmp_path / "one", 0)):
        argv = ["--out", str(out), "--steps", "2", *set_args(**image), *args]
        if launch:
            torchrun(launch, argv)
        else:
            assert main(["train", *argv]) == 0
    assert_same_training(checkpoint_state(tmp_path / "two", 2), checkpoint_state(tmp_path / "one", 2))


def test_resume_of_a_distributed_run_in_two_and_in_one_process(two_process_run, tmp_path):
    train_one_process(tmp_path / "straight", 4, batch_size=32)
    straight = checkpoint_state(tmp_path / "straight", 4)
    for nproc in (2, 1):
        run = tmp_path / f"resumed-{nproc}"
        shutil.copytree(two_process_run, run)
        args = ["--resume", str(run), "--steps", "4", "--no-progress", "--no-tensorboard"]
        if nproc == 2:
            torchrun(2, args)
        else:
            assert main(["train", *args]) == 0
        assert_same_training(checkpoint_state(run, 4), straight)
        assert [s for s, _ in CheckpointDir(run).step_files()] == [2, 4]


def test_too_small_a_batch_is_refused_on_every_rank(tmp_path):
    done = subprocess.run(
        torchrun_argv(2, ["--out", str(tmp_path / "r"), *set_args(batch_size=1), *QUIET]),
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT,
    )
    assert done.returncode != 0
    assert "batch_size 1 is smaller than the 2 processes" in done.stderr


def _workers(parent: int) -> list[int]:
    path = Path(f"/proc/{parent}/task/{parent}/children")
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    """Running or stopped, not exited (a zombie counts as exited)."""
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return False


STUCK_TIMEOUT = 5  # dist_timeout here: the survivor of a stuck rank should time out in seconds


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the workers through /proc")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "stuck"])
def test_a_dead_or_stuck_rank_fails_the_job(tmp_path, how):
    """A killed worker (torchrun stops the rest) or a stuck one (the others time out at a collective)."""
    out = tmp_path / "r"
    settings = set_args(batch_size=32, dist_timeout=STUCK_TIMEOUT)
    args = ["--out", str(out), "--steps", "1000000", *settings, *QUIET]
    with running_job(args, ready=out / "checkpoints") as job:  # both ranks are training
        deadline = time.monotonic() + LAUNCH_TIMEOUT
        survivor, victim = _workers(job.pid)
        os.kill(victim, how)
        if how == signal.SIGSTOP:
            # Once the survivor has failed at its collective, let the stuck one take torchrun's SIGTERM
            # (a stopped process would only go after the agent's 30 s grace period).
            while _alive(survivor):
                assert time.monotonic() < deadline, "the survivor did not time out"
                time.sleep(0.2)
            os.kill(victim, signal.SIGCONT)
        _, err = job.communicate(timeout=LAUNCH_TIMEOUT)
    assert job.returncode != 0
    if how == signal.SIGSTOP:
        assert "timed out" in err.lower() or "timeout" in err.lower(), err[-2000:]


def test_sigterm_stops_every_rank_at_the_same_step_after_one_checkpoint(tmp_path):
    out = tmp_path / "r"
    args = ["--out", str(out), "--steps", "1000000", *set_args(batch_size=32, checkpoint_every=10**6), *QUIET]
    with running_job(args, ready=out / "metrics.jsonl") as job:  # rank 0 has logged a step
        job.send_signal(signal.SIGTERM)  # torchrun passes it on to both workers
        _, err = job.communicate(timeout=LAUNCH_TIMEOUT)
    assert job.returncode != 0
    stops = re.findall(r"stopped by SIGTERM at step (\d+)", err)
    assert len(stops) == 2 and stops[0] == stops[1], err[-2000:]
    assert [step for step, _ in CheckpointDir(out).step_files()] == [int(stops[0])]
