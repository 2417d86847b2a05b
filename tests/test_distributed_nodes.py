"""Several nodes, and the step options across processes (``torchrun``, gloo on CPU).

A two-node job is simulated on this machine: two ``torchrun`` launchers (``--nnodes=2``, one process each),
each in its OWN working directory, so a relative path that exists only on node 0 exists only for rank 0.
The option cases run 2 processes on one launcher against 1 process with the same global batch.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from torchrun_util import (
    LAUNCH_TIMEOUT,
    QUIET,
    SMALL,
    assert_same_training,
    checkpoint_state,
    child_env,
    free_port,
    set_args,
    torchrun,
    torchrun_argv,
    train_one_process,
    training_differences,
)
from wgangp.cli import main
from wgangp.run.checkpoint import CheckpointDir
from wgangp.run.log import read_metrics


@pytest.fixture(autouse=True)
def _one_process_here(monkeypatch):
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)


def two_nodes(args: list[str], cwds: list[Path], *, c10d: bool = False) -> list[subprocess.CompletedProcess]:
    """One launcher per node (``--nnodes=2``, one process each), node ``i`` in ``cwds[i]``; both finished."""
    port = free_port()
    jobs = [
        subprocess.Popen(
            torchrun_argv(1, args, nnodes=2, node_rank=i, port=port, c10d=c10d),
            cwd=cwd,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, cwd in enumerate(cwds)
    ]
    done = []
    try:
        for job in jobs:
            out, err = job.communicate(timeout=LAUNCH_TIMEOUT)
            done.append(subprocess.CompletedProcess(job.args, job.returncode, out, err))
    finally:
        for job in jobs:
            if job.poll() is None:
                job.kill()
                job.wait()
    return done


def _ok(done: list[subprocess.CompletedProcess]) -> None:
    for node, result in enumerate(done):
        assert result.returncode == 0, f"node {node}: {result.stderr[-3000:]}"


def _nodes(root: Path) -> list[Path]:
    cwds = [root / "node0", root / "node1"]
    for cwd in cwds:
        cwd.mkdir(parents=True)
    return cwds


BATCH = {"batch_size": 32}


@pytest.fixture(scope="module")
def two_node_run(tmp_path_factory) -> Path:
    """2 nodes × 1 process, 2 iterations; the config file and the run directory are node 0's (relative)."""
    node0, node1 = _nodes(tmp_path_factory.mktemp("nodes"))
    toml = "".join(
        f"{k} = {v!r}\n" if isinstance(v, str) else f"{k} = {v}\n" for k, v in (SMALL | BATCH).items()
    )
    (node0 / "train.toml").write_text(toml.replace("'", '"'))
    _ok(two_nodes(["--config", "train.toml", "--out", "run", "--steps", "2", *QUIET], [node0, node1]))
    assert list(node1.iterdir()) == []  # rank 1 wrote nothing (and had no config file to read)
    return node0


def test_two_nodes_train_as_one_process(two_node_run, tmp_path):
    train_one_process(tmp_path / "one", 2, **BATCH)
    assert_same_training(checkpoint_state(two_node_run / "run", 2), checkpoint_state(tmp_path / "one", 2))


def test_resume_where_only_node_0_has_the_run_directory(two_node_run, tmp_path):
    node0, node1 = _nodes(tmp_path)
    shutil.copytree(two_node_run / "run", node0 / "run")
    _ok(two_nodes(["--resume", "run", "--steps", "4", "--no-progress", "--no-tensorboard"], [node0, node1]))
    assert list(node1.iterdir()) == []
    train_one_process(tmp_path / "straight", 4, **BATCH)
    assert_same_training(checkpoint_state(node0 / "run", 4), checkpoint_state(tmp_path / "straight", 4))
    assert [s for s, _ in CheckpointDir(node0 / "run").step_files()] == [2, 4]


def test_a_refused_resume_is_one_line_on_every_node(tmp_path):
    done = two_nodes(["--resume", "missing", "--steps", "4", *QUIET[:2]], _nodes(tmp_path))
    for node, result in enumerate(done):
        assert result.returncode != 0
        errors = [line for line in result.stderr.splitlines() if line.startswith("wgangp train: error:")]
        prefix = "" if node == 0 else "rank 0: "
        assert errors == [f"wgangp train: error: {prefix}cannot resume: run directory not found: missing"]
        assert "/wgangp/" not in result.stderr  # no worker traceback (torchrun prints its own summary)


@pytest.mark.slow  # the c10d rendezvous takes ~10 s more on 2 loaded cores; static rendezvous is the CI case
def test_c10d_rendezvous_writes_the_run_on_rank_0s_node(tmp_path):
    """Elastic rendezvous: the rendezvous picks which node holds rank 0, and only that one gets the run."""
    cwds = _nodes(tmp_path)
    _ok(two_nodes(["--out", "run", "--steps", "2", *set_args(**BATCH), *QUIET], cwds, c10d=True))
    holders = [cwd for cwd in cwds if (cwd / "run").exists()]
    assert len(holders) == 1 and [p for p in cwds if p not in holders and any(p.iterdir())] == []
    train_one_process(tmp_path / "one", 2, **BATCH)
    assert_same_training(checkpoint_state(holders[0] / "run", 2), checkpoint_state(tmp_path / "one", 2))


# --- step options across processes ------------------------------------------------------------------------

