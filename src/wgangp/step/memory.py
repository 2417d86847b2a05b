"""How much memory a run's update step needs, estimated before the first step, and how much there is.

A batch too large for the machine should be refused in one line before anything is written, not be
OOM-killed minutes later (exit 137, nothing printed). The estimate adds three parts:

- **state**: the weights of both networks, their gradients and the optimizer's moments (Adam two per
  weight, RMSProp one), and the generator's EMA copy;
- **activations**: the tensors autograd keeps for backward in the larger of the two steps: the critic step
  (its forward on ``[real; fake]`` and the penalty's double-backward graph) and the generator step
  (generator and critic forwards on the generator batch). They are *measured*, not guessed: a probe runs
  both steps' forwards (and the penalty's first backward with ``create_graph``) on 2 and on 4 rows under
  ``torch.autograd.graph.saved_tensors_hooks``, sums the bytes of every saved tensor's storage (weights
  excluded, each storage once), and extrapolates linearly in rows (slope and intercept from the two
  probes) to this process's rows of the batch;
- **data**: the ``n_critic`` stacked real batches, one fake batch and the fixed reference set.

It is a lower bound of the peak: backward's transient gradients and the allocator's slack come on top
(about one more activation of the largest layer). The probe draws from its own ``torch.Generator`` and
leaves BatchNorm buffers and every random stream alone, so a run is bit-identical with or without it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from wgangp.models.global_bn import local_batch_statistics

__all__ = ["MemoryEstimate", "available_memory", "estimate_memory", "format_bytes", "saved_tensor_bytes"]

PROBE_ROWS = (2, 4)  # two probe sizes (BatchNorm needs ≥ 2 rows) give the slope and intercept


def format_bytes(n: float) -> str:
    """``1536`` → ``'1.5 KB'`` (powers of 1000, as disks and ``free -h`` on most systems say)."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one process needs: ``state + activations + data`` (see the module docstring)."""

    state: int
    activations: int
    data: int
    per_row: float  # activation + data bytes per row of the global batch (the part that grows with it)

    @property
    def total(self) -> int:
        return self.state + self.activations + self.data

    def largest_batch(self, available: int, batch_size: int) -> int:
        """The largest batch whose estimate fits in ``available`` bytes (0 if not even one row)."""
        fixed = self.total - self.per_row * batch_size
        return max(0, int((available - fixed) / self.per_row)) if self.per_row > 0 else batch_size

    def describe(self) -> str:
        return (
            f"about {format_bytes(self.total)} (weights and optimizer {format_bytes(self.state)}, "
            f"activations {format_bytes(self.activations)}, data {format_bytes(self.data)})"
        )


def saved_tensor_bytes(fn: Callable[[], object], exclude: Iterable[Tensor] = ()) -> int:
    """Bytes of the distinct storages autograd saves for backward while ``fn`` runs (``exclude``: weights)."""
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


@contextlib.contextmanager
def _buffers_kept(*modules: nn.Module) -> Iterator[None]:
    saved = [[b.detach().clone() for b in m.buffers()] for m in modules]
    try:
        yield
    finally:
        with torch.no_grad():
            for module, buffers in zip(modules, saved, strict=True):
                for buffer, value in zip(module.buffers(), buffers, strict=True):
                    buffer.copy_(value)


def _step_bytes(
    generator: nn.Module,
    critic: nn.Module,
    sample_shape: tuple[int, ...],
    latent_dim: int,
    rows: int,
    penalty: bool,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager[object]],
    n_classes: int = 0,
) -> tuple[int, int]:
    """Saved-tensor bytes of (critic step, generator step) on ``rows`` rows (labels too if ``n_classes``)."""
    noise = torch.Generator(device=device).manual_seed(0)
    weights = [*generator.parameters(), *critic.parameters()]
    real = torch.rand((rows, *sample_shape), generator=noise, device=device) * 2 - 1
    z = torch.randn(rows, latent_dim, generator=noise, device=device)
    y = [torch.randint(n_classes, (rows,), generator=noise, device=device)] if n_classes else []
    yy = [torch.cat([y[0], y[0]])] if y else []

    def critic_step() -> None:
        with torch.no_grad(), autocast():
            fake = generator(z, *y).float()
        with autocast():
            critic(torch.cat([real, fake]), *yy)
        if penalty:
            eps = torch.rand((rows,) + (1,) * len(sample_shape), generator=noise, device=device)
            points = torch.lerp(fake, real, eps).requires_grad_(True)
            with autocast():
                scores = critic(points, *y)
            (grads,) = torch.autograd.grad(scores.float().sum(), points, create_graph=True)
            grads.flatten(1).norm(dim=1)

    def generator_step() -> None:
        with autocast():
            critic(generator(z, *y), *y)

    return saved_tensor_bytes(critic_step, weights), saved_tensor_bytes(generator_step, weights)


