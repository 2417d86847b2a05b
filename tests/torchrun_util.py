"""Launching ``torchrun`` jobs from tests: the small toy settings, the launch, and the equivalence check.

Shared by the data-parallel test modules; each launch spawns real processes on 127.0.0.1 (gloo).
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from wgangp.cli import main
from wgangp.run.checkpoint import load_checkpoint

SRC = Path(__file__).resolve().parents[1] / "src"
SMALL = {
    "width": 16,
    "depth": 2,
    "eval_samples": 64,
    "log_every": 1,
    "eval_every": 10**6,
    "plot_every": 10**6,
    "checkpoint_every": 2,
    "keep_checkpoints": 10,
    "lr_decay": "none",
    # A stuck rank fails the job within a minute, inside LAUNCH_TIMEOUT; rank 0's last files (checkpoint,
    # eval, plots) took over 5 s on a loaded 2-core CI host while the others waited at the final barrier.
    "dist_timeout": 60,
}
QUIET = ["--no-progress", "--no-tensorboard", "--device", "cpu", "--dataset", "8gaussians"]
BATCHNORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")  # state, not parameters
LAUNCH_TIMEOUT = 120  # seconds for a whole torchrun job; far above what one takes (~5 s)


def set_args(**extra: object) -> list[str]:
    return [arg for key, value in (SMALL | extra).items() for arg in ("--set", f"{key}={value}")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def torchrun_argv(
    nproc: int,
    args: list[str],
    *,
    nnodes: int = 1,
    node_rank: int = 0,
    port: int | None = None,
    c10d: bool = False,
) -> list[str]:
    """One ``torchrun`` launcher; for a job of ``nnodes`` launchers give each its ``node_rank`` and one ``port``.

    ``c10d``: elastic rendezvous at ``127.0.0.1:port`` (the node ranks are then the rendezvous's choice).
    """
    port = port or free_port()
    if c10d:
        rendezvous = ["--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=wgangp-test"]
    else:
        rendezvous = [f"--node_rank={node_rank}", "--master_addr=127.0.0.1", f"--master_port={port}"]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nnodes={nnodes}",
        f"--nproc_per_node={nproc}",
        *rendezvous,
        "-m",
        "wgangp",
        "train",
        *args,
    ]


def child_env() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def torchrun(nproc: int, args: list[str]) -> None:
    done = subprocess.run(
        torchrun_argv(nproc, args), env=child_env(), capture_output=True, text=True, timeout=LAUNCH_TIMEOUT
    )
    assert done.returncode == 0, job_failure(done.stderr)


def job_failure(stderr: str) -> str:
    """A failed job's stderr: the workers' own lines first (the cause), then torchrun's summary."""
    return stderr if len(stderr) <= 6000 else f"{stderr[:3000]}\n[...]\n{stderr[-3000:]}"


def checkpoint_state(run_dir: Path, step: int) -> dict:
    return load_checkpoint(run_dir / "checkpoints" / f"step_{step:07d}.pt")


def assert_same_training(a: dict, b: dict, rtol: float = 1e-5) -> None:
    """Parameters of both networks equal to relative ``rtol`` (fp32: 1e-5), where the gradient is not rounding noise.

    A ReLU unit active on every sample has a bias whose gradient is exactly 0 in exact arithmetic (it cancels
    in mean D(real) − mean D(fake) and the penalty does not see it); in floats it is ~1e-8 of rounding, which
    Adam turns into a full step ``±lr`` of either sign. Any change of summation order (2 shards, another
    BLAS) flips such signs, so those entries, found from Adam's second moment, are only checked to move
    within Adam's step bound.
    """
    for name, diff in training_differences(a, b).items():
        assert diff <= rtol, f"{name}: relative difference {diff:.2e}"


def training_differences(a: dict, b: dict) -> dict[str, float]:
    """``{network.tensor: relative difference}`` of ``a`` against ``b`` on the entries a gradient moves.

    The other entries (rounding-noise gradients, see :func:`assert_same_training`) are asserted here to
    stay within the optimizer's step bound.
    """
    assert a["step"] == b["step"]
    lr = b["config"]["lr_critic"], b["config"]["lr_generator"]
    found = {}
    for net, opt, rate in (("critic", "critic_opt", lr[0]), ("generator", "generator_opt", lr[1])):
        # Second moments: Adam's exp_avg_sq, RMSprop's square_avg (wgan-clip). One update moves an entry by
        # at most ~lr (Adam) or lr/sqrt(1 - α) (RMSprop's first steps, v = (1 - α)·g²).
        group = b[opt]["param_groups"][0]
        moments = [s.get("exp_avg_sq", s.get("square_avg")) for s in b[opt]["state"].values()]
        move = rate / math.sqrt(1 - group["alpha"]) if "alpha" in group else rate
        params = [(k, v) for k, v in a[net].items() if not k.endswith(BATCHNORM_BUFFERS)]
        y_params = [v for k, v in b[net].items() if not k.endswith(BATCHNORM_BUFFERS)]
        for (name, x), y, v in zip(params, y_params, moments, strict=True):
            signal_ = v.sqrt() > 1e-6  # |g| of 1e-3 and up; rounding noise is ~1e-9 here
            found[f"{net}.{name}"] = float((x - y)[signal_].norm() / y[signal_].norm().clamp_min(1e-12))
            assert torch.all((x - y)[~signal_].abs() <= 2 * move * b["step"] * b["config"]["n_critic"])
    return found


def train_one_process(out: Path, steps: int, **extra: object) -> None:
    assert main(["train", "--out", str(out), "--steps", str(steps), *set_args(**extra), *QUIET]) == 0


@contextmanager
def running_job(args: list[str], ready: Path) -> Iterator[subprocess.Popen[str]]:
    """A 2-process ``torchrun`` job in the background, yielded once ``ready`` exists; killed if still up."""
    job = subprocess.Popen(
        torchrun_argv(2, args), env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + LAUNCH_TIMEOUT
        while not ready.exists():
            assert job.poll() is None and time.monotonic() < deadline, "the job did not start"
            time.sleep(0.2)
        yield job
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
