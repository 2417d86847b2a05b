"""Class-conditional models: conditional BatchNorm, label paths, AC-GAN and projection heads, the penalty."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fingerprint_util import assert_fingerprint
from penalty_util import labelled_penalty_reference
from wgangp.config import resolve_config
from wgangp.models import build_conditional_models, build_models
from wgangp.models.conditional import ConditionalBatchNorm, CriticHeads
from wgangp.models.global_bn import GlobalBatchNorm1d, GlobalBatchNorm2d, to_global_batchnorm
from wgangp.penalty import gradient_penalty

K = 10

# (preset, one sample's shape, overrides, fingerprint). Exact sha256 digests of the models as they were
# before classes existed (git HEAD f904b76) matched these models up to 25a651b on the machine they were
# recorded on; they were re-recorded at that code as fingerprint_util's CPU-independent fingerprints
# (the exact digests of the forward outputs differ in the last bits on an AVX2 host).
CASES = [
    (
        "toy",
        (2,),
        {},
        (
            "4f0049e3c2fe6b67fc635e12c2dede03",
            [
                0.3865928091108799,
                0.39517151564359665,
                0.0321225119796643,
                0.00650252029299736,
                0.004481416195631027,
                0.0052103884518146515,
                0.005700469017028809,
            ],
        ),
    ),
    (
        "digits-dcgan",
        (1, 8, 8),
        {},
        (
            "eaeb9be333e5a0a374eeb463cacd1ee6",
            [
                8.13946987199597,
                69.8808273349423,
                29.02183621863898,
                -0.04371406137943268,
                -0.01638948917388916,
                0.4173336327075958,
                -0.6651607155799866,
            ],
        ),
    ),  # the digits preset then
    (
        "toy",
        (3, 16, 16),
        {"model": "resnet", "conv_width": 8, "latent_dim": 16},
        (
            "1846ddea44c949aa5286a11b53d8011a",
            [
                115.53886642595171,
                1490.3916551142174,
                1006.3645618447598,
                0.464824914932251,
                0.26131153106689453,
                0.2723656892776489,
                0.2711857557296753,
            ],
        ),
    ),
    (
        "toy",
        (3, 16, 16),
        {"model": "resnet-pyramid", "conv_width": 4, "latent_dim": 16, "critic_norm": "layer"},
        (
            "d74a788c5eb8d3ddd927382ee80847ad",
            [
                961.497827895786,
                1485.696475386023,
                989.9641830128198,
                -0.16112256050109863,
                -0.012690901756286621,
                -0.11706364154815674,
                -0.04676997661590576,
            ],
        ),
    ),
]
SMALL = [case[:3] for case in CASES] + [("mnist", (1, 28, 28), {"conv_width": 4, "latent_dim": 8})]


@pytest.mark.parametrize(("preset", "shape", "overrides", "expected"), CASES)
@pytest.mark.parametrize("builder", ["plain", "conditional0"])
def test_unconditional_models_are_bit_identical_to_before(preset, shape, overrides, expected, builder):
    config = resolve_config(preset, overrides=overrides)
    if builder == "plain":
        generator, critic = build_models(config, shape)
    else:
        generator, critic = build_conditional_models(config, shape, 0)
    assert_fingerprint(generator, critic, config.latent_dim, expected)


@pytest.mark.parametrize(("preset", "shape", "overrides"), SMALL)
@pytest.mark.parametrize("conditioning", ["acgan", "projection"])
def test_label_paths_shapes_and_label_dependence(preset, shape, overrides, conditioning):
    config = resolve_config(preset, overrides=overrides)
    generator, critic = build_conditional_models(config, shape, K, conditioning=conditioning)
    plain_g, plain_c = build_models(config, shape)
    if getattr(generator, "label_norms", False):
        # Same generator shapes, same random draws: the critic's unconditional layers start as build_models'.
        plain = plain_c.state_dict()
        shared = {k: v for k, v in critic.state_dict().items() if k in plain}
        assert len(shared) == len(plain) and all(torch.equal(v, plain[k]) for k, v in shared.items())
    torch.manual_seed(0)
    z = torch.randn(6, config.latent_dim)
    y = torch.arange(6) % K
    x = generator(z, y)
    assert x.shape == (6, *shape)
    with torch.no_grad():  # another class for the same z changes the sample
        for heads in [m for m in generator.modules() if isinstance(m, ConditionalBatchNorm)]:
            heads.weight.normal_()
        assert not torch.allclose(generator(z, y), generator(z, (y + 1) % K))
    score = critic(x, y)
    assert score.shape == (6,)
    if conditioning == "acgan":
        s, logits = critic.score_and_logits(x)
        assert logits.shape == (6, K)
        assert torch.allclose(s, score, atol=1e-6, rtol=0)
        assert torch.equal(critic(x), critic(x, (y + 3) % K))  # the score takes no label
    else:
        assert not torch.allclose(critic(x, y), critic(x, (y + 3) % K))
        with pytest.raises(ValueError, match="only an AC-GAN critic"):
            critic.score_and_logits(x)
        with pytest.raises(ValueError, match=r"class-conditional \(n_classes=10\); pass labels"):
            critic(x)
    with pytest.raises(ValueError, match="class-conditional"):
        generator(z)
    with pytest.raises(ValueError, match="unconditional"):
        plain_g(z, y)
    with pytest.raises(ValueError, match="unconditional"):
        plain_c(plain_g(z), y)


def test_projection_score_closed_form():
    torch.manual_seed(0)
    config = resolve_config("toy", overrides={"width": 16, "depth": 2})
    _, critic = build_conditional_models(config, (2,), 3, conditioning="projection")
    x, y = torch.randn(5, 2), torch.tensor([0, 2, 1, 2, 0])
    h = critic.features(x)
    expected = critic.net[-1](h).squeeze(-1) + (critic.heads.embed[y] * h).sum(1)
    assert torch.allclose(critic(x, y), expected, atol=1e-6, rtol=0)
    # φ is the last hidden layer: the unconditional network's output is ψ(φ(x)).
    plain = build_models(config, (2,))[1]
    plain.load_state_dict({k: v for k, v in critic.state_dict().items() if not k.startswith("heads.")})
    assert torch.allclose(plain(x), critic.net[-1](h).squeeze(-1), atol=1e-6, rtol=0)


def test_acgan_logits_closed_form():
    config = resolve_config("digits-dcgan")
    _, critic = build_conditional_models(config, (1, 8, 8), K)
    x = torch.randn(3, 1, 8, 8)
    h = critic.body(x).flatten(1)
    _, logits = critic.score_and_logits(x)
    assert torch.allclose(
        logits, h @ critic.heads.classifier.weight.T + critic.heads.classifier.bias, atol=1e-5
    )
    assert torch.equal(critic.heads.classifier.bias, torch.zeros(K))


@pytest.mark.parametrize("dims", [1, 2])
def test_conditional_batchnorm_closed_form(dims):
    torch.manual_seed(0)
    layer = ConditionalBatchNorm(3, 4, dims=dims)
    assert torch.equal(layer.weight, torch.ones(4, 3)) and torch.equal(layer.bias, torch.zeros(4, 3))
    x = torch.randn(8, 3) if dims == 1 else torch.randn(8, 3, 2, 2)
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    plain = (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(3)
    assert torch.allclose(layer(x, y), plain(x), atol=1e-6, rtol=0)  # γ = 1, β = 0: plain BatchNorm
    with torch.no_grad():
        layer.weight.copy_(torch.randn(4, 3))
        layer.bias.copy_(torch.randn(4, 3))
    reduce = (0,) if dims == 1 else (0, 2, 3)
    mean = x.mean(reduce, keepdim=True)
    var = x.var(reduce, unbiased=False, keepdim=True)  # statistics over all classes at once
    shape = (8, 3) if dims == 1 else (8, 3, 1, 1)
    expected = layer.weight[y].view(shape) * (x - mean) / torch.sqrt(var + 1e-5) + layer.bias[y].view(shape)
    assert torch.allclose(layer.train()(x, y), expected, atol=1e-5, rtol=0)
    assert torch.allclose(
        layer.norm.running_mean, 0.19 * mean.flatten(), atol=1e-6
    )  # two calls: 0.9·0.1 + 0.1
    layer.eval()
    running = (x - layer.norm.running_mean.view(1, 3, *([1] * (x.ndim - 2)))) / torch.sqrt(
        layer.norm.running_var.view(1, 3, *([1] * (x.ndim - 2))) + 1e-5
    )
    assert torch.allclose(
        layer(x, y), layer.weight[y].view(shape) * running + layer.bias[y].view(shape), atol=1e-5
    )


def test_global_batchnorm_conversion_reaches_conditional_norms():
    config = resolve_config("digits-dcgan")
    generator, _ = build_conditional_models(config, (1, 16, 16), K)
    conditional = [m for m in generator.modules() if isinstance(m, ConditionalBatchNorm)]
    assert len(conditional) == 2  # the input's BatchNorm1d and the one up-step's BatchNorm2d at 16×16
    weights = [m.weight for m in conditional]
    z, y = torch.randn(5, config.latent_dim), torch.arange(5)
    before = generator(z, y)
    to_global_batchnorm(generator)
    kinds = [type(m.norm) for m in conditional]
    assert kinds == [GlobalBatchNorm1d, GlobalBatchNorm2d]
    assert all(m.weight is w for m, w in zip(conditional, weights, strict=True))
    assert torch.allclose(generator(z, y), before, atol=1e-6, rtol=0)  # one process: plain BatchNorm


def test_resnet_generator_conditions_both_norms_of_every_up_block_only():
    config = resolve_config("toy", overrides={"model": "resnet", "conv_width": 8, "latent_dim": 16})
    generator, critic = build_conditional_models(config, (3, 32, 32), K)
    names = [n for n, m in generator.named_modules() if isinstance(m, ConditionalBatchNorm)]
    assert names == [f"blocks.{b}.residual.{i}" for b in range(3) for i in (0, 3)]
    assert isinstance(generator.output[0], nn.BatchNorm2d)  # the output BatchNorm stays plain
    assert generator.input.in_features == 16  # z only
    assert isinstance(critic.heads, CriticHeads) and critic.heads.classifier.in_features == 8


def test_norm_free_generator_takes_one_hot_labels():
    config = resolve_config("mnist", overrides={"conv_width": 4, "latent_dim": 8})
    generator, _ = build_conditional_models(config, (1, 28, 28), K)
    assert generator.input[0].in_features == 8 + K
    assert not any(isinstance(m, ConditionalBatchNorm) for m in generator.modules())


@pytest.mark.parametrize("conditioning", ["acgan", "projection"])
def test_penalty_differentiates_the_score_with_labels_fixed(conditioning):
    torch.manual_seed(0)
    config = resolve_config("toy", overrides={"width": 8, "depth": 1})
    _, critic = build_conditional_models(config, (2,), 3, conditioning=conditioning)
    real, fake, y = torch.randn(6, 2), torch.randn(6, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    g = torch.Generator().manual_seed(3)
    penalty, norms = gradient_penalty(critic, real, fake, critic_inputs=(y,), generator=g, return_norms=True)
    # Reference: per-sample input gradients of the score, one sample at a time, same ε.
    eps = torch.rand((6, 1), generator=torch.Generator().manual_seed(3))
    points = eps * real + (1 - eps) * fake
    expected_penalty, expected_norms = labelled_penalty_reference(critic, points, y)
    assert torch.allclose(norms, expected_norms, atol=1e-5, rtol=0)
    assert torch.allclose(penalty, expected_penalty, atol=1e-5, rtol=0)


def test_builder_errors():
    from wgangp.errors import UserError

    config = resolve_config("digits-dcgan")
    with pytest.raises(UserError, match="conditioning must be one of acgan, projection"):
        build_conditional_models(config, (1, 8, 8), K, conditioning="hinge")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="n_classes must be ≥ 0"):
        build_conditional_models(config, (1, 8, 8), -1)
