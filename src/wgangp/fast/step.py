"""One generator iteration of Algorithm 1 (n_critic critic updates, then a generator update) as tensor code.

The same function runs eagerly (``FastIteration`` in ``paths``) and under CUDA-graph capture (``graph``):
it draws z and ε from one ``torch.Generator`` in the order the trainer does (z, then ε, per critic step;
then z for the generator), takes the real batches pre-stacked ``[n_critic, B, ...]``, never reads a value
back to the host and never branches on tensor values, so it can be captured as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from wgangp.config import TrainConfig
from wgangp.distributed import Shard, all_reduce_gradients
from wgangp.fast.amp import Precision, autocast, make_scaler, mixed_precision_penalty, penalty_points
from wgangp.fast.lazy import lazy_penalty_weight
from wgangp.losses import LossName, clip_weights_, critic_loss, generator_loss
from wgangp.penalty import PenaltyKind, PenaltyPoints, gradient_penalty, penalty_from_gradients

__all__ = ["Networks", "StepSpec", "UpdateGuard", "critic_update", "generator_update", "iteration"]


@dataclass(frozen=True)
class StepSpec:
    """The parts of a ``TrainConfig`` that define one iteration's arithmetic."""

    loss: LossName = "wgan-gp"
    penalty_weight: float = 10.0
    penalty_kind: PenaltyKind = "two-sided"
    penalty_target: float = 1.0
    penalty_at: PenaltyPoints = "interpolates"
    penalty_fraction: float = 1.0
    clip_value: float = 0.01
    n_critic: int = 5
    penalty_every: int = 1
    precision: Precision = "fp32"
    latent_dim: int = 2
    autocast_cache: bool = True  # False under CUDA-graph capture
    compile: bool = False  # torch.compile the penalised critic objective (see compiled_objective)
    batch_size: int = 0  # the global batch B; 0: the batch given (one process)
    generator_batch_multiple: int = 1  # the generator step's batch is B × this (paper ResNet: 2)
    shard: Shard = field(
        default_factory=Shard
    )  # this process's rows of every global batch (wgangp.distributed)

    @classmethod
    def from_config(
        cls, config: TrainConfig, *, autocast_cache: bool = True, shard: Shard | None = None
    ) -> StepSpec:
        return cls(
            loss=config.loss,
            penalty_weight=config.penalty_weight,
            penalty_kind=config.penalty_kind,
            penalty_target=config.penalty_target,
            penalty_at=config.penalty_at,
            penalty_fraction=config.penalty_fraction,
            clip_value=config.clip_value,
            n_critic=config.n_critic,
            penalty_every=config.penalty_every,
            precision=config.precision,
            latent_dim=config.latent_dim,
            autocast_cache=autocast_cache,
            compile=config.compile and config.precision != "fp16",
            batch_size=config.batch_size,
            generator_batch_multiple=config.generator_batch_multiple,
            shard=shard or Shard(),
        )


# Called after backward (and the gradients' all_reduce), before the optimizer step: True drops the update.
# The trainer's skip_nonfinite check (one host sync per update; never on the fast paths).
UpdateGuard = Callable[[Tensor, torch.optim.Optimizer], bool]

# (critic, real, fake, points x̂, penalty weight) -> (total loss, critic loss, Wasserstein estimate, penalty, norms)
Objective = Callable[
    [nn.Module, Tensor, Tensor, Tensor, float], tuple[Tensor, Tensor, Tensor, Tensor, Tensor]
]


@dataclass
class Networks:
    """What an iteration updates: both networks, their optimizers, the noise stream and (fp16) the scalers."""

    generator: nn.Module
    critic: nn.Module
    generator_opt: torch.optim.Optimizer
    critic_opt: torch.optim.Optimizer
    noise: torch.Generator
    generator_scaler: torch.amp.GradScaler | None = None
    critic_scaler: torch.amp.GradScaler | None = None
    compiled: Objective | None = None  # built on first use when spec.compile

    @classmethod
    def with_scalers(
        cls,
        generator: nn.Module,
        critic: nn.Module,
        generator_opt: torch.optim.Optimizer,
        critic_opt: torch.optim.Optimizer,
        noise: torch.Generator,
        precision: Precision,
    ) -> Networks:
        device = next(critic.parameters()).device
        return cls(
            generator,
            critic,
            generator_opt,
            critic_opt,
            noise,
            make_scaler(precision, device),
            make_scaler(precision, device),
        )


