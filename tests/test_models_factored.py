"""Factored networks: shapes for every factor combination, parameter counts, norms where asked, per-sample critics."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch
from torch import nn

from wgangp.errors import UserError
from wgangp.models.activations import ACTIVATIONS, activation, expansion, gated, shifted_softplus
from wgangp.models.dcgan import DCGANCritic, DCGANGenerator
from wgangp.models.factored import (
    FIGURE2,
    Architecture,
    build_architecture,
    check_critic_norm,
    critic_norm_for_loss,
    figure2_architectures,
    residual_blocks,
)
from wgangp.penalty import check_critic

LATENT = 8


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


# ---------------------------------------------------------------------------------------------------------
# Activations.
# ---------------------------------------------------------------------------------------------------------

X = torch.tensor([-3.0, -0.5, 0.0, 0.7, 4.0])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("relu", torch.tensor([0.0, 0.0, 0.0, 0.7, 4.0])),
        ("leaky_relu", torch.tensor([-0.6, -0.1, 0.0, 0.7, 4.0])),
        ("elu", torch.tensor([math.exp(-3) - 1, math.exp(-0.5) - 1, 0.0, 0.7, 4.0])),
        ("softplus", torch.tensor([math.log1p(math.exp(2 * v + 2)) / 2 - 1 for v in X.tolist()])),
        ("tanh", torch.tensor([math.tanh(v) for v in X.tolist()])),
    ],
)
def test_activations_closed_forms(name, expected):
    torch.testing.assert_close(activation(name)(X), expected, rtol=1e-6, atol=1e-6)
    assert expansion(name) == 1


def test_shifted_softplus_limits():
    # softplus(2x+2)/2 − 1: log(1 + e²)/2 − 1 at 0, → x for large x, → −1 for very negative x.
    torch.testing.assert_close(
        shifted_softplus(torch.tensor(0.0)), torch.tensor(math.log1p(math.e**2) / 2 - 1)
    )
    torch.testing.assert_close(shifted_softplus(torch.tensor([30.0, -30.0])), torch.tensor([30.0, -1.0]))


def test_gated_is_tanh_of_first_half_times_sigmoid_of_second():
    x = torch.randn(3, 6, 2, 2, generator=torch.Generator().manual_seed(0))
    expected = torch.tanh(x[:, :3]) * torch.sigmoid(x[:, 3:])
    out = activation("gated")(x)
    assert out.shape == (3, 3, 2, 2) and expansion("gated") == 2
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    torch.testing.assert_close(gated(torch.tensor([[0.5, 0.0]])), torch.tensor([[math.tanh(0.5) / 2]]))
    with pytest.raises(ValueError, match="even"):
        gated(torch.zeros(2, 5))


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="activation"):
        activation("swish")


# ---------------------------------------------------------------------------------------------------------
# Shapes for every factor combination.
# ---------------------------------------------------------------------------------------------------------

PLAIN = [
    Architecture(
        activation=a,
        critic_activation=a,
        depth=d,
        width=4,
        generator_filters=f,
        critic_filters=f,
        generator_norm=gn,
        critic_norm=cn,
    )
    for a, d, f, gn, cn in itertools.product(
        ACTIVATIONS, (3, 5), ("double", "constant"), ("batch", "none"), ("none", "layer", "batch")
    )
]
RESIDUAL = [
    Architecture(
        activation=a,
        critic_activation=a,
        residual=True,
        depth=d,
        width=8,
        generator_norm=gn,
        critic_norm=cn,
        generator_filters=f,
        critic_filters=f,
    )
    for a, d, f, gn, cn in itertools.product(
        ("relu", "tanh", "softplus"),
        (11, 14),
        ("double", "constant"),
        ("batch", "none"),
        ("none", "layer", "batch"),
    )
]
MLP = [Architecture(generator="mlp", mlp_width=16, depth=3, width=4)]


@pytest.mark.parametrize("shape", [(1, 8), (3, 32)], ids=["8x8x1", "32x32x3"])
@pytest.mark.parametrize("arch", PLAIN + RESIDUAL + MLP, ids=str)
def test_shapes_ranges_and_norms(arch, shape):
    channels, resolution = shape
    if arch.residual and resolution == 32:
        arch = dataclasses.replace(arch, depth=arch.depth + 6)  # 32×32 needs 3 resampling blocks
    generator, critic = build_architecture(arch, latent_dim=LATENT, channels=channels, resolution=resolution)
    with torch.no_grad():
        images = generator(torch.randn(4, LATENT))
        scores = critic(torch.randn(5, channels, resolution, resolution))
    assert images.shape == (4, channels, resolution, resolution)
    assert float(images.abs().max()) < 1.0
    assert scores.shape == (5,)
    assert has_batchnorm(generator) == (arch.generator_norm == "batch" and arch.generator == "conv")
    assert has_batchnorm(critic) == (arch.critic_norm == "batch")
    assert any(isinstance(m, nn.GroupNorm) for m in critic.modules()) == (arch.critic_norm == "layer")


@pytest.mark.parametrize("arch", [a for a in PLAIN + RESIDUAL if a.critic_norm != "batch"][::3], ids=str)
def test_critics_without_batchnorm_are_per_sample(arch):
    _, critic = build_architecture(arch, latent_dim=LATENT, channels=1, resolution=8)
    check_critic(critic)
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(critic(x)[:2], critic(x[:2]), rtol=1e-5, atol=1e-5)


def test_batchnorm_critic_mixes_samples_and_the_penalty_guard_refuses_it():
    _, critic = build_architecture(
        Architecture(depth=3, width=4, critic_norm="batch"), latent_dim=4, channels=1, resolution=8
    )
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    assert not torch.allclose(critic(x)[:2], critic(x[:2]), atol=1e-4)
    with pytest.raises(ValueError, match="BatchNorm"):
        check_critic(critic)


# ---------------------------------------------------------------------------------------------------------
# Structure and parameter counts.
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("resolution", "channels"), [(8, 1), (28, 1), (32, 3), (64, 3)])
@pytest.mark.parametrize("norm", ["batch", "none"])
def test_depth_equal_to_the_steps_is_dcgan(resolution, channels, norm):
    steps = {8: 1, 28: 3, 32: 3, 64: 4}[resolution]
    arch = Architecture(
        depth=steps, width=8, generator_norm=norm, critic_norm="layer" if norm == "batch" else "none"
    )
    g, d = build_architecture(arch, latent_dim=16, channels=channels, resolution=resolution)
    reference_g = DCGANGenerator(16, channels=channels, resolution=resolution, width=8, norm=norm)
    reference_d = DCGANCritic(channels=channels, resolution=resolution, width=8, norm=arch.critic_norm)
    assert count(g) == count(reference_g) and count(d) == count(reference_d)
    assert g(torch.randn(2, 16)).shape == reference_g(torch.randn(2, 16)).shape


def conv_params(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out


@pytest.mark.parametrize("extra", [0, 1, 3])
@pytest.mark.parametrize("width", [4, 8])
def test_constant_width_parameter_counts_in_closed_form(extra, width):
    # 16×16 (k = 2), constant W, no norm: G = Linear(z, 16W) + 2 deconvs 5×5 + extra 3×3 convs (last to C).
    w, k, c = width, 2, 3
    arch = Architecture(
        depth=k + extra,
        width=w,
        generator_filters="constant",
        critic_filters="constant",
        generator_norm="none",
    )
    g, d = build_architecture(arch, latent_dim=LATENT, channels=c, resolution=16)
    if extra == 0:
        expected_g = (LATENT * 16 * w + 16 * w) + conv_params(w, w, 5) + conv_params(w, c, 5)
    else:
        expected_g = (
            (LATENT * 16 * w + 16 * w) + 2 * conv_params(w, w, 5) + (extra - 1) * conv_params(w, w, 3)
        )
        expected_g += conv_params(w, c, 3)
    expected_d = conv_params(c, w, 5) + conv_params(w, w, 5) + extra * conv_params(w, w, 3) + 16 * w + 1
    assert count(g) == expected_g
    assert count(d) == expected_d


def test_gated_doubles_the_channels_before_each_activation():
    plain, gated_arch = (
        Architecture(depth=4, width=8),
        Architecture(activation="gated", critic_activation="gated", depth=4, width=8),
    )
    g, d = build_architecture(gated_arch, latent_dim=LATENT, channels=1, resolution=16)
    g0, d0 = build_architecture(plain, latent_dim=LATENT, channels=1, resolution=16)
    outs = [m.out_channels for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert outs == [2 * m.out_channels for m in d0.modules() if isinstance(m, nn.Conv2d)]
    hidden = [m.out_channels for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    hidden0 = [m.out_channels for m in g0.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert hidden[:-1] == [2 * c for c in hidden0[:-1]] and hidden[-1] == hidden0[-1] == 1
    assert g.input.out_features == 2 * g0.input.out_features


def test_doubling_widths_follow_dcgan_and_deep_layers_keep_the_last_width():
    g, d = build_architecture(Architecture(depth=6, width=8), latent_dim=LATENT, channels=3, resolution=32)
    g_outs = [m.out_channels for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert g.top == 32 and g_outs == [16, 8, 8, 8, 8, 3]
    assert [m.out_channels for m in d.modules() if isinstance(m, nn.Conv2d)] == [8, 16, 32, 32, 32, 32]


def test_residual_101_layers_match_the_official_resnet():
    assert residual_blocks(101, 4) == [6, 6, 6, 6, 5]
    g, d = build_architecture(FIGURE2["resnet-101"], latent_dim=128, channels=3, resolution=64)
    for net in (g, d):
        shortcuts = {id(m) for b in net.modules() if hasattr(b, "shortcut") for m in b.shortcut.modules()}
        weights = [
            m
            for m in net.modules()
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and id(m) not in shortcuts
        ]
        assert len(weights) == 101
        assert len(net.blocks) == 33
    assert g.top == 512 and g.output.in_channels == 32  # 8·DIM at 4×4, DIM/2 at 64×64
    assert d.input.out_channels == 32 and d.output.in_features == 16 * 512


@pytest.mark.parametrize("depth", [3, 9, 12])
def test_bad_residual_depths_are_refused(depth):
    with pytest.raises(ValueError, match="depth"):
        build_architecture(
            Architecture(residual=True, depth=depth, width=8), latent_dim=4, channels=1, resolution=32
        )


def test_bad_factors_are_refused():
    with pytest.raises(ValueError, match="depth 1 is below"):
        build_architecture(Architecture(depth=1, width=4), latent_dim=4, channels=1, resolution=16)
    with pytest.raises(ValueError, match="gated"):
        Architecture(residual=True, activation="gated")
    with pytest.raises(ValueError, match="critic_norm"):
        Architecture(**{"critic_norm": "instance"})
    with pytest.raises(ValueError, match="unknown"):
        Architecture.from_dict({"depth": 4, "layers": 3})
    assert Architecture.from_dict(dataclasses.asdict(FIGURE2["gated"])) == FIGURE2["gated"]


def test_mlp_generator_is_four_relu_layers_of_512():
    g, _ = build_architecture(FIGURE2["mlp-g"], latent_dim=128, channels=3, resolution=64)
    linears = [m for m in g.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [512, 512, 512, 512, 3 * 64 * 64]
    assert sum(isinstance(m, nn.ReLU) for m in g.modules()) == 4 and not has_batchnorm(g)


# ---------------------------------------------------------------------------------------------------------
# Critic norm rule and Figure 2.
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["gan", "lsgan", "wgan-clip"])
def test_batchnorm_critic_allowed_without_a_per_sample_penalty(loss):
    check_critic_norm(loss, "batch")
    assert critic_norm_for_loss("batch", loss) == "batch"


@pytest.mark.parametrize("norm", ["none", "layer"])
def test_penalised_critic_takes_any_per_sample_norm(norm):
    check_critic_norm("wgan-gp", norm)
    assert critic_norm_for_loss(norm, "wgan-gp") == norm


def test_penalised_batchnorm_critic_is_refused_in_one_line():
    with pytest.raises(UserError, match="wgan-gp") as info:
        check_critic_norm("wgan-gp", "batch")
    assert "\n" not in str(info.value)
    assert critic_norm_for_loss("batch", "wgan-gp") == "layer"
    with pytest.raises(UserError, match="none, layer or batch"):
        check_critic_norm("gan", "group")


@pytest.mark.parametrize("loss", ["gan", "lsgan", "wgan-clip", "wgan-gp"])
@pytest.mark.parametrize("name", list(FIGURE2))
def test_figure2_digits_architectures_build_and_obey_the_norm_rule(name, loss):
    arch = figure2_architectures("digits")[name].for_loss(loss)
    check_critic_norm(loss, arch.critic_norm)
    g, d = build_architecture(arch, latent_dim=LATENT, channels=1, resolution=8)
    assert d(g(torch.randn(3, LATENT))).shape == (3,)
    assert has_batchnorm(d) == (loss != "wgan-gp" and name != "no-norm")


def test_figure2_has_the_seven_paper_architectures():
    assert list(FIGURE2) == ["dcgan", "no-bn-constant-g", "mlp-g", "no-norm", "gated", "tanh", "resnet-101"]
    assert figure2_architectures("paper") == FIGURE2
    assert {a.width for a in figure2_architectures("digits").values()} == {16, 32}
