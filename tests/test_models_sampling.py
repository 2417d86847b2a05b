"""Sampling with BatchNorm on batch or running statistics: outputs as train()/eval(), buffers untouched."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from wgangp.errors import UserError
from wgangp.models import DCGANGenerator, ResNetGenerator
from wgangp.models.global_bn import GlobalBatchNorm1d, GlobalBatchNorm2d, to_global_batchnorm
from wgangp.models.sampling import generate, sample_batchnorm


def _trained_generator(kind: str) -> nn.Module:
    """A BatchNorm generator whose running buffers hold something other than their initial values."""
    torch.manual_seed(0)
    g: nn.Module
    if kind == "dcgan":
        g = DCGANGenerator(16, channels=1, resolution=8, width=8)
    elif kind == "resnet":
        g = ResNetGenerator(16, channels=3, resolution=32, width=8)
    else:
        g = nn.Sequential(nn.Linear(16, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 4))
    g.train()
    with torch.no_grad():
        for _ in range(3):
            g(torch.randn(8, 16) * 3 + 1)
    return g


def _buffers(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.named_buffers()}


def _modes(module: nn.Module) -> list[bool]:
    return [m.training for m in module.modules()]


KINDS = ["dcgan", "resnet"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("start_training", [True, False])
def test_batch_mode_equals_train_mode_and_keeps_buffers(kind: str, start_training: bool) -> None:
    g = _trained_generator(kind).train(start_training)
    reference = copy.deepcopy(g).train()
    z = torch.randn(6, 16)
    before, modes = _buffers(g), _modes(g)
    with sample_batchnorm(g, "batch") as same:
        assert same is g
        out = g(z)
    with torch.no_grad():
        expected = reference(z)  # training mode: batch statistics (and a buffer update, in the copy)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    after = _buffers(g)
    assert after.keys() == before.keys() and any(k.endswith("num_batches_tracked") for k in after)
    for key, value in before.items():
        torch.testing.assert_close(after[key], value, rtol=0, atol=0)
    assert _modes(g) == modes
    assert all(m.track_running_stats for m in g.modules() if isinstance(m, _BatchNorm))
    # The copy's buffers did move: the forward above would have changed them without the context.
    moved = _buffers(reference)
    assert any(not torch.equal(moved[k], v) for k, v in before.items() if k.endswith("running_mean"))


@pytest.mark.parametrize("kind", KINDS)
def test_running_mode_equals_eval(kind: str) -> None:
    g = _trained_generator(kind)
    reference = copy.deepcopy(g).eval()
    z = torch.randn(5, 16)
    before = _buffers(g)
    out = generate(g, z, batchnorm="running")
    with torch.no_grad():
        torch.testing.assert_close(out, reference(z), rtol=0, atol=0)
        # Running statistics: each sample independent of the batch.
        torch.testing.assert_close(generate(g, z[:2], batchnorm="running"), out[:2], rtol=1e-5, atol=1e-6)
    assert g.training
    for key, value in before.items():
        torch.testing.assert_close(_buffers(g)[key], value, rtol=0, atol=0)


def test_batch_mode_normalises_by_the_batch() -> None:
    g = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, affine=False))
    g[1].running_mean.fill_(5.0)
    z = torch.randn(10, 3)
    h = g[0](z).detach()
    expected = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + g[1].eps)
    torch.testing.assert_close(generate(g, z, batchnorm="batch"), expected, rtol=1e-5, atol=1e-5)
    assert float(g[1].running_mean.min()) == 5.0
    assert generate(g, z, batchnorm="batch").requires_grad is False


def test_other_layers_stay_in_eval_mode() -> None:
    g = _trained_generator("mlp")
    z = torch.randn(8, 16)
    a = generate(g, z, batchnorm="batch")
    b = generate(g, z, batchnorm="batch")
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # Dropout off: deterministic
    ref = copy.deepcopy(g).eval()
    ref[1].train()
    with torch.no_grad():
        torch.testing.assert_close(a, ref(z), rtol=0, atol=0)


def test_global_batchnorm_layers_are_restored() -> None:
    g = to_global_batchnorm(_trained_generator("dcgan"))
    layers = [m for m in g.modules() if isinstance(m, (GlobalBatchNorm1d, GlobalBatchNorm2d))]
    assert layers
    reference = copy.deepcopy(g).train()
    z = torch.randn(4, 16)
    with torch.no_grad():
        torch.testing.assert_close(generate(g, z, batchnorm="batch"), reference(z), rtol=0, atol=0)
    assert all(m.sync and m.track_running_stats and m.training for m in layers)


def test_modes_are_restored_after_an_error() -> None:
    g = _trained_generator("dcgan")
    modes = _modes(g)
    with pytest.raises(RuntimeError), sample_batchnorm(g, "batch"):
        raise RuntimeError("boom")
    assert _modes(g) == modes
    assert all(m.track_running_stats for m in g.modules() if isinstance(m, _BatchNorm))


def test_bad_inputs_are_user_errors() -> None:
    g = _trained_generator("dcgan")
    with pytest.raises(UserError, match="at least 2"):
        generate(g, torch.randn(1, 16), batchnorm="batch")
    moving: Any = "moving"
    with pytest.raises(UserError, match="sample_batchnorm"), sample_batchnorm(g, moving):
        pass
    assert generate(g, torch.randn(1, 16), batchnorm="running").shape == (1, 1, 8, 8)
