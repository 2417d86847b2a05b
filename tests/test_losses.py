"""Tests for ``wgangp.losses``: hand values, BCE-with-logits equivalence, stability, clipping, dispatch."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wgangp.losses import (
    LOSS_NAMES,
    clip_weights_,
    critic_loss,
    gan_critic_loss,
    gan_generator_loss,
    generator_loss,
    lsgan_critic_loss,
    lsgan_generator_loss,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)

TOL = {"rtol": 1e-6, "atol": 1e-6}


def logits(shape: tuple[int, ...], seed: int, scale: float = 3.0) -> Tensor:
    return scale * torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def bce(scores: Tensor, label: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(scores, torch.full_like(scores, label))


# ---------------------------------------------------------------------------------------------------------
# Wasserstein losses.
# ---------------------------------------------------------------------------------------------------------

REAL = torch.tensor([1.0, 2.0, 3.0, 6.0])  # mean 3
FAKE = torch.tensor([0.5, -1.5, -2.0])  # mean −1


@pytest.mark.parametrize("column", [False, True], ids=["[N]", "[N, 1]"])
def test_wasserstein_critic_loss_hand_value(column: bool) -> None:
    real, fake = (REAL[:, None], FAKE[:, None]) if column else (REAL, FAKE)

    loss = wasserstein_critic_loss(real, fake)

    torch.testing.assert_close(loss, torch.tensor(-1.0 - 3.0), rtol=0, atol=0)


@pytest.mark.parametrize("column", [False, True], ids=["[N]", "[N, 1]"])
def test_wasserstein_generator_loss_hand_value(column: bool) -> None:
    fake = FAKE[:, None] if column else FAKE

    loss = wasserstein_generator_loss(fake)

    torch.testing.assert_close(loss, torch.tensor(1.0), rtol=0, atol=0)


def test_wasserstein_losses_gradients_are_plus_minus_one_over_n() -> None:
    real, fake = REAL.clone().requires_grad_(True), FAKE.clone().requires_grad_(True)

    grad_real, grad_fake = torch.autograd.grad(wasserstein_critic_loss(real, fake), [real, fake])
    (grad_fake_g,) = torch.autograd.grad(wasserstein_generator_loss(fake), [fake])

    torch.testing.assert_close(grad_real, torch.full((4,), -1 / 4), **TOL)
    torch.testing.assert_close(grad_fake, torch.full((3,), 1 / 3), **TOL)
    torch.testing.assert_close(grad_fake_g, torch.full((3,), -1 / 3), **TOL)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_wasserstein_losses_reduce_low_precision_scores_in_fp32(dtype: torch.dtype) -> None:
    real, fake = REAL.to(dtype), FAKE.to(dtype)

    loss = wasserstein_critic_loss(real, fake)

    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, torch.tensor(-4.0), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------------------
# Standard GAN losses.
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(16,), (16, 1)])
@pytest.mark.parametrize("seed", [0, 1])
def test_gan_critic_loss_equals_bce_with_logits(shape: tuple[int, ...], seed: int) -> None:
    real, fake = logits(shape, seed), logits(shape, seed + 10)

    loss = gan_critic_loss(real, fake)

    torch.testing.assert_close(loss, bce(real, 1.0) + bce(fake, 0.0), **TOL)


@pytest.mark.parametrize("shape", [(16,), (16, 1)])
@pytest.mark.parametrize("seed", [0, 1])
def test_gan_generator_loss_is_non_saturating_bce(shape: tuple[int, ...], seed: int) -> None:
    fake = logits(shape, seed)

    loss = gan_generator_loss(fake)

    torch.testing.assert_close(loss, bce(fake, 1.0), **TOL)


@pytest.mark.parametrize(
    ("real", "fake", "expected"),
    [
        (100.0, -100.0, 0.0),  # a perfect critic: both terms ≈ e^−100
        (-100.0, 100.0, 200.0),  # the worst critic: softplus(100) twice
        (100.0, 100.0, 100.0),
    ],
)
def test_gan_critic_loss_is_stable_at_large_logits(real: float, fake: float, expected: float) -> None:
    real_logits = torch.full((4,), real, requires_grad=True)
    fake_logits = torch.full((4,), fake, requires_grad=True)

    loss = gan_critic_loss(real_logits, fake_logits)
    grads = torch.autograd.grad(loss, [real_logits, fake_logits])

    torch.testing.assert_close(loss, torch.tensor(expected), rtol=1e-6, atol=1e-6)
    assert all(bool(torch.isfinite(grad).all()) for grad in grads)


@pytest.mark.parametrize(("fake", "expected"), [(100.0, 0.0), (-100.0, 100.0)])
def test_gan_generator_loss_is_stable_at_large_logits(fake: float, expected: float) -> None:
    fake_logits = torch.full((4,), fake, requires_grad=True)

    loss = gan_generator_loss(fake_logits)
    (grad,) = torch.autograd.grad(loss, [fake_logits])

    torch.testing.assert_close(loss, torch.tensor(expected), rtol=1e-6, atol=1e-6)
    assert bool(torch.isfinite(grad).all())


def test_gan_generator_gradient_does_not_vanish_when_the_critic_wins() -> None:
    # Non-saturating: d/dl softplus(−l) = −σ(−l) → −1 as l → −∞, where the saturating log(1 − σ(l)) gives 0.
    fake_logits = torch.full((4,), -30.0, requires_grad=True)

    (grad,) = torch.autograd.grad(gan_generator_loss(fake_logits), [fake_logits])

    torch.testing.assert_close(grad, torch.full((4,), -1 / 4), **TOL)


# ---------------------------------------------------------------------------------------------------------
# LSGAN losses (Mao et al. 2017, a = 0, b = c = 1).
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("column", [False, True], ids=["[N]", "[N, 1]"])
def test_lsgan_critic_loss_hand_value(column: bool) -> None:
    real, fake = (REAL[:, None], FAKE[:, None]) if column else (REAL, FAKE)
    # ½·mean((1−1)², (2−1)², (3−1)², (6−1)²) + ½·mean(0.25, 2.25, 4) = ½·30/4 + ½·6.5/3
    expected = torch.tensor(0.5 * 30 / 4 + 0.5 * 6.5 / 3)

    torch.testing.assert_close(lsgan_critic_loss(real, fake), expected, **TOL)


@pytest.mark.parametrize("column", [False, True], ids=["[N]", "[N, 1]"])
def test_lsgan_generator_loss_hand_value(column: bool) -> None:
    fake = FAKE[:, None] if column else FAKE
    # ½·mean((0.5−1)², (−1.5−1)², (−2−1)²) = ½·(0.25 + 6.25 + 9)/3
    torch.testing.assert_close(lsgan_generator_loss(fake), torch.tensor(0.5 * 15.5 / 3), **TOL)


def test_lsgan_losses_vanish_at_their_targets_and_have_linear_gradients() -> None:
    real, fake = torch.ones(5), torch.zeros(4)

    assert float(lsgan_critic_loss(real, fake)) == 0.0
    assert float(lsgan_generator_loss(real)) == 0.0
    scores = torch.tensor([3.0, -1.0], requires_grad=True)
    (grad_g,) = torch.autograd.grad(lsgan_generator_loss(scores), [scores])
    (grad_d,) = torch.autograd.grad(lsgan_critic_loss(scores, scores), [scores])
    # d/ds ½·mean((s − 1)²) = (s − 1)/N; with the same scores as real and fake the critic's adds s/N.
    torch.testing.assert_close(grad_g, torch.tensor([1.0, -1.0]), **TOL)
    torch.testing.assert_close(grad_d, torch.tensor([2.5, -1.5]), **TOL)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_lsgan_losses_reduce_low_precision_scores_in_fp32(dtype: torch.dtype) -> None:
    loss = lsgan_critic_loss(REAL.to(dtype), FAKE.to(dtype))

    assert loss.dtype == torch.float32 and lsgan_generator_loss(FAKE.to(dtype)).dtype == torch.float32
    torch.testing.assert_close(loss, lsgan_critic_loss(REAL, FAKE), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------------------
# Weight clipping.
# ---------------------------------------------------------------------------------------------------------


def test_clip_weights_clamps_outside_and_leaves_inside_untouched() -> None:
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(6, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
    with torch.no_grad():
        for param in critic.parameters():
            param.mul_(0.1).add_(torch.randn_like(param) * 0.03)
        critic[0].weight[0, :3] = torch.tensor([0.5, -0.5, 0.01])  # two far outside, one inside
        critic[2].bias.fill_(-7.0)
    before = [param.detach().clone() for param in critic.parameters()]
    clip = 0.01

    clip_weights_(critic, clip)

    for param, old in zip(critic.parameters(), before, strict=True):
        assert bool((param.abs() <= clip).all())
        inside = old.abs() <= clip
        assert torch.equal(param[inside], old[inside])
        assert torch.equal(param[~inside], clip * old[~inside].sign())
    assert torch.equal(critic[0].weight[0, :3], torch.tensor([0.01, -0.01, 0.01]))
    assert torch.equal(critic[2].bias, torch.tensor([-0.01]))


def test_clip_weights_leaves_buffers_and_grad_mode_alone() -> None:
    critic = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    with torch.no_grad():
        critic[1].running_var.fill_(5.0)

    clip_weights_(critic, 0.01)

    assert torch.equal(critic[1].running_var, torch.full((4,), 5.0))
    assert all(param.requires_grad for param in critic.parameters())
    assert torch.is_grad_enabled()


def test_clip_weights_of_a_module_without_parameters_is_a_no_op() -> None:
    clip_weights_(nn.ReLU(), 0.01)


# ---------------------------------------------------------------------------------------------------------
# Dispatch by name.
# ---------------------------------------------------------------------------------------------------------

CRITIC_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "wgan-gp": wasserstein_critic_loss,
    "wgan-clip": wasserstein_critic_loss,
    "gan": gan_critic_loss,
    "lsgan": lsgan_critic_loss,
}
GENERATOR_LOSSES: dict[str, Callable[[Tensor], Tensor]] = {
    "wgan-gp": wasserstein_generator_loss,
    "wgan-clip": wasserstein_generator_loss,
    "gan": gan_generator_loss,
    "lsgan": lsgan_generator_loss,
}


def test_every_loss_name_has_a_dispatch_case() -> None:
    assert set(LOSS_NAMES) == set(CRITIC_LOSSES) == set(GENERATOR_LOSSES)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_critic_and_generator_loss_dispatch_by_name(name: str) -> None:
    real, fake = logits((8,), 0), logits((8,), 1)

    torch.testing.assert_close(critic_loss(name, real, fake), CRITIC_LOSSES[name](real, fake), rtol=0, atol=0)
    torch.testing.assert_close(generator_loss(name, fake), GENERATOR_LOSSES[name](fake), rtol=0, atol=0)


def test_gan_and_wasserstein_losses_differ_on_the_same_scores() -> None:
    real, fake = logits((8,), 0), logits((8,), 1)

    assert critic_loss("gan", real, fake) != critic_loss("wgan-gp", real, fake)
    assert generator_loss("gan", fake) != generator_loss("wgan-gp", fake)


@pytest.mark.parametrize("name", ["GAN", "hinge"])
def test_unknown_loss_name_raises(name: str) -> None:
    real, fake = logits((8,), 0), logits((8,), 1)

    with pytest.raises(ValueError, match="loss"):
        critic_loss(name, real, fake)
    with pytest.raises(ValueError, match="loss"):
        generator_loss(name, fake)


# -- AC-GAN terms ----------------------------------------------------------------------------------------


def test_class_cross_entropy_closed_form():
    from wgangp.losses import class_cross_entropy

    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    labels = torch.tensor([0, 1])
    # −log(1/2) and −log(1/4)
    assert class_cross_entropy(logits, labels).item() == pytest.approx(
        (math.log(2) + math.log(4)) / 2, abs=1e-6
    )


@pytest.mark.parametrize("scale", [0.0, 1.0, 0.1])
def test_acgan_losses_closed_form(scale):
    from wgangp.losses import ACGAN_SCALE, ACGAN_SCALE_G, acgan_critic_loss, acgan_generator_loss

    assert (ACGAN_SCALE, ACGAN_SCALE_G) == (1.0, 0.1)
    real, fake = torch.tensor([3.0, 1.0]), torch.tensor([0.5, -0.5])
    logits = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    labels = torch.tensor([1, 0])
    ce = (math.log(3) + (math.log(math.exp(2) + 2) - 2)) / 2
    critic = acgan_critic_loss(real, fake, logits, labels, scale=scale)
    assert critic.item() == pytest.approx(0.0 - 2.0 + scale * ce, abs=1e-6)
    generator = acgan_generator_loss(fake, logits, labels, scale=scale)
    assert generator.item() == pytest.approx(-0.0 + scale * ce, abs=1e-6)
    assert acgan_generator_loss(fake, logits, labels).item() == pytest.approx(0.1 * ce, abs=1e-6)
