"""The image networks: output shapes at every supported size, no BatchNorm in critics, per-sample critics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from wgangp.config import resolve_config
from wgangp.errors import UserError
from wgangp.models import (
    DCGANCritic,
    DCGANGenerator,
    ResNetCritic,
    ResNetGenerator,
    build_models,
)
from wgangp.models.blocks import mean_pool
from wgangp.penalty import check_critic

W = 4  # tiny widths keep the shape checks fast; the structure does not depend on the width

CASES = (
    [("dcgan", r, c) for r in (8, 16, 28, 32, 64) for c in (1, 3)]
    + [("resnet", r, c) for r in (16, 32, 64) for c in (1, 3)]
    + [("resnet-pyramid", r, c) for r in (8, 16, 32, 64) for c in (1, 3)]
)


def _models(model, resolution, channels, **extra):
    config = resolve_config(
        "toy",
        overrides={"model": model, "latent_dim": 16, "conv_width": W, "dataset": "digits"} | extra,
    )
    return build_models(config, (channels, resolution, resolution))


@pytest.mark.parametrize(("model", "resolution", "channels"), CASES)
def test_shapes_and_ranges(model, resolution, channels):
    generator, critic = _models(model, resolution, channels)
    with torch.no_grad():
        images = generator(
            torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
        )  # tanh saturates at 1.0 for rare z
    assert images.shape == (3, channels, resolution, resolution)
    assert float(images.abs().max()) < 1.0  # tanh
    scores = critic(torch.randn(5, channels, resolution, resolution))
    assert scores.shape == (5,)


@pytest.mark.parametrize(
    ("model", "norm"), [(m, n) for m in ("dcgan", "resnet", "resnet-pyramid") for n in ("none", "layer")]
)
def test_critics_never_batchnorm_and_do_not_mix_samples(model, norm):
    _, critic = _models(model, 16, 3, critic_norm=norm)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in critic.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in critic.modules()) == (norm == "layer")
    check_critic(critic)  # the penalty's own guard accepts it
    # Per-sample: a sample's score does not depend on the rest of the batch.
    x = torch.randn(6, 3, 16, 16)
    torch.testing.assert_close(critic(x)[:2], critic(x[:2]), rtol=1e-5, atol=1e-5)


def test_paper_configurations():
    # gan_cifar.py: 4·4·512 → 256 → 128 → 3; critic 128-256-512, 5×5 stride 2.
    g = DCGANGenerator(128, channels=3, resolution=32, width=128)
    assert g.input[0].out_features == 4 * 4 * 512
    widths = [m.out_channels for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert widths == [256, 128, 3]
    d = DCGANCritic(channels=3, resolution=32, width=128)
    assert [m.out_channels for m in d.modules() if isinstance(m, nn.Conv2d)] == [128, 256, 512]
    assert d.output.in_features == 4 * 4 * 512
    # gan_mnist.py: no BatchNorm in G when norm="none".
    g = DCGANGenerator(128, channels=1, resolution=28, width=64, norm="none")
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in g.modules())
    # Appendix F: G has 3 up-blocks of 128 with BatchNorm; D a first block, 1 down, 2 plain blocks, 128 wide.
    g = ResNetGenerator(128, channels=3, resolution=32, width=128)
    assert len(g.blocks) == 3 and any(isinstance(m, nn.BatchNorm2d) for m in g.modules())
    d = ResNetCritic(channels=3, resolution=32, width=128)
    assert len(d.blocks) == 4 and d.output.in_features == 128
    # 64×64: widths 8W, 8W, 4W, 2W, W in G and W → 8W in D with LayerNorm.
    g = ResNetGenerator(128, channels=3, resolution=64, width=64, variant="pyramid")
    assert g.input.out_features == 4 * 4 * 512
    assert [b.residual[2].conv.out_channels for b in g.blocks] == [512, 256, 128, 64]
    d = ResNetCritic(channels=3, resolution=64, width=64, variant="pyramid", norm="layer")
    assert d.output.in_features == 4 * 4 * 512


@pytest.mark.parametrize(
    ("model", "shape", "message"),
    [
        ("dcgan", (1, 12, 12), r"28×28 or 2\^k×2\^k"),
        ("resnet", (3, 8, 8), r"16 ≤ 2\^k ≤ 256"),
        ("resnet-pyramid", (3, 48, 48), r"8 ≤ 2\^k ≤ 256"),
        ("dcgan", (3, 16, 8), "square images"),
        ("mlp", (1, 8, 8), "the MLPs take vectors"),
    ],
)
def test_impossible_sizes_are_user_errors(model, shape, message):
    config = resolve_config("toy", overrides={"model": model, "conv_width": W})
    with pytest.raises(UserError, match=message) as info:
        build_models(config, shape)
    assert "\n" not in str(info.value)


def test_mean_pool_equals_avg_pool():
    x = torch.randn(2, 3, 8, 6)
    torch.testing.assert_close(mean_pool(x), nn.functional.avg_pool2d(x, 2))


def test_build_is_seeded():
    a, _ = _models("dcgan", 16, 1)
    b, _ = _models("dcgan", 16, 1)
    for x, y in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(x, y)
