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

__all__ = [
    "LOSS_NAMES",
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
