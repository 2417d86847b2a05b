"""Tests for ``wgangp.penalty``: closed forms, the seed's reference, and the known bugs of other libraries.

Every expected value is computed here by hand (closed forms or an explicit reproduction of the points from the
same ``torch.Generator`` state), and every comparison is two-sided (``torch.testing.assert_close``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
import torch
from scipy import stats
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from wgangp import reference
from wgangp.errors import UserError
from wgangp.penalty import (
    Rows,
    check_critic,
    dragan_points,
    gradient_penalty,
    interpolate,
    per_sample_uniform,
)

SEED = 1234

# Two-sided tolerances: |actual − expected| <= atol + rtol·|expected|.
TOL: dict[torch.dtype, dict[str, float]] = {
    torch.float32: {"rtol": 1e-5, "atol": 1e-6},
    torch.float64: {"rtol": 1e-12, "atol": 1e-12},
}

DTYPES = [torch.float32, torch.float64]

CriticFn = Callable[..., Tensor]


# ---------------------------------------------------------------------------------------------------------
# Helpers: inputs, critics with known gradients, and hand-made points.
# ---------------------------------------------------------------------------------------------------------


def make_batch(shape: tuple[int, ...], dtype: torch.dtype = torch.float32, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=dtype)


def make_weight(dim: int, norm: float, dtype: torch.dtype = torch.float32, seed: int = 0) -> Tensor:
    """A random direction scaled to exactly ``norm`` (as a leaf that requires grad)."""
    w = make_batch((dim,), torch.float64, seed)
    return (w * (norm / w.norm())).to(dtype).requires_grad_(True)


def linear_critic(w: Tensor) -> CriticFn:
    """``D(x) = w·x`` per sample (x flattened), so ``∇_x D = w`` everywhere."""
    return lambda x: x.flatten(1) @ w


def make_symmetric(dim: int, dtype: torch.dtype = torch.float32, seed: int = 0) -> Tensor:
    m = make_batch((dim, dim), torch.float64, seed) / math.sqrt(dim)
    return ((m + m.T) / 2).to(dtype)


def quadratic_critic(a: Tensor) -> CriticFn:
    """``D(x) = ½ xᵀAx`` per sample (x flattened); for symmetric ``A``, ``∇_x D = Ax``."""

    def critic(x: Tensor) -> Tensor:
        flat = x.flatten(1)  # [N, D]
        return 0.5 * ((flat @ a) * flat).sum(1)

    return critic


def quadratic_norms(a: Tensor, points: Tensor) -> Tensor:
    return (points.flatten(1) @ a).norm(dim=1)  # ‖A x_i‖, [N]


def epsilon(like: Tensor, seed: int) -> Tensor:
    """WGAN-GP's ε, one per sample, drawn exactly as the library documents it."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand((like.shape[0],) + (1,) * (like.ndim - 1), generator=g, dtype=like.dtype)


def hand_interpolates(real: Tensor, fake: Tensor, seed: int) -> Tensor:
    eps = epsilon(real, seed)
    return eps * real + (1 - eps) * fake


def hand_dragan_points(real: Tensor, scale: float, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(real.shape, generator=g, dtype=real.dtype)
    perturbed = real + scale * real.std() * u
    alpha = torch.rand((real.shape[0],) + (1,) * (real.ndim - 1), generator=g, dtype=real.dtype)
    return real + alpha * (perturbed - real)


def gen(seed: int = SEED) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mlp_critic(dim: int, hidden: int = 16) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1)
    )


