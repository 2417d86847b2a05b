"""Update-step fixtures the step tests share."""

from __future__ import annotations

import torch

from wgangp.step.state import TrainState
from wgangp.trainer import build_models


def sgd_state(config, *, n_classes: int = 0, lr: float = 1e-2) -> TrainState:
    """A run's networks from ``config`` with plain SGD (so a hand-written update can follow the step) and the
    trainer's noise stream seed (``config.seed + 1``)."""
    generator, critic = build_models(config, n_classes=n_classes)
    return TrainState(
        generator,
        critic,
        torch.optim.SGD(generator.parameters(), lr=lr),
        torch.optim.SGD(critic.parameters(), lr=lr),
        torch.Generator().manual_seed(config.seed + 1),
    )
