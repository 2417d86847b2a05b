"""Networks: map inputs to outputs and know nothing about training. :func:`build_models` picks them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

from wgangp.models.dcgan import DCGANCritic, DCGANGenerator
from wgangp.models.mlp import MLPCritic, MLPGenerator
from wgangp.models.resnet import ResNetCritic, ResNetGenerator
from wgangp.models.resnet1d import ResNet1dCritic, ResNet1dGenerator

if TYPE_CHECKING:
    from wgangp.config import TrainConfig

__all__ = [
    "MODELS",
    "DCGANCritic",
    "DCGANGenerator",
    "MLPCritic",
    "MLPGenerator",
    "ResNet1dCritic",
    "ResNet1dGenerator",
    "ResNetCritic",
    "ResNetGenerator",
    "build_models",
]

MODELS: tuple[str, ...] = ("mlp", "dcgan", "resnet", "resnet-pyramid")


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


def _build(config: TrainConfig, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    generator: nn.Module
    critic: nn.Module
    if config.model == "mlp":
        if len(shape) != 1:
            raise ValueError(
                f"the MLPs take vectors; the data are {'×'.join(map(str, shape))} (use dcgan/resnet)"
            )
        generator = MLPGenerator(config.latent_dim, shape[0], width=config.width, depth=config.depth)
        critic = MLPCritic(shape[0], width=config.width, depth=config.depth, norm=config.critic_norm)
        return generator, critic
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"needs square images [C, R, R]; the data are {'×'.join(map(str, shape))}")
    channels, resolution = shape[0], shape[1]
    image = {"channels": channels, "resolution": resolution, "width": config.conv_width}
    if config.model == "dcgan":
        generator = DCGANGenerator(config.latent_dim, norm=config.generator_norm, **image)
        critic = DCGANCritic(norm=config.critic_norm, **image)
    else:
        variant: Literal["cifar", "pyramid"] = "cifar" if config.model == "resnet" else "pyramid"
        generator = ResNetGenerator(config.latent_dim, variant=variant, norm=config.generator_norm, **image)
        critic = ResNetCritic(variant=variant, norm=config.critic_norm, **image)
    return generator, critic
