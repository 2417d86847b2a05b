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

``g = ∇_x D(x)`` is taken per sample and its norm runs over every non-batch dimension. Any critic fits: one
score per sample or a score map ``[N, ...]`` (PatchGAN), one input tensor or several (``(x, y)`` pairs, graph
features and adjacency, image and mask), and the first penalty on a critic checks once that its layers have
the double backward the penalty needs (see :func:`check_critic`).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import re
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, NamedTuple, overload

import torch
from torch import Tensor, nn

from wgangp.errors import UserError

PenaltyKind = Literal["two-sided", "one-sided", "zero-centered"]
PenaltyPoints = Literal["interpolates", "real", "fake", "dragan"]
ScoreMap = Literal["sum", "per-location"]

PENALTY_KINDS: tuple[str, ...] = ("two-sided", "one-sided", "zero-centered")
PENALTY_POINTS: tuple[str, ...] = ("interpolates", "real", "fake", "dragan")
SCORE_MAPS: tuple[str, ...] = ("sum", "per-location")

# A critic's input: one tensor, or several passed to the critic as separate arguments.
Inputs = Tensor | Sequence[Tensor]

__all__ = [
    "PENALTY_KINDS",
    "PENALTY_POINTS",
    "SCORE_MAPS",
    "Rows",
    "check_critic",
    "dragan_points",
    "gradient_norms",
    "gradient_penalty",
    "interpolate",
    "penalised_count",
    "penalty_from_gradients",
    "per_location_gradients",
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


# Ops without a double backward, by a fragment of the op name in autograd's error: the layer and the fix.
_NO_DOUBLE_BACKWARD: tuple[tuple[str, str, tuple[type[nn.Module], ...], str], ...] = (
    (
        "attention",
        "fused scaled-dot-product attention (flash/efficient/cuDNN kernel)",
        (nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer, nn.Transformer),
        "run the critic and the penalty under torch.nn.attention.sdpa_kernel(SDPBackend.MATH)",
    ),
    (
        "rnn",
        "cuDNN RNN",
        (nn.RNNBase,),
        "run the critic and the penalty under torch.backends.cudnn.flags(enabled=False)",
    ),
    (
        "_thnn_fused",
        "fused RNN cell",
        (nn.RNNBase, nn.RNNCellBase),
        "run the critic and the penalty under torch.backends.cudnn.flags(enabled=False), or write the cell "
        "from nn.Linear and activations",
    ),
    (
        "cdist",
        "torch.cdist",
        (),
        "replace torch.cdist(a, b) with the explicit (a[..., :, None, :] - b[..., None, :, :]).norm(dim=-1)",
    ),
)
_DERIVATIVE_MISSING = re.compile(
    r"derivative for '?(?:aten::)?(\w+)'? is not implemented|(\w+) is not differentiable twice"
)

# Critics whose double backward was probed, per device type: the hot path pays the probe once.
_PROBED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_PROBED_BY_ID: set[tuple[int, str]] = set()  # for critics that take no weak reference (rare)


def _probe_key(critic: Callable[..., Any]) -> Any:
    """A bound method is made anew at each attribute access: key on the object it is bound to."""
    return critic.__self__ if inspect.ismethod(critic) else critic


def _was_probed(critic: Callable[..., Any], device: torch.device) -> bool:
    key = _probe_key(critic)
    try:
        return device.type in _PROBED.get(key, ())
    except TypeError:
        return (id(key), device.type) in _PROBED_BY_ID


def _mark_probed(critic: Callable[..., Any], device: torch.device) -> None:
    key = _probe_key(critic)
    try:
        _PROBED.setdefault(key, set()).add(device.type)
    except TypeError:
        _PROBED_BY_ID.add((id(key), device.type))


def _refuse_data_parallel(critic: Callable[..., Any]) -> None:
    if not isinstance(critic, nn.Module):
        return
    for name, module in critic.named_modules():
        if isinstance(module, nn.DataParallel):
            where = f" ({name})" if name else ""
            raise UserError(
                f"critic is wrapped in nn.DataParallel{where}: the gradient penalty's double backward through its "
                "replicas gives wrong parameter gradients; run one process per GPU with torchrun "
                "(DistributedDataParallel) instead, or pass the inner module"
            )


def _no_double_backward_error(critic: Callable[..., Any], error: RuntimeError) -> UserError | None:
    """A one-line :class:`UserError` naming the layer and the fix, if ``error`` is a missing double backward."""
    found = _DERIVATIVE_MISSING.search(str(error))
    if found is None:
        return None
    op = found.group(1) or found.group(2)
    layer, fix = f"operation {op}", "replace it by differentiable operations"
    types: tuple[type[nn.Module], ...] = ()
    for fragment, known_layer, known_types, known_fix in _NO_DOUBLE_BACKWARD:
        if fragment in op.lower():
            layer, fix, types = known_layer, known_fix, known_types
            break
    where = ""
    if isinstance(critic, nn.Module) and types:
        names = [
            f"{name or 'critic'}: {type(m).__name__}"
            for name, m in critic.named_modules()
            if isinstance(m, types)
        ]
        where = f" in {', '.join(names[:3])}" if names else ""
    return UserError(
        f"the critic's {layer}{where} has no double backward ({op}), so the gradient penalty cannot be "
        f"differentiated: {fix}"
    )


def _probe_double_backward(
    critic: Callable[..., Any], terms: Tensor, differentiated: Sequence[Tensor], device: torch.device
) -> None:
    """One double backward of the penalty's terms w.r.t. the points; turns a missing one into a :class:`UserError`.

    The graph is kept (``retain_graph``), so the caller's own backward still runs after it.
    """
    if terms.requires_grad:
        try:
            torch.autograd.grad(terms.sum(), list(differentiated), retain_graph=True, allow_unused=True)
        except RuntimeError as error:  # NotImplementedError (cdist) is a RuntimeError
            clear = _no_double_backward_error(critic, error)
            if clear is None:
                raise
            raise clear from error
        _mark_probed(critic, device)  # only once a double backward actually ran (not under no_grad)


@contextlib.contextmanager
def _state_kept(critic: Callable[..., Any], device: torch.device) -> Iterator[None]:
    """Restore the RNG (dropout) and the module buffers (BatchNorm statistics) that a probe forward changes."""
    buffers = [(b, b.detach().clone()) for b in critic.buffers()] if isinstance(critic, nn.Module) else []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        try:
            yield
        finally:
            with torch.no_grad():
                for buffer, saved in buffers:
                    buffer.copy_(saved)


def check_critic(
    critic: Callable[..., Tensor],
    example_input: Inputs | None = None,
    *,
    critic_inputs: Sequence[Any] = (),
    wrt: Sequence[int] | None = None,
    allow_batchnorm: bool = False,
) -> None:
    """Refuse critics the gradient penalty would get wrong or could not differentiate.

    Always: refuses ``nn.DataParallel`` (wrong penalty gradients; use torchrun), refuses BatchNorm unless
    ``allow_batchnorm`` (summing critic outputs before ``autograd.grad`` gives per-sample gradients only if
    samples do not interact; BatchNorm in training mode couples them; the paper's critics use no norm or
    LayerNorm), and warns on a final ``Sigmoid``.

    With ``example_input`` (a batch ``[N, ...]`` or a tuple of them, as ``gradient_penalty`` takes): runs the
    critic on its first two samples and one double backward ``∇_x ‖∇_x D(x)‖²``; a layer without one — fused
    SDPA on the flash/efficient/cuDNN backends, cuDNN RNNs, ``torch.cdist`` on small inputs — raises a
    :class:`~wgangp.errors.UserError` naming the layer and the fix. RNG and module buffers are restored after.
    ``gradient_penalty`` makes the same probe on its first call for each critic and device type.

    Example:
        >>> check_critic(torch.nn.Linear(4, 1), torch.randn(8, 4))
    """
    _refuse_data_parallel(critic)
    if isinstance(critic, nn.Module) and not allow_batchnorm:
        for name, module in critic.named_modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                where = name or type(critic).__name__
                raise ValueError(
                    f"critic contains BatchNorm ({where}: {type(module).__name__}); it mixes samples, so the "
                    "per-sample gradient penalty is wrong. Use LayerNorm or no norm (as the paper does), or "
                    "pass allow_batchnorm=True if you insist"
                )
    last = list(critic.children())[-1:] if isinstance(critic, nn.Sequential) else []
    if last and isinstance(last[0], nn.Sigmoid):
        warnings.warn(
            "critic ends in a Sigmoid: a Wasserstein critic outputs an unbounded score, and a sigmoid "
            "saturates its gradient",
            stacklevel=3,
        )
    if example_input is None:
        return
    inputs, _ = _as_inputs(example_input, "example_input")
    chosen = _check_wrt(wrt, len(inputs))
    n = inputs[0].shape[0] if inputs[0].ndim > 0 else 0
    k = min(n, 2)
    _check_batch(inputs, chosen, "example_input", n)
    points = [x[:k].detach().clone().requires_grad_(i in chosen) for i, x in enumerate(inputs)]
    extra = [_take(x, k, n) for x in critic_inputs]
    with _state_kept(critic, points[0].device):
        scores = critic(*points, *extra)
        differentiated = [points[i] for i in chosen]
        grads = torch.autograd.grad(scores.sum(), differentiated, create_graph=True)
        squared = sum((g.square().sum() for g in grads), torch.zeros((), device=points[0].device))
        _probe_double_backward(critic, squared.reshape(1), differentiated, points[0].device)


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


def _joint_norms_squared(grads: Sequence[Tensor], squared: bool) -> Tensor:
    """Per-sample ``‖g‖`` (or ``‖g‖²``) over all inputs' gradients at once: ``[N, ...] each -> [N]``."""
    if len(grads) == 1:
        (g,) = grads
        if squared:
            return g.to(_reduction_dtype(g)).square().sum(dim=tuple(range(1, g.ndim)))
        return gradient_norms(g)
    dtype = _reduction_dtype(grads[0])
    for g in grads[1:]:
        dtype = torch.promote_types(dtype, g.dtype)
    joint = torch.cat([g.to(dtype).flatten(1) for g in grads], dim=1)  # [N, Σ D_a]: the concatenated input
    return joint.square().sum(dim=1) if squared else torch.linalg.vector_norm(joint, ord=2, dim=1)


def penalty_from_gradients(
    grads: Tensor | Sequence[Tensor],
    *,
    kind: PenaltyKind = "two-sided",
    target: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """The per-sample penalty terms and norms from gradients ``g = ∇_x D(x)`` of shape ``[N, ...]``.

    ``grads`` may be several tensors ``[N, ...]`` (a critic of several inputs): the norm is then that of their
    concatenation per sample, ``‖g‖ = (Σ_a ‖g_a‖²)^½``. Returns ``(terms [N], norms [N])`` in at least fp32;
    ``terms.mean()`` is the penalty. Useful where the gradients come from elsewhere, e.g. unscaled from an
    fp16 ``GradScaler`` path.
    """
    parts = [grads] if isinstance(grads, Tensor) else list(grads)
    if kind == "zero-centered":
        squared = _joint_norms_squared(parts, squared=True)  # ‖g‖², smooth everywhere, no sqrt
        return squared, squared.detach().sqrt()
    norms = _joint_norms_squared(parts, squared=False)
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


def _as_inputs(x: Inputs, name: str) -> tuple[tuple[Tensor, ...], bool]:
    """``(inputs, several)``: a tensor as a 1-tuple, a sequence of tensors as a tuple."""
    if isinstance(x, Tensor):
        return (x,), False
    inputs = tuple(x)
    if not inputs or not all(isinstance(t, Tensor) for t in inputs):
        raise UserError(f"{name} must be a tensor or a non-empty tuple of tensors; got {type(x).__name__}")
    return inputs, True


def _check_wrt(wrt: Sequence[int] | None, count: int) -> tuple[int, ...]:
    if wrt is None:
        return tuple(range(count))
    chosen = tuple(wrt)
    if not chosen or len(set(chosen)) != len(chosen) or any(not 0 <= i < count for i in chosen):
        raise UserError(
            f"wrt must be distinct indices of the {count} inputs, in [0, {count}); got {tuple(wrt)}"
        )
    return tuple(sorted(chosen))


def _label(name: str, i: int, several: bool) -> str:
    return f"{name}[{i}]" if several else name


def _check_batch(
    inputs: Sequence[Tensor], chosen: Sequence[int], name: str, n: int, several: bool = True
) -> None:
    """Differentiated inputs: floating point and ``[N, ...]`` with ≥ 2 dims; all inputs: the same ``N``."""
    for i, x in enumerate(inputs):
        label = _label(name, i, several)
        if i in chosen:
            if not x.is_floating_point():
                raise UserError(
                    f"{label} has dtype {x.dtype}; the penalty interpolates and differentiates it, which needs a "
                    "floating-point tensor (convert with .float(), or leave it out of wrt)"
                )
            if x.ndim < 2:
                raise ValueError(
                    f"{label} must be batched, [N, ...] with at least 2 dims; got shape {tuple(x.shape)}"
                )
        if x.ndim == 0 or x.shape[0] != n:
            raise ValueError(f"all inputs must share the batch size {n}; {label} has shape {tuple(x.shape)}")


def _penalty_points(
    reals: Sequence[Tensor],
    fakes: Sequence[Tensor] | None,
    chosen: Sequence[int],
    at: PenaltyPoints,
    generator: torch.Generator | None,
    dragan_scale: float,
    rows: Rows | None,
) -> list[Tensor]:
    """The critic's inputs at the penalty's points: the ``chosen`` ones drawn (one ε or α per sample shared by
    all of them) and made leaves that require grad; the others passed through from real (from fake at
    ``at="fake"``)."""
    source = fakes if at == "fake" else reals
    assert source is not None
    points = [x.detach() for x in source]
    drawn = [reals[i] for i in chosen]
    if at == "interpolates":
        assert fakes is not None
        eps = per_sample_uniform(drawn[0], generator, rows=rows).reshape(-1)  # [N], one ε per sample for all
        for i in chosen:
            shape = (-1,) + (1,) * (reals[i].ndim - 1)
            points[i] = torch.lerp(fakes[i].detach(), reals[i].detach(), eps.to(reals[i].dtype).view(shape))
    elif at == "dragan":
        # u for all chosen inputs in one draw [N, Σ D_a] (as for their concatenation), std per input, one α.
        widths = [math.prod(x.shape[1:]) for x in drawn]
        u = torch.rand(
            (drawn[0].shape[0], sum(widths)),
            generator=generator,
            device=drawn[0].device,
            dtype=drawn[0].dtype,
        )
        alpha = per_sample_uniform(drawn[0], generator).reshape(-1)  # [N]
        for i, part in zip(chosen, u.split(widths, dim=1), strict=True):
            real = reals[i].detach()
            perturbed = real + dragan_scale * real.std() * part.reshape(real.shape).to(real.dtype)
            points[i] = torch.lerp(real, perturbed, alpha.to(real.dtype).view((-1,) + (1,) * (real.ndim - 1)))
    else:
        for i in chosen:
            points[i] = points[i].clone()
    for i in chosen:
        points[i].requires_grad_(True)
    return points


def per_location_gradients(
    scores: Tensor, differentiated: Sequence[Tensor], create_graph: bool
) -> tuple[Tensor, ...]:
    """``∇_x D_j(x)`` for every location ``j`` of the score map, in one batched backward: ``[M, N, ...]`` each.

    ``scores [N, *S]``, ``M = prod(S)``; the gradients of ``scores`` w.r.t. each tensor of ``differentiated``.
    """
    locations = scores[0].numel()
    # grad_outputs[j] = 1 at location j of every sample: per-sample gradients, as no sample sees another.
    basis = torch.eye(locations, device=scores.device, dtype=scores.dtype)  # [M, M]
    basis = basis.reshape(locations, 1, *scores.shape[1:]).expand(locations, *scores.shape)
    return torch.autograd.grad(
        scores, list(differentiated), grad_outputs=basis, is_grads_batched=True, create_graph=create_graph
    )


@overload
def gradient_penalty(
    critic: Callable[..., Tensor],
    real: Inputs,
    fake: Inputs | None = ...,
    *,
    kind: PenaltyKind = ...,
    target: float = ...,
    at: PenaltyPoints = ...,
    generator: torch.Generator | None = ...,
    fraction: float = ...,
    critic_inputs: Sequence[Any] = ...,
    wrt: Sequence[int] | None = ...,
    score_map: ScoreMap = ...,
    dragan_scale: float = ...,
    create_graph: bool = ...,
    allow_batchnorm: bool = ...,
    return_norms: Literal[False] = ...,
    rows: Rows | None = ...,
) -> Tensor: ...


@overload
def gradient_penalty(
    critic: Callable[..., Tensor],
    real: Inputs,
    fake: Inputs | None = ...,
    *,
    kind: PenaltyKind = ...,
    target: float = ...,
    at: PenaltyPoints = ...,
    generator: torch.Generator | None = ...,
    fraction: float = ...,
    critic_inputs: Sequence[Any] = ...,
    wrt: Sequence[int] | None = ...,
    score_map: ScoreMap = ...,
    dragan_scale: float = ...,
    create_graph: bool = ...,
    allow_batchnorm: bool = ...,
    return_norms: Literal[True],
    rows: Rows | None = ...,
) -> tuple[Tensor, Tensor]: ...


def gradient_penalty(
    critic: Callable[..., Tensor],
    real: Inputs,
    fake: Inputs | None = None,
    *,
    kind: PenaltyKind = "two-sided",
    target: float = 1.0,
    at: PenaltyPoints = "interpolates",
    generator: torch.Generator | None = None,
    fraction: float = 1.0,
    critic_inputs: Sequence[Any] = (),
    wrt: Sequence[int] | None = None,
    score_map: ScoreMap = "sum",
    dragan_scale: float = 0.5,
    create_graph: bool = True,
    allow_batchnorm: bool = False,
    return_norms: bool = False,
    rows: Rows | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Unweighted gradient penalty ``E[(‖∇_x̂ D(x̂)‖₂ − 1)²]`` (Gulrajani et al. 2017, arXiv:1704.00028).

    The default is WGAN-GP's: ``x̂ = ε·real + (1 − ε)·fake``, one ``ε ~ U[0, 1]`` per sample, the norm per
    sample over all non-batch dims. Multiply the result by λ (10 in the paper) and add it to the critic loss.

    Score maps (a critic returning ``D(x) [N, *S]``, e.g. PatchGAN's ``[N, 1, h, w]``), ``M = prod(S)``:

    - ``score_map="sum"`` (default, the seed's ``grad_outputs=ones_like(d)`` and TF-GAN's choice):
      ``g_i = ∇_x Σ_j D_j(x_i)``, penalty ``mean_i (‖g_i‖ − target)²``. One backward, as for ``[N]`` scores.
    - ``score_map="per-location"``: ``g_ij = ∇_x D_j(x_i)`` for each location ``j``, penalty
      ``mean_{i,j} (‖g_ij‖ − target)²`` (each patch score a 1-Lipschitz critic of its own). Exact, in one
      backward batched over the ``M`` locations (``is_grads_batched``): about ``M`` times the time and memory of
      ``"sum"``'s backward and of the input gradient, so keep ``M`` small (a 4×4 map is 16×).

    Several inputs (``real`` and ``fake`` tuples of tensors, the critic called as ``critic(*x, *critic_inputs)``):
    one ε (DRAGAN: one α, and ``u`` drawn as for the concatenation) per sample shared by all interpolated
    inputs, and the norm over the concatenation of their gradients, ``‖g_i‖ = (Σ_a ‖∇_{x_a} D(x_i)‖²)^½``: the
    same penalty as for one input that concatenates them all flattened. ``wrt`` picks the inputs that are
    interpolated and differentiated; the others are passed through from real (from fake at ``at="fake"``).

    Args:
        critic: maps ``x [N, ...]`` (or the inputs of a tuple, plus ``critic_inputs``) to scores ``[N, ...]``.
        real, fake: batches ``[N, ...]``, or tuples of them; the differentiated ones have equal shapes and
            a floating dtype; detached here. ``fake`` may be ``None`` for ``at="real"`` and ``at="dragan"``.
        kind: ``"two-sided"`` ``(‖g‖−target)²``, ``"one-sided"`` ``max(0, ‖g‖−target)²`` (WGAN-LP) or
            ``"zero-centered"`` ``‖g‖²`` (R1 with ``at="real"``, R2 with ``at="fake"``).
        target: the norm the two- and one-sided penalties pull towards (progressive GAN's γ).
        at: ``"interpolates"`` (WGAN-GP), ``"real"``, ``"fake"``, or ``"dragan"`` (see ``dragan_points``).
        generator: the ``torch.Generator`` for ε (and DRAGAN's noise), for reproducibility.
        fraction: penalise only the first ``max(1, round(fraction·N))`` samples (batches are shuffled).
        critic_inputs: extra critic arguments (e.g. labels), passed through unchanged after ``x``; tensors
            whose first dim is ``N`` are cut to the same subset when ``fraction < 1``.
        wrt: indices of the inputs of a tuple to interpolate and differentiate (default: all), e.g. ``(0,)``.
        score_map: ``"sum"`` or ``"per-location"``, for critics returning more than one score per sample.
        dragan_scale: DRAGAN's perturbation scale ``c`` in ``x + c·std(x)·u`` (std per input).
        create_graph: keep the graph so the penalty can be differentiated w.r.t. the critic's parameters.
        allow_batchnorm: skip the refusal of BatchNorm critics (their per-sample gradients are wrong).
        return_norms: also return the detached gradient norms: ``[k]``, or ``[k, *S]`` per location.
        rows: this batch is ``rows`` of a global batch (data parallelism): ε is drawn for the global batch
            and cut (see :class:`Rows`); needs ``fraction=1`` and ``at != "dragan"``.

    Returns:
        The scalar mean penalty (fp32), or ``(penalty, norms)`` with ``return_norms=True``.

    Raises:
        UserError: an ``nn.DataParallel`` critic, an integer or bool input to differentiate, or (on the first
            call per critic and device type, with ``create_graph``) a layer without a double backward.

    Example:
        >>> critic = torch.nn.Linear(2, 1)
        >>> real, fake = torch.randn(8, 2), torch.randn(8, 2)
        >>> loss = critic(fake).mean() - critic(real).mean() + 10 * gradient_penalty(critic, real, fake)
    """
    if kind not in PENALTY_KINDS:
        raise ValueError(f"kind must be one of {', '.join(PENALTY_KINDS)}; got {kind!r}")
    if at not in PENALTY_POINTS:
        raise ValueError(f"at must be one of {', '.join(PENALTY_POINTS)}; got {at!r}")
    if score_map not in SCORE_MAPS:
        raise ValueError(f"score_map must be one of {', '.join(SCORE_MAPS)}; got {score_map!r}")
    if not (0.0 < fraction <= 1.0) or math.isnan(fraction):
        raise ValueError(f"fraction must be in (0, 1]; got {fraction}")
    reals, several = _as_inputs(real, "real")
    chosen = _check_wrt(wrt, len(reals))
    n = reals[0].shape[0] if reals[0].ndim > 0 else 0
    _check_batch(reals, chosen, "real", n, several)
    fakes: tuple[Tensor, ...] | None = None
    if fake is not None:
        fakes, fake_several = _as_inputs(fake, "fake")
        if fake_several != several or len(fakes) != len(reals):
            raise ValueError("real and fake must both be one tensor or tuples of the same length")
    if at in ("interpolates", "fake"):
        if fakes is None:
            raise ValueError(f"at={at!r} needs fake samples")
        for i in chosen:
            if fakes[i].shape != reals[i].shape:
                raise ValueError(
                    f"{_label('real', i, several)} and {_label('fake', i, several)} shapes differ: "
                    f"{tuple(reals[i].shape)} vs {tuple(fakes[i].shape)}"
                )
        _check_batch(fakes, chosen, "fake", n, several)
    if rows is not None and (fraction < 1.0 or at == "dragan"):
        raise ValueError("rows (a shard of a global batch) needs fraction=1 and at != 'dragan'")
    device = reals[chosen[0]].device
    probe = create_graph and not _was_probed(critic, device)
    if probe or isinstance(critic, nn.DataParallel):  # the walk over modules once per critic
        _refuse_data_parallel(critic)
    if not allow_batchnorm:
        check_critic(critic)

    k = penalised_count(fraction, n)
    if k < n:
        reals = tuple(x[:k] for x in reals)
        fakes = tuple(x[:k] for x in fakes) if fakes is not None else None
        critic_inputs = [_take(x, k, n) for x in critic_inputs]

    points = _penalty_points(reals, fakes, chosen, at, generator, dragan_scale, rows)
    differentiated = [points[i] for i in chosen]
    scores = critic(*points, *critic_inputs)  # [k, *S]
    if scores.ndim == 0 or scores.shape[0] != k:
        raise ValueError(f"critic must return scores [N, ...] with N = {k}; got {tuple(scores.shape)}")
    if score_map == "sum" or scores[0].numel() == 1:
        # Summing is the same as grad_outputs=ones: each score depends on its own sample only.
        grads = torch.autograd.grad(scores.sum(), differentiated, create_graph=create_graph)
        terms, norms = penalty_from_gradients(grads, kind=kind, target=target)  # [k]
        if score_map == "per-location":
            norms = norms.reshape(scores.shape)
    else:
        batched = per_location_gradients(scores, differentiated, create_graph)  # [M, k, ...] each
        locations = batched[0].shape[0]
        flat = [g.reshape(locations * k, *g.shape[2:]) for g in batched]  # [M·k, ...]
        terms, norms = penalty_from_gradients(flat, kind=kind, target=target)  # [M·k]
        terms = terms.reshape(locations, k)
        norms = norms.reshape(locations, k).T.reshape(scores.shape)  # [k, *S]
    if probe:
        _probe_double_backward(critic, terms, differentiated, device)
    penalty = terms.mean()
    return (penalty, norms) if return_norms else penalty
