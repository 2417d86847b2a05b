"""What an update step changes: the two networks, their optimizers, the noise stream and fp16's scalers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from wgangp.config import TrainConfig
from wgangp.step.amp import make_scaler
from wgangp.step.optim import build_optimizer

__all__ = ["NOISE_SEED_OFFSET", "Objective", "TrainState"]

NOISE_SEED_OFFSET = 1  # the noise stream (z and the penalty's ε) is seeded with config.seed + 1

# (critic, real, fake, points x̂, penalty weight, labels or None, latent codes or None)
#   -> (total loss, the critic step's stats)
Objective = Callable[
    [nn.Module, Tensor, Tensor, Tensor, float, Tensor | None, Tensor | None],
    tuple[Tensor, dict[str, Tensor]],
]


@dataclass
class TrainState:
    """The state one generator iteration updates, and nothing else.

    ``noise`` draws z and the penalty's ε in a fixed order (``update``'s docstring); the scalers exist for
    fp16 only; ``compiled`` caches the compiled critic objective (``compile=true``).
    """

    generator: nn.Module
    critic: nn.Module
    generator_opt: torch.optim.Optimizer
    critic_opt: torch.optim.Optimizer
    noise: torch.Generator
    generator_scaler: torch.amp.GradScaler | None = None
    critic_scaler: torch.amp.GradScaler | None = None
    compiled: Objective | None = None

    @classmethod
    def build(
        cls, config: TrainConfig, generator: nn.Module, critic: nn.Module, *, graph: bool
    ) -> TrainState:
        """Optimizers (:func:`~wgangp.step.optim.build_optimizer`), scalers and the seeded noise stream."""
        device = next(critic.parameters()).device
        generator_opt, critic_opt = (
            build_optimizer(config, net.parameters(), lr, graph=graph, device=device, regularised=reg)
            for net, lr, reg in ((generator, config.lr_generator, False), (critic, config.lr_critic, True))
        )
        return cls(
            generator,
            critic,
            generator_opt,
            critic_opt,
            torch.Generator(device=device).manual_seed(config.seed + NOISE_SEED_OFFSET),
            make_scaler(config.precision, device),
            make_scaler(config.precision, device),
        )