def cnn_critic(channels: int = 3, size: int = 8) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, 8, 3, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(16 * (size // 4) ** 2, 1),
    )


@contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


# ---------------------------------------------------------------------------------------------------------
# 1. Linear critic: the penalty is exactly (‖w‖ − 1)², with a closed-form gradient w.r.t. w.
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("w_norm", [0.25, 0.9, 1.7, 4.0])
@pytest.mark.parametrize("batch_seed", [0, 1, 2])
def test_linear_critic_penalty_and_weight_gradient_closed_form(
    dtype: torch.dtype, w_norm: float, batch_seed: int
) -> None:
    w = make_weight(6, w_norm, dtype, seed=batch_seed + 10)
    real, fake = make_batch((8, 6), dtype, batch_seed), 3 * make_batch((8, 6), dtype, batch_seed + 100)

    penalty = gradient_penalty(linear_critic(w), real, fake, generator=gen())
    (grad_w,) = torch.autograd.grad(penalty, w)

    norm = w.detach().norm()
    torch.testing.assert_close(penalty, (norm - 1) ** 2, **TOL[dtype])
    torch.testing.assert_close(grad_w, 2 * (norm - 1) * w.detach() / norm, **TOL[dtype])


# ---------------------------------------------------------------------------------------------------------
# 2 and 4. Quadratic critic: the penalty depends on the points, reproduced from the same generator state.
# ---------------------------------------------------------------------------------------------------------

SHAPES = [(8, 5), (6, 3, 4), (4, 2, 3, 3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=["2d", "3d", "4d"])
def test_quadratic_critic_at_interpolates(shape: tuple[int, ...], dtype: torch.dtype) -> None:
    real, fake = make_batch(shape, dtype, 1), make_batch(shape, dtype, 2)
    a = make_symmetric(math.prod(shape[1:]), dtype, seed=3)

    penalty = gradient_penalty(quadratic_critic(a), real, fake, generator=gen())

    norms = quadratic_norms(a, hand_interpolates(real, fake, SEED))
    torch.testing.assert_close(penalty, ((norms - 1) ** 2).mean(), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=["2d", "3d", "4d"])
@pytest.mark.parametrize("at", ["real", "fake"], ids=["R1", "R2"])
def test_quadratic_critic_zero_centered_r1_r2(shape: tuple[int, ...], dtype: torch.dtype, at: str) -> None:
    real, fake = make_batch(shape, dtype, 1), make_batch(shape, dtype, 2)
    a = make_symmetric(math.prod(shape[1:]), dtype, seed=3)

    penalty = gradient_penalty(quadratic_critic(a), real, fake, kind="zero-centered", at=at)

    points = real if at == "real" else fake
    torch.testing.assert_close(penalty, (quadratic_norms(a, points) ** 2).mean(), **TOL[dtype])


def test_r1_needs_no_fake() -> None:
    real = make_batch((8, 5), seed=1)
    a = make_symmetric(5, seed=3)

    penalty = gradient_penalty(quadratic_critic(a), real, kind="zero-centered", at="real")

    torch.testing.assert_close(penalty, (quadratic_norms(a, real) ** 2).mean(), **TOL[torch.float32])


def test_channels_last_gives_the_same_penalty() -> None:
    torch.manual_seed(0)
    critic = cnn_critic()
    real, fake = make_batch((6, 3, 8, 8), seed=1), make_batch((6, 3, 8, 8), seed=2)
    as_channels_last = {"memory_format": torch.channels_last}

    contiguous, norms = gradient_penalty(critic, real, fake, generator=gen(), return_norms=True)
    channels_last, norms_cl = gradient_penalty(
        critic,
        real.contiguous(**as_channels_last),
        fake.contiguous(**as_channels_last),
        generator=gen(),
        return_norms=True,
    )

    assert real.contiguous(**as_channels_last).is_contiguous(**as_channels_last)
    torch.testing.assert_close(channels_last, contiguous, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(norms_cl, norms, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# 3. Per-sample independence.
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("changed", [0, 3, 7])
def test_changing_one_sample_changes_only_its_norm(changed: int) -> None:
    torch.manual_seed(0)
    critic = mlp_critic(5)
    real, fake = make_batch((8, 5), seed=1), make_batch((8, 5), seed=2)
    real2, fake2 = real.clone(), fake.clone()
    real2[changed] += 1.5
    fake2[changed] -= 2.0

    _, norms = gradient_penalty(critic, real, fake, generator=gen(), return_norms=True)
    _, norms2 = gradient_penalty(critic, real2, fake2, generator=gen(), return_norms=True)

    others = torch.arange(8) != changed
    assert torch.equal(norms2[others], norms[others])
    assert (norms2[changed] - norms[changed]).abs() > 1e-4


# ---------------------------------------------------------------------------------------------------------
# 5. Equality with the seed's function.
# ---------------------------------------------------------------------------------------------------------


# The seed's function, verbatim except for its name. Its ε, torch.rand(N, 1, 1, 1), broadcasts correctly only
# against 4-D inputs.
def seed_gradient_penalty(discriminator, real_data, fake_data):
    epsilon = torch.rand(real_data.size(0), 1, 1, 1).to(real_data.device)
    interpolates = epsilon * real_data + (1 - epsilon) * fake_data
    interpolates.requires_grad_(True)
    d_interpolates = discriminator(interpolates)
    gradients = torch.autograd.grad(
        outputs=d_interpolates,
        inputs=interpolates,
        grad_outputs=torch.ones_like(d_interpolates),
        create_graph=True,
        retain_graph=True,
    )[0]
    gradient_norm = gradients.view(gradients.size(0), -1).norm(2, dim=1)
    penalty = ((gradient_norm - 1) ** 2).mean()
    return penalty


# For inputs of any rank (the MLP's 2-D data) the reference is wgangp.reference.seed_gradient_penalty: the
# seed's function with ε drawn as torch.rand((N,) + (1,) * (ndim - 1)) instead of torch.rand(N, 1, 1, 1),
# which against [N, D] would broadcast to [N, N, N, D].
seed_gradient_penalty_any_rank = reference.seed_gradient_penalty


SEED_CASES = [
    pytest.param(lambda: mlp_critic(4), (16, 4), seed_gradient_penalty_any_rank, id="mlp-2d"),
    pytest.param(lambda: cnn_critic(), (6, 3, 8, 8), seed_gradient_penalty, id="cnn-4d"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("make_critic", "shape", "reference"), SEED_CASES)
@pytest.mark.parametrize("seed", [0, 7])
def test_matches_the_seed_value_and_parameter_gradients(
    make_critic: Callable[[], nn.Module],
    shape: tuple[int, ...],
    reference: CriticFn,
    seed: int,
    dtype: torch.dtype,
) -> None:
    # The seed draws ε with the global RNG in the default dtype; ours draws it in the input's dtype from the
    # generator. Running the seed with the default dtype set to the test's dtype gives both the same ε.
    with default_dtype(dtype):
        torch.manual_seed(100 + seed)
        critic = make_critic()
        real, fake = make_batch(shape, dtype, seed), make_batch(shape, dtype, seed + 50)
        params = list(critic.parameters())

        torch.manual_seed(seed)
        expected = reference(critic, real, fake)
        # The last bias does not reach ∇_x D: its gradient is materialised as zeros for both.
        expected_grads = torch.autograd.grad(expected, params, materialize_grads=True)

        penalty = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(seed))
        grads = torch.autograd.grad(penalty, params, materialize_grads=True)

    torch.testing.assert_close(penalty, expected, **TOL[dtype])
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected_grad, **TOL[dtype])


# ---------------------------------------------------------------------------------------------------------
# 6. A zero input gradient: penalty 1 and finite parameter gradients.
# ---------------------------------------------------------------------------------------------------------


def dead_relu_critic(dim: int) -> nn.Sequential:
    """A ReLU net whose pre-activations are negative for non-negative inputs, so ``∇_x D = 0`` exactly."""
    critic = nn.Sequential(nn.Linear(dim, 8), nn.ReLU(), nn.Linear(8, 1))
    with torch.no_grad():
        critic[0].weight.copy_(-make_batch((8, dim), seed=5).abs())
        critic[0].bias.fill_(-1.0)
    return critic


def zero_linear_critic(dim: int) -> nn.Linear:
    critic = nn.Linear(dim, 1)
    with torch.no_grad():
        critic.weight.zero_()
    return critic


@pytest.mark.parametrize(
    "make_critic", [dead_relu_critic, zero_linear_critic], ids=["dead-relu", "zero-linear"]
)
def test_zero_input_gradient_gives_penalty_one_and_finite_parameter_gradients(
    make_critic: Callable[[int], nn.Module],
) -> None:
    critic = make_critic(5)
    real, fake = make_batch((8, 5), seed=1).abs(), make_batch((8, 5), seed=2).abs()

    penalty, norms = gradient_penalty(critic, real, fake, generator=gen(), return_norms=True)
    grads = torch.autograd.grad(penalty, list(critic.parameters()), allow_unused=True)

    assert torch.equal(norms, torch.zeros(8))
    torch.testing.assert_close(penalty, torch.tensor(1.0), rtol=0, atol=0)
    for grad in grads:
        assert grad is None or bool(torch.isfinite(grad).all())


def test_zero_critic_without_parameters_gives_penalty_one() -> None:
    real, fake = make_batch((8, 5), seed=1), make_batch((8, 5), seed=2)

    penalty = gradient_penalty(lambda x: 0 * x.sum(1), real, fake, generator=gen())

    torch.testing.assert_close(penalty, torch.tensor(1.0), rtol=0, atol=0)


def test_norm_as_sqrt_of_sum_would_give_nan_at_a_zero_gradient() -> None:
    critic = zero_linear_critic(5)
    real, fake = make_batch((8, 5), seed=1), make_batch((8, 5), seed=2)

    def sqrt_sum_penalty(critic: CriticFn, real: Tensor, fake: Tensor, generator: torch.Generator) -> Tensor:
        return _penalty_with(
            critic, real, fake, epsilon_like(real, generator), lambda g: g.square().sum(1).sqrt()
        )

    buggy = sqrt_sum_penalty(critic, real, fake, gen())
    (buggy_grad, _) = torch.autograd.grad(buggy, [critic.weight, critic.bias], allow_unused=True)
    penalty = gradient_penalty(critic, real, fake, generator=gen())
    (grad, _) = torch.autograd.grad(penalty, [critic.weight, critic.bias], allow_unused=True)

    assert bool(torch.isnan(buggy_grad).any())
    assert bool(torch.isfinite(grad).all())


# ---------------------------------------------------------------------------------------------------------
# 7. Variants: one-sided, target ≠ 1, R1/R2 for a linear critic, DRAGAN.
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("w_norm", [0.3, 0.99, 1.01, 2.5])
def test_one_sided_is_zero_below_one_and_squared_excess_above(w_norm: float, dtype: torch.dtype) -> None:
    w = make_weight(4, w_norm, dtype)
    real, fake = make_batch((8, 4), dtype, 1), make_batch((8, 4), dtype, 2)

    penalty = gradient_penalty(linear_critic(w), real, fake, kind="one-sided", generator=gen())

    norm = w.detach().norm()
    torch.testing.assert_close(penalty, torch.clamp(norm - 1, min=0) ** 2, **TOL[dtype])
    if w_norm < 1:
        assert penalty == 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["two-sided", "one-sided"])
@pytest.mark.parametrize(("w_norm", "target"), [(1.0, 0.5), (0.3, 2.0), (3.0, 2.0), (700.0, 750.0)])
def test_target_norm(w_norm: float, target: float, kind: str, dtype: torch.dtype) -> None:
    w = make_weight(4, w_norm, dtype)
    real, fake = make_batch((8, 4), dtype, 1), make_batch((8, 4), dtype, 2)

    penalty = gradient_penalty(linear_critic(w), real, fake, kind=kind, target=target, generator=gen())

    excess = w.detach().norm() - target
    expected = excess**2 if kind == "two-sided" else torch.clamp(excess, min=0) ** 2
    torch.testing.assert_close(penalty, expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("at", ["real", "fake", "interpolates"])
def test_zero_centered_linear_critic_is_squared_weight_norm(at: str, dtype: torch.dtype) -> None:
    w = make_weight(4, 1.7, dtype)
    real, fake = make_batch((8, 4), dtype, 1), make_batch((8, 4), dtype, 2)

    penalty = gradient_penalty(linear_critic(w), real, fake, kind="zero-centered", at=at, generator=gen())
    (grad_w,) = torch.autograd.grad(penalty, w)

    torch.testing.assert_close(penalty, w.detach().norm() ** 2, **TOL[dtype])
    torch.testing.assert_close(grad_w, 2 * w.detach(), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [0.5, 2.0])
@pytest.mark.parametrize("shape", [(8, 5), (4, 2, 3, 3)], ids=["2d", "4d"])
def test_dragan_against_hand_points(shape: tuple[int, ...], scale: float, dtype: torch.dtype) -> None:
    real = make_batch(shape, dtype, 1)
    a = make_symmetric(math.prod(shape[1:]), dtype, seed=3)

    penalty = gradient_penalty(quadratic_critic(a), real, at="dragan", dragan_scale=scale, generator=gen())

    norms = quadratic_norms(a, hand_dragan_points(real, scale, SEED))
    torch.testing.assert_close(penalty, ((norms - 1) ** 2).mean(), **TOL[dtype])


def test_dragan_points_lie_between_real_and_perturbed() -> None:
    real = make_batch((8, 3, 2), seed=1)

    points = dragan_points(real, 0.5, gen())

    torch.testing.assert_close(points, hand_dragan_points(real, 0.5, SEED), rtol=1e-6, atol=1e-6)
    offset = points - real  # α·0.5·std·u, in [0, 0.5·std)
    assert bool((offset >= 0).all())
    assert bool((offset < 0.5 * real.std()).all())
    assert not torch.equal(points, real)


# ---------------------------------------------------------------------------------------------------------
# 8. fraction: a subset of the batch, with extra critic inputs cut alike.
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("at", ["interpolates", "real", "fake", "dragan"])
def test_fraction_equals_the_penalty_on_the_first_samples(at: str) -> None:
    real, fake = make_batch((8, 5), seed=1), make_batch((8, 5), seed=2)
    critic = quadratic_critic(make_symmetric(5, seed=3))

    half, norms = gradient_penalty(
        critic, real, fake, at=at, fraction=0.5, generator=gen(), return_norms=True
    )
    first, first_norms = gradient_penalty(
        critic, real[:4], fake[:4], at=at, generator=gen(), return_norms=True
    )

    assert norms.shape == (4,)
    torch.testing.assert_close(half, first, rtol=0, atol=0)
    torch.testing.assert_close(norms, first_norms, rtol=0, atol=0)


@pytest.mark.parametrize(("fraction", "k"), [(1.0, 8), (0.7, 6), (0.5, 4), (0.3, 2), (0.1, 1), (1e-6, 1)])
def test_fraction_keeps_round_fraction_times_n_and_at_least_one(fraction: float, k: int) -> None:
    real, fake = make_batch((8, 5), seed=1), make_batch((8, 5), seed=2)

    _, norms = gradient_penalty(nn.Linear(5, 1), real, fake, fraction=fraction, return_norms=True)

    assert norms.shape == (k,)


def conditional_critic(x: Tensor, labels: Tensor, table: Tensor, scale: float) -> Tensor:
    """``D(x, y) = scale · x · W[y]``, so ``∇_x D = scale · W[y]``."""
    return scale * (x.flatten(1) * table[labels]).sum(1)


def test_fraction_cuts_batched_critic_inputs_and_passes_the_rest() -> None:
    real, fake = make_batch((8, 5), seed=1), make_batch((8, 5), seed=2)
    labels = torch.tensor([0, 4, 2, 2, 1, 3, 0, 4])
    table = make_batch((5, 5), seed=3)  # [classes, D]: not batched (5 != 8), passed whole
    scale = 0.7  # not a tensor: passed unchanged

    penalty, norms = gradient_penalty(
        conditional_critic,
        real,
        fake,
        fraction=0.5,
        critic_inputs=(labels, table, scale),
        generator=gen(),
        return_norms=True,
    )
    first = gradient_penalty(
        conditional_critic, real[:4], fake[:4], critic_inputs=(labels[:4], table, scale), generator=gen()
    )

    expected_norms = (scale * table[labels[:4]]).norm(dim=1)
    torch.testing.assert_close(norms, expected_norms, **TOL[torch.float32])
    torch.testing.assert_close(penalty, ((expected_norms - 1) ** 2).mean(), **TOL[torch.float32])
    torch.testing.assert_close(penalty, first, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------------------
# 9. return_norms.
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["two-sided", "one-sided", "zero-centered"])
@pytest.mark.parametrize("fraction", [1.0, 0.5])
def test_return_norms_are_the_detached_per_sample_norms(kind: str, fraction: float) -> None:
    real, fake = make_batch((8, 2, 3), seed=1), make_batch((8, 2, 3), seed=2)
    a = make_symmetric(6, seed=3).requires_grad_(True)
    k = round(8 * fraction)

    penalty, norms = gradient_penalty(
        quadratic_critic(a),
        real,
        fake,
        kind=kind,
        fraction=fraction,
        generator=gen(),
        return_norms=True,
    )

    expected = quadratic_norms(a.detach(), hand_interpolates(real[:k], fake[:k], SEED))
    torch.testing.assert_close(norms, expected, **TOL[torch.float32])
    assert not norms.requires_grad
    assert norms.grad_fn is None
    assert penalty.requires_grad


# ---------------------------------------------------------------------------------------------------------
# 10. BatchNorm critics are refused; a final Sigmoid warns.
# ---------------------------------------------------------------------------------------------------------


class _WrappedCritic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.LeakyReLU(0.2))
        self.norm = nn.BatchNorm1d(8)
        self.head = nn.Linear(8, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.norm(self.body(x)))


BATCHNORM_CRITICS = [
    pytest.param(
        lambda: nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.LeakyReLU(0.2), nn.Linear(8, 1)),
        (8, 4),
        id="batchnorm1d",
    ),
    pytest.param(
        lambda: nn.Sequential(nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8)), nn.Linear(8, 1)),
        (8, 4),
        id="nested",
    ),
    pytest.param(_WrappedCritic, (8, 4), id="module-attribute"),
    pytest.param(
        lambda: nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(64, 1),
        ),
        (8, 3, 4, 4),
        id="batchnorm2d",
    ),
]


