"""Critic and generator losses: Wasserstein (WGAN, WGAN-GP), the standard GAN and LSGAN baselines.

Pure functions of critic scores ``[N]`` or ``[N, 1]``; each returns a scalar to *minimise*.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LossName = Literal["wgan-gp", "wgan-clip", "gan", "lsgan"]
LOSS_NAMES: tuple[str, ...] = ("wgan-gp", "wgan-clip", "gan", "lsgan")
# Losses whose critic takes a per-sample gradient penalty, so it must not mix samples (no BatchNorm).
PENALISED_LOSSES: tuple[str, ...] = ("wgan-gp",)

ACGAN_SCALE = 1.0  # weight of the critic's classification loss (official gan_cifar_resnet.py ACGAN_SCALE)
ACGAN_SCALE_G = 0.1  # weight of the generator's (ACGAN_SCALE_G)

__all__ = [
    "ACGAN_SCALE",
    "ACGAN_SCALE_G",
    "LOSS_NAMES",
    "PENALISED_LOSSES",
    "acgan_critic_loss",
    "acgan_generator_loss",
    "class_cross_entropy",
    "clip_weights_",
    "critic_loss",
    "gan_critic_loss",
    "gan_generator_loss",
    "generator_loss",
    "lsgan_critic_loss",
    "lsgan_generator_loss",
    "wasserstein_critic_loss",
    "wasserstein_generator_loss",
]


def wasserstein_critic_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """``L_D = E[D(x̃)] − E[D(x)]``; its negative estimates the Wasserstein-1 distance (WGAN, eq. 2)."""
    return fake_scores.float().mean() - real_scores.float().mean()


def wasserstein_generator_loss(fake_scores: Tensor) -> Tensor:
    """``L_G = −E[D(x̃)]``."""
    return -fake_scores.float().mean()


def gan_critic_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Standard GAN (JS) discriminator loss, BCE with logits: ``−E[log σ(D(x))] − E[log(1 − σ(D(x̃)))]``."""
    return F.softplus(-real_logits.float()).mean() + F.softplus(fake_logits.float()).mean()


def gan_generator_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss ``−E[log σ(D(x̃))]`` (Goodfellow et al. 2014, §3)."""
    return F.softplus(-fake_logits.float()).mean()


def lsgan_critic_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """LSGAN critic loss with ``a = 0, b = c = 1``: ``½E[(D(x) − 1)²] + ½E[D(x̃)²]`` (Mao et al. 2017, eq. 2).

    Recipe (paper Sec. 5.2 baselines): Adam 2e-4, β = (0.5, 0.999), n_critic 1. ``gan_64x64.py`` computes the
    same loss (and trains it with RMSProp 1e-4).
    """
    return 0.5 * (real_scores.float() - 1.0).square().mean() + 0.5 * fake_scores.float().square().mean()


def lsgan_generator_loss(fake_scores: Tensor) -> Tensor:
    """LSGAN generator loss ``½E[(D(x̃) − c)²]`` with ``c = 1`` (Mao et al. 2017, eq. 2)."""
    return 0.5 * (fake_scores.float() - 1.0).square().mean()


def class_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """``E[−log softmax(logits)[y]]``: logits ``[N, K]``, labels int64 ``[N]`` -> scalar (fp32)."""
    return F.cross_entropy(logits.float(), labels)


def acgan_critic_loss(
    real_scores: Tensor,
    fake_scores: Tensor,
    real_logits: Tensor,
    real_labels: Tensor,
    *,
    scale: float = ACGAN_SCALE,
) -> Tensor:
    """``L_D = E[D(x̃)] − E[D(x)] + scale·CE(C(x), y)`` (AC-GAN, Odena et al. 2017; official gan_cifar_resnet.py).

    The classifier learns from real images only; add ``λ·GP`` of the score as usual. Scores ``[N]``,
    real logits ``[N, K]``, labels ``[N]``; ``scale`` 1 in the official code.
    """
    return wasserstein_critic_loss(real_scores, fake_scores) + scale * class_cross_entropy(
        real_logits, real_labels
    )


def acgan_generator_loss(
    fake_scores: Tensor, fake_logits: Tensor, fake_labels: Tensor, *, scale: float = ACGAN_SCALE_G
) -> Tensor:
    """``L_G = −E[D(x̃)] + scale·CE(C(x̃), ỹ)`` with ``ỹ`` the labels the fakes were made for (scale 0.1)."""
    return wasserstein_generator_loss(fake_scores) + scale * class_cross_entropy(fake_logits, fake_labels)


def _check_loss(loss: str) -> None:
    if loss not in LOSS_NAMES:
        raise ValueError(f"loss must be one of {', '.join(LOSS_NAMES)}; got {loss!r}")


def critic_loss(loss: LossName, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """The critic's loss for ``loss`` (without any penalty term)."""
    _check_loss(loss)
    if loss == "gan":
        return gan_critic_loss(real_scores, fake_scores)
    if loss == "lsgan":
        return lsgan_critic_loss(real_scores, fake_scores)
    return wasserstein_critic_loss(real_scores, fake_scores)


def generator_loss(loss: LossName, fake_scores: Tensor) -> Tensor:
    """The generator's loss for ``loss``."""
    _check_loss(loss)
    if loss == "gan":
        return gan_generator_loss(fake_scores)
    if loss == "lsgan":
        return lsgan_generator_loss(fake_scores)
    return wasserstein_generator_loss(fake_scores)


@torch.no_grad()
def clip_weights_(module: nn.Module, clip_value: float) -> None:
    """Clamp every parameter to ``[−c, c]`` in place: the original WGAN's Lipschitz constraint."""
    params: list[Tensor] = list(module.parameters())
    if params:
        torch._foreach_clamp_min_(params, -clip_value)
        torch._foreach_clamp_max_(params, clip_value)
