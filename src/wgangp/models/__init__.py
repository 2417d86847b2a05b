"""Networks: map inputs to outputs and know nothing about training. :func:`build_models` picks them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

from wgangp.models.conditional import CONDITIONINGS, ConditionalBatchNorm, Conditioning
from wgangp.models.dcgan import DCGANCritic, DCGANGenerator
from wgangp.models.digits import DigitsCritic, DigitsGenerator
from wgangp.models.mlp import MLPCritic, MLPGenerator
from wgangp.models.resnet import ResNetCritic, ResNetGenerator
from wgangp.models.resnet1d import ResNet1dCritic, ResNet1dGenerator

if TYPE_CHECKING:
    from wgangp.config import TrainConfig

__all__ = [
    "CONDITIONINGS",
    "MODELS",
    "ConditionalBatchNorm",
    "Conditioning",
    "DCGANCritic",
    "DCGANGenerator",
    "DigitsCritic",
    "DigitsGenerator",
    "MLPCritic",
    "MLPGenerator",
    "ResNet1dCritic",
    "ResNet1dGenerator",
    "ResNetCritic",
    "ResNetGenerator",
    "build_conditional_models",
    "build_models",
]

MODELS: tuple[str, ...] = ("mlp", "dcgan", "resnet", "resnet-pyramid", "digits")


def build_models(config: TrainConfig, data_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    """The generator and critic of ``config.model`` for samples of ``data_shape``, seeded by ``config.seed``.

    ``data_shape`` is one sample's shape: ``(D,)`` for the MLPs, ``(C, R, R)`` for the image models.
    A shape the model cannot make is a :class:`~wgangp.errors.UserError`.
    """
    from wgangp.errors import UserError

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        try:
            return _build(config, data_shape)
        except ValueError as err:
            raise UserError(f"model {config.model}: {err}") from None


def build_conditional_models(
    config: TrainConfig, data_shape: tuple[int, ...], n_classes: int, *, conditioning: Conditioning = "acgan"
) -> tuple[nn.Module, nn.Module]:
    """:func:`build_models` for ``n_classes`` classes: ``generator(z, y)`` and ``critic(x, y)``.

    ``conditioning="acgan"``: the critic has a classifier head (``critic.score_and_logits(x)``) and its
    score takes no label (Table 3 of the paper); ``"projection"``: ``D(x, y) = ψ(φ(x)) + E[y]·φ(x)``
    (Miyato & Koyama 2018). Generators: conditional BatchNorm where they have BatchNorm, else
    ``[z, onehot(y)]``. Seeded by ``config.seed``; with conditional BatchNorm (generator shapes unchanged)
    the critic's unconditional layers start at :func:`build_models`' weights. ``n_classes=0`` is
    :func:`build_models`.
    """
    from wgangp.errors import UserError

    if n_classes < 0:
        raise UserError(f"n_classes must be ≥ 0 (0: unconditional); got {n_classes}")
    if conditioning not in CONDITIONINGS:
        raise UserError(f"conditioning must be one of {', '.join(CONDITIONINGS)}; got {conditioning!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        try:
            return _build(config, data_shape, n_classes, conditioning)
        except ValueError as err:
            raise UserError(f"model {config.model}: {err}") from None


def _build(
    config: TrainConfig, shape: tuple[int, ...], n_classes: int = 0, conditioning: Conditioning = "acgan"
) -> tuple[nn.Module, nn.Module]:
    generator: nn.Module
    critic: nn.Module
    if config.model == "mlp":
        if len(shape) != 1:
            raise ValueError(
                f"the MLPs take vectors; the data are {'×'.join(map(str, shape))} (use dcgan/resnet)"
            )
        generator = MLPGenerator(
            config.latent_dim, shape[0], width=config.width, depth=config.depth, n_classes=n_classes
        )
        critic = MLPCritic(
            shape[0],
            width=config.width,
            depth=config.depth,
            norm=config.critic_norm,
            n_classes=n_classes,
            conditioning=conditioning,
        )
        return generator, critic
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"needs square images [C, R, R]; the data are {'×'.join(map(str, shape))}")
    channels, resolution, width = shape[0], shape[1], config.conv_width
    image = {"channels": channels, "resolution": resolution, "width": width}
    if config.model == "dcgan":
        generator = DCGANGenerator(
            config.latent_dim, norm=config.generator_norm, n_classes=n_classes, **image
        )
        critic = DCGANCritic(norm=config.critic_norm, n_classes=n_classes, conditioning=conditioning, **image)
    elif config.model == "digits":
        if n_classes:
            raise ValueError(
                "the digits models are unconditional (use dcgan for class-conditional 8×8 images)"
            )
        generator = DigitsGenerator(config.latent_dim, norm=config.generator_norm, **image)
        critic = DigitsCritic(norm=config.critic_norm, **image)
    else:
        variant: Literal["cifar", "pyramid"] = "cifar" if config.model == "resnet" else "pyramid"
        generator = ResNetGenerator(
            config.latent_dim, variant=variant, norm=config.generator_norm, n_classes=n_classes, **image
        )
        critic = ResNetCritic(
            variant=variant, norm=config.critic_norm, n_classes=n_classes, conditioning=conditioning, **image
        )
    return generator, critic