@pytest.mark.parametrize(("make_critic", "shape"), BATCHNORM_CRITICS)
def test_batchnorm_critic_is_refused_unless_allowed(
    make_critic: Callable[[], nn.Module], shape: tuple[int, ...]
) -> None:
    torch.manual_seed(0)
    critic = make_critic()
    real, fake = make_batch(shape, seed=1), make_batch(shape, seed=2)

    with pytest.raises(ValueError, match="BatchNorm"):
        gradient_penalty(critic, real, fake, generator=gen())
    penalty = gradient_penalty(critic, real, fake, generator=gen(), allow_batchnorm=True)

    assert bool(torch.isfinite(penalty))


def test_batchnorm_mixes_samples_which_is_why_it_is_refused() -> None:
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 1))
    real, fake = make_batch((8, 4), seed=1), make_batch((8, 4), seed=2)
    real2 = real.clone()
    real2[0] += 3.0

    _, norms = gradient_penalty(critic, real, fake, generator=gen(), allow_batchnorm=True, return_norms=True)
    _, norms2 = gradient_penalty(
        critic, real2, fake, generator=gen(), allow_batchnorm=True, return_norms=True
    )

    assert (norms2[1:] - norms[1:]).abs().max() > 1e-4


def test_critic_ending_in_sigmoid_warns() -> None:
    critic = nn.Sequential(nn.Linear(4, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1), nn.Sigmoid())
    real, fake = make_batch((8, 4), seed=1), make_batch((8, 4), seed=2)

    with pytest.warns(UserWarning, match="Sigmoid"):
        gradient_penalty(critic, real, fake, generator=gen())