EMA_DECAY = {"lr_decay": "linear", "ema_decay": 0.9, "generator_batch_multiple": 2}
OPTION_CASES = {
    # The fast-eager step: lazy penalty (λ·k every k-th critic step) with Adam's rescaled β and lr.
    "lazy-penalty": ([], {"penalty_every": 2, "lazy_adam_rescale": "true", **EMA_DECAY}),
    # Clipping after the step: on identical (all-reduced) weights, so the ranks clip identically.
    "wgan-clip": (["--loss", "wgan-clip"], EMA_DECAY),
    "gan": (["--loss", "gan"], EMA_DECAY),
}


# CI runs two of the cases (~7 s each on 2 loaded cores); "gan" is the same weighted-mean argument again.
@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=pytest.mark.slow) if c == "gan" else c for c in OPTION_CASES]
)
def test_step_options_train_as_one_process(case, tmp_path):
    """Every loss's math over shards, the lazy penalty, EMA, linear lr decay and a 2B generator batch."""
    loss, extra = OPTION_CASES[case]
    sets = set_args(**BATCH, **extra)
    torchrun(2, ["--out", str(tmp_path / "two"), "--steps", "2", *loss, *sets, *QUIET])
    assert main(["train", "--out", str(tmp_path / "one"), "--steps", "2", *loss, *sets, *QUIET]) == 0
    two, one = checkpoint_state(tmp_path / "two", 2), checkpoint_state(tmp_path / "one", 2)
    assert_same_training(two, one)
    # The EMA is updated from identical weights on every rank: rank 0's equals one process's.
    assert_same_training(two | {"generator": two["generator_ema"]}, one | {"generator": one["generator_ema"]})
    assert two["schedulers"] == one["schedulers"]
    assert two["critic_opt"]["param_groups"][0]["lr"] == pytest.approx(
        one["critic_opt"]["param_groups"][0]["lr"]
    )


# fp16 across processes with WGANGP_SLOW=1; CI keeps the one-process fp16 run below.
@pytest.mark.parametrize("precision", ["bf16", pytest.param("fp16", marks=pytest.mark.slow)])
def test_mixed_precision_trains_as_one_process_up_to_rounding(precision, tmp_path):
    """bf16/fp16 autocast (CPU): 2 processes against 1, to a tolerance set by the precision's own error.

    Two shards change the order of low-precision sums (each matmul sees 16 rows, not 32), and a changed
    rounding of one bf16/fp16 output changes the result by up to the unit roundoff (2^-9 bf16, 2^-12 fp16
    relative), which Adam's normalised steps carry into the weights. Measured after 2 iterations: bf16
    6e-5 and fp16 9e-6 (2 vs 1 process), against 4e-3 and 2e-2 between the same 1-process run in bf16/fp16
    and in fp32. So: the reordering must stay 10x below the precision's own error; a wrong shard weight or
    a missing reduction moves the weights by a whole update (~1e-3 relative here), above that bound.
    fp16 runs its GradScaler from 2^16: the first critic updates overflow and are skipped (on every rank
    alike, as the overflow check reads the all-reduced gradients); the run must not stop there.
    """
    sets = set_args(**BATCH)
    torchrun(2, ["--out", str(tmp_path / "two"), "--steps", "2", "--precision", precision, *sets, *QUIET])
    for name, arithmetic in (("one", precision), ("fp32", "fp32")):
        argv = ["train", "--out", str(tmp_path / name), "--steps", "2", "--precision", arithmetic]
        assert main([*argv, *sets, *QUIET]) == 0
    two, one, exact = (checkpoint_state(tmp_path / name, 2) for name in ("two", "one", "fp32"))
    own_error = max(training_differences(one, exact).values())
    assert own_error > 1e-4  # the low precision really ran
    assert_same_training(two, one, rtol=own_error / 10)


def test_fp16_survives_the_scalers_first_overflows(tmp_path):
    """One process: GradScaler's 2^16 start overflows the penalty's double backward; those updates are skipped."""
    argv = ["train", "--out", str(tmp_path / "r"), "--steps", "2", "--precision", "fp16"]
    assert main([*argv, *set_args(**BATCH), *QUIET]) == 0
    rows = read_metrics(tmp_path / "r")
    assert [r["step"] for r in rows if "penalty" in r] == [1, 2]
    assert all(math.isfinite(r["generator_loss"]) for r in rows if "generator_loss" in r)


SHARE_STATE = """
import torch, torch.distributed as dist
from wgangp.distributed import current_shard
from wgangp.run.launch import share_state
dist.init_process_group("gloo")
expected = {"w": torch.linspace(-1, 1, 2500), "step": 7, "rng": [torch.Generator().manual_seed(3).get_state(), (1, 2.5)]}
got = share_state(current_shard(), expected if dist.get_rank() == 0 else None, chunk_bytes=4096)
assert got["step"] == 7 and torch.equal(got["w"], expected["w"]) and torch.equal(got["rng"][0], expected["rng"][0])
assert got["rng"][1] == (1, 2.5)
dist.destroy_process_group()
"""


def test_a_state_goes_to_every_rank_in_chunks(tmp_path):
    """A resume state crosses in many broadcasts (chunks of 4 KiB here, the last one partial), bit for bit."""
    env = child_env() | {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", SHARE_STATE],
            env=env | {"RANK": str(rank)},
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    for job in jobs:
        _, err = job.communicate(timeout=LAUNCH_TIMEOUT)
        assert job.returncode == 0, err[-2000:]
