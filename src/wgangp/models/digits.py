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

Class-conditional (``n_classes > 0``, :mod:`wgangp.models.conditional`, as the DCGAN and ResNet): with
``norm="batch"`` every generator BatchNorm (the input's and the three hidden layers') becomes a
:class:`~wgangp.models.conditional.ConditionalBatchNorm`; with ``norm="none"`` the labels enter as
``[z, onehot(y)]``. The critic gets AC-GAN or projection heads on ``φ(x)``, its flattened last map
``[N, 32W]``. ``n_classes=0`` builds the unconditional networks exactly (same modules, same random draws).
"""

from __future__ import annotations

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

__all__ = ["DigitsCritic", "DigitsGenerator"]

RESOLUTION = 8


def _check(resolution: int) -> None:
    if resolution != RESOLUTION:
        raise ValueError(f"the digits models make 8×8 images; got {resolution}×{resolution}")


class DigitsGenerator(ClassAwareGenerator):
    """``G(z)``: ``[N, latent_dim] -> [N, channels, 8, 8]`` in (−1, 1); ``G(z, y)`` if conditional.

    >>> import torch
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
        n_classes: int = 0,
    ) -> None:
        super().__init__()
        _check(resolution)
        self.latent_dim, self.top = latent_dim, 2 * width
        in_dim, k, sequential = self.label_plumbing(latent_dim, n_classes, norm)  # k: the norms' classes
        features = 4 * 4 * self.top
        self.input = sequential(nn.Linear(in_dim, features), norm_1d(norm, features, k))
        self.body = sequential(
            nn.Conv2d(self.top, self.top, 3, padding=1),
            norm_layer(norm, self.top, k),
            nn.ReLU(),
            nn.ConvTranspose2d(self.top, width, 4, stride=2, padding=1),  # [4, 4] -> [8, 8]
            norm_layer(norm, width, k),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            norm_layer(norm, width, k),
            nn.ReLU(),
        )
        self.output = nn.Conv2d(width, channels, 3, padding=1)
        init_weights_(self, glorot=[self.output])


class DigitsCritic(ClassAwareCritic):
    """``D(x)``: ``[N, channels, 8, 8] -> [N]``, an unbounded score; never BatchNorm; ``D(x, y)`` if conditional.

    ``n_classes > 0``: the heads of ``conditioning`` on ``φ(x)``, the flattened last map ``[N, 32W]``.

    >>> import torch
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
        n_classes: int = 0,
        conditioning: Conditioning = "acgan",
    ) -> None:
        super().__init__()
        _check(resolution)
        if norm not in ("none", "layer"):
            raise ValueError(f"critic norm must be none or layer (never BatchNorm); got {norm!r}")
        self.n_classes = check_n_classes(n_classes)
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
        features = 4 * 4 * 2 * width
        self.output = nn.Linear(features, 1)
        init_weights_(self, glorot=[self.output])
        # After init_weights_ and the unconditional layers: their random draws are as without classes.
        self.heads = CriticHeads(features, self.n_classes, conditioning) if self.n_classes else None

    def features(self, x: Tensor) -> Tensor:
        """``φ(x)``: ``[N, C, 8, 8] -> [N, 32W]``."""
        return self.body(x).flatten(1)

    def score_head(self, h: Tensor) -> Tensor:
        """The Wasserstein head on ``φ(x)``: ``[N, 32W] -> [N]``."""
        return self.output(h).squeeze(-1)
