"""Critic and generator losses: Wasserstein (WGAN, WGAN-GP) and the standard GAN baseline.

Pure functions of critic scores ``[N]`` or ``[N, 1]``; each returns a scalar to *minimise*.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LossName = Literal["wgan-gp", "wgan-clip", "gan"]
LOSS_NAMES: tuple[str, ...] = ("wgan-gp", "wgan-clip", "gan")

__all__ = [
    "LOSS_NAMES",
    "clip_weights_",
    "critic_loss",
    "gan_critic_loss",
    "gan_generator_loss",
    "generator_loss",
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


def _check_loss(loss: str) -> None:
    if loss not in LOSS_NAMES:
        raise ValueError(f"loss must be one of {', '.join(LOSS_NAMES)}; got {loss!r}")


def critic_loss(loss: LossName, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """The critic's loss for ``loss`` (without any penalty term)."""
    _check_loss(loss)
    if loss == "gan":
        return gan_critic_loss(real_scores, fake_scores)
    return wasserstein_critic_loss(real_scores, fake_scores)


def generator_loss(loss: LossName, fake_scores: Tensor) -> Tensor:
    """The generator's loss for ``loss``."""
    _check_loss(loss)
    if loss == "gan":
        return gan_generator_loss(fake_scores)
    return wasserstein_generator_loss(fake_scores)


@torch.no_grad()
def clip_weights_(module: nn.Module, clip_value: float) -> None:
    """Clamp every parameter to ``[−c, c]`` in place: the original WGAN's Lipschitz constraint."""
    params: list[Tensor] = list(module.parameters())
    if params:
        torch._foreach_clamp_min_(params, -clip_value)
        torch._foreach_clamp_max_(params, clip_value)
