"""The 1-D ResNets of the paper's language model (gan_language.py): shapes, sizes, softmax, independence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wgangp.models.resnet1d import ResidualBlock1d, ResNet1dCritic, ResNet1dGenerator, magnitude_spectrum
from wgangp.penalty import gradient_penalty
from wgangp.reference import seed_gradient_penalty

SMALL = {"seq_len": 12, "width": 8, "depth": 2}


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("vocab", [2, 96, 2048])
def test_official_parameter_counts(vocab):
    # By hand, W = 512, T = 32, z = 128, 5 blocks of two W→W kernel-5 convs with biases.
    w, t, z, k, blocks = 512, 32, 128, 5, 5
    block = 2 * (w * w * k + w)
    generator = (z * w * t + w * t) + blocks * block + (w * vocab + vocab)
    critic = (vocab * w + w) + blocks * block + (w * t + 1)
    assert generator == 15_225_856 + 513 * vocab and critic == 13_129_217 + 512 * vocab
    with torch.device("meta"):  # sizes only: no memory, no init cost
        g = ResNet1dGenerator(128, channels=vocab)
        d = ResNet1dCritic(channels=vocab)
    assert _count(g) == generator and _count(d) == critic


@pytest.mark.parametrize(("output", "channels"), [("softmax", 7), ("linear", 3)])
def test_shapes(output, channels):
    g = ResNet1dGenerator(16, channels=channels, output=output, **SMALL)
    d = ResNet1dCritic(channels=channels, **SMALL)
    x = g(torch.randn(5, 16))
    assert x.shape == (5, channels, 12)
    assert d(x).shape == (5,)


def test_softmax_rows_sum_to_one_and_linear_is_unbounded():
    torch.manual_seed(0)
    probs = ResNet1dGenerator(16, channels=7, **SMALL)(torch.randn(6, 16))  # [6, 7, 12]
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(6, 12), rtol=0, atol=1e-6)
    assert bool((probs > 0).all())
    with torch.no_grad():
        values = ResNet1dGenerator(16, channels=2, output="linear", **SMALL)(10 * torch.randn(64, 16))
    assert bool((values < 0).any()) and float(values.abs().max()) > 1.0


def test_residual_block_is_x_plus_scaled_branch():
    torch.manual_seed(1)
    block = ResidualBlock1d(4, scale=0.3)
    x = torch.randn(2, 4, 9)
    c1, c2 = block.residual[1], block.residual[3]
    expected = x + 0.3 * torch.conv1d(
        torch.relu(torch.conv1d(torch.relu(x), c1.weight, c1.bias, padding=2)), c2.weight, c2.bias, padding=2
    )
    torch.testing.assert_close(block(x), expected, rtol=0, atol=1e-6)


def test_official_init_scales():
    torch.manual_seed(0)
    g = ResNet1dGenerator(128, channels=50, seq_len=8, width=64, depth=1)
    conv = g.blocks[0].residual[1]  # 64 → 64, kernel 5: tflib's He std √(4/(fan_in + fan_out)) = √(2/320)
    bound = math.sqrt(3) * math.sqrt(4 / (64 * 5 + 64 * 5))
    assert (
        float(conv.weight.detach().abs().max()) <= bound
        and float(conv.weight.detach().abs().max()) > 0.95 * bound
    )
    out = g.output  # 64 → 50, kernel 1
    assert float(out.weight.detach().abs().max()) <= math.sqrt(3) * math.sqrt(4 / (64 + 50))
    lin = g.input  # Glorot: bound √(6/(fan_in + fan_out))
    assert float(lin.weight.detach().abs().max()) <= math.sqrt(6 / (128 + 64 * 8))
    assert all(float(m.bias.detach().abs().max()) == 0 for m in (conv, out, lin))


@pytest.mark.parametrize("spectrum", [False, True])
def test_critic_is_per_sample_independent(spectrum):
    torch.manual_seed(2)
    d = ResNet1dCritic(channels=5, spectrum=spectrum, **SMALL).double()
    x = torch.randn(4, 5, 12, dtype=torch.float64)
    alone = torch.stack([d(x[i : i + 1])[0] for i in range(4)])
    changed = x.clone()
    changed[1:] = torch.randn(3, 5, 12, dtype=torch.float64)
    torch.testing.assert_close(d(x), alone, rtol=0, atol=1e-12)
    torch.testing.assert_close(d(changed)[0], d(x)[0], rtol=0, atol=0)
    # The Jacobian of the scores is block-diagonal: score i has no gradient w.r.t. sample j ≠ i.
    jac = torch.autograd.functional.jacobian(d, x)  # [4, 4, 5, 12]
    off = jac.flatten(2).norm(dim=2) * (1 - torch.eye(4, dtype=torch.float64))
    assert float(off.max()) == 0.0 and float(jac.flatten(2).norm(dim=2).diagonal().min()) > 0


def test_critic_refuses_wrong_shape():
    d = ResNet1dCritic(channels=5, **SMALL)
    with pytest.raises(ValueError, match=r"expects \[N, 5, 12\]"):
        d(torch.randn(2, 6, 12))


@pytest.mark.parametrize("bad", [{"width": 0}, {"depth": -1}, {"seq_len": 2.5}, {"kernel_size": 4}])
def test_bad_sizes(bad):
    with pytest.raises(ValueError):
        ResNet1dCritic(channels=3, **({"seq_len": 8} | bad))


@pytest.mark.parametrize("spectrum", [False, True])
def test_penalty_on_sequences_equals_the_seed_formula(spectrum):
    torch.manual_seed(3)
    d = ResNet1dCritic(channels=6, spectrum=spectrum, **SMALL).double()
    real = torch.softmax(torch.randn(8, 6, 12, dtype=torch.float64), dim=1)
    fake = torch.softmax(torch.randn(8, 6, 12, dtype=torch.float64), dim=1)
    ours = gradient_penalty(d, real, fake, generator=torch.Generator().manual_seed(7))
    seed = seed_gradient_penalty(d, real, fake, torch.Generator().manual_seed(7))
    torch.testing.assert_close(ours, seed, rtol=1e-12, atol=0)
    # And by hand: the norm over (V, T) of each sample's own gradient, ε one per sample.
    eps = torch.rand((8, 1, 1), generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    points = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grads,) = torch.autograd.grad(d(points).sum(), points)
    by_hand = ((grads.flatten(1).norm(dim=1) - 1) ** 2).mean()
    torch.testing.assert_close(ours, by_hand, rtol=1e-12, atol=0)
    assert float(ours.detach()) > 0


# --- the critic's magnitude-spectrum branch (critic_spectrum, signals) --------------------------------------


@pytest.mark.parametrize("length", [12, 13])
def test_magnitude_spectrum_is_rfft_without_dc_blind_to_phase_and_offset(length):
    x = torch.randn(3, 2, length, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    mag = magnitude_spectrum(x)
    expected = np.abs(np.fft.rfft(x.numpy(), axis=2))[..., 1:] / math.sqrt(length)  # orthonormal
    assert mag.shape == (3, 2, length // 2) and mag.dtype == torch.float64
    np.testing.assert_allclose(mag.numpy(), expected, rtol=0, atol=1e-12)
    # A circular shift (the phase of every frequency) and an offset leave it unchanged ...
    torch.testing.assert_close(magnitude_spectrum(torch.roll(x, 5, dims=2) + 7.0), mag, rtol=0, atol=1e-12)
    # ... and Parseval: the branch's input has the series' energy about its mean (up to the mirrored bins).
    centred = x - x.mean(dim=2, keepdim=True)
    weights = torch.full((length // 2,), 2.0, dtype=torch.float64)
    if length % 2 == 0:
        weights[-1] = 1.0  # the Nyquist bin has no mirror
    torch.testing.assert_close((mag**2 * weights).sum(dim=2), (centred**2).sum(dim=2), rtol=1e-12, atol=1e-12)


def test_magnitude_spectrum_keeps_reduced_precision_dtypes():
    x = torch.randn(2, 1, 10)
    half = magnitude_spectrum(x.bfloat16())
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), magnitude_spectrum(x.bfloat16().float()), rtol=1e-2, atol=1e-2)


def test_spectrum_branch_adds_its_mlp_and_sees_frequency_not_phase():
    torch.manual_seed(4)
    plain = ResNet1dCritic(channels=2, **SMALL)
    d = ResNet1dCritic(channels=2, spectrum=True, **SMALL).double()
    w, bins = SMALL["width"], SMALL["seq_len"] // 2
    assert _count(d) - _count(plain) == (2 * bins * w + w) + (w + 1)
    with torch.no_grad():  # the value branch off: the score is the spectrum branch alone
        d.output.weight.zero_()
        d.output.bias.zero_()
        for p in d.spectrum.parameters():
            p.uniform_(-0.5, 0.5)
    t = torch.arange(12, dtype=torch.float64)
    tone = lambda f, phase: torch.sin(2 * math.pi * f * t / 12 + phase).expand(1, 2, 12)  # noqa: E731
    torch.testing.assert_close(d(tone(2, 0.0)), d(tone(2, 1.3)), rtol=0, atol=1e-12)
    assert float((d(tone(2, 0.0)) - d(tone(4, 0.0))).abs().detach()) > 1e-3


def test_spectrum_branch_has_finite_penalty_gradients_on_flat_series():
    # |z| has no slope at z = 0: a constant series (every bin zero) must still give finite penalty gradients.
    torch.manual_seed(5)
    d = ResNet1dCritic(channels=1, spectrum=True, **SMALL)
    flat = torch.full((4, 1, 12), 3.0)
    penalty = gradient_penalty(d, flat, flat.clone(), kind="zero-centered", at="real")
    penalty.backward()
    assert all(bool(torch.isfinite(p.grad).all()) for p in d.parameters() if p.grad is not None)
