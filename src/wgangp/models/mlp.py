"""The toy experiments' networks: ReLU MLPs, as in the official ``gan_toy.py``.

Reference: Gulrajani et al. 2017 (arXiv:1704.00028), Sec. 5.1/Fig. 1, and ``Generator`` /
``Discriminator`` in igul222/improved_wgan_training/gan_toy.py: ``2 → 512 → 512 → 512 → out``, ReLU,
no normalisation, no output activation. The critic never uses BatchNorm: it would mix samples, and the
per-sample gradient penalty assumes they do not interact (WGAN-GP, Sec. 4).

Initialisation (``init=``):

- ``"pytorch"`` (default): PyTorch's ``nn.Linear`` default, weights and biases ``U(±1/√fan_in)``.
- ``"official"``: what ``gan_toy.py`` does through ``tflib``: hidden layers He-uniform
  (std ``√(2/fan_in)``), the output layer Glorot-uniform (std ``√(2/(fan_in + fan_out))``), zero biases.

Class-conditional (``n_classes > 0``, :mod:`wgangp.models.conditional`): the generator reads
``[z, onehot(y)]`` (its first layer's extra ``K`` columns are a learned class embedding added to the
first hidden pre-activation); the critic gets AC-GAN or projection heads on its last hidden layer.
``n_classes=0`` builds exactly the unconditional networks (same modules, same random draws).
"""

from __future__ import annotations

import math
import numbers
from typing import Literal

import torch
from torch import Tensor, nn

from wgangp.models.conditional import (
    ClassAwareCritic,
    Conditioning,
    CriticHeads,
    check_label_input,
    check_n_classes,
    one_hot_concat,
)

__all__ = ["MLPCritic", "MLPGenerator"]

MLPInit = Literal["pytorch", "official"]


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return int(value)


def _check_init(init: str) -> None:
    if init not in ("pytorch", "official"):
        raise ValueError(f"init must be 'pytorch' or 'official', got {init!r}")


@torch.no_grad()
def _uniform_with_std_(linear: nn.Linear, std: float) -> None:
    # tflib draws U(−√3·std, √3·std), which has exactly this std, and zeros the bias.
    bound = math.sqrt(3.0) * std
    linear.weight.uniform_(-bound, bound)
    if linear.bias is not None:
        linear.bias.zero_()


def _official_init_(linears: list[nn.Linear]) -> None:
    """He-uniform hidden layers, Glorot-uniform output layer, zero biases (tflib's ``he`` / default)."""
    *hidden, last = linears
    for linear in hidden:
        _uniform_with_std_(linear, math.sqrt(2.0 / linear.in_features))
    _uniform_with_std_(last, math.sqrt(2.0 / (last.in_features + last.out_features)))


class MLPGenerator(nn.Module):
    """``G(z) = W_out · ReLU(… ReLU(W_1 z + b_1) …) + b_out``: ``depth`` hidden ReLU layers of ``width``.

    No output activation, as in ``gan_toy.py``. Input ``z``: ``[N, latent_dim]``, output ``[N, out_dim]``;
    with ``n_classes > 0`` also labels ``[N]``: ``G(z, y) = G'([z, onehot(y)])``.

    >>> MLPGenerator()(torch.randn(4, 2)).shape
    torch.Size([4, 2])
    """

    def __init__(
        self,
        latent_dim: int = 2,
        out_dim: int = 2,
        *,
        width: int = 512,
        depth: int = 3,
        init: MLPInit = "pytorch",
        n_classes: int = 0,
    ) -> None:
        super().__init__()
        self.latent_dim = _positive_int(latent_dim, "latent_dim")
        self.out_dim = _positive_int(out_dim, "out_dim")
        width = _positive_int(width, "width")
        depth = _positive_int(depth, "depth")
        _check_init(init)
        self.n_classes = check_n_classes(n_classes)
        layers: list[nn.Module] = []
        fan_in = self.latent_dim + self.n_classes
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width), nn.ReLU()]
            fan_in = width
        layers.append(nn.Linear(width, self.out_dim))
        self.net = nn.Sequential(*layers)
        if init == "official":
            _official_init_([m for m in self.net if isinstance(m, nn.Linear)])

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.n_classes:
            check_label_input(self.n_classes, labels, z.shape[0])
            assert labels is not None
            z = one_hot_concat(z, labels, self.n_classes)  # [N, latent_dim + K]
        elif labels is not None:
            check_label_input(0, labels, z.shape[0])
        return self.net(z)  # [N, latent_dim] -> [N, out_dim]


class MLPCritic(ClassAwareCritic):
    """``D(x) = w_out · ReLU(… ReLU(W_1 x + b_1) …) + b_out``: ``depth`` hidden ReLU layers of ``width``.

    ``norm="layer"`` puts a LayerNorm after each hidden Linear (the paper's recommended critic
    normalisation, Sec. 4); never BatchNorm. No output activation: a Wasserstein critic outputs a score.
    Input ``x``: ``[N, in_dim]``, output ``[N]``. ``n_classes > 0``: ``critic(x, y)`` with the heads of
    ``conditioning`` on the last hidden layer ``φ(x) [N, width]`` (:class:`~wgangp.models.conditional.CriticHeads`).

    >>> MLPCritic()(torch.randn(4, 2)).shape
    torch.Size([4])
    """

    def __init__(
        self,
        in_dim: int = 2,
        *,
        width: int = 512,
        depth: int = 3,
        norm: Literal["none", "layer"] = "none",
        init: MLPInit = "pytorch",
        n_classes: int = 0,
        conditioning: Conditioning = "acgan",
    ) -> None:
        super().__init__()
        self.in_dim = _positive_int(in_dim, "in_dim")
        width = _positive_int(width, "width")
        depth = _positive_int(depth, "depth")
        if norm not in ("none", "layer"):
            raise ValueError(f"norm must be 'none' or 'layer' (never BatchNorm in a critic), got {norm!r}")
        _check_init(init)
        layers: list[nn.Module] = []
        fan_in = self.in_dim
        for _ in range(depth):
            layers.append(nn.Linear(fan_in, width))
            if norm == "layer":
                layers.append(nn.LayerNorm(width))
            layers.append(nn.ReLU())
            fan_in = width
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        if init == "official":
            _official_init_([m for m in self.net if isinstance(m, nn.Linear)])
        self.n_classes = check_n_classes(n_classes)
        # After the unconditional layers, so those get the same random draws as without classes.
        self.heads = CriticHeads(width, self.n_classes, conditioning) if self.n_classes else None

    def features(self, x: Tensor) -> Tensor:
        """``φ(x)``: the last hidden layer, ``[N, in_dim] -> [N, width]``."""
        *body, _ = self.net
        for layer in body:
            x = layer(x)
        return x

    def score_head(self, h: Tensor) -> Tensor:
        """The Wasserstein head on ``φ(x)``: ``[N, F] -> [N]``."""
        return self.net[-1](h).squeeze(-1)
