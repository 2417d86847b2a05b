"""Gradient penalties for Wasserstein critics: WGAN-GP and the variants the field uses.

All functions are pure tensor math: they return an *unweighted* mean penalty and never call
``.backward()`` or touch an optimizer; the caller multiplies by its weight λ, exactly as the seed's
``gradient_penalty`` does.

Variants (one function, keyword options):

========================  =====================================  ==========================================
name                      penalty per sample                     where
========================  =====================================  ==========================================
``two-sided`` (WGAN-GP)   ``(‖g‖ − target)²``                    ``at="interpolates"`` (Gulrajani et al.)
``one-sided`` (WGAN-LP)   ``max(0, ‖g‖ − target)²``              any points (Petzka et al.; paper App. C)
``zero-centered``         ``‖g‖²``                               ``at="real"`` is R1, ``at="fake"`` is R2
DRAGAN                    ``(‖g‖ − target)²``                    ``at="dragan"``: near the real data
========================  =====================================  ==========================================

``g = ∇_x D(x)`` is taken per sample and its norm runs over every non-batch dimension.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple, overload

import torch
from torch import Tensor, nn

PenaltyKind = Literal["two-sided", "one-sided", "zero-centered"]
PenaltyPoints = Literal["interpolates", "real", "fake", "dragan"]

PENALTY_KINDS: tuple[str, ...] = ("two-sided", "one-sided", "zero-centered")
PENALTY_POINTS: tuple[str, ...] = ("interpolates", "real", "fake", "dragan")

__all__ = [
    "PENALTY_KINDS",
    "PENALTY_POINTS",
    "Rows",
    "check_critic",
    "dragan_points",
    "gradient_norms",
    "gradient_penalty",
    "interpolate",
    "penalised_count",
    "penalty_from_gradients",
    "per_sample_uniform",
]


class Rows(NamedTuple):
    """A batch that is rows ``start:stop`` of a global batch of ``total`` (data parallelism).

    Random draws for such a batch are made for the whole global batch and cut to these rows, so N
    processes together draw exactly what one process draws (see ``wgangp.distributed``).
    """

    start: int
    stop: int
    total: int


def penalised_count(fraction: float, n: int) -> int:
    """How many of ``n`` samples a penalty on ``fraction`` of the batch takes: ``max(1, round(fraction·n))``.

    >>> penalised_count(0.25, 64), penalised_count(0.01, 8), penalised_count(1.0, 5)
    (16, 1, 5)
    """
    return n if fraction >= 1.0 else max(1, round(fraction * n))


def per_sample_uniform(
    like: Tensor, generator: torch.Generator | None = None, *, rows: Rows | None = None
) -> Tensor:
    """ε ~ U[0, 1), one per sample, shaped ``[N, 1, ..., 1]`` to broadcast against ``like``.

    Drawn as ``torch.rand((N,) + (1,) * (like.ndim - 1))`` so that, for the same generator state, the
    values equal those of the seed's ``torch.rand(N, 1, 1, 1)`` for images. With ``rows``, drawn for the
    global batch ``[rows.total, 1, ...]`` and cut to ``rows``.
    """
    n = like.shape[0] if rows is None else rows.total
    eps = torch.rand((n,) + (1,) * (like.ndim - 1), generator=generator, device=like.device, dtype=like.dtype)
    return eps if rows is None else eps[rows.start : rows.stop]


def interpolate(
    real: Tensor, fake: Tensor, generator: torch.Generator | None = None, *, rows: Rows | None = None
) -> Tensor:
    """``x̂ = ε·real + (1 − ε)·fake`` with one ε ~ U[0, 1] per sample (WGAN-GP, eq. 3).

    Both inputs are detached: the penalty's graph reaches the critic's parameters only. ``rows``: see
    :class:`Rows`.
    """
    real, fake = real.detach(), fake.detach()
    eps = per_sample_uniform(real, generator, rows=rows)  # [N, 1, ..., 1]
    return torch.lerp(fake, real, eps)  # fake + ε (real − fake) = ε real + (1 − ε) fake


def dragan_points(real: Tensor, scale: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """DRAGAN's points near the data (Kodali et al. 2017, the authors' code).

    ``x_p = x + scale · std(x) · u`` with ``u ~ U[0,1)`` per element and ``std`` over the whole real batch,
    then ``x̂ = x + α (x_p − x)`` with one ``α ~ U[0,1)`` per sample.
    """
    real = real.detach()
    u = torch.rand(real.shape, generator=generator, device=real.device, dtype=real.dtype)
    perturbed = real + scale * real.std() * u
    alpha = per_sample_uniform(real, generator)
    return torch.lerp(real, perturbed, alpha)


def check_critic(critic: Callable[..., Tensor]) -> None:
    """Refuse critics whose outputs mix samples (BatchNorm), where per-sample gradients are wrong.

    Summing critic outputs before ``autograd.grad`` gives per-sample gradients only if the samples do not
    interact; BatchNorm in training mode couples them. The paper's critics use no norm or LayerNorm.
    """
    if not isinstance(critic, nn.Module):
        return
    for name, module in critic.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            where = name or type(critic).__name__
            raise ValueError(
                f"critic contains BatchNorm ({where}: {type(module).__name__}); it mixes samples, so the "
                "per-sample gradient penalty is wrong. Use LayerNorm or no norm (as the paper does), or pass "
                "allow_batchnorm=True if you insist"
            )
    last = list(critic.children())[-1:] if isinstance(critic, nn.Sequential) else []
    if last and isinstance(last[0], nn.Sigmoid):
        warnings.warn(
            "critic ends in a Sigmoid: a Wasserstein critic outputs an unbounded score, and a sigmoid "
            "saturates its gradient",
            stacklevel=3,
        )


def gradient_norms(grads: Tensor) -> Tensor:
    """Per-sample L2 norm over all non-batch dims, reduced in at least fp32: ``[N, ...] -> [N]``.

    ``vector_norm`` has a backward of 0 at a zero gradient where ``sqrt(sum(g²))`` gives NaN, and reducing
    over dims (rather than ``.view(N, -1)``) works for channels_last tensors without a copy.
    """
    dims = tuple(range(1, grads.ndim))
    return torch.linalg.vector_norm(grads, ord=2, dim=dims, dtype=_reduction_dtype(grads))


def _reduction_dtype(x: Tensor) -> torch.dtype:
    """fp32 for half-precision gradients, their own dtype for fp32/fp64."""
    return torch.promote_types(x.dtype, torch.float32)


def penalty_from_gradients(
    grads: Tensor,
    *,
    kind: PenaltyKind = "two-sided",
    target: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """The per-sample penalty terms and norms from gradients ``g = ∇_x D(x)`` of shape ``[N, ...]``.

    Returns ``(terms [N], norms [N])`` in at least fp32; ``terms.mean()`` is the penalty. Useful where the gradients
    come from elsewhere, e.g. unscaled from an fp16 ``GradScaler`` path.
    """
    if kind == "zero-centered":
        dims = tuple(range(1, grads.ndim))
        squared = grads.to(_reduction_dtype(grads)).square().sum(dim=dims)  # ‖g‖², smooth everywhere, no sqrt
        return squared, squared.detach().sqrt()
    norms = gradient_norms(grads)
    if kind == "two-sided":
        terms = (norms - target).square()
    elif kind == "one-sided":
        terms = torch.clamp(norms - target, min=0).square()
    else:
        raise ValueError(f"kind must be one of {', '.join(PENALTY_KINDS)}; got {kind!r}")
    return terms, norms.detach()


def _take(x: Any, k: int, n: int) -> Any:
    """The first ``k`` samples of a batched tensor; anything else passes through unchanged."""
    if isinstance(x, Tensor) and x.ndim > 0 and x.shape[0] == n:
        return x[:k]
    return x


@overload
def gradient_penalty(
    critic: Callable[..., Tensor],
    real: Tensor,
    fake: Tensor | None = ...,
    *,
    kind: PenaltyKind = ...,
    target: float = ...,
    at: PenaltyPoints = ...,
    generator: torch.Generator | None = ...,
    fraction: float = ...,
    critic_inputs: Sequence[Any] = ...,
    dragan_scale: float = ...,
    create_graph: bool = ...,
    allow_batchnorm: bool = ...,
    return_norms: Literal[False] = ...,
    rows: Rows | None = ...,
) -> Tensor: ...


@overload
def gradient_penalty(
    critic: Callable[..., Tensor],
    real: Tensor,
    fake: Tensor | None = ...,
    *,
    kind: PenaltyKind = ...,
    target: float = ...,
    at: PenaltyPoints = ...,
    generator: torch.Generator | None = ...,
    fraction: float = ...,
    critic_inputs: Sequence[Any] = ...,
    dragan_scale: float = ...,
    create_graph: bool = ...,
    allow_batchnorm: bool = ...,
    return_norms: Literal[True],
    rows: Rows | None = ...,
) -> tuple[Tensor, Tensor]: ...


def gradient_penalty(
    critic: Callable[..., Tensor],
    real: Tensor,
    fake: Tensor | None = None,
    *,
    kind: PenaltyKind = "two-sided",
    target: float = 1.0,
    at: PenaltyPoints = "interpolates",
    generator: torch.Generator | None = None,
    fraction: float = 1.0,
    critic_inputs: Sequence[Any] = (),
    dragan_scale: float = 0.5,
    create_graph: bool = True,
    allow_batchnorm: bool = False,
    return_norms: bool = False,
    rows: Rows | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Unweighted gradient penalty ``E[(‖∇_x̂ D(x̂)‖₂ − 1)²]`` (Gulrajani et al. 2017, arXiv:1704.00028).

    The default is WGAN-GP's: ``x̂ = ε·real + (1 − ε)·fake``, one ``ε ~ U[0, 1]`` per sample, the norm per
    sample over all non-batch dims. Multiply the result by λ (10 in the paper) and add it to the critic loss.

    Args:
        critic: maps ``x [N, ...]`` (plus ``critic_inputs``) to scores ``[N]`` or ``[N, 1]``.
        real, fake: batches of the same shape ``[N, ...]``; detached here. ``fake`` may be ``None`` for
            ``at="real"`` and ``at="dragan"``.
        kind: ``"two-sided"`` ``(‖g‖−target)²``, ``"one-sided"`` ``max(0, ‖g‖−target)²`` (WGAN-LP) or
            ``"zero-centered"`` ``‖g‖²`` (R1 with ``at="real"``, R2 with ``at="fake"``).
        target: the norm the two- and one-sided penalties pull towards (progressive GAN's γ).
        at: ``"interpolates"`` (WGAN-GP), ``"real"``, ``"fake"``, or ``"dragan"`` (see ``dragan_points``).
        generator: the ``torch.Generator`` for ε (and DRAGAN's noise), for reproducibility.
        fraction: penalise only the first ``max(1, round(fraction·N))`` samples (batches are shuffled).
        critic_inputs: extra critic arguments (e.g. labels), passed through unchanged after ``x``; tensors
            whose first dim is ``N`` are cut to the same subset when ``fraction < 1``.
        dragan_scale: DRAGAN's perturbation scale ``c`` in ``x + c·std(x)·u``.
        create_graph: keep the graph so the penalty can be differentiated w.r.t. the critic's parameters.
        allow_batchnorm: skip the refusal of BatchNorm critics (their per-sample gradients are wrong).
        return_norms: also return the detached per-sample gradient norms ``[k]`` (for logging).
        rows: this batch is ``rows`` of a global batch (data parallelism): ε is drawn for the global batch
            and cut (see :class:`Rows`); needs ``fraction=1`` and ``at != "dragan"``.

    Returns:
        The scalar mean penalty (fp32), or ``(penalty, norms)`` with ``return_norms=True``.

    Example:
        >>> critic = torch.nn.Linear(2, 1)
        >>> real, fake = torch.randn(8, 2), torch.randn(8, 2)
        >>> loss = critic(fake).mean() - critic(real).mean() + 10 * gradient_penalty(critic, real, fake)
    """
    if kind not in PENALTY_KINDS:
        raise ValueError(f"kind must be one of {', '.join(PENALTY_KINDS)}; got {kind!r}")
    if at not in PENALTY_POINTS:
        raise ValueError(f"at must be one of {', '.join(PENALTY_POINTS)}; got {at!r}")
    if not (0.0 < fraction <= 1.0) or math.isnan(fraction):
        raise ValueError(f"fraction must be in (0, 1]; got {fraction}")
    if real.ndim < 2:
        raise ValueError(
            f"real must be batched, [N, ...] with at least 2 dims; got shape {tuple(real.shape)}"
        )
    if at in ("interpolates", "fake"):
        if fake is None:
            raise ValueError(f"at={at!r} needs fake samples")
        if fake.shape != real.shape:
            raise ValueError(f"real and fake shapes differ: {tuple(real.shape)} vs {tuple(fake.shape)}")
    if rows is not None and (fraction < 1.0 or at == "dragan"):
        raise ValueError("rows (a shard of a global batch) needs fraction=1 and at != 'dragan'")
    if not allow_batchnorm:
        check_critic(critic)

    n = real.shape[0]
    k = penalised_count(fraction, n)
    if k < n:
        real = real[:k]
        fake = fake[:k] if fake is not None else None
        critic_inputs = [_take(x, k, n) for x in critic_inputs]

    if at == "interpolates":
        assert fake is not None
        points = interpolate(real, fake, generator, rows=rows)
    elif at == "dragan":
        points = dragan_points(real, dragan_scale, generator)
    elif at == "real":
        points = real.detach().clone()
    else:
        assert fake is not None
        points = fake.detach().clone()
    points.requires_grad_(True)

    scores = critic(points, *critic_inputs)
    if scores.ndim == 0 or scores.shape[0] != k or scores.numel() != k:
        raise ValueError(f"critic must return one score per sample, [N] or [N, 1]; got {tuple(scores.shape)}")
    # Summing is the same as grad_outputs=ones: each score depends on its own sample only.
    (grads,) = torch.autograd.grad(scores.sum(), points, create_graph=create_graph)
    terms, norms = penalty_from_gradients(grads, kind=kind, target=target)
    penalty = terms.mean()
    return (penalty, norms) if return_norms else penalty
