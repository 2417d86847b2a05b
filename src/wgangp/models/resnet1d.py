"""The paper's 1-D ResNets for sequences: the character-level language model of Sec. 5.5, and 1-D signals.

Reference: Gulrajani et al. 2017 (arXiv:1704.00028), Sec. 5.5, and igul222/improved_wgan_training
(gan_language.py ``Generator`` / ``Discriminator`` / ``ResBlock``). With width ``W = 512``, ``depth = 5``
blocks, sequence length ``T = 32`` and ``V`` output channels (characters, or a signal's channels):

- block: ``x + 0.3 · conv5(ReLU(conv5(ReLU(x))))``, 1-D convs of kernel 5, ``W → W``, "same" padding,
  no normalisation;
- generator: ``Linear(z, W·T) → [W, T] → depth × block → conv1×1 (W → V)`` then a softmax over ``V``
  (``output="softmax"``, text: each position a distribution over characters) or nothing
  (``output="linear"``, standardised real-valued signals);
- critic: ``conv1×1 (V → W) → depth × block → flatten [W·T] → Linear → score``; with ``spectrum=True``
  (signals, not in the paper) a second branch adds ``MLP(|rfft(x)|)`` to the score: the magnitude spectrum
  of each channel (bins ``1 … ⌊T/2⌋``, orthonormal, so the branch's input is 1-Lipschitz in ``x``) through
  ``Linear(C·⌊T/2⌋ → W) → ReLU → Linear(W → 1)``. It is phase-blind, so it sees which frequencies a series
  holds wherever its peaks sit (README "Sequences": the generator's coverage of the band's ends).

No normalisation anywhere: the per-sample gradient penalty needs a critic whose samples do not interact
(BatchNorm is refused in critics project-wide), and the official generator has none either.

Initialisation, as tflib does it in the official code: every conv "He" in tflib's sense, uniform with std
``√(4/(fan_in + fan_out))`` (``fan = channels · kernel``; for the square ``W → W`` convs this is
``√(2/fan_in)``), i.e. Glorot-uniform with gain √2; both Linears Glorot-uniform
(std ``√(2/(fan_in + fan_out))``, tflib's default); every bias 0.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["ResNet1dCritic", "ResNet1dGenerator", "ResidualBlock1d", "magnitude_spectrum"]

Output = Literal["softmax", "linear"]


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


class ResidualBlock1d(nn.Module):
    """``x + scale · conv₂(ReLU(conv₁(ReLU(x))))``: ``[N, W, T] -> [N, W, T]`` (gan_language.py ``ResBlock``)."""

    def __init__(self, width: int, *, kernel_size: int = 5, scale: float = 0.3) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd (same-length convs); got {kernel_size}")
        pad = kernel_size // 2
        self.scale = scale
        self.residual = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(width, width, kernel_size, padding=pad),
            nn.ReLU(),
            nn.Conv1d(width, width, kernel_size, padding=pad),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.scale * self.residual(x)


@torch.no_grad()
def _init_official_(module: nn.Module) -> None:
    """tflib's init: convs uniform with std ``√(4/(fan_in+fan_out))``, Linears Glorot-uniform, zero biases."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv1d):
            nn.init.xavier_uniform_(layer.weight, gain=math.sqrt(2.0))
        elif isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
        else:
            continue
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


