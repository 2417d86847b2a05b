"""Generators and critics built from the factors of the paper's robustness experiments.

Reference: Gulrajani et al. 2017 (arXiv:1704.00028), Sec. 5.1 / Table 1 (200 random architectures) and
Sec. 5.2 / Figure 2 (seven architectures), and ``gan_64x64.py`` in igul222/improved_wgan_training, whose
generator/discriminator pairs are the Figure 2 networks.

An :class:`Architecture` holds the factors; :func:`build_architecture` makes the two networks. With ``k =
log2(R/4)`` resolution steps between 4×4 and the image size ``R`` and ``e = expansion(activation)`` (2 for the
gated unit, whose layer before doubles its channels, else 1):

Plain conv networks (``residual=False``; ``depth`` = conv layers per network, ``depth ≥ k``):

- generator: ``z → Linear → [e·c₀, 4, 4] → norm, act → k × (ConvTranspose 5×5 s2, norm, act) →
  (depth − k) × (conv 3×3 s1, norm, act) → tanh``, the very last conv mapping to the image channels
  without norm or activation. ``depth = k`` is exactly :class:`~wgangp.models.dcgan.DCGANGenerator`.
- critic: ``k × (conv 5×5 s2, norm, act) → (depth − k) × (conv 3×3 s1, norm, act) at 4×4 → Linear → [N]``,
  no norm after the first conv (as DCGAN). ``depth = k`` is :class:`~wgangp.models.dcgan.DCGANCritic`.
- widths per resolution: ``filters="double"`` gives ``W·2^(k−1−i)`` at ``4·2^i`` (generator; ``W`` at the
  last two resolutions) and ``W·2^i`` after the ``i``-th strided conv (critic), as DCGAN; ``"constant"``
  gives ``W`` everywhere. Extra stride-1 layers keep the width of their resolution. At 8×8 (``k = 1``) the two
  patterns coincide.

Residual networks (``residual=True``; the "101-layer ResNet" of Figure 2, ``gan_64x64.py``'s
``ResnetGenerator``/``ResnetDiscriminator``): bottleneck blocks ``x + 0.3·norm(conv₁ₓ₁(act(conv₃ₓ₃(act(
conv₁ₓ₁(act(x)))))))`` with halved inner width; ``depth`` counts weight layers (3 per block, plus the input
Linear/conv and the output conv/Linear), so ``depth = 3·blocks + 2`` (101 → 33 blocks); ``k`` of the blocks
resample, the others are spread evenly over the ``k + 1`` resolutions, the remainder to the low resolutions
(at 64×64: 6, 6, 6, 6, 5 as in the official code). Widths ``W·2^(k−1−i)`` at ``4·2^i`` (``W/2`` at ``R``) or
``W``. The generator ends ``conv₁ₓ₁ → tanh(x/5)``, the critic ``Linear(x)/5``, as the official code.

MLP generator (``generator="mlp"``, Figure 2's "512-dim 4-layer ReLU MLP G", ``FCGenerator``):
``z → 4 × (Linear 512, ReLU) → Linear(C·R·R) → tanh``, the official He/Glorot init; the critic stays conv.

Norms: generator ``batch`` or ``none``; critic ``none``, ``layer`` (per-sample) or ``batch`` — the latter only
for losses without a per-sample gradient penalty (:func:`check_critic_norm`). The paper's ``Normalize`` uses
BatchNorm in a GAN/LSGAN/clipping critic and LayerNorm in a WGAN-GP one: :func:`critic_norm_for_loss`.

Supported image sizes: powers of two from 8 to 256 (and 28 for the plain networks, cropped 8 → 7 as DCGAN).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from wgangp.losses import PENALISED_LOSSES  # losses whose critic takes a per-sample gradient penalty
from wgangp.models.activations import ACTIVATIONS, ActivationName, activation, expansion
from wgangp.models.blocks import Norm, norm_layer
from wgangp.models.init import init_weights_
from wgangp.models.mlp import MLPGenerator

__all__ = [
    "FIGURE2",
    "PENALISED_LOSSES",
    "Architecture",
    "BottleneckBlock",
    "FactoredCritic",
    "FactoredGenerator",
    "MLPImageGenerator",
    "ResidualCritic",
    "ResidualGenerator",
    "build_architecture",
    "check_critic_norm",
    "critic_norm_for_loss",
    "figure2_architectures",
    "residual_blocks",
]

Filters = Literal["double", "constant"]
GeneratorKind = Literal["conv", "mlp"]
GeneratorNorm = Literal["batch", "none"]

RESIDUAL_SCALE = 0.3  # gan_64x64.py's BottleneckResidualBlock: shortcut + 0.3·branch
OUTPUT_SCALE = 5.0  # gan_64x64.py's ResNet-101: tanh(out/5) in G, score/5 in D


def check_critic_norm(loss: str, norm: str) -> None:
    """Refuse a BatchNorm critic for a loss with a per-sample gradient penalty (``wgan-gp``), in one line.

    BatchNorm makes each score depend on the whole batch, so ``∇_x̂ Σ D(x̂)`` is not the per-sample gradient
    the penalty needs; GAN, LSGAN and weight clipping have no such term and may use it (paper Sec. 5.1).
    Raises :class:`~wgangp.errors.UserError`.
    """
    from wgangp.errors import UserError

    if norm not in get_args(Norm):
        raise UserError(f"critic norm must be none, layer or batch; got {norm!r}")
    if norm == "batch" and loss in PENALISED_LOSSES:
        raise UserError(
            f"critic norm batch mixes samples, so the per-sample gradient penalty of {loss} is wrong: "
            "use layer or none (batch is for gan, lsgan, wgan-clip)"
        )


def critic_norm_for_loss(norm: Norm, loss: str) -> Norm:
    """The paper's ``Normalize`` in a critic: ``batch`` becomes ``layer`` under a penalised loss, else unchanged."""
    return "layer" if norm == "batch" and loss in PENALISED_LOSSES else norm


