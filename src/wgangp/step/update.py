"""One generator iteration of Algorithm 1 (n_critic critic updates, then a generator update) as tensor code.

:func:`iteration` is the one home of the update for every step path: the trainer runs it eagerly
(``paths.Iteration``) and the graph path captures it (``graph``). It draws z and ε from one
``torch.Generator`` in a fixed order (z, then ε, per critic step; then z for the generator), takes the
real batches pre-stacked ``[n_critic, B, ...]``, and (unless a ``guard`` is given, which the graph path
never does) never reads a value back to the host nor branches on tensor values, so it can be captured as
it is.

Class-conditional runs (``spec.conditioning`` acgan or projection) take the real batches' labels
``[n_critic, B]`` beside them: each critic step's fakes are made for its real batch's labels, the
generator step's labels are drawn uniformly from the noise stream right after its z. Unconditional runs
draw nothing more, so their random streams are exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

import torch
from torch import Tensor, nn

from wgangp.distributed import Shard, all_reduce_gradients
from wgangp.losses import class_cross_entropy, clip_weights_, critic_loss, generator_loss
from wgangp.models.coded import latent_code
from wgangp.penalty import gradient_penalty, penalised_count, penalty_from_gradients
from wgangp.step.amp import autocast, mixed_precision_penalty, penalty_points
from wgangp.step.lazy import lazy_penalty_weight
from wgangp.step.spec import StepSpec
from wgangp.step.state import Objective, TrainState

__all__ = ["UpdateGuard", "accumulate", "critic_update", "generator_update", "iteration"]


# Called after backward (and the gradients' all_reduce), before the optimizer step: True drops the update.
# The trainer's skip_nonfinite check (one host sync per update; the fp32 eager path only).
UpdateGuard = Callable[[Tensor, torch.optim.Optimizer], bool]


def accumulate(totals: dict[str, Tensor], counts: dict[str, int], stats: dict[str, Tensor]) -> None:
    """Add ``stats`` into running ``totals`` with per-key ``counts`` (a skipped update lacks its keys)."""
    for key, value in stats.items():
        totals[key] = totals[key] + value if key in totals else value
        counts[key] = counts.get(key, 0) + 1


def _latents(spec: StepSpec, total: int, device: torch.device, noise: torch.Generator) -> Tensor:
    """z for a global batch of ``total``, cut to this process's rows: ``[n_r, latent_dim]``."""
    return spec.shard.take(torch.randn(total, spec.latent_dim, generator=noise, device=device))


def _class_labels(spec: StepSpec, total: int, device: torch.device, noise: torch.Generator) -> Tensor:
    """Labels drawn uniformly for a global batch of ``total``, cut to this process's rows: int64 ``[n_r]``."""
    return spec.shard.take(torch.randint(spec.n_classes, (total,), generator=noise, device=device))


def _given(labels: Tensor | None) -> tuple[Tensor, ...]:
    """The networks' extra arguments: ``(labels,)`` for a conditional run, nothing otherwise."""
    return () if labels is None else (labels,)


class _ACGANCritic(Protocol):
    def score_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]: ...


