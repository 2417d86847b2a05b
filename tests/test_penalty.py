"""Tests for ``wgangp.penalty``: closed forms, the seed's reference, and the known bugs of other libraries.

Every expected value is computed here by hand (closed forms or an explicit reproduction of the points from the
same ``torch.Generator`` state), and every comparison is two-sided (``torch.testing.assert_close``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import torch
from scipy import stats
from torch import Tensor, nn

from wgangp import reference
from wgangp.penalty import (
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
    pytest.param(_CRITIC, (_REAL, _FAKE), {"score_map": "mean"}, "score_map must be one of", id="unknown-map"),
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