@dataclass(frozen=True)
class Architecture:
    """One point of the paper's architecture space (Table 1 factors, plus Figure 2's variants).

    Plain JSON-able fields: ``dataclasses.asdict`` and :meth:`from_dict` round-trip it.
    """

    generator: GeneratorKind = "conv"  # conv, or the 4-layer ReLU MLP of Figure 2
    activation: ActivationName = (
        "relu"  # the generator's nonlinearity (Table 1: relu, leaky_relu, softplus, tanh)
    )
    critic_activation: ActivationName = "leaky_relu"  # the critic's (DCGAN: LeakyReLU 0.2)
    depth: int = 4  # conv layers per network (residual: weight layers, 3·blocks + 2); Table 1: 4, 8, 12, 20
    width: int = 64  # base filter count W (Table 1: 32, 64, 128; gan_64x64.py's DIM = 64)
    generator_filters: Filters = "double"  # widths double per resolution step towards 4×4, or stay W
    critic_filters: Filters = "double"
    generator_norm: GeneratorNorm = "batch"  # Table 1: BatchNorm in G yes/no
    critic_norm: Norm = "none"  # Table 1: yes (BatchNorm for GAN / LayerNorm for WGAN-GP) or no
    residual: bool = False  # bottleneck ResNet (Figure 2's 101-layer ResNet)
    mlp_width: int = 512  # generator="mlp" only (Figure 2: 512)
    mlp_depth: int = 4  # hidden layers of the MLP generator (Figure 2: 4)

    def __post_init__(self) -> None:
        choices: dict[str, tuple[str, ...]] = {
            "generator": get_args(GeneratorKind),
            "activation": ACTIVATIONS,
            "critic_activation": ACTIVATIONS,
            "generator_filters": get_args(Filters),
            "critic_filters": get_args(Filters),
            "generator_norm": get_args(GeneratorNorm),
            "critic_norm": get_args(Norm),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        for name in ("depth", "width", "mlp_width", "mlp_depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int; got {value!r}")
        if not isinstance(self.residual, bool):
            raise ValueError(f"residual must be true or false; got {self.residual!r}")
        if self.residual and "gated" in (self.activation, self.critic_activation):
            raise ValueError(
                "the residual networks pre-activate their block inputs, which a gated unit would halve"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Architecture:
        """An architecture from a plain dict (a study spec); unknown keys are a ``ValueError``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown architecture factors: {', '.join(unknown)}")
        return cls(**values)

    def for_loss(self, loss: str) -> Architecture:
        """This architecture with the paper's critic ``Normalize`` for ``loss`` (:func:`critic_norm_for_loss`)."""
        return dataclasses.replace(self, critic_norm=critic_norm_for_loss(self.critic_norm, loss))


def build_architecture(
    arch: Architecture, *, latent_dim: int, channels: int, resolution: int
) -> tuple[nn.Module, nn.Module]:
    """The generator ``[N, latent_dim] -> [N, C, R, R]`` and critic ``[N, C, R, R] -> [N]`` of ``arch``.

    Uses the global RNG for the weights (seed it, or wrap in ``torch.random.fork_rng``). A shape the
    architecture cannot make is a ``ValueError``.

    >>> g, d = build_architecture(Architecture(width=8), latent_dim=16, channels=1, resolution=8)
    >>> d(g(torch.randn(2, 16))).shape
    torch.Size([2])
    """
    generator: nn.Module
    critic: nn.Module
    image = {"channels": channels, "resolution": resolution}
    if arch.generator == "mlp":
        generator = MLPImageGenerator(latent_dim, width=arch.mlp_width, depth=arch.mlp_depth, **image)
    elif arch.residual:
        generator = ResidualGenerator(
            latent_dim,
            activation=arch.activation,
            depth=arch.depth,
            width=arch.width,
            filters=arch.generator_filters,
            norm=arch.generator_norm,
            **image,
        )
    else:
        generator = FactoredGenerator(
            latent_dim,
            activation=arch.activation,
            depth=arch.depth,
            width=arch.width,
            filters=arch.generator_filters,
            norm=arch.generator_norm,
            **image,
        )
    critic_kind = ResidualCritic if arch.residual else FactoredCritic
    critic = critic_kind(
        activation=arch.critic_activation,
        depth=arch.depth,
        width=arch.width,
        filters=arch.critic_filters,
        norm=arch.critic_norm,
        **image,
    )
    return generator, critic


# ---------------------------------------------------------------------------------------------------------
# Plain conv networks.
# ---------------------------------------------------------------------------------------------------------


def _steps(resolution: int, *, allow_28: bool) -> int:
    """Resolution steps between 4×4 and ``resolution`` (28 counts as 32, cropped at 8 → 7)."""
    if allow_28 and resolution == 28:
        return 3
    if resolution < 8 or resolution > 256 or resolution & (resolution - 1):
        extra = "28×28 or " if allow_28 else ""
        raise ValueError(f"these networks make {extra}2^k×2^k images with 8 ≤ 2^k ≤ 256; got {resolution}")
    return int(math.log2(resolution)) - 2


def _check_depth(depth: int, steps: int, resolution: int) -> None:
    if depth < steps:
        raise ValueError(
            f"depth {depth} is below the {steps} resolution steps that {resolution}×{resolution} needs"
        )


def _generator_widths(width: int, steps: int, filters: Filters) -> list[int]:
    """Widths at 4×4, 8×8, …, R×R: ``W·2^max(0, k−1−i)`` (DCGAN's halving) or ``W``."""
    if filters == "constant":
        return [width] * (steps + 1)
    return [width * 2 ** max(0, steps - 1 - i) for i in range(steps + 1)]


def _critic_widths(width: int, steps: int, filters: Filters) -> list[int]:
    """Output widths of the ``k`` strided convs: ``W·2^i`` (DCGAN's doubling) or ``W``."""
    return [width if filters == "constant" else width * 2**i for i in range(steps)]


class FactoredGenerator(nn.Module):
    """Plain conv ``G(z)``: ``[N, latent_dim] -> [N, channels, R, R]`` in (−1, 1) (module docstring).

    >>> FactoredGenerator(16, channels=1, resolution=8, width=8, depth=4)(torch.randn(2, 16)).shape
    torch.Size([2, 1, 8, 8])
    """

    def __init__(
        self,
        latent_dim: int = 128,
        *,
        channels: int = 3,
        resolution: int = 32,
        width: int = 64,
        depth: int = 4,
        activation: ActivationName = "relu",
        filters: Filters = "double",
        norm: GeneratorNorm = "batch",
    ) -> None:
        super().__init__()
        if norm not in get_args(GeneratorNorm):
            raise ValueError(f"generator norm must be batch or none; got {norm!r}")
        steps = _steps(resolution, allow_28=True)
        _check_depth(depth, steps, resolution)
        e = expansion(activation)
        widths = _generator_widths(width, steps, filters)
        self.latent_dim, self.top, self.expanded = latent_dim, widths[0], e * widths[0]
        self.input = nn.Linear(latent_dim, 4 * 4 * self.expanded)
        self.input_norm = nn.BatchNorm1d(4 * 4 * self.expanded) if norm == "batch" else nn.Identity()
        self.input_act = _activation(activation)
        layers: list[nn.Module] = []
        c = widths[0]
        for i in range(depth - 1):  # every conv but the output conv
            if i < steps:
                c_out = widths[i + 1]
                layers.append(_deconv(c, e * c_out))
            else:
                c_out = c
                layers.append(nn.Conv2d(c, e * c_out, 3, padding=1))
            layers += [norm_layer(norm, e * c_out), _activation(activation)]
            if resolution == 28 and i == 0:
                layers.append(_Crop(7))
            c = c_out
        self.body = nn.Sequential(*layers)
        if depth == steps:
            self.output: nn.Module = _deconv(c, channels)
        else:
            self.output = nn.Conv2d(c, channels, 3, padding=1)
        init_weights_(self, glorot=[self.output])

    def forward(self, z: Tensor) -> Tensor:
        h = self.input_norm(self.input(z)).view(z.shape[0], self.expanded, 4, 4)  # [N, e·c₀, 4, 4]
        x = self.input_act(h)  # [N, c₀, 4, 4]
        return torch.tanh(self.output(self.body(x)))  # [N, C, R, R]


class FactoredCritic(nn.Module):
    """Plain conv ``D(x)``: ``[N, channels, R, R] -> [N]``, an unbounded score (module docstring).

    >>> FactoredCritic(channels=1, resolution=8, width=8, depth=4)(torch.randn(2, 1, 8, 8)).shape
    torch.Size([2])
    """

    def __init__(
        self,
        *,
        channels: int = 3,
        resolution: int = 32,
        width: int = 64,
        depth: int = 4,
        activation: ActivationName = "leaky_relu",
        filters: Filters = "double",
        norm: Norm = "none",
    ) -> None:
        super().__init__()
        steps = _steps(resolution, allow_28=True)
        _check_depth(depth, steps, resolution)
        e = expansion(activation)
        widths = _critic_widths(width, steps, filters)
        layers: list[nn.Module] = []
        c_in = channels
        for i in range(depth):
            if i < steps:
                c_out = widths[i]
                layers.append(nn.Conv2d(c_in, e * c_out, 5, stride=2, padding=2))
            else:
                c_out = c_in
                layers.append(nn.Conv2d(c_in, e * c_out, 3, padding=1))
            if i > 0:
                layers.append(norm_layer(norm, e * c_out))
            layers.append(_activation(activation))
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.output = nn.Linear(4 * 4 * c_in, 1)
        init_weights_(self, glorot=[self.output])

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.body(x).flatten(1)).squeeze(-1)  # [N, C, R, R] -> [N, c·16] -> [N]


# ---------------------------------------------------------------------------------------------------------
# Residual (bottleneck) networks.
# ---------------------------------------------------------------------------------------------------------


def residual_blocks(depth: int, steps: int) -> list[int]:
    """Non-resampling blocks at 4×4, 8×8, …, R×R for ``depth = 3·blocks + 2`` weight layers (module docstring).

    ``blocks − k`` plain blocks spread evenly over the ``k + 1`` resolutions, the remainder to the lowest:
    ``residual_blocks(101, 4) == [6, 6, 6, 6, 5]`` (gan_64x64.py's ResNet-101 generator, 4×4 first).
    """
    if depth < 2 or (depth - 2) % 3:
        raise ValueError(f"a residual depth is 3·blocks + 2 weight layers (5, 8, …, 101); got {depth}")
    plain = (depth - 2) // 3 - steps
    if plain < 0:
        raise ValueError(f"depth {depth} has fewer than the {steps} resampling blocks the resolution needs")
    base, extra = divmod(plain, steps + 1)
    return [base + (1 if i < extra else 0) for i in range(steps + 1)]


def _residual_widths(width: int, steps: int, filters: Filters) -> list[int]:
    """Widths at 4×4, …, R×R: ``W·2^(k−1−i)`` (``W/2`` at R, as the ResNet-101) or ``W``; all even."""
    if filters == "constant":
        widths = [width] * (steps + 1)
    else:
        widths = [width * 2 ** (steps - 1 - i) if i < steps else width // 2 for i in range(steps + 1)]
    if any(w < 2 or w % 2 for w in widths):
        raise ValueError(f"the bottleneck blocks halve their widths, which must be even; widths {widths}")
    return widths


class BottleneckBlock(nn.Module):
    """``shortcut(x) + 0.3·norm(conv₁ₓ₁(act(conv₃ₓ₃(act(conv₁ₓ₁(act(x)))))))``, inner width halved.

    ``resample="up"``: the 3×3 is a ConvTranspose stride 2 and the shortcut a 1×1 conv to ``4·C_out`` then
    pixel shuffle (tflib's ``SubpixelConv2D``); ``"down"``: stride-2 3×3 and a stride-2 1×1 shortcut;
    ``None``: identity shortcut when the widths agree. ``[N, C_in, H, W] -> [N, C_out, H', W']``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        resample: Literal["up", "down"] | None = None,
        norm: Norm = "none",
        activation: ActivationName = "relu",
    ) -> None:
        super().__init__()
        if expansion(activation) != 1:
            raise ValueError("the bottleneck block pre-activates its input, which a gated unit would halve")
        mid_in, mid_out = in_channels // 2, out_channels // 2
        middle: nn.Module
        if resample == "up":
            middle = nn.ConvTranspose2d(mid_in, mid_out, 3, stride=2, padding=1, output_padding=1)
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, 4 * out_channels, 1), nn.PixelShuffle(2)
            )
        elif resample == "down":
            middle = nn.Conv2d(mid_in, mid_out, 3, stride=2, padding=1)
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=2)
        elif resample is None:
            middle = nn.Conv2d(mid_in, mid_out, 3, padding=1)
            same = in_channels == out_channels
            self.shortcut = nn.Identity() if same else nn.Conv2d(in_channels, out_channels, 1)
        else:
            raise ValueError(f"resample must be 'up', 'down' or None; got {resample!r}")
        self.residual = nn.Sequential(
            _activation(activation),
            nn.Conv2d(in_channels, mid_in, 1),
            _activation(activation),
            middle,
            _activation(activation),
            nn.Conv2d(mid_out, out_channels, 1, bias=False),
            norm_layer(norm, out_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + RESIDUAL_SCALE * self.residual(x)


class ResidualGenerator(nn.Module):
    """Bottleneck-ResNet ``G(z)``: ``[N, latent_dim] -> [N, channels, R, R]`` in (−1, 1) (module docstring).

    >>> ResidualGenerator(16, channels=1, resolution=8, width=8, depth=11)(torch.randn(2, 16)).shape
    torch.Size([2, 1, 8, 8])
    """

    def __init__(
        self,
        latent_dim: int = 128,
        *,
        channels: int = 3,
        resolution: int = 64,
        width: int = 64,
        depth: int = 101,
        activation: ActivationName = "relu",
        filters: Filters = "double",
        norm: GeneratorNorm = "batch",
    ) -> None:
        super().__init__()
        if norm not in get_args(GeneratorNorm):
            raise ValueError(f"generator norm must be batch or none; got {norm!r}")
        steps = _steps(resolution, allow_28=False)
        counts = residual_blocks(depth, steps)
        widths = _residual_widths(width, steps, filters)
        self.latent_dim, self.top = latent_dim, widths[0]
        self.input = nn.Linear(latent_dim, 4 * 4 * widths[0])
        blocks: list[nn.Module] = []
        for i, count in enumerate(counts):
            blocks += [
                BottleneckBlock(widths[i], widths[i], norm=norm, activation=activation) for _ in range(count)
            ]
            if i < steps:
                blocks.append(
                    BottleneckBlock(widths[i], widths[i + 1], resample="up", norm=norm, activation=activation)
                )
        self.blocks = nn.Sequential(*blocks)
        self.output = nn.Conv2d(widths[-1], channels, 1)
        init_weights_(self, glorot=[*_shortcuts(self), self.output])

    def forward(self, z: Tensor) -> Tensor:
        x = self.input(z).view(z.shape[0], self.top, 4, 4)  # [N, c₀, 4, 4]
        return torch.tanh(self.output(self.blocks(x)) / OUTPUT_SCALE)  # [N, C, R, R]


class ResidualCritic(nn.Module):
    """Bottleneck-ResNet ``D(x)``: ``[N, channels, R, R] -> [N]`` (module docstring).

    >>> ResidualCritic(channels=1, resolution=8, width=8, depth=11)(torch.randn(2, 1, 8, 8)).shape
    torch.Size([2])
    """

    def __init__(
        self,
        *,
        channels: int = 3,
        resolution: int = 64,
        width: int = 64,
        depth: int = 101,
        activation: ActivationName = "relu",
        filters: Filters = "double",
        norm: Norm = "none",
    ) -> None:
        super().__init__()
        steps = _steps(resolution, allow_28=False)
        counts = residual_blocks(depth, steps)[::-1]  # R×R first; the remainder stays at the low resolutions
        widths = _residual_widths(width, steps, filters)[::-1]  # R×R first
        self.input = nn.Conv2d(channels, widths[0], 1)
        blocks: list[nn.Module] = []
        for i, count in enumerate(counts):
            blocks += [
                BottleneckBlock(widths[i], widths[i], norm=norm, activation=activation) for _ in range(count)
            ]
            if i < steps:
                blocks.append(
                    BottleneckBlock(
                        widths[i], widths[i + 1], resample="down", norm=norm, activation=activation
                    )
                )
        self.blocks = nn.Sequential(*blocks)
        self.output = nn.Linear(4 * 4 * widths[-1], 1)
        init_weights_(self, glorot=[self.input, *_shortcuts(self), self.output])

    def forward(self, x: Tensor) -> Tensor:
        h = self.blocks(self.input(x))  # [N, c₀, 4, 4]
        return (self.output(h.flatten(1)) / OUTPUT_SCALE).squeeze(-1)  # [N]


def _shortcuts(model: nn.Module) -> list[nn.Module]:
    """The blocks' 1×1 shortcut convs: Glorot, as tflib's ``he_init=False``."""
    return [
        m
        for b in model.modules()
        if isinstance(b, BottleneckBlock)
        for m in b.shortcut.modules()
        if isinstance(m, nn.Conv2d)
    ]


# ---------------------------------------------------------------------------------------------------------
# MLP generator.
# ---------------------------------------------------------------------------------------------------------


class MLPImageGenerator(nn.Module):
    """``tanh(MLP(z))`` reshaped to images: ``[N, latent_dim] -> [N, channels, R, R]`` (``FCGenerator``).

    ``depth`` hidden ReLU layers of ``width`` (Figure 2: 4 × 512), :class:`~wgangp.models.mlp.MLPGenerator`
    with the official He/Glorot init.

    >>> MLPImageGenerator(16, channels=1, resolution=8, width=32)(torch.randn(2, 16)).shape
    torch.Size([2, 1, 8, 8])
    """

    def __init__(
        self,
        latent_dim: int = 128,
        *,
        channels: int = 3,
        resolution: int = 32,
        width: int = 512,
        depth: int = 4,
    ) -> None:
        super().__init__()
        self.latent_dim, self.shape = latent_dim, (channels, resolution, resolution)
        self.mlp = MLPGenerator(
            latent_dim, channels * resolution * resolution, width=width, depth=depth, init="official"
        )

    def forward(self, z: Tensor) -> Tensor:
        return torch.tanh(self.mlp(z)).view(z.shape[0], *self.shape)  # [N, C·R·R] -> [N, C, R, R]


# ---------------------------------------------------------------------------------------------------------
# Figure 2's seven architectures.
# ---------------------------------------------------------------------------------------------------------

FIGURE2: dict[str, Architecture] = {
    # gan_64x64.py at 64×64, DIM = 64; critic Normalize = BatchNorm (GAN, LSGAN, clipping) / LayerNorm (WGAN-GP).
    "dcgan": Architecture(depth=4, width=64, critic_norm="batch"),
    "no-bn-constant-g": Architecture(
        depth=4, width=64, generator_norm="none", generator_filters="constant", critic_norm="batch"
    ),
    "mlp-g": Architecture(generator="mlp", depth=4, width=64, critic_norm="batch"),
    "no-norm": Architecture(depth=4, width=64, generator_norm="none", critic_norm="none"),
    "gated": Architecture(
        activation="gated", critic_activation="gated", depth=4, width=64, critic_norm="batch"
    ),
    "tanh": Architecture(activation="tanh", critic_activation="tanh", depth=4, width=64, critic_norm="batch"),
    "resnet-101": Architecture(
        activation="relu", critic_activation="relu", residual=True, depth=101, width=64, critic_norm="batch"
    ),
}

DIGITS_WIDTH = 32  # the conv networks' W on 8×8 digits
DIGITS_RESNET_WIDTH = 16  # the ResNet's W on 8×8 digits (widths 16 at 4×4, 8 at 8×8)
DIGITS_RESNET_DEPTH = (
    26  # 8 bottleneck blocks: all 101 layers cost ~0.8 s per penalised critic step on one core
)


def figure2_architectures(scale: Literal["paper", "digits"] = "paper") -> dict[str, Architecture]:
    """Figure 2's seven architectures (name → :class:`Architecture`), at the paper's or the digits' scale.

    ``paper``: :data:`FIGURE2`, gan_64x64.py's networks for 64×64 images (``W = 64``). ``digits`` (8×8×1 on a
    CPU, ``k = 1``): every conv network keeps 4 conv layers per network (1 strided + 3 stride-1 convs at 8×8 in
    G and at 4×4 in D) with ``W = 32``; the ResNet has 26 layers (8 bottleneck blocks; 101 layers took
    ~0.8 s per penalised critic step at batch 64 on one core) with ``W = 16``; the MLP generator keeps 4 × 512. At 8×8 "constant filters" equals "double" (one resolution
    step), so ``no-bn-constant-g`` differs from ``dcgan`` by the generator's missing BatchNorm only. Use
    ``arch.for_loss(loss)`` for the paper's critic norm under each loss.
    """
    if scale == "paper":
        return dict(FIGURE2)
    if scale != "digits":
        raise ValueError(f"scale must be paper or digits; got {scale!r}")
    return {
        name: dataclasses.replace(arch, width=DIGITS_RESNET_WIDTH, depth=DIGITS_RESNET_DEPTH)
        if arch.residual
        else dataclasses.replace(arch, width=DIGITS_WIDTH)
        for name, arch in FIGURE2.items()
    }


def _activation(name: ActivationName) -> nn.Module:
    # The builders' keyword ``activation`` shadows the module-level function inside them.
    return activation(name)


def _deconv(c_in: int, c_out: int) -> nn.ConvTranspose2d:
    # tflib's Deconv2D: 5×5, stride 2, "SAME" padding, so [H, W] -> [2H, 2W].
    return nn.ConvTranspose2d(c_in, c_out, 5, stride=2, padding=2, output_padding=1)


class _Crop(nn.Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :, : self.size, : self.size]
