"""Mixed precision for a critic step with a gradient penalty: bf16 autocast, and fp16 with a ``GradScaler``.

The penalty differentiates the critic twice, which is where mixed precision goes wrong if done naively:

- **bf16** needs no scaler (fp32's exponent range). The critic's *forward* runs under autocast, but
  ``autograd.grad`` is called *outside* it: inside, the double-backward matmuls it records were seen to run in
  fp16 (pytorch#105682). The norm and the penalty are reduced in fp32.
- **fp16** follows PyTorch's AMP examples, "Gradient penalty": pass ``scaler.scale(scores)`` to
  ``autograd.grad`` (small fp16 gradients would underflow), multiply the gradients by ``1/scale``, form the
  penalty, then ``scaler.scale(loss).backward()``. An overflow gives inf gradients, a non-finite loss and a
  step that ``scaler.step`` skips while it lowers the scale: the same contract as any AMP step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from wgangp.penalty import (
    PenaltyKind,
    PenaltyPoints,
    Rows,
    ScoreMap,
    dragan_points,
    interpolate,
    penalised_count,
    penalty_from_gradients,
    per_location_gradients,
)

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}

__all__ = [
    "PRECISIONS",
    "Precision",
    "autocast",
    "cpu_bf16_support",
    "make_scaler",
    "mixed_precision_penalty",
    "penalty_points",
]


def autocast(
    precision: Precision, device: torch.device, *, cache_enabled: bool = True
) -> contextlib.AbstractContextManager[Any]:
    """``torch.autocast`` to bf16/fp16 on ``device``'s type; a no-op for fp32.

    ``cache_enabled=False`` for code captured in a CUDA graph: autocast's cache of cast weights would
    otherwise hold tensors from outside the graph's memory pool.
    """
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in _DTYPES:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    return torch.autocast(device.type, dtype=_DTYPES[precision], cache_enabled=cache_enabled)


def cpu_bf16_support(cpuinfo: str | None = None) -> tuple[bool, str]:
    """Whether this CPU computes bf16 natively, and what says so: the ``avx512_bf16`` / ``amx_bf16`` flags
    of ``/proc/cpuinfo`` (as ``lscpu`` lists them) and torch's CPU capability (``AVX2``, ``AVX512``...).

    Without them, autocast on the CPU still runs bf16, by conversion to fp32 and back around each kernel.
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
                cpuinfo = file.read()
        except OSError:
            cpuinfo = ""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            flags |= set(line.partition(":")[2].split())
    found = sorted(flags & {"avx512_bf16", "amx_bf16", "bf16"})  # "bf16": the Arm feature
    capability = torch.backends.cpu.get_cpu_capability()
    if found:
        return True, f"{', '.join(found)}; torch kernels {capability}"
    return False, f"no avx512_bf16/amx_bf16 flag; torch kernels {capability}"


def make_scaler(precision: Precision, device: torch.device) -> torch.amp.GradScaler | None:
    """A ``GradScaler`` for fp16 (one per network: each has its own loss and step); ``None`` otherwise."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None


def penalty_points(
    real: Tensor,
    fake: Tensor,
    at: PenaltyPoints,
    generator: torch.Generator | None,
    dragan_scale: float,
    rows: Rows | None = None,
) -> Tensor:
    """The points x̂ where the penalty is taken, drawn exactly as ``wgangp.gradient_penalty`` draws them."""
    if at == "interpolates":
        return interpolate(real, fake, generator, rows=rows)
    if at == "dragan":
        return dragan_points(real, dragan_scale, generator)
    return (real if at == "real" else fake).detach().clone()


def mixed_precision_penalty(
    critic: Callable[..., Tensor],
    real: Tensor,
    fake: Tensor,
    *,
    precision: Precision,
    scaler: torch.amp.GradScaler | None = None,
    kind: PenaltyKind = "two-sided",
    target: float = 1.0,
    at: PenaltyPoints = "interpolates",
    generator: torch.Generator | None = None,
    fraction: float = 1.0,
    dragan_scale: float = 0.5,
    cache_enabled: bool = True,
    rows: Rows | None = None,
    critic_inputs: Sequence[Tensor] = (),
    score_map: ScoreMap = "sum",
) -> tuple[Tensor, Tensor]:
    """Unweighted penalty ``E[(‖∇_x̂ D(x̂)‖₂ − target)²]`` with the critic's forward in bf16/fp16.

    Same points, same random draws and same per-sample terms as ``wgangp.gradient_penalty`` (Gulrajani et
    al. 2017, eq. 3); only the critic's arithmetic is in lower precision. ``real``, ``fake``: ``[N, ...]``
    fp32. With ``scaler`` (fp16), the outputs passed to ``autograd.grad`` are scaled and the gradients
    unscaled before the norm, as in PyTorch's AMP recipe. ``critic_inputs`` (e.g. labels ``[N]``) are
    passed after x̂, cut to the penalised rows, and held fixed, as ``gradient_penalty`` does.

    Score maps ``D(x) [k, *S]`` follow ``gradient_penalty``'s ``score_map``: ``"sum"`` differentiates each
    sample's summed scores; ``"per-location"`` takes one norm per location ``j`` (``∇_x D_j``, one backward
    batched over the ``M = prod(S)`` locations) and averages ``M·k`` terms.

    Returns ``(penalty, norms)``: the fp32 scalar penalty and the detached norms, ``[k]`` (``[k, *S]`` per
    location).
    """
    n = real.shape[0]
    k = penalised_count(fraction, n)
    # rows: a shard of a global batch (data parallelism), ε drawn for the global batch; needs fraction=1.
    points = penalty_points(real[:k], fake[:k], at, generator, dragan_scale, rows).requires_grad_(
        True
    )  # [k, ...]
    with autocast(precision, points.device, cache_enabled=cache_enabled):
        scores = critic(points, *(c[:k] for c in critic_inputs))  # [k, ...] in bf16/fp16
    if scores.ndim == 0 or scores.shape[0] != k:
        raise ValueError(f"critic must return scores [N, ...] with N = {k}; got {tuple(scores.shape)}")
    # Outside autocast: the double backward recorded here must not be cast down (pytorch#105682).
    per_location = score_map == "per-location" and scores[0].numel() > 1
    out = scores.float() if per_location else scores.float().sum()  # sum = per-sample grads (no BatchNorm)
    if scaler is not None:
        out = scaler.scale(out)
    if per_location:
        (batched,) = per_location_gradients(out, [points], True)  # [M, k, ...] fp32
        grads = batched.reshape(-1, *batched.shape[2:])  # [M·k, ...]
    else:
        (grads,) = torch.autograd.grad(out, points, create_graph=True)  # [k, ...] fp32, as points are
    if scaler is not None:
        # The scale as a device tensor: no host sync (scaler.get_scale() would wait for the GPU).
        scale = scaler._get_scale_async()
        assert scale is not None  # set by scaler.scale() above
        grads = grads * scale.reciprocal()
    terms, norms = penalty_from_gradients(grads, kind=kind, target=target)
    if per_location:
        norms = norms.reshape(-1, k).T.reshape(scores.shape)  # [k, *S]
    elif score_map == "per-location":
        norms = norms.reshape(scores.shape)
    return terms.mean(), norms
