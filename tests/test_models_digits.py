"""The 8×8 digits models: shapes, ranges, full-resolution layers, no BatchNorm in the critic, per-sample critic."""

from __future__ import annotations

from typing import Any, Literal

import pytest
import torch
from torch import nn

from wgangp.models.digits import DigitsCritic, DigitsGenerator
from wgangp.penalty import gradient_penalty


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("norm", ["batch", "none"])
def test_generator_shapes_and_range(channels: int, norm: Literal["batch", "none"]) -> None:
    torch.manual_seed(0)
    g = DigitsGenerator(16, channels=channels, width=8, norm=norm)
    with torch.no_grad():
        out = g(torch.randn(5, 16))
    assert out.shape == (5, channels, 8, 8)
    assert 0.0 < float(out.abs().max()) <= 1.0  # tanh
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in g.modules())
    assert has_bn == (norm == "batch")


@pytest.mark.parametrize("norm", ["none", "layer"])
def test_critic_shapes_and_no_batchnorm(norm: Literal["none", "layer"]) -> None:
    d = DigitsCritic(channels=1, width=8, norm=norm)
    assert d(torch.randn(4, 1, 8, 8)).shape == (4,)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in d.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in d.modules()) == (norm == "layer")


def test_critic_rejects_batchnorm_and_other_resolutions() -> None:
    batch: Any = "batch"
    with pytest.raises(ValueError, match="never BatchNorm"):
        DigitsCritic(norm=batch)
    with pytest.raises(ValueError, match="8×8"):
        DigitsGenerator(resolution=16)
    with pytest.raises(ValueError, match="8×8"):
        DigitsCritic(resolution=28)


def test_full_resolution_convs() -> None:
    """Each network has a nonlinear 3×3 conv on the 8×8 grid (what the 8×8 DCGAN lacks)."""
    shapes: list[tuple[int, ...]] = []
    g = DigitsGenerator(16, width=8)
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape))) for m in g.body]
    g(torch.randn(3, 16))
    for h in hooks:
        h.remove()
    assert (3, 8, 8, 8) in shapes and (3, 16, 4, 4) in shapes
    d = DigitsCritic(width=8)
    assert tuple(d.body[:2](torch.randn(3, 1, 8, 8)).shape) == (3, 8, 8, 8)


def test_critic_samples_do_not_interact() -> None:
    """The per-sample penalty needs D(x_i) to depend on x_i alone: the batch Jacobian is block-diagonal."""
    torch.manual_seed(0)
    d = DigitsCritic(width=4, norm="layer")
    x = torch.randn(3, 1, 8, 8, requires_grad=True)
    jac = torch.autograd.functional.jacobian(d, x)  # [3, 3, 1, 8, 8]
    for i in range(3):
        for j in range(3):
            assert (jac[i, j].abs().sum() > 0) == (i == j)
    penalty = gradient_penalty(d, x.detach(), torch.randn(3, 1, 8, 8))
    assert penalty.ndim == 0 and torch.isfinite(penalty)


def test_init_is_seeded() -> None:
    torch.manual_seed(3)
    a = DigitsGenerator(16, width=8).state_dict()
    torch.manual_seed(3)
    b = DigitsGenerator(16, width=8).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