def _latents(spec: StepSpec, total: int, device: torch.device, noise: torch.Generator) -> Tensor:
    """z for a global batch of ``total``, cut to this process's rows: ``[n_r, latent_dim]``."""
    return spec.shard.take(torch.randn(total, spec.latent_dim, generator=noise, device=device))


def _apply(
    loss: Tensor,
    opt: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    shard: Shard,
    total: int,
    guard: UpdateGuard | None = None,
) -> bool:
    """backward, the gradients summed over processes (weighted by shard size), then the optimizer step.

    Returns False when ``guard`` dropped the update (the weights and the optimizer state are untouched).
    """
    opt.zero_grad(set_to_none=True)
    (loss if scaler is None else scaler.scale(loss)).backward()
    if shard.distributed:
        # Before the step (and the scaler's inf check), so every rank steps on the same global gradient.
        all_reduce_gradients((p for g in opt.param_groups for p in g["params"]), shard.weight(total))
    if guard is not None and guard(loss, opt):
        return False
    if scaler is None:
        opt.step()
        return True
    scaler.step(opt)  # skips the step on inf/NaN gradients; no host sync with a fused Adam
    scaler.update()
    return True


def penalty_and_norms(
    nets: Networks, spec: StepSpec, real: Tensor, fake: Tensor, total: int
) -> tuple[Tensor, Tensor]:
    """The unweighted penalty and per-sample norms: the library's in fp32, the AMP recipe otherwise."""
    shared: dict[str, Any] = {
        "kind": spec.penalty_kind,
        "target": spec.penalty_target,
        "at": spec.penalty_at,
        "generator": nets.noise,
        "fraction": spec.penalty_fraction,
        "rows": spec.shard.rows(total),
    }
    if spec.precision == "fp32":
        # allow_batchnorm: the trainer checks the critic once, not on every step.
        return gradient_penalty(nets.critic, real, fake, allow_batchnorm=True, return_norms=True, **shared)
    return mixed_precision_penalty(
        nets.critic,
        real,
        fake,
        precision=spec.precision,
        scaler=nets.critic_scaler,
        cache_enabled=spec.autocast_cache,
        **shared,
    )


