"""wgangp.models.mlp: the toy MLPs' shapes, layer counts, normalisation and initialisation."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from wgangp.models.mlp import MLPCritic, MLPGenerator


def linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def count(module: nn.Module, kind: type[nn.Module]) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


BATCH_NORMS = nn.modules.batchnorm._BatchNorm  # the base of BatchNorm{1,2,3}d and SyncBatchNorm


@pytest.mark.parametrize(
    ("latent_dim", "out_dim", "width", "depth", "n"), [(2, 2, 512, 3, 5), (7, 3, 16, 1, 1), (1, 4, 8, 5, 33)]
)
def test_generator_shapes_and_layers(latent_dim: int, out_dim: int, width: int, depth: int, n: int) -> None:
    generator = MLPGenerator(latent_dim, out_dim, width=width, depth=depth)
    assert generator.latent_dim == latent_dim
    assert generator(torch.randn(n, latent_dim)).shape == (n, out_dim)
    layers = linears(generator)
    assert len(layers) == depth + 1
    assert [(m.in_features, m.out_features) for m in layers] == [(latent_dim, width)] + [(width, width)] * (
        depth - 1
    ) + [(width, out_dim)]
    assert count(generator, nn.ReLU) == depth
    assert isinstance(list(generator.modules())[-1], nn.Linear)  # no output activation, as gan_toy.py


@pytest.mark.parametrize("norm", ["none", "layer"])
@pytest.mark.parametrize(("in_dim", "width", "depth", "n"), [(2, 512, 3, 5), (3, 16, 1, 1), (5, 8, 4, 17)])
def test_critic_shapes_and_layers(in_dim: int, width: int, depth: int, n: int, norm: str) -> None:
    critic = MLPCritic(in_dim, width=width, depth=depth, norm=norm)  # type: ignore[arg-type]
    out = critic(torch.randn(n, in_dim))
    assert out.shape == (n,)
    layers = linears(critic)
    assert len(layers) == depth + 1
    assert [(m.in_features, m.out_features) for m in layers] == [(in_dim, width)] + [(width, width)] * (
        depth - 1
    ) + [(width, 1)]
    assert count(critic, nn.ReLU) == depth
    assert count(critic, nn.LayerNorm) == (depth if norm == "layer" else 0)
    assert not any(isinstance(m, BATCH_NORMS) for m in critic.modules())
    assert isinstance(list(critic.modules())[-1], nn.Linear)  # a score, no sigmoid


def test_paper_default_sizes() -> None:
    def sizes(module: nn.Module) -> list[tuple[int, int]]:
        return [(m.in_features, m.out_features) for m in linears(module)]

    assert sizes(MLPGenerator()) == [(2, 512), (512, 512), (512, 512), (512, 2)]
    assert sizes(MLPCritic()) == [(2, 512), (512, 512), (512, 512), (512, 1)]


@pytest.mark.parametrize("norm", ["none", "layer"])
def test_critic_samples_do_not_interact(norm: str) -> None:
    # The per-sample gradient penalty sums outputs before autograd.grad; that is exact only if each
    # output depends on its own input alone (no BatchNorm), in train mode too.
    torch.manual_seed(0)
    critic = MLPCritic(width=32, depth=2, norm=norm).train()  # type: ignore[arg-type]
    x = torch.randn(6, 2)
    y = x.clone()
    y[1:] = torch.randn(5, 2) * 3
    torch.testing.assert_close(critic(x)[0], critic(y)[0], rtol=0, atol=0)


def test_pytorch_default_init_bounds() -> None:
    torch.manual_seed(0)
    for layer in linears(MLPCritic(width=64)) + linears(MLPGenerator(width=64)):
        bound = 1 / math.sqrt(layer.in_features)
        assert layer.weight.abs().max().item() <= bound
        assert layer.bias is not None and layer.bias.abs().max().item() <= bound


@pytest.mark.parametrize("make", [lambda: MLPCritic(init="official"), lambda: MLPGenerator(init="official")])
def test_official_init_is_he_then_glorot_uniform_with_zero_bias(make: Callable[[], nn.Module]) -> None:
    torch.manual_seed(0)
    *hidden, last = linears(make())
    for layer in hidden:
        bound = math.sqrt(3 * 2 / layer.in_features)  # He: std √(2/fan_in), uniform ±√3·std
        weight = layer.weight.detach()
        assert 0.99 * bound <= weight.abs().max().item() <= bound
        assert weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
        assert layer.bias is not None and torch.count_nonzero(layer.bias).item() == 0
    bound = math.sqrt(3 * 2 / (last.in_features + last.out_features))  # Glorot: std √(2/(fan_in+fan_out))
    assert 0.9 * bound <= last.weight.abs().max().item() <= bound
    assert last.bias is not None and torch.count_nonzero(last.bias).item() == 0


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: MLPGenerator(0), "latent_dim"),
        (lambda: MLPGenerator(2, -1), "out_dim"),
        (lambda: MLPGenerator(width=0), "width"),
        (lambda: MLPGenerator(depth=0), "depth"),
        (lambda: MLPGenerator(depth=2.0), "depth"),
        (lambda: MLPGenerator(width=True), "width"),
        (lambda: MLPGenerator(init="he"), "init"),
        (lambda: MLPCritic(0), "in_dim"),
        (lambda: MLPCritic(width=-3), "width"),
        (lambda: MLPCritic(depth=0), "depth"),
        (lambda: MLPCritic(depth="3"), "depth"),
        (lambda: MLPCritic(norm="batch"), "BatchNorm"),
        (lambda: MLPCritic(init="xavier"), "init"),
    ],
)
def test_argument_errors(make: Callable[[], nn.Module], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()