def estimate_memory(
    generator: nn.Module,
    critic: nn.Module,
    *,
    sample_shape: tuple[int, ...],
    latent_dim: int,
    batch_rows: int,
    generator_rows: int,
    n_critic: int,
    penalty: bool,
    optimizer_moments: int,
    ema: bool,
    reference_rows: int,
    autocast: Callable[[], contextlib.AbstractContextManager[object]] = contextlib.nullcontext,
    n_classes: int = 0,
) -> MemoryEstimate:
    """The memory one process needs for an update step on ``batch_rows`` rows (generator step:
    ``generator_rows``), measured by a 2- and 4-row probe and extrapolated (module docstring).

    Example:
        >>> g, d = nn.Linear(2, 2), nn.Linear(2, 1)
        >>> e = estimate_memory(g, d, sample_shape=(2,), latent_dim=2, batch_rows=256, generator_rows=256,
        ...                     n_critic=5, penalty=True, optimizer_moments=2, ema=False, reference_rows=256)
        >>> e.total > e.state
        True
    """
    device = next(critic.parameters()).device
    weights = sum(p.numel() * p.element_size() for m in (generator, critic) for p in m.parameters())
    generator_weights = sum(p.numel() * p.element_size() for p in generator.parameters())
    state = weights * (2 + optimizer_moments) + (generator_weights if ema else 0)
    small, large = PROBE_ROWS
    with _buffers_kept(generator, critic), local_batch_statistics(generator):
        critic_small, gen_small = _step_bytes(
            generator, critic, sample_shape, latent_dim, small, penalty, device, autocast, n_classes
        )
        critic_large, gen_large = _step_bytes(
            generator, critic, sample_shape, latent_dim, large, penalty, device, autocast, n_classes
        )

    def extrapolate(at_small: int, at_large: int, rows: int) -> tuple[int, float]:
        slope = max(0.0, (at_large - at_small) / (large - small))
        return max(0, int(at_small + slope * (rows - small))), slope

    critic_bytes, critic_slope = extrapolate(critic_small, critic_large, batch_rows)
    gen_bytes, gen_slope = extrapolate(gen_small, gen_large, generator_rows)
    row = 4 * math.prod(sample_shape)  # one fp32 sample
    data = row * ((n_critic + 1) * batch_rows + reference_rows) + 4 * latent_dim * generator_rows
    if critic_bytes >= gen_bytes:
        per_row = critic_slope + row * (n_critic + 1)
    else:
        per_row = gen_slope * generator_rows / max(1, batch_rows) + row * (n_critic + 1)
    return MemoryEstimate(state, max(critic_bytes, gen_bytes), data, per_row + row)


def available_memory(device: torch.device) -> int | None:
    """Bytes free for this process on ``device``: CUDA's free memory; on the CPU the smaller of the
    kernel's ``MemAvailable`` and the cgroup's limit minus its usage (a container). ``None``: unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    candidates = [_meminfo_available()]
    candidates.append(_cgroup_room())
    known = [c for c in candidates if c is not None]
    return min(known) if known else None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """cgroup v2 ``memory.max − memory.current`` (v1: ``limit_in_bytes − usage_in_bytes``); ``None``: no limit."""
    for limit_name, usage_name in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit_text = Path(limit_name).read_text().strip()
            usage = int(Path(usage_name).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or int(limit_text) >= 1 << 60:
            return None
        return max(0, int(limit_text) - usage)
    return None
