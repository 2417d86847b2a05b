"""wgangp.metrics.toy: exact W1 against closed forms and reference solvers; the mode-coverage convention."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
from scipy.stats import wasserstein_distance

from wgangp.data.toy import TOY_DATASETS, ToySampler, mode_centres, mode_std
from wgangp.metrics.toy import mode_stats, toy_metrics, wasserstein1

# --- wasserstein1 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_tensor", [True, False])
def test_w1_identical_sets_is_zero(as_tensor: bool) -> None:
    x = np.random.default_rng(0).normal(size=(300, 2))
    data = torch.from_numpy(x).float() if as_tensor else x
    assert wasserstein1(data, data) == pytest.approx(0.0, abs=1e-12)
    shuffled = x[np.random.default_rng(1).permutation(300)]
    assert wasserstein1(x, shuffled) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("shift", [(0.0, 0.5), (3.0, -4.0), (1e-3, 2e-3), (-0.7, 0.0, 2.4)])
def test_w1_translation_is_the_shift_norm(shift: tuple[float, ...]) -> None:
    # W1(μ, μ + v) = ‖v‖: the identity matching costs ‖v‖ and the 1-Lipschitz f(x) = v·x/‖v‖ proves ≥ ‖v‖.
    v = np.array(shift)
    x = np.random.default_rng(2).normal(size=(200, v.size))
    y = (x + v)[np.random.default_rng(3).permutation(200)]
    assert wasserstein1(x, y) == pytest.approx(float(np.linalg.norm(v)), rel=1e-9, abs=1e-12)


def test_w1_hand_computed_cases() -> None:
    # One point against a symmetric pair: every unit of mass travels 5.
    pair = np.array([[3.0, 4.0], [-3.0, -4.0]])
    assert wasserstein1(np.zeros((1, 2)), pair) == pytest.approx(5.0, rel=1e-12)
    # Points on a line, {0, 1, 2} (mass 1/3 each) vs {0, 3} (mass 1/2 each): ∫|F − G| = 1/6 + 1/6 + 1/2.
    x = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    y = np.array([[0.0, 0.0], [3.0, 0.0]])
    assert wasserstein1(x, y) == pytest.approx(5 / 6, rel=1e-12)
    assert wasserstein1(y, x) == pytest.approx(5 / 6, rel=1e-12)
    # Two crossing pairs: the optimal matching is the short one, (0,0)→(0,1) and (1,0)→(1,1).
    bottom, top = np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[1.0, 1.0], [0.0, 1.0]])
    assert wasserstein1(bottom, top) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize(("n", "dim", "seed"), [(5, 2, 0), (64, 2, 1), (300, 2, 2), (100, 5, 3)])
def test_w1_equals_optimal_assignment_for_equal_sizes(n: int, dim: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, dim)), rng.normal(size=(n, dim)) * 1.5 + 0.3
    cost = cdist(x, y)
    rows, cols = linear_sum_assignment(cost)
    assert wasserstein1(x, y) == pytest.approx(cost[rows, cols].mean(), rel=1e-9)


@pytest.mark.parametrize(("n", "m"), [(7, 3), (100, 250), (1000, 999)])
def test_w1_unequal_sizes_on_a_line_equals_scipy(n: int, m: int) -> None:
    rng = np.random.default_rng(n + m)
    u, v = rng.normal(size=n), rng.exponential(size=m)
    x = np.stack([u, np.zeros(n)], axis=1)
    y = np.stack([v, np.zeros(m)], axis=1)
    assert wasserstein1(x, y) == pytest.approx(wasserstein_distance(u, v), rel=1e-9)


def test_w1_accepts_tensors_of_any_float_dtype() -> None:
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    y = x + torch.tensor([0.3, 0.4])
    for dtype in (torch.float16, torch.float32, torch.float64):
        assert wasserstein1(x.to(dtype), y.to(dtype)) == pytest.approx(0.5, rel=2e-3)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), "same dimension"),
        (np.zeros((0, 2)), np.zeros((3, 2)), "non-empty"),
        (np.zeros(3), np.zeros((3, 1)), r"\[N, D\]"),
        (np.array([[0.0, np.nan]]), np.zeros((1, 2)), "NaN"),
    ],
)
def test_w1_argument_errors(x: np.ndarray, y: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        wasserstein1(x, y)


def test_w1_raises_when_the_solver_stops_early() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(RuntimeError, match="num_iter_max"):
        wasserstein1(rng.normal(size=(100, 2)), rng.normal(size=(100, 2)), num_iter_max=10)


# --- mode_stats --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["8gaussians", "25gaussians"])
def test_samples_at_every_centre_cover_all_modes(name: str) -> None:
    centres, std = mode_centres(name), mode_std(name)
    assert centres is not None and std is not None
    stats = mode_stats(centres.repeat(10, 1), centres, std)
    k = float(centres.shape[0])
    assert stats == {"modes_covered": k, "num_modes": k, "high_quality_fraction": 1.0}


@pytest.mark.parametrize("name", ["8gaussians", "25gaussians"])
def test_samples_in_three_modes_cover_three(name: str) -> None:
    centres, std = mode_centres(name), mode_std(name)
    assert centres is not None and std is not None
    samples = centres[[0, 3, 5]].repeat_interleave(100, dim=0) + 0.5 * std  # all well within 3σ
    stats = mode_stats(samples, centres, std)
    assert stats["modes_covered"] == 3.0
    assert stats["num_modes"] == float(centres.shape[0])
    assert stats["high_quality_fraction"] == 1.0


def test_far_away_samples_are_not_high_quality() -> None:
    centres, std = mode_centres("8gaussians"), mode_std("8gaussians")
    assert centres is not None and std is not None
    samples = torch.full((500, 2), 10.0)
    expected = {"modes_covered": 0.0, "num_modes": 8.0, "high_quality_fraction": 0.0}
    assert mode_stats(samples, centres, std) == expected
    # Between two modes: nearest to both at ≈ 0.54, far beyond 3σ ≈ 0.042.
    assert mode_stats(centres[:2].mean(0, keepdim=True) + 0.5, centres, std)["high_quality_fraction"] == 0.0


def test_high_quality_radius_is_inclusive_at_n_std() -> None:
    centres = np.array([[0.0, 0.0], [100.0, 0.0]])
    on_boundary, beyond = np.array([[3.0, 0.0]]), np.array([[3.0 + 1e-9, 0.0]])
    assert mode_stats(on_boundary, centres, 1.0)["high_quality_fraction"] == 1.0
    assert mode_stats(beyond, centres, 1.0)["high_quality_fraction"] == 0.0
    assert mode_stats(beyond, centres, 1.0, n_std=3.5)["high_quality_fraction"] == 1.0


@pytest.mark.parametrize(("in_mode", "covered"), [(5, 1.0), (4, 0.0), (6, 1.0)])
def test_coverage_threshold_is_min_fraction_of_n_over_k(in_mode: int, covered: float) -> None:
    # K = 8, n = 80, min_fraction = 0.5: a mode needs ≥ 0.5 · 80 / 8 = 5 high-quality samples; the
    # far-away samples count in n but in no mode.
    centres, std = mode_centres("8gaussians"), mode_std("8gaussians")
    assert centres is not None and std is not None
    samples = torch.cat([centres[:1].repeat(in_mode, 1), torch.full((80 - in_mode, 2), 10.0)])
    stats = mode_stats(samples, centres, std, min_fraction=0.5)
    assert stats["modes_covered"] == covered
    assert stats["high_quality_fraction"] == pytest.approx(in_mode / 80, rel=1e-12)


def test_zero_min_fraction_still_needs_one_sample() -> None:
    centres = np.array([[0.0, 0.0], [1.0, 0.0]])
    assert mode_stats(np.zeros((4, 2)), centres, 0.01, min_fraction=0.0)["modes_covered"] == 1.0


@pytest.mark.parametrize("name", ["8gaussians", "25gaussians"])
def test_real_data_high_quality_fraction_is_the_3_sigma_chi_mass(name: str) -> None:
    # A 2-d isotropic Gaussian puts 1 − e^{−9/2} of its mass within 3σ; standard error here ≈ 2.3e-4.
    centres, std = mode_centres(name), mode_std(name)
    assert centres is not None and std is not None
    stats = mode_stats(ToySampler(name, 200_000, seed=4)(), centres, std)
    assert stats["high_quality_fraction"] == pytest.approx(1 - math.exp(-4.5), abs=1.5e-3)
    assert stats["modes_covered"] == float(centres.shape[0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"std": 0.0}, "std"),
        ({"std": -1.0}, "std"),
        ({"n_std": 0.0}, "n_std"),
        ({"min_fraction": -0.1}, "min_fraction"),
    ],
)
def test_mode_stats_argument_errors(kwargs: dict[str, float], match: str) -> None:
    args: dict[str, float] = {"std": 0.1} | kwargs
    std = args.pop("std")
    with pytest.raises(ValueError, match=match):
        mode_stats(np.zeros((3, 2)), np.zeros((2, 2)), std, **args)


def test_mode_stats_dimension_mismatch() -> None:
    with pytest.raises(ValueError, match="same dimension"):
        mode_stats(np.zeros((3, 2)), np.zeros((2, 3)), 0.1)


# --- toy_metrics -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_toy_metrics_keys_and_values(name: str) -> None:
    real = ToySampler(name, 500, seed=0)()
    fake = ToySampler(name, 400, seed=1)()
    stats = toy_metrics(name, fake, real)
    assert stats["w1"] == wasserstein1(fake, real)
    if name == "swissroll":
        assert set(stats) == {"w1"}
    else:
        centres, std = mode_centres(name), mode_std(name)
        assert centres is not None and std is not None
        assert set(stats) == {"w1", "modes_covered", "num_modes", "high_quality_fraction"}
        assert {k: v for k, v in stats.items() if k != "w1"} == mode_stats(fake, centres, std)
        assert stats["modes_covered"] == stats["num_modes"] == float(centres.shape[0])


def test_toy_metrics_unknown_name() -> None:
    with pytest.raises(ValueError, match="8gaussians, 25gaussians, swissroll"):
        toy_metrics("circles", np.zeros((2, 2)), np.zeros((2, 2)))
