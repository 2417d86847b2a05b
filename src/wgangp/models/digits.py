"""A generator and critic for 8×8 images (sklearn's digits), with convolutions at full resolution.

At 8×8 the DCGAN of :mod:`wgangp.models.dcgan` has one ×2 step: its generator is a linear map to
``[W, 4, 4]`` and one 5×5 transposed conv straight to the image, its critic one strided conv and a linear
map; neither has a layer that sees the 8×8 grid with nonlinear features, and the samples stay blurry. These
add a 3×3 conv at each resolution (the same WGAN-GP networks otherwise: ReLU/BatchNorm generator with tanh,
LeakyReLU(0.2) critic without BatchNorm, tflib's initialisation):

Generator: ``z → Linear → [2W, 4, 4] → conv 3×3 (2W) → ConvTranspose 4×4 stride 2 (W) → [W, 8, 8] → conv
3×3 (W) → conv 3×3 → [C, 8, 8], tanh``, each hidden layer followed by ``norm`` and ReLU.

Critic: ``[C, 8, 8] → conv 3×3 (W) → conv 3×3 (W) → conv 4×4 stride 2 (2W) → [2W, 4, 4] → conv 3×3 (2W) →
Linear → score``, LeakyReLU(0.2) after each conv and ``norm`` (per-sample LayerNorm or none) after all but
the first.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from wgangp.models.blocks import norm_layer
from wgangp.models.init import init_weights_

__all__ = ["DigitsCritic", "DigitsGenerator"]

RESOLUTION = 8


def _check(resolution: int) -> None:
    if resolution != RESOLUTION:
        raise ValueError(f"the digits models make 8×8 images; got {resolution}×{resolution}")


class DigitsGenerator(nn.Module):
    """``G(z)``: ``[N, latent_dim] -> [N, channels, 8, 8]`` in (−1, 1).

    >>> DigitsGenerator(16, channels=1, width=8)(torch.randn(2, 16)).shape
    torch.Size([2, 1, 8, 8])
    """

    def __init__(
        self,
        latent_dim: int = 64,
        *,
        channels: int = 1,
        resolution: int = RESOLUTION,
        width: int = 32,
        norm: Literal["none", "batch"] = "batch",
    ) -> None:
        super().__init__()
        _check(resolution)
        self.latent_dim, self.top = latent_dim, 2 * width
        features = 4 * 4 * self.top
        self.input = nn.Sequential(
            nn.Linear(latent_dim, features), nn.BatchNorm1d(features) if norm == "batch" else nn.Identity()
        )
        self.body = nn.Sequential(
            nn.Conv2d(self.top, self.top, 3, padding=1),
            norm_layer(norm, self.top),
            nn.ReLU(),
            nn.ConvTranspose2d(self.top, width, 4, stride=2, padding=1),  # [4, 4] -> [8, 8]
            norm_layer(norm, width),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            norm_layer(norm, width),
            nn.ReLU(),
        )
        self.output = nn.Conv2d(width, channels, 3, padding=1)
        init_weights_(self, glorot=[self.output])

    def forward(self, z: Tensor) -> Tensor:
        x = torch.relu(self.input(z)).view(z.shape[0], self.top, 4, 4)  # [N, 2W, 4, 4]
        return torch.tanh(self.output(self.body(x)))  # [N, C, 8, 8]


class DigitsCritic(nn.Module):
    """``D(x)``: ``[N, channels, 8, 8] -> [N]``, an unbounded score; never BatchNorm.

    >>> DigitsCritic(channels=1, width=8)(torch.randn(2, 1, 8, 8)).shape
    torch.Size([2])
    """

    def __init__(
        self,
        *,
        channels: int = 1,
        resolution: int = RESOLUTION,
        width: int = 32,
        norm: Literal["none", "layer"] = "none",
    ) -> None:
        super().__init__()
        _check(resolution)
        if norm not in ("none", "layer"):
            raise ValueError(f"critic norm must be none or layer (never BatchNorm); got {norm!r}")
        act = 0.2
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.LeakyReLU(act),
            nn.Conv2d(width, width, 3, padding=1),
            norm_layer(norm, width),
            nn.LeakyReLU(act),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),  # [8, 8] -> [4, 4]
            norm_layer(norm, 2 * width),
            nn.LeakyReLU(act),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1),
            norm_layer(norm, 2 * width),
            nn.LeakyReLU(act),
        )
        self.output = nn.Linear(4 * 4 * 2 * width, 1)
        init_weights_(self, glorot=[self.output])

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.body(x).flatten(1)).squeeze(-1)  # [N, C, 8, 8] -> [N, 32W] -> [N]