class ResNet1dGenerator(nn.Module):
    """``G(z)``: ``[N, latent_dim] -> [N, channels, seq_len]``; with ``output="softmax"`` each position sums to 1.

    ``channels`` is the vocabulary size ``V`` for text (one-hot sequences ``[N, V, T]``) or the number of
    signal channels ``C``. Official text size: ``latent_dim=128, width=512, depth=5, seq_len=32``.

    >>> g = ResNet1dGenerator(16, channels=5, seq_len=8, width=4, depth=1)
    >>> x = g(torch.randn(2, 16))
    >>> x.shape, bool(torch.allclose(x.sum(dim=1), torch.ones(2, 8)))
    (torch.Size([2, 5, 8]), True)
    """

    def __init__(
        self,
        latent_dim: int = 128,
        *,
        channels: int,
        seq_len: int = 32,
        width: int = 512,
        depth: int = 5,
        output: Output = "softmax",
        kernel_size: int = 5,
        residual_scale: float = 0.3,
    ) -> None:
        super().__init__()
        _check_sizes(latent_dim=latent_dim, channels=channels, seq_len=seq_len, width=width, depth=depth)
        if output not in ("softmax", "linear"):
            raise ValueError(f"output must be softmax (text) or linear (signals); got {output!r}")
        self.latent_dim, self.channels, self.seq_len, self.width = latent_dim, channels, seq_len, width
        self.output_kind = output
        self.input = nn.Linear(latent_dim, width * seq_len)
        self.blocks = nn.Sequential(
            *(ResidualBlock1d(width, kernel_size=kernel_size, scale=residual_scale) for _ in range(depth))
        )
        self.output = nn.Conv1d(width, channels, 1)
        _init_official_(self)

    def forward(self, z: Tensor) -> Tensor:
        x = self.input(z).view(z.shape[0], self.width, self.seq_len)  # [N, W, T]
        logits = self.output(self.blocks(x))  # [N, V, T]
        return torch.softmax(logits, dim=1) if self.output_kind == "softmax" else logits


class ResNet1dCritic(nn.Module):
    """``D(x)``: ``[N, channels, seq_len] -> [N]``; no normalisation, so each score depends on its own sample only.

    >>> ResNet1dCritic(channels=5, seq_len=8, width=4, depth=1)(torch.randn(2, 5, 8)).shape
    torch.Size([2])
    """

    def __init__(
        self,
        *,
        channels: int,
        seq_len: int = 32,
        width: int = 512,
        depth: int = 5,
        kernel_size: int = 5,
        residual_scale: float = 0.3,
        spectrum: bool = False,
    ) -> None:
        super().__init__()
        _check_sizes(channels=channels, seq_len=seq_len, width=width, depth=depth)
        if spectrum and seq_len < 2:
            raise ValueError(f"the spectrum branch needs seq_len ≥ 2; got {seq_len}")
        self.channels, self.seq_len = channels, seq_len
        self.input = nn.Conv1d(channels, width, 1)
        self.blocks = nn.Sequential(
            *(ResidualBlock1d(width, kernel_size=kernel_size, scale=residual_scale) for _ in range(depth))
        )
        self.output = nn.Linear(width * seq_len, 1)
        self.spectrum = (
            nn.Sequential(nn.Linear(channels * (seq_len // 2), width), nn.ReLU(), nn.Linear(width, 1))
            if spectrum
            else None
        )
        _init_official_(self)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3 or x.shape[1] != self.channels or x.shape[2] != self.seq_len:
            raise ValueError(f"critic expects [N, {self.channels}, {self.seq_len}]; got {tuple(x.shape)}")
        h = self.blocks(self.input(x))  # [N, W, T]
        score = self.output(h.flatten(1)).squeeze(-1)  # [N]
        if self.spectrum is not None:
            score = score + self.spectrum(magnitude_spectrum(x).flatten(1)).squeeze(-1)
        return score


def magnitude_spectrum(x: Tensor) -> Tensor:
    """``|rfft(x)|`` over time without the DC bin: ``[N, C, T] -> [N, C, ⌊T/2⌋]``, orthonormal, in ``x``'s dtype.

    The DC bin (each series' mean) is left out: the value branch sees offsets, and ``|·|`` at a bin that is
    zero has no useful slope. Half and bfloat16 inputs are transformed in float32 (FFTs of reduced precision
    need power-of-two lengths) and come back in their own dtype.

    >>> t = torch.arange(8.0)
    >>> magnitude_spectrum(torch.cos(2 * torch.pi * 2 * t / 8)[None, None]).round(decimals=3)
    tensor([[[0.0000, 1.4140, 0.0000, 0.0000]]])
    """
    wide = x if x.dtype in (torch.float32, torch.float64) else x.float()
    spectrum = torch.fft.rfft(wide, dim=2, norm="ortho")[..., 1:]
    return spectrum.abs().to(x.dtype)
