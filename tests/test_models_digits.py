"""The 8×8 digits models: shapes, ranges, full-resolution layers, no BatchNorm in the critic, per-sample critic."""

from __future__ import annotations

from typing import Any, Literal

import pytest
import torch
from torch import nn

from fingerprint_util import assert_fingerprint
from penalty_util import labelled_penalty_reference
from wgangp.models.conditional import ConditionalBatchNorm
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


# Class-conditional digits models (README "Conditional"): the labels' paths, the heads, the unconditional parts.

K = 10


def _pair(
    norm: Literal["none", "batch"], conditioning: Literal["acgan", "projection"], n_classes: int = K
) -> tuple[DigitsGenerator, DigitsCritic]:
    torch.manual_seed(0)
    g = DigitsGenerator(16, width=8, norm=norm, n_classes=n_classes)
    d = DigitsCritic(width=8, n_classes=n_classes, conditioning=conditioning)
    return g, d


@pytest.mark.parametrize("norm", ["batch", "none"])
@pytest.mark.parametrize("conditioning", ["acgan", "projection"])
def test_conditional_shapes_and_labels_change_the_output(
    norm: Literal["none", "batch"], conditioning: Literal["acgan", "projection"]
) -> None:
    g, d = _pair(norm, conditioning)
    with torch.no_grad():  # conditional BatchNorm starts at γ = 1, β = 0: give the classes different tables
        for m in g.modules():
            if isinstance(m, ConditionalBatchNorm):
                m.weight.normal_()
                m.bias.normal_()
    z = torch.randn(6, 16)
    a, b = torch.zeros(6, dtype=torch.long), torch.full((6,), 7)
    with torch.no_grad():
        xa, xb = g(z, a), g(z, b)
    assert xa.shape == xb.shape == (6, 1, 8, 8)
    assert 0.0 < float(xa.abs().max()) <= 1.0
    assert float((xa - xb).abs().max()) > 1e-3  # the class changes the image
    # With BatchNorm the labels reach every norm (input and the three hidden layers); without, they join z.
    conditional = [n for n, m in g.named_modules() if isinstance(m, ConditionalBatchNorm)]
    assert conditional == (["input.1", "body.1", "body.4", "body.7"] if norm == "batch" else [])
    assert g.input[0].in_features == 16 + (0 if norm == "batch" else K)
    with torch.no_grad():
        score_a, score_b = d(xa, a), d(xa, b)
    assert score_a.shape == (6,)
    if conditioning == "acgan":
        assert torch.equal(score_a, score_b)  # the AC-GAN score takes no label
        assert torch.equal(d(xa), score_a)
        assert d.heads is not None and d.heads.classifier.in_features == 4 * 4 * 16
    else:
        assert float((score_a - score_b).abs().max()) > 1e-4
        with pytest.raises(ValueError, match=r"class-conditional \(n_classes=10\); pass labels"):
            d(xa)


@pytest.mark.parametrize("conditioning", ["acgan", "projection"])
def test_conditional_critic_closed_form(conditioning: Literal["acgan", "projection"]) -> None:
    """AC-GAN logits ``W·φ(x) + b`` [N, K]; projection ``ψ(φ(x)) + E[y]·φ(x)``; one pass through the body."""
    _, d = _pair("batch", conditioning)
    x, y = torch.randn(5, 1, 8, 8), torch.tensor([0, 3, 9, 3, 1])
    h = d.body(x).flatten(1)  # [5, 256]
    base = d.output(h).squeeze(-1)
    assert d.heads is not None
    if conditioning == "acgan":
        score, logits = d.score_and_logits(x)
        assert logits.shape == (5, K)
        assert torch.allclose(logits, h @ d.heads.classifier.weight.T + d.heads.classifier.bias, atol=1e-6)
        assert torch.equal(d.heads.classifier.bias, torch.zeros(K))
        assert torch.equal(score, base)
    else:
        assert d.heads.embed.shape == (K, 4 * 4 * 16)
        expected = base + (d.heads.embed[y] * h).sum(1)
        assert torch.allclose(d(x, y), expected, atol=1e-6, rtol=0)
        with pytest.raises(ValueError, match="only an AC-GAN critic"):
            d.score_and_logits(x)


