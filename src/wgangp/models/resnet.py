"""The paper's ResNets: the CIFAR-10 network of Appendix F and the 64×64 network of Sec. 5.

Reference: Gulrajani et al. 2017 (arXiv:1704.00028), Appendix F (Table 4) and igul222/improved_wgan_training
(gan_cifar_resnet.py; gan_64x64.py ``GoodGenerator`` / ``GoodDiscriminator``). Blocks: :mod:`wgangp.models.blocks`.

``resnet`` (Appendix F, constant width ``W = 128``; at resolution ``R`` with ``k = log2(R/4)``):

- generator: ``Linear(z) → [W, 4, 4] → k × ResBlock↑(W, BatchNorm) → BN, ReLU → conv3×3 → tanh``;
- critic: ``OptimizedFirstBlock↓ → (k − 2) × ResBlock↓ → 2 × ResBlock → ReLU → global mean pool → Linear``,
  no normalisation (``norm="layer"`` is offered). At 32×32 this is Appendix F exactly.

``resnet-pyramid`` (the 64×64 network, ``W = 64``; widths double per resolution step up to ``8W``):

- generator: ``Linear(z) → [8W, 4, 4] → k × ResBlock↑ (8W, 8W, 4W, 2W, W at 64×64) → BN, ReLU → conv3×3 → tanh``;
- critic: ``conv3×3 → k × ResBlock↓ (W → 2W → 4W → 8W → 8W) → Linear of the 4×4 map``, LayerNorm in the
  blocks (the paper's 64×64 critic) or none.

Supported resolutions: powers of two from 8 (``resnet`` critic: from 16) to 256.

Class-conditional (``n_classes > 0``; the official gan_cifar_resnet.py with ``CONDITIONAL`` and
``ACGAN``, the paper's Table 3): the generator still reads ``z`` only, and the labels enter through
conditional BatchNorm at both norms of every up-block (the output BatchNorm stays plain); with
``norm="none"`` they join z as ``[z, onehot(y)]``. The critic gets AC-GAN or projection heads on its
pooled features (``cifar``) or flattened 4×4 map (``pyramid``). ``n_classes=0`` builds the
unconditional networks exactly.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from wgangp.models.blocks import OptimizedFirstBlock, ResidualBlock, norm_layer
from wgangp.models.conditional import (
    ClassAwareCritic,
    Conditioning,
    CriticHeads,
    LabelSequential,
    check_label_input,
    check_n_classes,
    one_hot_concat,
)
from wgangp.models.init import init_weights_

__all__ = ["ResNetCritic", "ResNetGenerator", "resnet_steps"]

Variant = Literal["cifar", "pyramid"]


def resnet_steps(resolution: int, variant: Variant = "cifar") -> int:
    """Number of ×2 steps between 4×4 and ``resolution``."""
    low = 16 if variant == "cifar" else 8
    if resolution < low or resolution > 256 or resolution & (resolution - 1):
        raise ValueError(
            f"the {'resnet' if variant == 'cifar' else 'resnet-pyramid'} models make 2^k×2^k images "
            f"with {low} ≤ 2^k ≤ 256; got {resolution}"
        )
    return int(math.log2(resolution)) - 2


def _widths(width: int, steps: int, variant: Variant) -> list[int]:
    """Channel widths at 4×4, 8×8, …, R×R: constant for ``cifar``; ``W·min(8, 2^(steps − i))`` for ``pyramid``."""
    if variant == "cifar":
        return [width] * (steps + 1)
    return [width * min(8, 2 ** (steps - i)) for i in range(steps + 1)]


class ResNetGenerator(nn.Module):
    """``G(z)``: ``[N, latent_dim] -> [N, channels, resolution, resolution]`` in (−1, 1); ``G(z, y)`` if conditional.

    >>> ResNetGenerator(16, channels=3, resolution=16, width=8)(torch.randn(2, 16)).shape
    torch.Size([2, 3, 16, 16])
    """

    def __init__(
        self,
        latent_dim: int = 128,
        *,
        channels: int = 3,
        resolution: int = 32,
        width: int = 128,
        variant: Variant = "cifar",
        norm: Literal["none", "batch"] = "batch",
        n_classes: int = 0,
    ) -> None:
        super().__init__()
        steps = resnet_steps(resolution, "pyramid")  # the generator itself works from 8×8 up
        widths = _widths(width, steps, variant)
        self.latent_dim, self.top = latent_dim, widths[0]
        self.n_classes = check_n_classes(n_classes)
        self.label_norms = bool(self.n_classes) and norm == "batch"  # else labels join z (one-hot)
        in_dim = latent_dim + (self.n_classes if self.n_classes and not self.label_norms else 0)
        self.input = nn.Linear(in_dim, 4 * 4 * widths[0])
        sequential = LabelSequential if self.label_norms else nn.Sequential
        block_classes = self.n_classes if self.label_norms else 0
        self.blocks = sequential(
            *(
                ResidualBlock(widths[i], widths[i + 1], resample="up", norm=norm, n_classes=block_classes)
                for i in range(steps)
            )
        )
        self.output = nn.Sequential(
            norm_layer(norm, widths[-1]), nn.ReLU(), nn.Conv2d(widths[-1], channels, 3, padding=1)
        )
        init_weights_(self, glorot=[*_shortcuts(self), self.output[-1]])

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        check_label_input(self.n_classes, labels, z.shape[0])
        if labels is not None and self.label_norms:
            x = self.input(z).view(z.shape[0], self.top, 4, 4)
            return torch.tanh(self.output(self.blocks(x, labels)))
        if labels is not None:
            z = one_hot_concat(z, labels, self.n_classes)  # [N, latent_dim + K]
        x = self.input(z).view(z.shape[0], self.top, 4, 4)  # [N, W0, 4, 4]
        return torch.tanh(self.output(self.blocks(x)))  # [N, C, R, R]


class ResNetCritic(ClassAwareCritic):
    """``D(x)``: ``[N, channels, resolution, resolution] -> [N]``; ``norm`` none or layer, never BatchNorm.

    ``n_classes > 0``: ``D(x, y)`` with the heads of ``conditioning`` on ``φ(x)``, the pooled features
    ``[N, W]`` (``cifar``: AC-GAN's ``Linear(128 → K)`` beside the score as in Table 3) or the flattened
    4×4 map (``pyramid``).

    >>> ResNetCritic(channels=3, resolution=16, width=8)(torch.randn(2, 3, 16, 16)).shape
    torch.Size([2])
    """

    def __init__(
        self,
        *,
        channels: int = 3,
        resolution: int = 32,
        width: int = 128,
        variant: Variant = "cifar",
        norm: Literal["none", "layer"] = "none",
        n_classes: int = 0,
        conditioning: Conditioning = "acgan",
    ) -> None:
        super().__init__()
        if norm not in ("none", "layer"):
            raise ValueError(f"critic norm must be none or layer (never BatchNorm); got {norm!r}")
        self.n_classes = check_n_classes(n_classes)
        steps = resnet_steps(resolution, variant)
        self.variant = variant
        blocks: list[nn.Module]
        if variant == "cifar":
            # Down to 8×8, then two blocks at 8×8 (Appendix F: 32 → 16 → 8 → 8 → 8).
            blocks = [OptimizedFirstBlock(channels, width)]
            blocks += [ResidualBlock(width, width, resample="down", norm=norm) for _ in range(steps - 2)]
            blocks += [ResidualBlock(width, width, norm=norm) for _ in range(2)]
            self.blocks = nn.Sequential(*blocks)
            self.output = nn.Linear(width, 1)
        else:
            widths = _widths(width, steps, variant)[::-1]  # R×R first: W, 2W, …, 8W, 8W
            blocks = [nn.Conv2d(channels, widths[0], 3, padding=1)]
            blocks += [
                ResidualBlock(widths[i], widths[i + 1], resample="down", norm=norm) for i in range(steps)
            ]
            self.blocks = nn.Sequential(*blocks)
            self.output = nn.Linear(4 * 4 * widths[-1], 1)
        init_weights_(self, glorot=[*_shortcuts(self), self.output])
        # After init_weights_ and the unconditional layers: their random draws are as without classes.
        features = self.output.in_features
        self.heads = CriticHeads(features, self.n_classes, conditioning) if self.n_classes else None

    def features(self, x: Tensor) -> Tensor:
        """``φ(x)``: pooled features ``[N, W]`` (cifar) or the flattened 4×4 map ``[N, 16·8W]`` (pyramid)."""
        h = self.blocks(x)  # [N, C', 8, 8] (cifar) or [N, 8W, 4, 4] (pyramid)
        if self.variant == "cifar":
            h = torch.relu(h).mean(dim=(2, 3))  # global mean pool: [N, W]
        return h.flatten(1)

    def score_head(self, h: Tensor) -> Tensor:
        """The Wasserstein head on ``φ(x)``: ``[N, F] -> [N]``."""
        return self.output(h).squeeze(-1)


def _shortcuts(model: nn.Module) -> list[nn.Module]:
    """The 1×1 shortcut convs, initialised with Glorot (tflib's ``he_init=False``)."""
    found: list[nn.Module] = []
    for block in model.modules():
        if isinstance(block, (ResidualBlock, OptimizedFirstBlock)):
            found += [m for m in block.shortcut.modules() if isinstance(m, nn.Conv2d)]
    return found