def test_plain_critic_neither_warns_nor_raises(recwarn: pytest.WarningsRecorder) -> None:
    real, fake = make_batch((8, 4), seed=1), make_batch((8, 4), seed=2)

    gradient_penalty(mlp_critic(4), real, fake, generator=gen())

    assert len(recwarn) == 0


# ---------------------------------------------------------------------------------------------------------
# 11. Bad arguments.
# ---------------------------------------------------------------------------------------------------------

_REAL, _FAKE = make_batch((8, 4), seed=1), make_batch((8, 4), seed=2)
_CRITIC = nn.Linear(4, 1)

BAD_ARGUMENTS = [
    pytest.param(_CRITIC, (_REAL, _FAKE), {"kind": "hinge"}, "kind must be one of", id="unknown-kind"),
    pytest.param(_CRITIC, (_REAL, _FAKE), {"at": "midpoints"}, "at must be one of", id="unknown-at"),
    pytest.param(_CRITIC, (_REAL, _FAKE), {"fraction": 0.0}, "fraction", id="fraction-zero"),
    pytest.param(_CRITIC, (_REAL, _FAKE), {"fraction": -0.5}, "fraction", id="fraction-negative"),
    pytest.param(_CRITIC, (_REAL, _FAKE), {"fraction": 1.5}, "fraction", id="fraction-above-one"),
    pytest.param(_CRITIC, (_REAL, _FAKE), {"fraction": math.nan}, "fraction", id="fraction-nan"),
    pytest.param(_CRITIC, (_REAL, _FAKE[:, :3]), {}, "shapes differ", id="shape-mismatch"),
    pytest.param(_CRITIC, (_REAL, _FAKE[:6]), {}, "shapes differ", id="batch-mismatch"),
    pytest.param(_CRITIC, (_REAL, None), {}, "needs fake", id="missing-fake-interpolates"),
    pytest.param(_CRITIC, (_REAL, None), {"at": "fake"}, "needs fake", id="missing-fake-at-fake"),
    pytest.param(lambda x: x.sum(), (_REAL[0], _FAKE[0]), {}, "batched", id="unbatched"),
    pytest.param(lambda x: x.sum(), (_REAL, _FAKE), {}, r"scores \[N, \.\.\.\]", id="scalar-score"),
    pytest.param(lambda x: x.sum(0), (_REAL, _FAKE), {}, r"with N = 8", id="scores-not-per-sample"),
    pytest.param(
        _CRITIC, (_REAL, _FAKE), {"score_map": "mean"}, "score_map must be one of", id="unknown-map"
    ),
]


@pytest.mark.parametrize(("critic", "inputs", "kwargs", "match"), BAD_ARGUMENTS)
def test_bad_arguments_raise_value_error(
    critic: CriticFn, inputs: tuple[Tensor, Tensor | None], kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        gradient_penalty(critic, *inputs, **kwargs)


@pytest.mark.parametrize("scores_shape", ["[N]", "[N, 1]"])
def test_scores_of_shape_n_or_n_by_1_are_accepted(scores_shape: str) -> None:
    w = make_weight(4, 2.0)
    critic = linear_critic(w) if scores_shape == "[N]" else (lambda x: (x @ w)[:, None])

    penalty = gradient_penalty(critic, _REAL, _FAKE, generator=gen())

    torch.testing.assert_close(penalty, torch.tensor(1.0), **TOL[torch.float32])


# ---------------------------------------------------------------------------------------------------------
# 12. Known bugs of other libraries: each buggy variant differs from a per-sample reference; ours does not.
# ---------------------------------------------------------------------------------------------------------


def epsilon_like(real: Tensor, generator: torch.Generator) -> Tensor:
    return torch.rand((real.shape[0],) + (1,) * (real.ndim - 1), generator=generator, dtype=real.dtype)


def per_sample_norm(grads: Tensor) -> Tensor:
    return grads.flatten(1).norm(dim=1)


def _penalty_with(
    critic: CriticFn, real: Tensor, fake: Tensor, eps: Tensor, norm: Callable[[Tensor], Tensor]
) -> Tensor:
    points = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grads,) = torch.autograd.grad(critic(points).sum(), points, create_graph=True)
    return ((norm(grads) - 1) ** 2).mean()


def reference_penalty(critic: CriticFn, real: Tensor, fake: Tensor, generator: torch.Generator) -> Tensor:
    """WGAN-GP by the letter, one sample at a time: ``x̂_i = ε_i x_i + (1 − ε_i) x̃_i``, ``(‖∇D(x̂_i)‖ − 1)²``."""
    terms = []
    for eps, x, x_tilde in zip(epsilon_like(real, generator), real, fake, strict=True):
        point = (eps * x + (1 - eps) * x_tilde).unsqueeze(0).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(point).sum(), point, create_graph=True)
        terms.append((grad.flatten().norm() - 1) ** 2)
    return torch.stack(terms).mean()


def one_epsilon_per_batch(critic: CriticFn, real: Tensor, fake: Tensor, generator: torch.Generator) -> Tensor:
    eps = torch.rand((1,) * real.ndim, generator=generator, dtype=real.dtype)
    return _penalty_with(critic, real, fake, eps, per_sample_norm)


def one_norm_per_batch(critic: CriticFn, real: Tensor, fake: Tensor, generator: torch.Generator) -> Tensor:
    return _penalty_with(critic, real, fake, epsilon_like(real, generator), lambda g: g.norm())


def per_pixel_epsilon(critic: CriticFn, real: Tensor, fake: Tensor, generator: torch.Generator) -> Tensor:
    eps = torch.rand(real.shape, generator=generator, dtype=real.dtype)
    return _penalty_with(critic, real, fake, eps, per_sample_norm)


def norm_over_channels(critic: CriticFn, real: Tensor, fake: Tensor, generator: torch.Generator) -> Tensor:
    return _penalty_with(critic, real, fake, epsilon_like(real, generator), lambda g: g.norm(dim=1))


def per_element_abs(critic: CriticFn, real: Tensor, fake: Tensor, generator: torch.Generator) -> Tensor:
    return _penalty_with(critic, real, fake, epsilon_like(real, generator), lambda g: g.abs())


def normal_epsilon(critic: CriticFn, real: Tensor, fake: Tensor, generator: torch.Generator) -> Tensor:
    eps = torch.randn((real.shape[0],) + (1,) * (real.ndim - 1), generator=generator, dtype=real.dtype)
    return _penalty_with(critic, real, fake, eps, per_sample_norm)


KNOWN_BUGS = [
    one_epsilon_per_batch,
    one_norm_per_batch,
    per_pixel_epsilon,
    norm_over_channels,
    per_element_abs,
    normal_epsilon,
]


