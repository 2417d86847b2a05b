"""Milliseconds per generator iteration for each step path, against the seed-style plain loop.

Used by ``wgangp bench`` (toy MLP) and ``benchmarks/step_speed.py`` (adds image models). Method: every
path gets fresh networks from the same seed and real batches already on the device (data loading is not
timed); it is warmed up (graphs captured), then the paths are timed in interleaved repetitions, each the
mean over ``iters`` iterations between device syncs, and the table shows the median. FLOPs per iteration
come from ``AtenFlopCounter``; the fraction of peak divides the achieved rate by a matrix product's rate
measured in the same run (bf16 on CUDA, fp32 on CPU).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn

from wgangp.config import TrainConfig
from wgangp.experiments.flops import AtenFlopCounter
from wgangp.reference import PlainLoop
from wgangp.step.amp import Precision
from wgangp.step.graph import GraphedIteration
from wgangp.step.lazy import penalty_schedule
from wgangp.step.spec import StepSpec
from wgangp.step.state import TrainState
from wgangp.step.update import iteration

__all__ = ["PATHS", "BenchCase", "BenchRow", "format_table", "run_benchmark", "toy_case"]


@dataclass(frozen=True)
class BenchCase:
    """A model pair to time: ``make()`` returns ``(generator, critic)`` (seeded inside)."""

    name: str
    make: Callable[[], tuple[nn.Module, nn.Module]]
    latent_dim: int
    sample_shape: tuple[int, ...]
    batch_size: int
    penalty_weight: float = 10.0
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    n_critic: int = 5
    conv: bool = False  # channels_last on CUDA for the wgangp paths


@dataclass(frozen=True)
class PathSpec:
    """One step path: precision, lazy interval, graph or not (``plain`` is the seed-style loop)."""

    precision: Precision = "fp32"
    penalty_every: int = 1
    graph: bool = False
    plain: bool = False
    compile: bool = False


PATHS: dict[str, PathSpec] = {
    "plain": PathSpec(plain=True),
    "eager": PathSpec(),
    "bf16": PathSpec(precision="bf16"),
    "fp16": PathSpec(precision="fp16"),
    "lazy4": PathSpec(penalty_every=4),
    "graph": PathSpec(graph=True),
    "graph-bf16": PathSpec(precision="bf16", graph=True),
    "graph-bf16-lazy4": PathSpec(precision="bf16", penalty_every=4, graph=True),
    # Opt-in (compiling takes a minute per model): torch.compile'd critic objective inside the graph.
    "graph-bf16-compile": PathSpec(precision="bf16", graph=True, compile=True),
    "graph-bf16-lazy4-compile": PathSpec(precision="bf16", penalty_every=4, graph=True, compile=True),
}
CPU_PATHS = ("plain", "eager", "bf16", "lazy4")
CUDA_PATHS = ("plain", "eager", "bf16", "lazy4", "graph", "graph-bf16", "graph-bf16-lazy4")


@dataclass
class BenchRow:
    case: str
    path: str
    ms: float
    spread: float  # (max − min) / median over repetitions
    ratio: float  # plain's ms / this path's ms
    peak_mib: float | None
    gflop: float
    tflops: float
    peak_fraction: float
    samples: list[float] = field(default_factory=list)


def toy_case(batch_size: int = 256) -> BenchCase:
    """The paper's toy MLP (2→512→512→512, ReLU), batch 256."""
    from wgangp.models.mlp import MLPCritic, MLPGenerator

    def make() -> tuple[nn.Module, nn.Module]:
        torch.manual_seed(0)
        return MLPGenerator(2, 2), MLPCritic(2)

    return BenchCase("toy-mlp", make, latent_dim=2, sample_shape=(2,), batch_size=batch_size)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _channels_last(module: nn.Module) -> nn.Module:
    # NHWC lets cuDNN use its fastest bf16 convolutions; the penalty's norm reduces over dims, not a view.
    return module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def _runner(case: BenchCase, path: PathSpec, device: torch.device, reals: Tensor) -> Callable[[], None]:
    """A closure that runs one generator iteration of ``case`` on ``path``."""
    generator, critic = (m.to(device) for m in case.make())
    noise = torch.Generator(device=device).manual_seed(1)
    if path.plain:
        cursor = iter(range(1 << 62))
        pool = reals.flatten(0, 1)  # [P·n_critic·B...] cycled batch by batch

        def draw() -> Tensor:
            return pool[next(cursor) % pool.shape[0]]

        loop = PlainLoop(
            generator, critic, draw, latent_dim=case.latent_dim, batch_size=case.batch_size,
            penalty_weight=case.penalty_weight, n_critic=case.n_critic, lr=case.lr, betas=case.betas, noise=noise,
        )  # fmt: skip
        return lambda: _plain_iteration(loop)
    if case.conv and device.type == "cuda":
        generator, critic = (_channels_last(m) for m in (generator, critic))
        reals = reals.contiguous(memory_format=torch.channels_last) if reals.ndim == 4 else reals
    config = TrainConfig(
        penalty_weight=case.penalty_weight, n_critic=case.n_critic, penalty_every=path.penalty_every,
        precision=path.precision, latent_dim=case.latent_dim, compile=path.compile, batch_size=case.batch_size,
        lr_critic=case.lr, lr_generator=case.lr, beta1=case.betas[0], beta2=case.betas[1],
    )  # fmt: skip
    # The trainer's optimizers (fused Adam on CUDA; capturable for the graph) and step settings.
    nets = TrainState.build(config, generator, critic, graph=path.graph)
    spec = StepSpec.from_config(config, autocast_cache=not path.graph)
    graphed = GraphedIteration(nets, spec) if path.graph else None
    count = iter(range(1 << 62))

    def run() -> None:
        step = next(count)
        batch = reals[step % reals.shape[0]]  # [n_critic, B, ...]
        schedule = penalty_schedule(step * case.n_critic, case.n_critic, path.penalty_every)
        if graphed is not None:
            graphed(batch, schedule)
        else:
            iteration(nets, spec, batch, schedule)

    return run


