"""A model pair's fingerprint that holds across CPUs: its exact weights and its forward outputs' statistics.

Weights come from seeded RNG draws and are bit-identical on every machine, so they are hashed. Forward
outputs are not: convolutions and norms sum in an order that depends on the CPU's vector width (an AVX-512
and an AVX2 host differ in the last bits), so they are compared as a few statistics to a relative 1e-4,
far below what any change to an architecture or its initialisation moves them by.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

OUTPUT_RTOL = 1e-4


def weights_digest(*modules: nn.Module) -> str:
    """sha256 (first 32 hex digits) of every state-dict entry's name and float32 bytes, in order."""
    d = hashlib.sha256()
    for m in modules:
        for k, v in m.state_dict().items():
            d.update(k.encode())
            d.update(v.float().numpy().tobytes())
    return d.hexdigest()[:32]


def forward_stats(generator: nn.Module, critic: nn.Module, latent_dim: int) -> list[float]:
    """``[Σx, Σ|x|, Σx², D(x)₀..₃]`` for ``x = G(z)``, ``z`` four latents from seed 1, on one thread."""
    torch.manual_seed(1)
    z = torch.randn(4, latent_dim)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            x = generator(z)
            scores = critic(x).flatten()
    finally:
        torch.set_num_threads(threads)
    xd = x.double()  # the sums in float64, so they add no rounding of their own
    return [float(xd.sum()), float(xd.abs().sum()), float((xd * xd).sum()), *map(float, scores)]


def assert_fingerprint(
    generator: nn.Module, critic: nn.Module, latent_dim: int, expected: tuple[str, list[float]]
) -> None:
    digest, stats = expected
    assert weights_digest(generator, critic) == digest
    got = forward_stats(generator, critic, latent_dim)
    assert len(got) == len(stats)
    for g, e in zip(got, stats, strict=True):
        assert abs(g - e) <= OUTPUT_RTOL * max(abs(e), 1e-3), (got, stats)
