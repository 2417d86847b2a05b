"""Launching ``torchrun`` jobs from tests: the small toy settings, the launch, and the equivalence check.

Shared by the data-parallel test modules; each launch spawns real processes on 127.0.0.1 (gloo).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from wgangp.checkpoint import load_checkpoint
from wgangp.cli import main

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
    "dist_timeout": 5,  # a stuck rank fails the job within seconds
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


def torchrun_argv(nproc: int, args: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
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
    assert done.returncode == 0, done.stderr[-3000:]


def checkpoint_state(run_dir: Path, step: int) -> dict:
    return load_checkpoint(run_dir / "checkpoints" / f"step_{step:07d}.pt")


def assert_same_training(a: dict, b: dict) -> None:
    """Parameters of both networks equal to relative 1e-5 (fp32), where the gradient is not rounding noise.

    A ReLU unit active on every sample has a bias whose gradient is exactly 0 in exact arithmetic (it cancels
    in mean D(real) − mean D(fake) and the penalty does not see it); in floats it is ~1e-8 of rounding, which
    Adam turns into a full step ``±lr`` of either sign. Any change of summation order (2 shards, another
    BLAS) flips such signs, so those entries, found from Adam's second moment, are only checked to move
    within Adam's step bound.
    """
    assert a["step"] == b["step"]
    lr = b["config"]["lr_critic"], b["config"]["lr_generator"]
    for net, opt, rate in (("critic", "critic_opt", lr[0]), ("generator", "generator_opt", lr[1])):
        moments = [s["exp_avg_sq"] for s in b[opt]["state"].values()]
        params = [(k, v) for k, v in a[net].items() if not k.endswith(BATCHNORM_BUFFERS)]
        y_params = [v for k, v in b[net].items() if not k.endswith(BATCHNORM_BUFFERS)]
        for (name, x), y, v in zip(params, y_params, moments, strict=True):
            signal_ = v.sqrt() > 1e-6  # |g| of 1e-3 and up; rounding noise is ~1e-9 here
            diff = (x - y)[signal_].norm() / y[signal_].norm().clamp_min(1e-12)
            assert diff <= 1e-5, f"{net}.{name}: relative difference {float(diff):.2e}"
            assert torch.all((x - y)[~signal_].abs() <= 2 * rate * b["step"] * b["config"]["n_critic"])


def train_one_process(out: Path, steps: int, **extra: object) -> None:
    assert main(["train", "--out", str(out), "--steps", str(steps), *set_args(**extra), *QUIET]) == 0