@pytest.mark.parametrize("conditioning", ["acgan", "projection"])
def test_conditional_penalty_is_the_gradient_in_x_with_labels_fixed(
    conditioning: Literal["acgan", "projection"],
) -> None:
    _, d = _pair("batch", conditioning)
    real, fake = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    y = torch.tensor([2, 5, 5, 8])
    penalty, norms = gradient_penalty(
        d, real, fake, critic_inputs=(y,), generator=torch.Generator().manual_seed(3), return_norms=True
    )
    eps = torch.rand((4, 1, 1, 1), generator=torch.Generator().manual_seed(3))
    points = eps * real + (1 - eps) * fake
    expected_penalty, expected_norms = labelled_penalty_reference(d, points, y)
    assert torch.allclose(norms, expected_norms, atol=1e-5, rtol=0)
    assert torch.allclose(penalty, expected_penalty, atol=1e-5, rtol=0)
    if conditioning == "projection":  # the label is part of the function being differentiated
        p = points[:1].clone().requires_grad_(True)
        (other,) = torch.autograd.grad(d(p, torch.tensor([0])).sum(), p)
        assert abs(float(other.norm()) - float(expected_norms[0])) > 1e-4


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_conditional_models_share_the_unconditional_draws(norm: Literal["none", "batch"]) -> None:
    """The critic's layers and (with conditional BatchNorm) the generator's weights are the unconditional ones."""
    torch.manual_seed(0)
    d0 = DigitsCritic(width=8)
    torch.manual_seed(0)
    d1 = DigitsCritic(width=8, n_classes=K, conditioning="projection")
    assert d1.heads is not None and d0.heads is None
    plain = {k: v for k, v in d1.state_dict().items() if not k.startswith("heads.")}
    assert plain.keys() == d0.state_dict().keys()
    assert all(torch.equal(v, d0.state_dict()[k]) for k, v in plain.items())
    torch.manual_seed(0)
    g0 = DigitsGenerator(16, width=8, norm=norm)
    torch.manual_seed(0)
    g1 = DigitsGenerator(16, width=8, norm=norm, n_classes=K)
    if norm == "none":  # the labels join z: the input layer has K more columns
        assert (g0.input[0].in_features, g1.input[0].in_features) == (16, 16 + K)
    else:  # same convs; γ = 1, β = 0 for every class: the plain generator's function
        kinds = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
        layers = [[(n, m) for n, m in g.named_modules() if isinstance(m, kinds)] for g in (g0, g1)]
        assert len(layers[0]) == 5
        for (n0, m0), (n1, m1) in zip(*layers, strict=True):
            assert n0 == n1 and torch.equal(m0.weight, m1.weight) and torch.equal(m0.bias, m1.bias)
        z = torch.randn(6, 16)
        with torch.no_grad():
            assert torch.allclose(g1(z, torch.arange(6)), g0(z), atol=1e-6, rtol=0)


def test_conditional_label_checks() -> None:
    g, d = _pair("batch", "projection")
    with pytest.raises(ValueError, match="class-conditional"):
        g(torch.randn(2, 16))
    with pytest.raises(ValueError, match=r"integer class indices \[2\]"):
        g(torch.randn(2, 16), torch.zeros(3, dtype=torch.long))
    g0 = DigitsGenerator(16, width=8)
    with pytest.raises(ValueError, match="unconditional"):
        g0(torch.randn(2, 16), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"integer class indices \[2\]"):
        d(torch.randn(2, 1, 8, 8), torch.zeros(2))  # float labels
    with pytest.raises(ValueError, match="n_classes must be an int"):
        DigitsCritic(n_classes=-1)


# The unconditional models before they took labels (git HEAD 1d838fe) matched exact digests of these
# up to 25a651b; re-recorded there as fingerprint_util's CPU-independent fingerprints.
@pytest.mark.parametrize(
    ("g_norm", "d_norm", "expected"),
    [
        (
            "batch",
            "none",
            (
                "d580dc98e427b90bb506d6035d3549bf",
                [
                    -118.14278496359475,
                    144.92099863220938,
                    105.57544137310663,
                    -0.3680500090122223,
                    -0.07841964811086655,
                    -0.2589288353919983,
                    -0.27431386709213257,
                ],
            ),
        ),
        (
            "none",
            "layer",
            (
                "77f283cebf8863e3de3e441d99671de0",
                [
                    -58.44405141053721,
                    95.67416158644482,
                    51.22537437867324,
                    -0.35488998889923096,
                    -0.72147536277771,
                    -1.5780912637710571,
                    -1.4380512237548828,
                ],
            ),
        ),
    ],
)
def test_unconditional_models_are_bit_identical_to_before_labels(
    g_norm: Literal["none", "batch"], d_norm: Literal["none", "layer"], expected: tuple[str, list[float]]
) -> None:
    torch.manual_seed(0)
    g, d = DigitsGenerator(64, width=16, norm=g_norm), DigitsCritic(width=16, norm=d_norm)
    assert_fingerprint(g, d, 64, expected)
