"""The data-parallel step on the CUDA-graph path: its NCCL ``all_reduce`` captured with the iteration (GPU only).

A test machine has one GPU, and NCCL refuses two ranks on one device, so these tests build a one-rank NCCL
group and a shard that *acts* distributed (``distributed`` is true with ``world_size`` 1): the step then
runs every collective a multi-GPU job runs — the weighted flat ``all_reduce`` of the gradients inside the
captured graph — through a real NCCL communicator, and a sum over one rank is exact, so the graphed
distributed step must reproduce the graphed single-process step bit for bit. Run by gpu_check.sh.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import pytest
import torch
import torch.distributed as dist

from wgangp.config import resolve_config
from wgangp.distributed import Shard, all_reduce_gradients
from wgangp.trainer import Trainer

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
    pytest.mark.usefixtures("no_tf32"),
]


@dataclass(frozen=True)
class _CollectiveShard(Shard):
    """Rank 0 of 1 that still runs the collectives of a multi-process job."""

    @property
    def distributed(self) -> bool:
        return True


@pytest.fixture(scope="module", autouse=True)
def nccl_group():
    if not dist.is_nccl_available():
        pytest.skip("this torch build has no NCCL")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    torch.cuda.set_device(0)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_the_gradient_all_reduce_replays_from_a_graph():
    """``all_reduce_gradients`` captured once acts on every replay (w = ½ per replay, one rank)."""
    param = torch.nn.Parameter(torch.zeros(3, device="cuda"))
    param.grad = torch.tensor([1.0, 2.0, 4.0], device="cuda")
    all_reduce_gradients([param], 0.5)  # warm-up: the communicator exists before capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        all_reduce_gradients([param], 0.5)
    # The warm-up halved the gradient; capturing ran nothing.
    torch.testing.assert_close(param.grad, torch.tensor([0.5, 1.0, 2.0], device="cuda"))
    graph.replay()
    graph.replay()
    torch.testing.assert_close(param.grad, torch.tensor([0.125, 0.25, 0.5], device="cuda"))


def _config(**overrides):
    values = {"width": 64, "depth": 3, "batch_size": 128, "steps": 20} | overrides
    return resolve_config("fast", overrides=values)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_graphed_distributed_step_equals_the_graphed_single_process_step(precision):
    config = _config(precision=precision)
    trainers = [Trainer(config, device=torch.device("cuda"), shard=s) for s in (_CollectiveShard(), Shard())]
    assert [t.step_path for t in trainers] == ["graph", "graph"]
    for _ in range(6):  # 3 eager warm-up iterations, a capture, replays
        stats = [t.train_iteration() for t in trainers]
    assert trainers[0].iteration.graphed is not None
    assert len(trainers[0].iteration.graphed._graphs) == 1  # the distributed step did run as a graph
    for name in ("generator", "critic"):
        for a, b in zip(*(getattr(t, name).parameters() for t in trainers), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    for key in stats[1]:
        torch.testing.assert_close(stats[0][key], stats[1][key], rtol=0, atol=0)
