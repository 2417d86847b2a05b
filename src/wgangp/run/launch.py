"""Starting ``wgangp train`` in every process of a job: rank 0 alone reads the run's files, the others receive.

On several nodes the ranks share the network, not a filesystem: only node 0 is expected to hold the run
directory (and the ``--config`` file); image data must lie on every node at the same path. So:

1. **Before the process group**, rank 0 resolves the launch (``decide``: config, run directory, the
   checkpoint to resume from) and posts it in torchrun's rendezvous store as one small JSON message: the
   resolved config and the run directory, or rank 0's one-line error. The other ranks need the config
   *before* they join, since the backend (``nccl``/``gloo``, from ``device``) and ``dist_timeout`` are
   chosen at ``init_process_group``; the store exists before the group does, so this costs no guess.
   A refusal (bad run directory, unreadable checkpoint, a batch too small for the processes) stops every
   rank with rank 0's message, before any collective that could hang.
2. **After it**, the checkpoint state (weights, both optimizers, RNG states: MBs to GBs) goes from rank 0 as
   the bytes of ``torch.save`` in broadcasts of at most :data:`CHUNK_BYTES`, and every rank loads them with
   ``weights_only=True`` as rank 0 loaded the file. Why not ``broadcast_object_list`` of the state:
   it pickles the whole state into one tensor, which NCCL needs on the GPU in one piece (the state's
   size in GPU memory at once), and the receivers unpickle it with plain ``pickle``. Chunked bytes bound
   the device memory to one chunk (gloo broadcasts in place, without any copy) and keep the receivers'
   load as restricted as rank 0's.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from wgangp.config import TrainConfig, config_from_dict
from wgangp.distributed import Shard, check_distributed_config, init_from_env
from wgangp.errors import UserError
from wgangp.run.resume import ResumePoint

__all__ = ["CHUNK_BYTES", "Launch", "share_state", "start_job"]

CHUNK_BYTES = 64 << 20  # one broadcast of a checkpoint's bytes: bounds the device memory it takes (NCCL)


@dataclass(frozen=True)
class Launch:
    """What a process trains: the config, the run directory (rank 0's) and the checkpoint to resume from."""

    config: TrainConfig
    run_dir: Path
    resume: ResumePoint | None = None


def start_job(decide: Callable[[], Launch]) -> tuple[Shard, Launch]:
    """This process's shard and rank 0's launch; ``decide`` runs on rank 0 alone (it may read files).

    One process: ``decide()`` and no process group. Under ``torchrun``: see the module docstring. Rank 0's
    :class:`UserError` is raised on every rank (``"rank 0: ..."`` on the others), with its exit code.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        launch = decide()
        return init_from_env(launch.config), launch
    rank = int(os.environ["RANK"])
    # Rank 0 reads and validates within the default dist_timeout; a dead rank 0 is torchrun's to report.
    store, _, _ = next(dist.rendezvous("env://", timeout=timedelta(seconds=TrainConfig().dist_timeout)))
    # One key per torchrun restart, so a restarted worker never reads the previous round's answer.
    key = f"wgangp/launch/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"
    if rank == 0:
        decided, message = _decide_on_main(decide, world_size)
        store.set(key, json.dumps(message))
        if decided is None:
            raise UserError(message["error"], exit_code=message["exit_code"])
        launch = decided
    else:
        message = json.loads(store.get(key))
        if "error" in message:
            raise UserError(f"rank 0: {message['error']}", exit_code=message["exit_code"])
        launch = Launch(config_from_dict(message["config"]), Path(message["run_dir"]))
    shard = init_from_env(launch.config, store=store, rank=rank)
    if message["resume"] is not None:
        state = share_state(shard, launch.resume.state if launch.resume is not None else None)
        point = ResumePoint(launch.run_dir, Path(message["resume"]), state)
        launch = Launch(launch.config, launch.run_dir, point)
    return shard, launch


def _decide_on_main(decide: Callable[[], Launch], world_size: int) -> tuple[Launch | None, dict[str, Any]]:
    """Rank 0's launch and the message for the others: the launch's config, or the error refusing it."""
    try:
        launch = decide()
        check_distributed_config(launch.config, world_size)
    except UserError as err:
        return None, {"error": str(err), "exit_code": err.exit_code}
    resume = None if launch.resume is None else str(launch.resume.path)
    return launch, {"config": launch.config.to_dict(), "run_dir": str(launch.run_dir), "resume": resume}


def share_state(
    shard: Shard, state: dict[str, Any] | None, *, chunk_bytes: int = CHUNK_BYTES
) -> dict[str, Any]:
    """Rank 0's ``state`` on every rank: its ``torch.save`` bytes in broadcasts of ``chunk_bytes``.

    Every rank calls this; ``state`` is read on rank 0 only. The receivers load with ``weights_only=True``
    onto the CPU, exactly as :func:`~wgangp.run.checkpoint.load_checkpoint` loads the file on rank 0.
    """
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    if shard.is_main:
        assert state is not None
        buffer = io.BytesIO()
        torch.save(state, buffer)
        payload = torch.frombuffer(buffer.getbuffer(), dtype=torch.uint8)  # [n] bytes, no copy
        size = torch.tensor([payload.numel()], dtype=torch.int64, device=device)
    else:
        size = torch.zeros(1, dtype=torch.int64, device=device)
    dist.broadcast(size, src=0)
    if not shard.is_main:
        payload = torch.empty(int(size.item()), dtype=torch.uint8)
    for start in range(0, payload.numel(), chunk_bytes):
        piece = payload[start : start + chunk_bytes]  # a view: gloo broadcasts into it in place
        wire = piece if device is None else piece.to(device)
        dist.broadcast(wire, src=0)
        if wire is not piece and not shard.is_main:
            piece.copy_(wire)
    if shard.is_main:
        assert state is not None
        return state
    return torch.load(io.BytesIO(payload.numpy().tobytes()), map_location="cpu", weights_only=True)
