"""Building blocks of the paper's convolutional networks (igul222/improved_wgan_training, tflib).

- :class:`UpsampleConv` — nearest-neighbour ×2 upsampling then a conv (tflib's ``UpsampleConv``, written
  there as ``depth_to_space`` of four copies, which is nearest-neighbour upsampling).
- :class:`ConvMeanPool` / :class:`MeanPoolConv` — a conv then 2×2 mean pooling, or the reverse.
- :class:`ResidualBlock` — the pre-activation block ``x + conv₂(act(norm₂(conv₁(act(norm₁(x))))))`` with an
  optional up/down resampling, and a 1×1 (resampling) shortcut when the shape changes.
- :class:`OptimizedFirstBlock` — the critic's first block of the CIFAR ResNet (no activation before the
  first conv, mean-pool-then-conv shortcut).
- :func:`norm_layer` — ``batch`` (generators only), ``layer`` (per-sample LayerNorm over C, H, W with a
  per-channel scale and shift, tflib's ``Layernorm(name, [1, 2, 3])``; implemented as ``GroupNorm(1, C)``,
  which is exactly that) or ``none``; ``batch`` with ``n_classes > 0`` is a
  :class:`~wgangp.models.conditional.ConditionalBatchNorm` (class-conditional generators).

2×2 mean pooling is written as a reshape-mean: the same numbers as ``avg_pool2d`` with a cheaper backward
(the pooling backward kernel was a large share of the ResNet critic's GPU time in an H200 profile;
benchmarks/RESULTS.md).
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from wgangp.models.conditional import ConditionalBatchNorm, LabelSequential

__all__ = [
    "ConvMeanPool",
    "MeanPoolConv",
    "Norm",
    "OptimizedFirstBlock",
    "ResidualBlock",
    "UpsampleConv",
    "mean_pool",
    "norm_layer",
]

Norm = Literal["none", "layer", "batch"]


def norm_layer(kind: Norm, channels: int, n_classes: int = 0) -> nn.Module:
    """A normalisation over ``channels`` feature maps; ``layer`` never mixes samples, ``batch`` does.

    ``n_classes > 0`` makes ``batch`` class-conditional (per-class γ, β; called as ``layer(x, labels)``).
    """
    if kind == "none":
        return nn.Identity()
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "batch":
        return ConditionalBatchNorm(channels, n_classes) if n_classes else nn.BatchNorm2d(channels)
    raise ValueError(f"norm must be none, layer or batch; got {kind!r}")


def mean_pool(x: Tensor) -> Tensor:
    """2×2 mean pooling as a reshape-mean: ``[N, C, H, W] -> [N, C, H/2, W/2]`` (H, W even)."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(dim=(3, 5))


class UpsampleConv(nn.Module):
    """``conv(upsample_nearest(x, 2))``: ``[N, C_in, H, W] -> [N, C_out, 2H, 2W]``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class ConvMeanPool(nn.Module):
    """``mean_pool(conv(x))``: ``[N, C_in, H, W] -> [N, C_out, H/2, W/2]``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        return mean_pool(self.conv(x))


class MeanPoolConv(nn.Module):
    """``conv(mean_pool(x))``: ``[N, C_in, H, W] -> [N, C_out, H/2, W/2]``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(mean_pool(x))


class ResidualBlock(nn.Module):
    """Pre-activation residual block of the official ResNets (``ResidualBlock`` in gan_cifar_resnet.py).

    ``resample="up"``: conv₁ is an :class:`UpsampleConv` (in → out), conv₂ a conv (out → out).
    ``resample="down"``: conv₁ a conv (in → in), conv₂ a :class:`ConvMeanPool` (in → out).
    ``resample=None``: conv₁ in → out, conv₂ out → out. The shortcut is the identity when the shape is kept,
    else the same resampling with a 1×1 conv. Shapes: ``[N, C_in, H, W] -> [N, C_out, H', W']``.
    ``n_classes > 0`` with ``norm="batch"``: both norms are conditional and ``forward(x, labels)``
    (``takes_labels``), as in the official conditional generator.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        resample: Literal["up", "down"] | None = None,
        norm: Norm = "none",
        kernel_size: int = 3,
        n_classes: int = 0,
    ) -> None:
        super().__init__()
        k, pad = kernel_size, kernel_size // 2
        conv1: nn.Module
        conv2: nn.Module
        shortcut: nn.Module
        if resample == "up":
            conv1 = UpsampleConv(in_channels, out_channels, k)
            conv2 = nn.Conv2d(out_channels, out_channels, k, padding=pad)
            shortcut = UpsampleConv(in_channels, out_channels, 1)
            mid = out_channels
        elif resample == "down":
            conv1 = nn.Conv2d(in_channels, in_channels, k, padding=pad)
            conv2 = ConvMeanPool(in_channels, out_channels, k)
            shortcut = ConvMeanPool(in_channels, out_channels, 1)
            mid = in_channels
        elif resample is None:
            conv1 = nn.Conv2d(in_channels, out_channels, k, padding=pad)
            conv2 = nn.Conv2d(out_channels, out_channels, k, padding=pad)
            shortcut = (
                nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)
            )
            mid = out_channels
        else:
            raise ValueError(f"resample must be 'up', 'down' or None; got {resample!r}")
        self.shortcut = shortcut
        self.takes_labels = bool(n_classes) and norm == "batch"
        kind = LabelSequential if self.takes_labels else nn.Sequential
        self.residual = kind(
            norm_layer(norm, in_channels, n_classes),
            nn.ReLU(),
            conv1,
            norm_layer(norm, mid, n_classes),
            nn.ReLU(),
            conv2,
        )

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.takes_labels:
            return self.shortcut(x) + self.residual(x, labels)
        return self.shortcut(x) + self.residual(x)


class OptimizedFirstBlock(nn.Module):
    """The CIFAR ResNet critic's first block (``OptimizedResBlockDisc1``): no pre-activation on the input.

    ``MeanPoolConv₁ₓ₁(x) + ConvMeanPool(ReLU(conv(x)))``: ``[N, C_in, H, W] -> [N, C_out, H/2, W/2]``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, kernel_size: int = 3) -> None:
        super().__init__()
        self.shortcut = MeanPoolConv(in_channels, out_channels, 1)
        self.residual = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
            nn.ReLU(),
            ConvMeanPool(out_channels, out_channels, kernel_size),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + self.residual(x)
