"""Networks: map inputs to outputs and know nothing about training. :func:`build_models` picks them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

from wgangp.models.coded import CodedGenerator
from wgangp.models.conditional import CONDITIONINGS, ConditionalBatchNorm, Conditioning
from wgangp.models.dcgan import DCGANCritic, DCGANGenerator
from wgangp.models.digits import DigitsCritic, DigitsGenerator
from wgangp.models.factored import Architecture, build_architecture
from wgangp.models.mlp import MLPCritic, MLPGenerator
from wgangp.models.resnet import ResNetCritic, ResNetGenerator
from wgangp.models.resnet1d import ResNet1dCritic, ResNet1dGenerator

if TYPE_CHECKING:
    from wgangp.config import TrainConfig

__all__ = [
    "CONDITIONINGS",
    "MODELS",
    "CodedGenerator",
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
    "architecture_of",
    "build_coded_models",
    "build_conditional_models",
    "build_models",
]

MODELS: tuple[str, ...] = ("mlp", "dcgan", "resnet", "resnet-pyramid", "resnet1d", "factored", "digits")


def build_models(config: TrainConfig, data_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    """The generator and critic of ``config.model`` for samples of ``data_shape``, seeded by ``config.seed``.

    ``data_shape`` is one sample's shape: ``(D,)`` for the MLPs, ``(C, R, R)`` for the image models,
    ``(V, T)`` or ``(C, T)`` for the 1-D ResNets (a softmax over ``V`` for text, linear outputs for signals).
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


def build_coded_models(config: TrainConfig, data_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    """``latent_codes = K`` (:mod:`wgangp.models.coded`): ``G(z)`` a K-class generator fed ``c(z)``, and a
    critic with the AC-GAN classifier head as InfoGAN's ``Q(c | x)``; with ``info_scale = 0`` (no head)
    :func:`build_models`' critic. The same seeding as :func:`build_conditional_models`.
    """
    generator, critic = build_conditional_models(
        config, data_shape, config.latent_codes, conditioning="acgan"
    )
    if not config.info_scale:
        critic = build_models(config, data_shape)[1]
    return CodedGenerator(generator, config.latent_codes), critic


def architecture_of(config: TrainConfig) -> Architecture:
    """The :class:`~wgangp.models.factored.Architecture` that ``model=factored`` builds from ``config``."""
    return Architecture.from_dict(
        {
            "generator": config.generator_model,
            "activation": config.activation,
            "critic_activation": config.critic_activation,
            "depth": config.conv_depth,
            "width": config.conv_width,
            "generator_filters": config.generator_filters,
            "critic_filters": config.critic_filters,
            "generator_norm": config.generator_norm,
            "critic_norm": config.critic_norm,
            "residual": config.residual,
            "mlp_width": config.width,
            "mlp_depth": config.depth,
        }
    )


def _build(
    config: TrainConfig, shape: tuple[int, ...], n_classes: int = 0, conditioning: Conditioning = "acgan"
) -> tuple[nn.Module, nn.Module]:
    generator: nn.Module
    critic: nn.Module
    if config.model == "resnet1d" or len(shape) == 2:
        return _build_1d(config, shape, n_classes)
    if config.critic_norm == "batch" and config.model != "factored":
        raise ValueError("critic norm batch needs model factored (the config refuses it elsewhere)")
    critic_norm: Literal["none", "layer"] = "layer" if config.critic_norm == "layer" else "none"
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
            norm=critic_norm,
            n_classes=n_classes,
            conditioning=conditioning,
        )
        return generator, critic
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"needs square images [C, R, R]; the data are {'×'.join(map(str, shape))}")
    channels, resolution, width = shape[0], shape[1], config.conv_width
    if config.model == "factored":
        if n_classes:
            raise ValueError("the factored networks are unconditional (n_classes must be 0)")
        return build_architecture(
            architecture_of(config), latent_dim=config.latent_dim, channels=channels, resolution=resolution
        )
    image = {"channels": channels, "resolution": resolution, "width": width}
    if config.model == "dcgan":
        generator = DCGANGenerator(
            config.latent_dim, norm=config.generator_norm, n_classes=n_classes, **image
        )
        critic = DCGANCritic(norm=critic_norm, n_classes=n_classes, conditioning=conditioning, **image)
    elif config.model == "digits":
        generator = DigitsGenerator(
            config.latent_dim, norm=config.generator_norm, n_classes=n_classes, **image
        )
        critic = DigitsCritic(norm=critic_norm, n_classes=n_classes, conditioning=conditioning, **image)
    else:
        variant: Literal["cifar", "pyramid"] = "cifar" if config.model == "resnet" else "pyramid"
        generator = ResNetGenerator(
            config.latent_dim, variant=variant, norm=config.generator_norm, n_classes=n_classes, **image
        )
        critic = ResNetCritic(
            variant=variant, norm=critic_norm, n_classes=n_classes, conditioning=conditioning, **image
        )
    return generator, critic


def _build_1d(config: TrainConfig, shape: tuple[int, ...], n_classes: int) -> tuple[nn.Module, nn.Module]:
    """The 1-D ResNets of Sec. 5.5 for sequences ``[V, T]`` (text: softmax) or ``[C, T]`` (signals)."""
    if len(shape) != 2:
        raise ValueError(
            f"takes sequences [C, T]; the data are {'×'.join(map(str, shape))} (use mlp/dcgan/resnet)"
        )
    if config.model != "resnet1d":
        raise ValueError(f"the data are sequences {'×'.join(map(str, shape))}; use --set model=resnet1d")
    if n_classes:
        raise ValueError("has no class-conditional variant")
    channels, seq_len = shape
    sizes = {"channels": channels, "seq_len": seq_len, "width": config.width, "depth": config.depth}
    output: Literal["softmax", "linear"] = "softmax" if config.dataset == "text" else "linear"
    generator = ResNet1dGenerator(config.latent_dim, output=output, **sizes)
    return generator, ResNet1dCritic(spectrum=config.critic_spectrum, **sizes)
