"""The nonlinearities of the paper's robustness experiments, by name.

Reference: Gulrajani et al. 2017 (arXiv:1704.00028), Table 1 (random architectures), Sec. 5.2/Figure 2
(gated and tanh networks) and Appendix D (ELU failed; the shifted softplus worked).

=============  ==================================================  ==========
name           function                                            expansion
=============  ==================================================  ==========
``relu``       ``max(0, x)``                                       1
``leaky_relu`` ``max(0.2x, x)``                                    1
``elu``        ``x`` for ``x > 0``, ``eᵡ − 1`` otherwise           1
``softplus``   ``softplus(2x + 2)/2 − 1`` (≈ ELU, but smooth)      1
``tanh``       ``tanh(x)``                                         1
``gated``      ``tanh(a)·σ(b)``, ``[a, b]`` = the channel halves   2
=============  ==================================================  ==========

The gated unit (PixelCNN, van den Oord et al. 2016) halves the channels (dim 1): ``[N, 2C, ...] -> [N, C, ...]``.
:func:`expansion` says by how much the layer before an activation must multiply its output channels, so a
builder writes ``conv(c_in, c_out * expansion(name))`` followed by ``activation(name)`` and gets ``c_out``.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ACTIVATIONS",
    "ActivationName",
    "Gated",
    "ShiftedSoftplus",
    "activation",
    "expansion",
    "gated",
    "shifted_softplus",
]

ActivationName = Literal["relu", "leaky_relu", "elu", "softplus", "tanh", "gated"]
ACTIVATIONS: tuple[str, ...] = get_args(ActivationName)

LEAKY_SLOPE = 0.2  # the official code's LeakyReLU(alpha=0.2)


def shifted_softplus(x: Tensor) -> Tensor:
    """``softplus(2x + 2)/2 − 1``: the paper's smooth ELU-like unit (Appendix D). Same shape as ``x``.

    Its value at 0 is ``log(1 + e²)/2 − 1 ≈ 0.0635``; it tends to ``x`` as ``x → ∞`` and to ``−1`` as ``x → −∞``.
    """
    return F.softplus(2.0 * x + 2.0) / 2.0 - 1.0


def gated(x: Tensor) -> Tensor:
    """``tanh(a)·σ(b)`` with ``a, b`` the first and second halves of dim 1: ``[N, 2C, ...] -> [N, C, ...]``."""
    if x.ndim < 2 or x.shape[1] % 2:
        raise ValueError(
            f"the gated unit needs an even number of channels (dim 1); got shape {tuple(x.shape)}"
        )
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class ShiftedSoftplus(nn.Module):
    """Module form of :func:`shifted_softplus`."""

    def forward(self, x: Tensor) -> Tensor:
        return shifted_softplus(x)


class Gated(nn.Module):
    """Module form of :func:`gated`: ``[N, 2C, ...] -> [N, C, ...]``."""

    def forward(self, x: Tensor) -> Tensor:
        return gated(x)


def _check(name: str) -> None:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {name!r}")


def activation(name: ActivationName) -> nn.Module:
    """A fresh module for the nonlinearity ``name`` (table in the module docstring).

    >>> activation("gated")(torch.zeros(2, 6, 4, 4)).shape
    torch.Size([2, 3, 4, 4])
    """
    _check(name)
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(LEAKY_SLOPE)
    if name == "elu":
        return nn.ELU()
    if name == "softplus":
        return ShiftedSoftplus()
    if name == "tanh":
        return nn.Tanh()
    return Gated()


def expansion(name: ActivationName) -> int:
    """The factor by which the layer before ``activation(name)`` multiplies its channels: 2 for gated, else 1."""
    _check(name)
    return 2 if name == "gated" else 1
