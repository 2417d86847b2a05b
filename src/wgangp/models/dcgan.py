"""DCGAN-style generator and critic of the official WGAN-GP code (gan_mnist.py, gan_cifar.py).

Reference: Gulrajani et al. 2017 (arXiv:1704.00028), Sec. 5 and igul222/improved_wgan_training.

Generator: ``z → Linear → [W·2^(k−1), 4, 4] → k × (ConvTranspose 5×5 stride 2, norm, ReLU) → conv out, tanh``
with ``k = log2(resolution/4)`` up-steps whose widths halve to ``W`` (``width``, the official ``DIM``);
the last up-step maps straight to the image channels. At 32×32 and ``W = 128`` this is gan_cifar.py's
generator (BatchNorm); at 28×28, ``W = 64`` and ``norm="none"`` gan_mnist.py's (its 8×8 map is cropped to
7×7, as the official ``output[:, :, :7, :7]``). The official MNIST generator ends in a sigmoid on [0, 1]
data; this package keeps every image in [−1, 1] and ends in tanh, the same function up to
``tanh(x/2) = 2σ(x) − 1``.

Critic: ``k`` convs 5×5 stride 2 with widths ``W, 2W, …`` and LeakyReLU(0.2), then a linear map of the
4×4 features to one score. ``norm="layer"`` adds a per-sample LayerNorm after every conv but the first;
never BatchNorm (the per-sample gradient penalty needs samples that do not interact).

Supported resolutions: 28, and powers of two from 8 to 256.

Class-conditional (``n_classes > 0``, :mod:`wgangp.models.conditional`): with ``norm="batch"`` every
generator BatchNorm becomes a :class:`~wgangp.models.conditional.ConditionalBatchNorm`; with
``norm="none"`` (gan_mnist.py's generator) the labels enter as ``[z, onehot(y)]``. The critic gets
AC-GAN or projection heads on its flattened last map. ``n_classes=0`` builds the unconditional networks
exactly (same modules, same random draws).
"""

from __future__ import annotations

import math
from typing import Literal

from torch import Tensor, nn

from wgangp.models.blocks import norm_layer
from wgangp.models.conditional import (
    ClassAwareCritic,
    ClassAwareGenerator,
    Conditioning,
    CriticHeads,
    check_n_classes,
    norm_1d,
)
from wgangp.models.init import init_weights_

__all__ = ["DCGANCritic", "DCGANGenerator", "dcgan_steps"]


def dcgan_steps(resolution: int) -> int:
    """Number of ×2 steps between 4×4 and ``resolution`` (28 counts as 32 with a crop at 8 → 7)."""
    if resolution == 28:
        return 3
    if resolution < 8 or resolution > 256 or resolution & (resolution - 1):
        raise ValueError(f"DCGAN models make 28×28 or 2^k×2^k images with 8 ≤ 2^k ≤ 256; got {resolution}")
    return int(math.log2(resolution)) - 2


class DCGANGenerator(ClassAwareGenerator):
    """``G(z)``: ``[N, latent_dim] -> [N, channels, resolution, resolution]`` in (−1, 1); ``G(z, y)`` if conditional.

    >>> import torch
    >>> DCGANGenerator(128, channels=1, resolution=28, width=8)(torch.randn(2, 128)).shape
    torch.Size([2, 1, 28, 28])
    """

    def __init__(
        self,
        latent_dim: int = 128,
        *,
        channels: int = 3,
        resolution: int = 32,
        width: int = 128,
        norm: Literal["none", "batch"] = "batch",
        n_classes: int = 0,
    ) -> None:
        super().__init__()
        steps = dcgan_steps(resolution)
        self.latent_dim, self.resolution = latent_dim, resolution
        in_dim, norm_classes, sequential = self.label_plumbing(latent_dim, n_classes, norm)
        self.top = width * 2 ** (steps - 1)
        self.input = sequential(
            nn.Linear(in_dim, 4 * 4 * self.top), norm_1d(norm, 4 * 4 * self.top, norm_classes)
        )
        ups: list[nn.Module] = []
        c = self.top
        for i in range(steps - 1):
            ups += [_deconv(c, c // 2), norm_layer(norm, c // 2, norm_classes), nn.ReLU()]
            if resolution == 28 and i == 0:
                ups.append(_Crop(7))
            c //= 2
        self.body = sequential(*ups)
        self.output = _deconv(c, channels)
        init_weights_(self, glorot=[self.output])


class DCGANCritic(ClassAwareCritic):
    """``D(x)``: ``[N, channels, resolution, resolution] -> [N]``, an unbounded score; ``D(x, y)`` if conditional.

    ``n_classes > 0``: the heads of ``conditioning`` on ``φ(x)``, the flattened last map ``[N, 16·top]``.

    >>> import torch
    >>> DCGANCritic(channels=1, resolution=28, width=8)(torch.randn(2, 1, 28, 28)).shape
    torch.Size([2])
    """

    def __init__(
        self,
        *,
        channels: int = 3,
        resolution: int = 32,
        width: int = 128,
        norm: Literal["none", "layer"] = "none",
        n_classes: int = 0,
        conditioning: Conditioning = "acgan",
    ) -> None:
        super().__init__()
        if norm not in ("none", "layer"):
            raise ValueError(f"critic norm must be none or layer (never BatchNorm); got {norm!r}")
        self.n_classes = check_n_classes(n_classes)
        steps = dcgan_steps(resolution)
        layers: list[nn.Module] = []
        c_in, c_out = channels, width
        for i in range(steps):
            layers.append(nn.Conv2d(c_in, c_out, 5, stride=2, padding=2))
            if i > 0:
                layers.append(norm_layer(norm, c_out))
            layers.append(nn.LeakyReLU(0.2))
            c_in, c_out = c_out, c_out * 2
        self.body = nn.Sequential(*layers)
        self.output = nn.Linear(4 * 4 * c_in, 1)
        init_weights_(self, glorot=[self.output])
        # After init_weights_ and the unconditional layers: their random draws are as without classes.
        self.heads = CriticHeads(4 * 4 * c_in, self.n_classes, conditioning) if self.n_classes else None

    def features(self, x: Tensor) -> Tensor:
        """``φ(x)``: ``[N, C, R, R] -> [N, top·16]``."""
        return self.body(x).flatten(1)

    def score_head(self, h: Tensor) -> Tensor:
        """The Wasserstein head on ``φ(x)``: ``[N, F] -> [N]``."""
        return self.output(h).squeeze(-1)


def _deconv(c_in: int, c_out: int) -> nn.ConvTranspose2d:
    # tflib's Deconv2D: 5×5, stride 2, "SAME" padding, so [H, W] -> [2H, 2W].
    return nn.ConvTranspose2d(c_in, c_out, 5, stride=2, padding=2, output_padding=1)


class _Crop(nn.Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :, : self.size, : self.size]