@pytest.mark.parametrize("buggy", KNOWN_BUGS, ids=[bug.__name__ for bug in KNOWN_BUGS])
def test_known_bug_differs_from_reference_and_ours_does_not(buggy: CriticFn) -> None:
    # A quadratic critic on images: the gradient varies with the point and across pixels and channels.
    real, fake = make_batch((6, 3, 4, 4), seed=1), make_batch((6, 3, 4, 4), seed=2)
    critic = quadratic_critic(make_symmetric(48, seed=3))

    reference = reference_penalty(critic, real, fake, gen())
    bug = buggy(critic, real, fake, gen())
    ours = gradient_penalty(critic, real, fake, generator=gen())

    assert (bug - reference).abs() > 1e-2 * reference.abs()
    torch.testing.assert_close(ours, reference, **TOL[torch.float32])


@pytest.mark.parametrize("shape", [(16, 7), (8, 3, 4, 4)], ids=["mlp-2d", "cnn-4d"])
def test_ours_equals_the_per_sample_reference_on_networks(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    critic = mlp_critic(shape[1]) if len(shape) == 2 else cnn_critic(size=shape[-1])
    real, fake = make_batch(shape, seed=1), make_batch(shape, seed=2)
    params = list(critic.parameters())

    reference = reference_penalty(critic, real, fake, gen())
    ours = gradient_penalty(critic, real, fake, generator=gen())

    torch.testing.assert_close(ours, reference, **TOL[torch.float32])
    for grad, expected in zip(
        torch.autograd.grad(ours, params, materialize_grads=True),
        torch.autograd.grad(reference, params, materialize_grads=True),
        strict=True,
    ):
        torch.testing.assert_close(grad, expected, **TOL[torch.float32])


def test_epsilon_is_uniform_per_sample() -> None:
    n = 20_000
    real, fake = torch.ones(n, 3, 2), torch.zeros(n, 3, 2)

    points = interpolate(real, fake, gen())  # x̂ = ε·1 + (1 − ε)·0 = ε, per sample
    eps = points[:, 0, 0]

    assert torch.equal(points, eps[:, None, None].expand_as(points))
    assert bool((eps >= 0).all()) and bool((eps < 1).all())
    assert abs(eps.mean().item() - 0.5) < 0.01  # standard error ≈ 0.002
    assert abs(eps.var().item() - 1 / 12) < 0.004  # standard error ≈ 0.0005
    assert stats.kstest(eps.double().numpy(), "uniform").pvalue > 1e-3


@pytest.mark.parametrize("shape", [(5, 2), (5, 3, 4), (5, 3, 4, 4)])
def test_per_sample_uniform_shape_dtype_and_generator(shape: tuple[int, ...]) -> None:
    like = torch.empty(shape, dtype=torch.float64)

    eps = per_sample_uniform(like, gen())

    assert eps.shape == (5,) + (1,) * (len(shape) - 1)
    assert eps.dtype == torch.float64
    assert torch.equal(eps, epsilon(like, SEED))


def test_interpolate_detaches_its_inputs() -> None:
    real = make_batch((4, 3), seed=1).requires_grad_(True)
    fake = make_batch((4, 3), seed=2).requires_grad_(True)

    points = interpolate(real, fake, gen())

    assert not points.requires_grad
    torch.testing.assert_close(
        points, hand_interpolates(real.detach(), fake.detach(), SEED), **TOL[torch.float32]
    )


# ---------------------------------------------------------------------------------------------------------
# 13. create_graph, and where the penalty's graph reaches.
# ---------------------------------------------------------------------------------------------------------


def test_create_graph_false_returns_the_same_value_without_a_graph() -> None:
    torch.manual_seed(0)
    critic = mlp_critic(4)
    real, fake = make_batch((8, 4), seed=1), make_batch((8, 4), seed=2)

    with_graph = gradient_penalty(critic, real, fake, generator=gen())
    without_graph = gradient_penalty(critic, real, fake, generator=gen(), create_graph=False)

    torch.testing.assert_close(without_graph, with_graph.detach(), rtol=0, atol=0)
    assert with_graph.requires_grad
    assert not without_graph.requires_grad
    assert without_graph.grad_fn is None
    weights = [critic[0].weight, critic[2].weight, critic[4].weight]  # the last bias does not reach ∇_x D
    grads = torch.autograd.grad(with_graph, weights)
    assert all(bool(grad.abs().sum() > 0) for grad in grads)


def test_graph_reaches_the_critic_parameters_only() -> None:
    torch.manual_seed(0)
    critic = mlp_critic(4)
    real = make_batch((8, 4), seed=1).requires_grad_(True)
    fake = make_batch((8, 4), seed=2).requires_grad_(True)  # as if straight out of the generator

    penalty = gradient_penalty(critic, real, fake, generator=gen())
    grad_real, grad_fake = torch.autograd.grad(penalty, [real, fake], allow_unused=True)

    assert grad_real is None
    assert grad_fake is None


# ---------------------------------------------------------------------------------------------------------
# 14. CUDA.
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("at", ["interpolates", "real", "dragan"])
def test_cuda_matches_cpu_for_the_same_inputs_and_epsilon(at: str) -> None:
    real, fake = make_batch((8, 3, 4, 4), seed=1), make_batch((8, 3, 4, 4), seed=2)
    a = make_symmetric(48, seed=3)
    cuda = torch.device("cuda")

    penalty, norms = gradient_penalty(
        quadratic_critic(a.to(cuda)),
        real.to(cuda),
        fake.to(cuda),
        at=at,
        generator=torch.Generator(cuda).manual_seed(SEED),
        return_norms=True,
    )

    # The same random draws, taken on the device, then the points on the CPU.
    g = torch.Generator(cuda).manual_seed(SEED)
    if at == "interpolates":
        eps = per_sample_uniform(real.to(cuda), g).cpu()
        points = eps * real + (1 - eps) * fake
    elif at == "dragan":
        u = torch.rand(real.shape, generator=g, device=cuda).cpu()
        alpha = per_sample_uniform(real.to(cuda), g).cpu()
        points = real + alpha * 0.5 * real.std() * u
    else:
        points = real
    expected_norms = quadratic_norms(a, points)
    assert penalty.device.type == "cuda"
    torch.testing.assert_close(norms.cpu(), expected_norms, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(penalty.cpu(), ((expected_norms - 1) ** 2).mean(), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------
# 15. Score maps: critics returning [N, ...] (PatchGAN), summed (the seed's choice) or per location.
# ---------------------------------------------------------------------------------------------------------


def test_tf_gan_unit_test_value_nine() -> None:
    # TF-GAN's unit test: D(x) = 2x on an input of shape [1, 4]; ∇_x Σ_j 2 x_j = (2, 2, 2, 2), norm 4, (4 − 1)² = 9.
    real, fake = torch.ones(1, 4), torch.zeros(1, 4)

    penalty = gradient_penalty(lambda x: 2 * x, real, fake, generator=gen())
    per_location = gradient_penalty(lambda x: 2 * x, real, fake, generator=gen(), score_map="per-location")

    torch.testing.assert_close(penalty, torch.tensor(9.0), rtol=0, atol=0)
    torch.testing.assert_close(per_location, torch.tensor(1.0), rtol=0, atol=0)  # each ‖2 e_j‖ = 2


def patch_critic(channels: int = 3) -> nn.Sequential:
    """A PatchGAN-like critic: [N, C, 8, 8] -> [N, 1, 2, 2]."""
    return nn.Sequential(
        nn.Conv2d(channels, 8, 4, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(8, 8, 4, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(8, 1, 3, padding=1),
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 3])
def test_patch_critic_sum_equals_the_seed_function(seed: int, dtype: torch.dtype) -> None:
    with default_dtype(dtype):
        torch.manual_seed(seed)
        critic = patch_critic()
        real, fake = make_batch((5, 3, 8, 8), dtype, seed), make_batch((5, 3, 8, 8), dtype, seed + 1)
        params = list(critic.parameters())

        torch.manual_seed(seed)
        expected = seed_gradient_penalty(critic, real, fake)  # grad_outputs=ones_like(d) on [N, 1, 2, 2]
        expected_grads = torch.autograd.grad(expected, params, materialize_grads=True)
        penalty = gradient_penalty(critic, real, fake, generator=gen(seed))
        grads = torch.autograd.grad(penalty, params, materialize_grads=True)

    assert critic(real).shape == (5, 1, 2, 2)
    torch.testing.assert_close(penalty, expected, **TOL[dtype])
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected_grad, **TOL[dtype])


def per_location_reference(critic: CriticFn, points: Tensor, target: float = 1.0) -> tuple[Tensor, Tensor]:
    """One backward per sample and location: ``mean_{i,j} (‖∇_x D_j(x_i)‖ − target)²`` and the norms [N, *S]."""
    norms = []
    for x in points:
        point = x.unsqueeze(0).requires_grad_(True)
        scores = critic(point).flatten()
        for j in range(scores.numel()):
            (grad,) = torch.autograd.grad(scores[j], point, create_graph=True)
            norms.append(grad.flatten().norm())
    stacked = torch.stack(norms).reshape((points.shape[0], *tuple(critic(points[:1]).shape[1:])))
    return ((stacked - target) ** 2).mean(), stacked


@pytest.mark.parametrize("dtype", DTYPES)
def test_patch_critic_per_location_equals_a_loop_over_samples_and_locations(dtype: torch.dtype) -> None:
    with default_dtype(dtype):
        torch.manual_seed(0)
        critic = patch_critic()
    real, fake = make_batch((4, 3, 8, 8), dtype, 1), make_batch((4, 3, 8, 8), dtype, 2)
    params = list(critic.parameters())

    penalty, norms = gradient_penalty(
        critic, real, fake, generator=gen(), score_map="per-location", return_norms=True
    )
    expected, expected_norms = per_location_reference(critic, hand_interpolates(real, fake, SEED))

    assert norms.shape == (4, 1, 2, 2)
    torch.testing.assert_close(norms, expected_norms.detach(), **TOL[dtype])
    torch.testing.assert_close(penalty, expected, **TOL[dtype])
    for grad, expected_grad in zip(
        torch.autograd.grad(penalty, params, materialize_grads=True),
        torch.autograd.grad(expected, params, materialize_grads=True),
        strict=True,
    ):
        torch.testing.assert_close(grad, expected_grad, **TOL[dtype])
    # Summed and per location differ on a real patch critic: the choice matters.
    assert (gradient_penalty(critic, real, fake, generator=gen()) - penalty).abs() > 1e-3


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["two-sided", "one-sided", "zero-centered"])
@pytest.mark.parametrize("score_shape", [(3,), (2, 2, 3)], ids=["vector", "map"])
def test_linear_score_map_closed_forms(score_shape: tuple[int, ...], kind: str, dtype: torch.dtype) -> None:
    # D(x)_j = W_j · x: the sum has gradient Σ_j W_j, location j has gradient W_j.
    locations = math.prod(score_shape)
    w = make_batch((locations, 6), dtype, 4) * 0.6
    critic = lambda x: (x.flatten(1) @ w.T).reshape((-1, *score_shape))  # noqa: E731
    real, fake = make_batch((8, 2, 3), dtype, 1), make_batch((8, 2, 3), dtype, 2)

    def term(norm: Tensor) -> Tensor:
        if kind == "zero-centered":
            return norm**2
        return (norm - 1) ** 2 if kind == "two-sided" else torch.clamp(norm - 1, min=0) ** 2

    summed = gradient_penalty(critic, real, fake, kind=kind, generator=gen())
    per_location, norms = gradient_penalty(
        critic, real, fake, kind=kind, generator=gen(), score_map="per-location", return_norms=True
    )

    torch.testing.assert_close(summed, term(w.sum(0).norm()), **TOL[dtype])
    torch.testing.assert_close(per_location, term(w.norm(dim=1)).mean(), **TOL[dtype])
    torch.testing.assert_close(
        norms, w.norm(dim=1).reshape(score_shape).expand((8, *score_shape)), **TOL[dtype]
    )


# ---------------------------------------------------------------------------------------------------------
# 16. Several inputs: one ε per sample for all, the norm over their concatenation, a chosen subset.
# ---------------------------------------------------------------------------------------------------------

PAIR_SHAPES = [(3, 2, 2), (5,), (1, 3)]  # per-sample shapes of three inputs: image-like, vector, matrix


def make_inputs(seed: int, n: int = 6, dtype: torch.dtype = torch.float64) -> tuple[Tensor, ...]:
    return tuple(make_batch((n, *shape), dtype, seed + i) for i, shape in enumerate(PAIR_SHAPES))


def flatten_inputs(inputs: Sequence[Tensor]) -> Tensor:
    return torch.cat([x.flatten(1) for x in inputs], dim=1)  # [N, Σ D_a]


def split_inputs(joint: Tensor) -> tuple[Tensor, ...]:
    widths = [math.prod(shape) for shape in PAIR_SHAPES]
    return tuple(
        part.reshape((-1, *shape))
        for part, shape in zip(joint.split(widths, dim=1), PAIR_SHAPES, strict=True)
    )


class TupleCritic(nn.Module):
    """A nonlinear critic of three inputs; ``joint`` is the same network on their flattened concatenation."""

    def __init__(self) -> None:
        super().__init__()
        width = sum(math.prod(shape) for shape in PAIR_SHAPES)
        self.net = nn.Sequential(
            nn.Linear(width, 16), nn.Tanh(), nn.Linear(16, 16), nn.Softplus(), nn.Linear(16, 1)
        )

    def forward(self, image: Tensor, vector: Tensor, matrix: Tensor) -> Tensor:
        return self.joint(flatten_inputs((image, vector, matrix)))

    def joint(self, joint: Tensor) -> Tensor:
        return self.net(joint)


def tuple_critic() -> TupleCritic:
    torch.manual_seed(0)
    return TupleCritic().double()


VARIANTS = [
    pytest.param({}, id="two-sided"),
    pytest.param({"kind": "one-sided", "target": 0.05}, id="one-sided"),
    pytest.param({"kind": "zero-centered", "at": "real"}, id="zero-centered-real"),
    pytest.param({"kind": "zero-centered", "at": "fake"}, id="zero-centered-fake"),
    pytest.param({"fraction": 0.5}, id="fraction"),
]


@pytest.mark.parametrize("variant", VARIANTS)
def test_several_inputs_equal_one_concatenated_input(variant: dict[str, object]) -> None:
    critic = tuple_critic()
    reals, fakes = make_inputs(1), make_inputs(10)
    params = list(critic.parameters())

    penalty, norms = gradient_penalty(critic, reals, fakes, generator=gen(), return_norms=True, **variant)
    expected, expected_norms = gradient_penalty(
        critic.joint,
        flatten_inputs(reals),
        flatten_inputs(fakes),
        generator=gen(),
        return_norms=True,
        **variant,
    )

    torch.testing.assert_close(penalty, expected, rtol=0, atol=0)
    torch.testing.assert_close(norms, expected_norms, rtol=0, atol=0)
    for grad, expected_grad in zip(
        torch.autograd.grad(penalty, params, materialize_grads=True),
        torch.autograd.grad(expected, params, materialize_grads=True),
        strict=True,
    ):
        torch.testing.assert_close(grad, expected_grad, **TOL[torch.float64])


def test_several_inputs_share_one_epsilon_per_sample() -> None:
    ones = tuple(torch.ones(4000, *shape) for shape in PAIR_SHAPES)
    zeros = tuple(torch.zeros(4000, *shape) for shape in PAIR_SHAPES)
    seen: list[tuple[Tensor, ...]] = []

    def critic(*inputs: Tensor) -> Tensor:
        seen.append(tuple(x.detach() for x in inputs))
        return sum(x.flatten(1).sum(1) for x in inputs) * 0.0

    gradient_penalty(critic, ones, zeros, generator=gen())

    eps = epsilon(torch.empty(4000, 1), SEED).flatten()  # x̂ = ε·1 + (1 − ε)·0 = ε
    for x in seen[0]:
        torch.testing.assert_close(x, eps.view((-1,) + (1,) * (x.ndim - 1)).expand_as(x), rtol=0, atol=0)


def test_several_inputs_with_critic_inputs_and_rows() -> None:
    critic = tuple_critic()
    reals, fakes = make_inputs(1, n=8), make_inputs(10, n=8)
    labels = torch.arange(4)
    scaled = lambda a, b, c, y: critic(a, b, c) * (1 + y[:, None])  # noqa: E731
    joint = lambda x, y: critic.joint(x) * (1 + y[:, None])  # noqa: E731
    rows = Rows(4, 8, 12)  # this batch is the rows 4:8 of a global batch of 12

    penalty = gradient_penalty(
        scaled,
        tuple(x[:4] for x in reals),
        tuple(x[:4] for x in fakes),
        critic_inputs=(labels,),
        rows=rows,
        generator=gen(),
    )
    expected = gradient_penalty(
        joint,
        flatten_inputs(reals)[:4],
        flatten_inputs(fakes)[:4],
        critic_inputs=(labels,),
        rows=rows,
        generator=gen(),
    )

    torch.testing.assert_close(penalty, expected, rtol=0, atol=0)


def hand_dragan_tuple(reals: Sequence[Tensor], scale: float, seed: int) -> Tensor:
    """DRAGAN's points on the concatenation: ``u`` drawn for ``[N, Σ D_a]``, the std of each input, one α."""
    g = torch.Generator().manual_seed(seed)
    joint = flatten_inputs(reals)
    u = torch.rand(joint.shape, generator=g, dtype=joint.dtype)
    std = torch.cat([x.std().expand(math.prod(x.shape[1:])) for x in reals])  # [Σ D_a], per-input std
    alpha = torch.rand((joint.shape[0], 1), generator=g, dtype=joint.dtype)
    return joint + alpha * scale * std * u


def test_several_inputs_dragan_against_hand_points() -> None:
    critic = tuple_critic()
    reals = make_inputs(1)
    reals = (reals[0] * 3.0, *reals[1:])  # different spreads: std is taken per input

    penalty, norms = gradient_penalty(
        critic, reals, at="dragan", dragan_scale=0.7, generator=gen(), return_norms=True
    )

    points = hand_dragan_tuple(reals, 0.7, SEED).requires_grad_(True)
    (grads,) = torch.autograd.grad(critic.joint(points).sum(), points)
    torch.testing.assert_close(norms, grads.norm(dim=1), **TOL[torch.float64])
    torch.testing.assert_close(penalty, ((grads.norm(dim=1) - 1) ** 2).mean(), **TOL[torch.float64])


@pytest.mark.parametrize("at", ["interpolates", "real", "fake", "dragan"])
@pytest.mark.parametrize("wrt", [(0,), (1,), (0, 2)])
def test_wrt_differentiates_a_subset_and_passes_the_others(at: str, wrt: tuple[int, ...]) -> None:
    critic = tuple_critic()
    reals, fakes = make_inputs(1), make_inputs(10)
    passed_from = fakes if at == "fake" else reals
    # The reference: a critic of the chosen inputs only, the others fixed at their passed-through values.
    others = {i: passed_from[i] for i in range(3) if i not in wrt}

    def of_chosen(*chosen: Tensor) -> Tensor:
        inputs = dict(others) | dict(zip(wrt, chosen, strict=True))
        return critic(*(inputs[i] for i in range(3)))

    def joint(x: Tensor) -> Tensor:
        widths = [math.prod(PAIR_SHAPES[i]) for i in wrt]
        parts = [p.reshape((-1, *PAIR_SHAPES[i])) for p, i in zip(x.split(widths, dim=1), wrt, strict=True)]
        return of_chosen(*parts)

    chosen_real = [reals[i] for i in wrt]
    chosen_fake = [fakes[i] for i in wrt]
    penalty, norms = gradient_penalty(
        critic, reals, fakes, at=at, wrt=wrt, generator=gen(), return_norms=True
    )
    if at == "dragan":
        points = hand_dragan_tuple(chosen_real, 0.5, SEED).requires_grad_(True)
        (grads,) = torch.autograd.grad(joint(points).sum(), points)
        expected_norms = grads.norm(dim=1)
        expected = ((expected_norms - 1) ** 2).mean()
        tol = TOL[torch.float64]
    else:
        expected, expected_norms = gradient_penalty(
            joint,
            flatten_inputs(chosen_real),
            flatten_inputs(chosen_fake),
            at=at,
            generator=gen(),
            return_norms=True,
        )
        tol = {"rtol": 0.0, "atol": 0.0}

    torch.testing.assert_close(norms, expected_norms, **tol)
    torch.testing.assert_close(penalty, expected, **tol)


def test_wrt_leaves_integer_inputs_alone() -> None:
    # An image and a Bool mask: only the image is interpolated and differentiated.
    w = make_weight(12, 2.0, torch.float64)
    critic = lambda x, mask: (x.flatten(1) * mask.flatten(1)) @ w  # noqa: E731
    real, fake = make_batch((5, 3, 4), torch.float64, 1), make_batch((5, 3, 4), torch.float64, 2)
    mask = make_batch((5, 3, 4), seed=3) > 0

    penalty, norms = gradient_penalty(
        critic, (real, mask), (fake, mask), wrt=(0,), generator=gen(), return_norms=True
    )

    expected_norms = (w.detach() * mask.flatten(1)).norm(dim=1)
    torch.testing.assert_close(norms, expected_norms, **TOL[torch.float64])
    torch.testing.assert_close(penalty, ((expected_norms - 1) ** 2).mean(), **TOL[torch.float64])


@pytest.mark.parametrize("score_map", ["sum", "per-location"])
def test_several_inputs_with_a_score_map(score_map: str) -> None:
    w = make_batch((4, 20), torch.float64, 4)  # D(x)_j = W_j · concat(x): [N, 2, 2]
    critic = lambda *x: (flatten_inputs(x) @ w.T).reshape(-1, 2, 2)  # noqa: E731
    reals, fakes = make_inputs(1), make_inputs(10)

    penalty = gradient_penalty(critic, reals, fakes, generator=gen(), score_map=score_map)

    norms = w.sum(0).norm() if score_map == "sum" else w.norm(dim=1)
    torch.testing.assert_close(penalty, ((norms - 1) ** 2).mean(), **TOL[torch.float64])


BAD_TUPLES = [
    pytest.param((_REAL, _REAL), _FAKE, {}, "both be one tensor or tuples", id="tuple-vs-tensor"),
    pytest.param((_REAL, _REAL), (_FAKE,), {}, "same length", id="lengths-differ"),
    pytest.param(
        (_REAL, _REAL), (_FAKE, _FAKE[:, :2]), {}, r"real\[1\] and fake\[1\] shapes differ", id="shapes"
    ),
    pytest.param((_REAL, _REAL[:4]), (_FAKE, _FAKE[:4]), {"wrt": (0,)}, "batch size 8", id="batch-sizes"),
    pytest.param(
        (_REAL, _REAL), (_FAKE, _FAKE), {"wrt": (2,)}, "wrt must be distinct indices", id="wrt-range"
    ),
    pytest.param(
        (_REAL, _REAL), (_FAKE, _FAKE), {"wrt": (0, 0)}, "wrt must be distinct indices", id="wrt-twice"
    ),
    pytest.param((_REAL, _REAL), (_FAKE, _FAKE), {"wrt": ()}, "wrt must be distinct indices", id="wrt-empty"),
    pytest.param((), (), {}, "non-empty tuple of tensors", id="empty"),
]


@pytest.mark.parametrize(("real", "fake", "kwargs", "match"), BAD_TUPLES)
def test_bad_tuples_raise_value_error(real: Any, fake: Any, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gradient_penalty(lambda *x: x[0].sum(1), real, fake, **kwargs)


# ---------------------------------------------------------------------------------------------------------
# 17. Critics the penalty cannot differentiate, DataParallel, integer inputs.
# ---------------------------------------------------------------------------------------------------------


class AttentionCritic(nn.Module):
    """Self-attention over a short sequence with the fused kernel (on CPU: flash, no double backward)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 8)
        self.head = nn.Linear(8, 1)

    def forward(self, x: Tensor) -> Tensor:  # [N, L, 8]
        h = self.proj(x).unflatten(-1, (2, 4)).transpose(1, 2)  # [N, heads, L, 4]
        attended = F.scaled_dot_product_attention(h, h, h).transpose(1, 2).flatten(2)
        return self.head(attended).mean(1)


class CdistCritic(nn.Module):
    """Distances to learned prototypes; ``explicit`` uses the difference norm instead of ``torch.cdist``."""

    def __init__(self, explicit: bool = False) -> None:
        super().__init__()
        self.prototypes = nn.Parameter(make_batch((3, 8), seed=7))
        self.explicit = explicit

    def forward(self, x: Tensor) -> Tensor:  # [N, L, 8]
        protos = self.prototypes.expand(x.shape[0], -1, -1)
        if self.explicit:
            distances = (x[:, :, None, :] - protos[:, None, :, :]).norm(dim=-1)
        else:
            distances = torch.cdist(x, protos)  # [N, L, 3]
        return distances.sum((1, 2))[:, None]


def test_cdist_on_this_torch_lacks_a_double_backward_on_small_inputs() -> None:
    # What PyTorch does on CPU: small inputs take cdist's direct kernel, whose backward has no derivative;
    # from 25 rows on, the default switches to a matmul form, which has one.
    x = make_batch((2, 4, 8)).requires_grad_(True)
    (grad,) = torch.autograd.grad(torch.cdist(x, make_batch((2, 3, 8), seed=1)).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="_cdist_backward"):
        torch.autograd.grad(grad.square().sum(), x)
    big = make_batch((2, 30, 8)).requires_grad_(True)
    (grad,) = torch.autograd.grad(
        torch.cdist(big, make_batch((2, 30, 8), seed=1)).sum(), big, create_graph=True
    )
    assert torch.autograd.grad(grad.square().sum(), big)[0].shape == big.shape


NO_DOUBLE_BACKWARD = [
    pytest.param(AttentionCritic, "attention", "sdpa_kernel", id="fused-sdpa"),
    pytest.param(CdistCritic, "torch.cdist", "explicit", id="cdist"),
]


@pytest.mark.parametrize(("make_critic", "layer", "fix"), NO_DOUBLE_BACKWARD)
def test_first_penalty_call_names_the_layer_without_double_backward(
    make_critic: Callable[[], nn.Module], layer: str, fix: str
) -> None:
    torch.manual_seed(0)
    critic = make_critic()
    real, fake = make_batch((4, 5, 8), seed=1), make_batch((4, 5, 8), seed=2)

    with pytest.raises(UserError, match=f"{layer}.*no double backward.*{fix}") as caught:
        gradient_penalty(critic, real, fake, generator=gen())
    with pytest.raises(UserError, match=layer):
        check_critic(critic, real)

    assert "\n" not in str(caught.value)


def test_the_fixes_the_message_names_work() -> None:
    torch.manual_seed(0)
    real, fake = make_batch((4, 5, 8), seed=1), make_batch((4, 5, 8), seed=2)
    attention = AttentionCritic()

    with sdpa_kernel(SDPBackend.MATH):
        penalty = gradient_penalty(attention, real, fake, generator=gen())
        torch.autograd.grad(penalty, list(attention.parameters()), materialize_grads=True)
    explicit = CdistCritic(explicit=True)
    penalty = gradient_penalty(explicit, real, fake, generator=gen())

    assert torch.autograd.grad(penalty, explicit.prototypes)[0].shape == (3, 8)


def test_the_probe_runs_once_per_critic_and_keeps_the_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    import wgangp.penalty as penalty_module

    calls: list[int] = []
    probe = penalty_module._probe_double_backward
    monkeypatch.setattr(
        penalty_module, "_probe_double_backward", lambda *args: (calls.append(1), probe(*args))[1]
    )
    torch.manual_seed(0)
    critic, other = mlp_critic(4), mlp_critic(4)
    real, fake = make_batch((8, 4), seed=1), make_batch((8, 4), seed=2)

    first = gradient_penalty(critic, real, fake, generator=gen())
    again = gradient_penalty(critic, real, fake, generator=gen())
    gradient_penalty(critic.forward, real, fake, generator=gen())  # a bound method counts as its module
    gradient_penalty(other, real, fake, generator=gen())
    gradient_penalty(mlp_critic(4), real, fake, generator=gen(), create_graph=False)  # nothing to probe

    assert len(calls) == 2
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    first.backward()  # the probe kept the graph
    assert critic[0].weight.grad is not None


def test_check_critic_with_an_example_restores_rng_and_buffers() -> None:
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.BatchNorm1d(8), nn.Linear(8, 1))
    before = [b.clone() for b in critic.buffers()]
    state = torch.get_rng_state()

    check_critic(critic, make_batch((8, 4)), allow_batchnorm=True)

    assert torch.equal(torch.get_rng_state(), state)
    for buffer, saved in zip(critic.buffers(), before, strict=True):
        assert torch.equal(buffer, saved)
    with pytest.raises(ValueError, match="BatchNorm"):
        check_critic(critic, make_batch((8, 4)))


def test_check_critic_without_example_keeps_its_old_behaviour(recwarn: pytest.WarningsRecorder) -> None:
    check_critic(mlp_critic(4))
    check_critic(lambda x: x.sum(1))

    assert len(recwarn) == 0


@pytest.mark.parametrize("nested", [False, True], ids=["top", "nested"])
def test_data_parallel_critic_is_refused(nested: bool) -> None:
    critic: nn.Module = nn.DataParallel(mlp_critic(4))
    if nested:
        critic = nn.Sequential(critic)
    real, fake = make_batch((8, 4), seed=1), make_batch((8, 4), seed=2)

    with pytest.raises(UserError, match=r"DataParallel.*torchrun"):
        gradient_penalty(critic, real, fake, generator=gen())
    with pytest.raises(UserError, match="DataParallel"):
        check_critic(critic)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
@pytest.mark.parametrize("which", ["real", "fake"])
def test_integer_inputs_raise_a_clear_error(dtype: torch.dtype, which: str) -> None:
    real, fake = make_batch((8, 4), seed=1), make_batch((8, 4), seed=2)
    if which == "real":
        real = (real > 0).to(dtype)
    else:
        fake = (fake > 0).to(dtype)

    with pytest.raises(UserError, match=f"{which} has dtype {dtype}.*floating-point"):
        gradient_penalty(nn.Linear(4, 1), real, fake, generator=gen())