def _plain_iteration(loop: PlainLoop) -> None:
    # PlainLoop.iteration reads its losses back (a host sync per iteration, as seed code does); time it as is.
    loop.iteration()


def _count_flops(case: BenchCase, path: PathSpec, device: torch.device, reals: Tensor) -> float:
    """FLOPs per iteration of ``path``'s math (eager, fp32), averaged over a lazy schedule's period."""
    math_path = replace(path, graph=False, precision="fp32", plain=False, compile=False)
    run = _runner(case, math_path, device, reals)
    period = path.penalty_every
    with AtenFlopCounter() as counter:
        for _ in range(period):
            run()
    return counter.total / period


def matmul_peak(device: torch.device, now: Callable[[], float] = time.perf_counter) -> tuple[float, str]:
    """A large matrix product's FLOP/s on ``device``: bf16 8192³ on CUDA, fp32 1024³ on CPU."""
    n, dtype = (8192, torch.bfloat16) if device.type == "cuda" else (1024, torch.float32)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(2):
        a @ b
    _sync(device)
    reps = 10 if device.type == "cuda" else 3
    start = now()
    for _ in range(reps):
        a @ b
    _sync(device)
    rate = 2 * n**3 * reps / (now() - start)
    return rate, f"{'bf16' if dtype == torch.bfloat16 else 'fp32'} {n}³ matmul"


def run_benchmark(
    cases: list[BenchCase],
    paths: tuple[str, ...],
    device: torch.device,
    *,
    reps: int = 5,
    iters: int = 10,
    warmup: int = 3,
    clock: str = "wall",
    log: Callable[[str], None] = print,
) -> tuple[list[BenchRow], dict[str, Any]]:
    """Time every ``path`` on every case; rows in order, plus facts about the run (device, torch, peak).

    ``clock="process"`` (CPU only) times the process's CPU seconds instead of wall time: on a machine shared
    with other jobs it counts this benchmark's own work, not the time it waited for a core.
    """
    if clock not in ("wall", "process") or (clock == "process" and device.type == "cuda"):
        raise ValueError(f"clock must be 'wall', or 'process' on the CPU; got {clock!r} on {device.type}")
    now = time.perf_counter if clock == "wall" else time.process_time
    if "plain" not in paths:
        paths = ("plain", *paths)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 paths measure fp32, as the paper's math
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    peak, peak_name = matmul_peak(device, now)
    facts = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "peak_tflops": peak / 1e12,
        "peak_measured_by": peak_name,
        "clock": clock,
    }  # fmt: skip
    rows: list[BenchRow] = []
    for case in cases:
        pool = 2
        reals = torch.randn(pool, case.n_critic, case.batch_size, *case.sample_shape, device=device)
        runners: dict[str, Callable[[], None]] = {}
        memory: dict[str, float | None] = {}
        for name in paths:
            spec = PATHS[name]
            before = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            runners[name] = _runner(case, spec, device, reals)
            # Graphs need warm-up and one capture per lazy pattern before they replay.
            for _ in range(warmup + (spec.graph * 4 * spec.penalty_every)):
                runners[name]()
            _sync(device)
            memory[name] = (
                (torch.cuda.max_memory_allocated(device) - before) / 2**20 if device.type == "cuda" else None
            )
        flops = {name: _count_flops(case, PATHS[name], device, reals) for name in paths}
        samples: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(reps):
            for name in paths:  # interleaved: drifts in clock or load hit every path alike
                _sync(device)
                start = now()
                for _ in range(iters):
                    runners[name]()
                _sync(device)
                samples[name].append((now() - start) / iters * 1e3)
        plain_ms = statistics.median(samples["plain"])
        for name in paths:
            ms = statistics.median(samples[name])
            rate = flops[name] / (ms / 1e3)
            rows.append(
                BenchRow(
                    case=case.name,
                    path=name,
                    ms=ms,
                    spread=(max(samples[name]) - min(samples[name])) / ms,
                    ratio=plain_ms / ms,
                    peak_mib=memory[name],
                    gflop=flops[name] / 1e9,
                    tflops=rate / 1e12,
                    peak_fraction=rate / peak,
                    samples=samples[name],
                )
            )
            log(format_row(rows[-1]))
    return rows, facts


HEADER = f"{'case':<10} {'path':<17} {'ms/iter':>9} {'spread':>7} {'× plain':>8} {'peak MiB':>9} {'GFLOP':>8} {'TFLOP/s':>8} {'% peak':>7}"


def format_row(row: BenchRow) -> str:
    mem = "-" if row.peak_mib is None else f"{row.peak_mib:.0f}"
    return (
        f"{row.case:<10} {row.path:<17} {row.ms:>9.2f} {row.spread:>6.0%} {row.ratio:>7.2f}× {mem:>9} "
        f"{row.gflop:>8.1f} {row.tflops:>8.3f} {row.peak_fraction:>6.1%}"
    )


def format_table(rows: list[BenchRow], facts: dict[str, Any]) -> str:
    lines = [
        f"# {facts['device']}, torch {facts['torch']}, {facts['date']}; peak {facts['peak_tflops']:.3g} "
        f"TFLOP/s ({facts['peak_measured_by']}); {facts['clock']} clock, median of interleaved repetitions",
        HEADER,
    ]
    lines += [format_row(row) for row in rows]
    return "\n".join(lines)