def compiled_objective(spec: StepSpec) -> Objective:
    """The penalised critic loss as one ``torch.compile(fullgraph=True)`` function of the points x̂.

    Compiling a double backward works from torch 2.11 only with ``trace_autograd_ops`` on, the whole
    objective in one graph, and x̂ made (and its random ε drawn) *outside* the compiled function; compiling
    the critic alone still fails (DESIGN §4). Same math as the eager objective, up to fp32 reassociation.
    """
    import torch._dynamo

    # Process-wide switch, needed for autograd.grad inside a compiled function; set only when asked to.
    torch._dynamo.config.trace_autograd_ops = True

    def objective(
        critic: nn.Module, real: Tensor, fake: Tensor, points: Tensor, weight: float
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        with autocast(spec.precision, real.device, cache_enabled=spec.autocast_cache):
            scores = critic(torch.cat([real, fake]))  # [2B]
            point_scores = critic(points)  # [k]
        real_scores, fake_scores = scores.split(real.shape[0])
        loss = critic_loss(spec.loss, real_scores, fake_scores)
        (grads,) = torch.autograd.grad(point_scores.float().sum(), points, create_graph=True)
        terms, norms = penalty_from_gradients(grads, kind=spec.penalty_kind, target=spec.penalty_target)
        penalty = terms.mean()
        wasserstein = real_scores.float().mean() - fake_scores.float().mean()
        return loss + weight * penalty, loss, wasserstein, penalty, norms

    return torch.compile(objective, fullgraph=True)


def _compiled_critic_loss(
    nets: Networks, spec: StepSpec, real: Tensor, fake: Tensor, batch: int
) -> tuple[Tensor, dict[str, Tensor]]:
    if nets.compiled is None:
        nets.compiled = compiled_objective(spec)
    k = (
        real.shape[0]
        if spec.penalty_fraction >= 1.0
        else max(1, round(spec.penalty_fraction * real.shape[0]))
    )
    rows = spec.shard.rows(batch)
    points = penalty_points(real[:k], fake[:k], spec.penalty_at, nets.noise, 0.5, rows).requires_grad_(True)
    weight = lazy_penalty_weight(spec.penalty_weight, spec.penalty_every)
    total, loss, wasserstein, penalty, norms = nets.compiled(nets.critic, real, fake, points, weight)
    stats = {
        "critic_loss": loss.detach(),
        "wasserstein": wasserstein.detach(),
        "penalty": penalty.detach(),
        "grad_norm": norms.detach().mean(),
    }
    return total, stats


def critic_update(
    nets: Networks, spec: StepSpec, real: Tensor, *, penalise: bool, guard: UpdateGuard | None = None
) -> dict[str, Tensor]:
    """One critic update on ``real [B, ...]`` and fresh z (Algorithm 1, lines 3–10); penalty if ``penalise``.

    With ``penalty_every = k``, the penalty's weight is ``λ·k`` on the steps that take it. Under data
    parallelism ``real`` is this process's shard of the global batch ``spec.batch_size``. Returns the
    update's stats, or ``{}`` when ``guard`` dropped it.
    """
    device = real.device
    batch = spec.batch_size or real.shape[0]  # global B
    with torch.no_grad(), autocast(spec.precision, device, cache_enabled=spec.autocast_cache):
        fake = nets.generator(_latents(spec, batch, device, nets.noise)).float()  # [B, ...]
    if spec.compile and spec.loss == "wgan-gp" and penalise:
        total, stats = _compiled_critic_loss(nets, spec, real, fake, batch)
        applied = _apply(total, nets.critic_opt, nets.critic_scaler, spec.shard, batch, guard)
        return stats if applied else {}
    with autocast(spec.precision, device, cache_enabled=spec.autocast_cache):
        # One forward for both halves: the same math (no BatchNorm in a critic) with half the launches.
        scores = nets.critic(torch.cat([real, fake]))  # [2B]
    real_scores, fake_scores = scores.split(real.shape[0])
    loss = critic_loss(spec.loss, real_scores, fake_scores)
    stats = {
        "critic_loss": loss.detach(),
        "wasserstein": (real_scores.float().mean() - fake_scores.float().mean()).detach(),
    }
    if spec.loss == "wgan-gp" and penalise:
        penalty, norms = penalty_and_norms(nets, spec, real, fake, batch)
        loss = loss + lazy_penalty_weight(spec.penalty_weight, spec.penalty_every) * penalty
        stats["penalty"] = penalty.detach()
        stats["grad_norm"] = norms.mean()
    if not _apply(loss, nets.critic_opt, nets.critic_scaler, spec.shard, batch, guard):
        return {}
    if spec.loss == "wgan-clip":
        clip_weights_(nets.critic, spec.clip_value)
    return stats


def generator_update(
    nets: Networks, spec: StepSpec, batch_size: int, device: torch.device, guard: UpdateGuard | None = None
) -> dict[str, Tensor]:
    """One generator update with the critic frozen (Algorithm 1, lines 11–12); ``batch_size`` is global.

    Returns ``{"generator_loss": ...}``, or ``{}`` when ``guard`` dropped the update.
    """
    nets.critic.requires_grad_(False)
    with autocast(spec.precision, device, cache_enabled=spec.autocast_cache):
        scores = nets.critic(nets.generator(_latents(spec, batch_size, device, nets.noise)))  # [B]
    loss = generator_loss(spec.loss, scores)
    applied = _apply(loss, nets.generator_opt, nets.generator_scaler, spec.shard, batch_size, guard)
    nets.critic.requires_grad_(True)
    return {"generator_loss": loss.detach()} if applied else {}


def iteration(nets: Networks, spec: StepSpec, reals: Tensor, schedule: tuple[bool, ...]) -> dict[str, Tensor]:
    """n_critic critic updates on ``reals [n_critic, B, ...]``, then one generator update.

    ``schedule[i]`` says whether critic step ``i`` takes the penalty (see ``lazy.penalty_schedule``).
    Critic stats are means over the critic steps; the penalty's over the steps that took it.
    """
    totals: dict[str, Tensor] = {}
    counts: dict[str, int] = {}
    for real, penalise in zip(reals.unbind(0), schedule, strict=True):
        for key, value in critic_update(nets, spec, real, penalise=penalise).items():
            totals[key] = totals[key] + value if key in totals else value
            counts[key] = counts.get(key, 0) + 1
    stats = {key: value / counts[key] for key, value in totals.items()}
    generator_batch = (spec.batch_size or reals.shape[1]) * spec.generator_batch_multiple
    stats.update(generator_update(nets, spec, generator_batch, reals.device))
    return stats
