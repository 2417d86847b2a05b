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
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from wgangp.models.blocks import norm_layer
from wgangp.models.init import init_weights_

__all__ = ["DCGANCritic", "DCGANGenerator", "dcgan_steps"]


def dcgan_steps(resolution: int) -> int:
    """Number of ×2 steps between 4×4 and ``resolution`` (28 counts as 32 with a crop at 8 → 7)."""
    if resolution == 28:
        return 3
    if resolution < 8 or resolution > 256 or resolution & (resolution - 1):
        raise ValueError(f"DCGAN models make 28×28 or 2^k×2^k images with 8 ≤ 2^k ≤ 256; got {resolution}")
    return int(math.log2(resolution)) - 2


class DCGANGenerator(nn.Module):
    """``G(z)``: ``[N, latent_dim] -> [N, channels, resolution, resolution]`` in (−1, 1).

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
    ) -> None:
        super().__init__()
        steps = dcgan_steps(resolution)
        self.latent_dim, self.resolution = latent_dim, resolution
        self.top = width * 2 ** (steps - 1)
        self.input = nn.Sequential(nn.Linear(latent_dim, 4 * 4 * self.top), _norm1d(norm, 4 * 4 * self.top))
        ups: list[nn.Module] = []
        c = self.top
        for i in range(steps - 1):
            ups += [_deconv(c, c // 2), norm_layer(norm, c // 2), nn.ReLU()]
            if resolution == 28 and i == 0:
                ups.append(_Crop(7))
            c //= 2
        self.body = nn.Sequential(*ups)
        self.output = _deconv(c, channels)
        init_weights_(self, glorot=[self.output])

    def forward(self, z: Tensor) -> Tensor:
        x = torch.relu(self.input(z)).view(z.shape[0], self.top, 4, 4)  # [N, top, 4, 4]
        return torch.tanh(self.output(self.body(x)))  # [N, C, R, R]


class DCGANCritic(nn.Module):
    """``D(x)``: ``[N, channels, resolution, resolution] -> [N]``, an unbounded score.

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
    ) -> None:
        super().__init__()
        if norm not in ("none", "layer"):
            raise ValueError(f"critic norm must be none or layer (never BatchNorm); got {norm!r}")
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

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.body(x).flatten(1)).squeeze(-1)  # [N, C, R, R] -> [N, top·16] -> [N]


def _deconv(c_in: int, c_out: int) -> nn.ConvTranspose2d:
    # tflib's Deconv2D: 5×5, stride 2, "SAME" padding, so [H, W] -> [2H, 2W].
    return nn.ConvTranspose2d(c_in, c_out, 5, stride=2, padding=2, output_padding=1)


def _norm1d(kind: str, features: int) -> nn.Module:
    return nn.BatchNorm1d(features) if kind == "batch" else nn.Identity()


class _Crop(nn.Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :, : self.size, : self.size]