def _scores_and_logits(critic: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """An AC-GAN critic's score ``[N]`` and class logits ``[N, K]`` from one pass through its body."""
    return cast(_ACGANCritic, critic).score_and_logits(x)


def _accuracy(logits: Tensor, labels: Tensor) -> Tensor:
    """The share of rows whose top logit is their label (the official ``disc_acgan_acc``); no host sync."""
    return (logits.argmax(1) == labels).float().mean()


def critic_scores_and_loss(
    critic: nn.Module,
    spec: StepSpec,
    real: Tensor,
    fake: Tensor,
    labels: Tensor | None,
    codes: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
    """The critic's loss without the penalty, from one forward of ``[real; fake]`` (``[2n, ...]``).

    Returns ``(loss, real_scores [n], fake_scores [n], class stats)``. AC-GAN adds
    ``acgan_scale · CE(C(x), y)`` on the real half's logits (Odena et al. 2017; gan_cifar_resnet.py) and
    reports the classifier's accuracy on both halves; a projection critic scores ``D(x, y)`` with the
    fakes' labels equal to the reals' (the fakes were made for them). ``codes [n]``: the fakes' latent
    codes ``c(z)`` (``spec.info``): InfoGAN's ``info_scale · CE(Q(x̃), c)`` on the fake half's logits, with
    Q's accuracy. Call under the step's autocast.
    """
    both = torch.cat([real, fake])
    n = real.shape[0]
    if spec.conditioning == "acgan" or spec.info:  # AC-GAN's classifier, or InfoGAN's Q
        scores, logits = _scores_and_logits(critic, both)  # [2n], [2n, K]
    elif spec.separate_critic_forwards:
        # A BatchNorm critic (penalty-free losses only) normalises each half with its own statistics, as the
        # official code does.
        scores = torch.cat([critic(real, *_given(labels)), critic(fake, *_given(labels))])  # [2n]
    else:
        # One forward for both halves: the same math (no BatchNorm in a critic) with half the launches.
        scores = critic(both, *_given(None if labels is None else torch.cat([labels, labels])))  # [2n]
    real_scores, fake_scores = scores.split(n)
    loss = critic_loss(spec.loss, real_scores, fake_scores)
    stats: dict[str, Tensor] = {}
    if spec.conditioning == "acgan":
        assert labels is not None
        real_logits, fake_logits = logits.split(n)
        class_loss = class_cross_entropy(real_logits, labels)
        loss = loss + spec.acgan_scale * class_loss
        stats = {
            "class_loss": class_loss.detach(),
            "class_accuracy_real": _accuracy(real_logits.detach(), labels),
            "class_accuracy_fake": _accuracy(fake_logits.detach(), labels),
        }
    if spec.info:
        assert codes is not None
        fake_logits = logits[n:]
        info_loss = class_cross_entropy(fake_logits, codes)
        loss = loss + spec.info_scale * info_loss
        stats = {"info_loss": info_loss.detach(), "info_accuracy": _accuracy(fake_logits.detach(), codes)}
    return loss, real_scores, fake_scores, stats


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
    state: TrainState, spec: StepSpec, real: Tensor, fake: Tensor, total: int, labels: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The unweighted penalty and per-sample norms: the library's in fp32, the AMP recipe otherwise.

    ``labels``: a conditional run's; the critic is called as ``critic(x̂, y)`` and differentiated in x̂ alone.
    """
    shared: dict[str, Any] = {
        "critic_inputs": _given(labels),
        "kind": spec.penalty_kind,
        "target": spec.penalty_target,
        "at": spec.penalty_at,
        "generator": state.noise,
        "fraction": spec.penalty_fraction,
        "rows": spec.shard.rows(total),
        "score_map": spec.penalty_score_map,
    }
    if spec.precision == "fp32":
        # allow_batchnorm: the trainer checks the critic once, not on every step.
        return gradient_penalty(state.critic, real, fake, allow_batchnorm=True, return_norms=True, **shared)
    return mixed_precision_penalty(
        state.critic,
        real,
        fake,
        precision=spec.precision,
        scaler=state.critic_scaler,
        cache_enabled=spec.autocast_cache,
        **shared,
    )


def compiled_objective(spec: StepSpec) -> Objective:
    """The penalised critic loss as one ``torch.compile(fullgraph=True)`` function of the points x̂.

    Compiling a double backward works from torch 2.11 only with ``trace_autograd_ops`` on, the whole
    objective in one graph, and x̂ made (and its random ε drawn) *outside* the compiled function; compiling
    the critic alone still fails (README, "Speed"). Same math as the eager objective, up to fp32 reassociation.
    """
    import torch._dynamo

    # Process-wide switch, needed for autograd.grad inside a compiled function; set only when asked to.
    torch._dynamo.config.trace_autograd_ops = True

    def objective(
        critic: nn.Module,
        real: Tensor,
        fake: Tensor,
        points: Tensor,
        weight: float,
        labels: Tensor | None,
        codes: Tensor | None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        with autocast(spec.precision, real.device, cache_enabled=spec.autocast_cache):
            loss, real_scores, fake_scores, stats = critic_scores_and_loss(
                critic, spec, real, fake, labels, codes
            )
            point_scores = critic(points, *_given(None if labels is None else labels[: points.shape[0]]))
        (grads,) = torch.autograd.grad(point_scores.float().sum(), points, create_graph=True)
        terms, norms = penalty_from_gradients(grads, kind=spec.penalty_kind, target=spec.penalty_target)
        penalty = terms.mean()
        wasserstein = real_scores.float().mean() - fake_scores.float().mean()
        stats = {
            "critic_loss": loss.detach(),
            "wasserstein": wasserstein.detach(),
            "penalty": penalty.detach(),
            "grad_norm": norms.detach().mean(),
            **stats,
        }
        return loss + weight * penalty, stats

    return torch.compile(objective, fullgraph=True)


def _compiled_critic_loss(
    state: TrainState,
    spec: StepSpec,
    real: Tensor,
    fake: Tensor,
    batch: int,
    labels: Tensor | None,
    codes: Tensor | None,
) -> tuple[Tensor, dict[str, Tensor]]:
    if state.compiled is None:
        state.compiled = compiled_objective(spec)
    k = penalised_count(spec.penalty_fraction, real.shape[0])
    rows = spec.shard.rows(batch)
    points = penalty_points(real[:k], fake[:k], spec.penalty_at, state.noise, 0.5, rows).requires_grad_(True)
    weight = lazy_penalty_weight(spec.penalty_weight, spec.penalty_every)
    return state.compiled(state.critic, real, fake, points, weight, labels, codes)


def critic_update(
    state: TrainState,
    spec: StepSpec,
    real: Tensor,
    *,
    penalise: bool,
    labels: Tensor | None = None,
    guard: UpdateGuard | None = None,
) -> dict[str, Tensor]:
    """One critic update on ``real [B, ...]`` and fresh z (Algorithm 1, lines 3–10); penalty if ``penalise``.

    ``labels [B]``: a conditional run's real labels; the fakes are made for them.

    With ``penalty_every = k``, the penalty's weight is ``λ·k`` on the steps that take it. Under data
    parallelism ``real`` is this process's shard of the global batch ``spec.batch_size``. Returns the
    update's stats, or ``{}`` when ``guard`` dropped it.
    """
    device = real.device
    batch = spec.batch_size  # global B
    with torch.no_grad(), autocast(spec.precision, device, cache_enabled=spec.autocast_cache):
        z = _latents(spec, batch, device, state.noise)
        fake = state.generator(z, *_given(labels)).float()  # [B, ...]
    codes = latent_code(z, spec.latent_codes) if spec.info else None  # [n_r]: InfoGAN's c(z)
    if spec.compile and spec.loss == "wgan-gp" and penalise and spec.penalty_score_map == "sum":
        total, stats = _compiled_critic_loss(state, spec, real, fake, batch, labels, codes)
        applied = _apply(total, state.critic_opt, state.critic_scaler, spec.shard, batch, guard)
        return stats if applied else {}
    with autocast(spec.precision, device, cache_enabled=spec.autocast_cache):
        loss, real_scores, fake_scores, class_stats = critic_scores_and_loss(
            state.critic, spec, real, fake, labels, codes
        )
    stats = {
        "critic_loss": loss.detach(),
        "wasserstein": (real_scores.float().mean() - fake_scores.float().mean()).detach(),
        **class_stats,
    }
    if spec.loss == "wgan-gp" and penalise:
        penalty, norms = penalty_and_norms(state, spec, real, fake, batch, labels)
        loss = loss + lazy_penalty_weight(spec.penalty_weight, spec.penalty_every) * penalty
        stats["penalty"] = penalty.detach()
        stats["grad_norm"] = norms.mean()
    if not _apply(loss, state.critic_opt, state.critic_scaler, spec.shard, batch, guard):
        return {}
    if spec.loss == "wgan-clip":
        clip_weights_(state.critic, spec.clip_value)
    return stats


def generator_update(
    state: TrainState, spec: StepSpec, batch_size: int, device: torch.device, guard: UpdateGuard | None = None
) -> dict[str, Tensor]:
    """One generator update with the critic frozen (Algorithm 1, lines 11–12); ``batch_size`` is global.

    Returns ``{"generator_loss": ...}``, or ``{}`` when ``guard`` dropped the update. A conditional run
    draws the labels uniformly (after z, from the noise stream); AC-GAN adds ``acgan_scale_g · CE(C(x̃), ỹ)``
    (reported as ``generator_class_loss``); InfoGAN's code (``spec.info``) ``info_scale · CE(Q(x̃), c(z))``
    (``generator_info_loss``).
    """
    state.critic.requires_grad_(False)
    z = _latents(spec, batch_size, device, state.noise)
    labels = _class_labels(spec, batch_size, device, state.noise) if spec.conditional else None
    stats: dict[str, Tensor] = {}
    with autocast(spec.precision, device, cache_enabled=spec.autocast_cache):
        fake = state.generator(z, *_given(labels))
        if spec.conditioning == "acgan" or spec.info:
            scores, logits = _scores_and_logits(state.critic, fake)  # [B], [B, K]
        else:
            scores = state.critic(fake, *_given(labels))  # [B]
    loss = generator_loss(spec.loss, scores)
    if spec.conditioning == "acgan":
        assert labels is not None
        class_loss = class_cross_entropy(logits, labels)
        loss = loss + spec.acgan_scale_g * class_loss
        stats["generator_class_loss"] = class_loss.detach()
    if spec.info:
        info_loss = class_cross_entropy(logits, latent_code(z, spec.latent_codes))
        loss = loss + spec.info_scale * info_loss
        stats["generator_info_loss"] = info_loss.detach()
    applied = _apply(loss, state.generator_opt, state.generator_scaler, spec.shard, batch_size, guard)
    state.critic.requires_grad_(True)
    return {"generator_loss": loss.detach(), **stats} if applied else {}


def iteration(
    state: TrainState,
    spec: StepSpec,
    reals: Tensor,
    schedule: tuple[bool, ...],
    *,
    labels: Tensor | None = None,
    guard: UpdateGuard | None = None,
) -> dict[str, Tensor]:
    """Algorithm 1's generator iteration: n_critic critic updates on ``reals [n_critic, B, ...]``, then one
    generator update. Every step path runs this function: fp32 eager, mixed precision, the lazy penalty,
    inside a CUDA graph, and under torchrun (``reals`` are then this process's rows).

    ``schedule[i]`` says whether critic step ``i`` takes the penalty (see ``lazy.penalty_schedule``).
    ``guard`` (``skip_nonfinite``, eager fp32 only) may drop single updates. Critic stats are means over
    the critic steps that were applied; the penalty's over those that took it. ``labels [n_critic, B]``:
    the real batches' labels, for a conditional run (and only then).
    """
    if spec.conditional != (labels is not None):
        raise ValueError(f"conditioning={spec.conditioning}: labels must be given exactly when conditional")
    totals: dict[str, Tensor] = {}
    counts: dict[str, int] = {}
    per_step = [None] * len(schedule) if labels is None else list(labels.unbind(0))
    for real, y, penalise in zip(reals.unbind(0), per_step, schedule, strict=True):
        stats = critic_update(state, spec, real, penalise=penalise, labels=y, guard=guard)
        accumulate(totals, counts, stats)
    stats = {key: value / counts[key] for key, value in totals.items()}
    generator_batch = spec.batch_size * spec.generator_batch_multiple
    stats.update(generator_update(state, spec, generator_batch, reals.device, guard=guard))
    return stats
