"""wgangp.data.toy: the official gan_toy.py distributions, determinism and resumable RNG state."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_swiss_roll

from wgangp.data.toy import TOY_DATASETS, ToySampler, mode_centres, mode_std
from wgangp.metrics.toy import wasserstein1

GAUSSIANS = ("8gaussians", "25gaussians")


def official_batch(name: str, n: int, rng: np.random.RandomState) -> np.ndarray:
    """``inf_train_gen`` of gan_toy.py, rewritten with an explicit NumPy RNG (a reference, not our code)."""
    if name == "8gaussians":
        r = 1.0 / np.sqrt(2)
        centers = 2.0 * np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (r, r), (r, -r), (-r, r), (-r, -r)])
        points = rng.randn(n, 2) * 0.02 + centers[rng.randint(0, 8, size=n)]
        return points.astype(np.float32) / 1.414
    if name == "25gaussians":
        grid = np.array([(2.0 * x, 2.0 * y) for x in range(-2, 3) for y in range(-2, 3)])
        points = rng.randn(n, 2) * 0.05 + grid[rng.randint(0, 25, size=n)]
        return points.astype(np.float32) / 2.828
    data = make_swiss_roll(n_samples=n, noise=0.25, random_state=rng)[0]
    return data.astype(np.float32)[:, [0, 2]] / 7.5


def nearest_centre(points: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dist = torch.cdist(points.double(), centres.double())  # [n, K]
    return dist.min(dim=1)  # (distance, index)


# --- the distributions -------------------------------------------------------------------------------


def test_datasets_listed() -> None:
    assert TOY_DATASETS == ("8gaussians", "25gaussians", "swissroll")


def test_8gaussians_centres_exact() -> None:
    r = 1.0 / math.sqrt(2.0)
    unit = [(1, 0), (-1, 0), (0, 1), (0, -1), (r, r), (r, -r), (-r, r), (-r, -r)]
    expected = torch.tensor([(2 * x / 1.414, 2 * y / 1.414) for x, y in unit], dtype=torch.float32)
    centres = mode_centres("8gaussians")
    assert centres is not None
    assert centres.dtype == torch.float32 and centres.shape == (8, 2)
    torch.testing.assert_close(centres, expected, rtol=0, atol=0)
    torch.testing.assert_close(
        centres.double().norm(dim=1), torch.full((8,), 2 / 1.414, dtype=torch.float64), rtol=1e-7, atol=0
    )
    angles = torch.atan2(centres[:, 1].double(), centres[:, 0].double()) / (math.pi / 4)
    torch.testing.assert_close(angles, angles.round(), rtol=0, atol=1e-6)  # multiples of 45°
    assert len(set(angles.round().remainder(8).tolist())) == 8


def test_25gaussians_centres_exact() -> None:
    centres = mode_centres("25gaussians")
    assert centres is not None and centres.shape == (25, 2) and centres.dtype == torch.float32
    expected = torch.tensor(
        [(2 * x / 2.828, 2 * y / 2.828) for x in range(-2, 3) for y in range(-2, 3)], dtype=torch.float32
    )
    torch.testing.assert_close(centres, expected, rtol=0, atol=0)
    for column in (0, 1):
        levels = torch.unique(centres[:, column]).double()
        assert levels.numel() == 5
        torch.testing.assert_close(
            levels.diff(), torch.full((4,), 2 / 2.828, dtype=torch.float64), rtol=1e-6, atol=0
        )


def test_mode_std_values() -> None:
    assert mode_std("8gaussians") == pytest.approx(0.02 / 1.414, rel=1e-12)
    assert mode_std("25gaussians") == pytest.approx(0.05 / 2.828, rel=1e-12)
    assert mode_std("swissroll") is None
    assert mode_centres("swissroll") is None


@pytest.mark.parametrize("name", GAUSSIANS)
def test_gaussian_modes_have_the_official_std_and_weights(name: str) -> None:
    centres, std = mode_centres(name), mode_std(name)
    assert centres is not None and std is not None
    k = centres.shape[0]
    points = ToySampler(name, 256, seed=3).sample(8000 * k)  # [n, 2]
    dist, index = nearest_centre(points, centres)
    # Chi with 2 dof: P(r > 7σ) = e^{-24.5}, so no sample may be that far from its centre.
    assert dist.max().item() <= 7 * std
    counts = torch.bincount(index, minlength=k).double()
    torch.testing.assert_close(
        counts / counts.sum(), torch.full((k,), 1 / k, dtype=torch.float64), rtol=0.1, atol=0
    )
    for mode in range(k):
        offsets = points[index == mode].double() - centres[mode].double()  # [n_k, 2]
        per_coord_std = offsets.std(dim=0)
        assert ((per_coord_std > 0.9 * std) & (per_coord_std < 1.1 * std)).all(), (mode, per_coord_std, std)
        assert offsets.mean(dim=0).abs().max().item() <= 5 * std / math.sqrt(offsets.shape[0])


def test_swissroll_shape_and_range() -> None:
    points = ToySampler("swissroll", 10_000, seed=0)()
    assert points.shape == (10_000, 2) and points.dtype == torch.float32
    radius = points.double().norm(dim=1) * 7.5  # undo the division: t ∈ [1.5π, 4.5π] plus N(0, 0.25²) noise
    slack = 7 * 0.25
    assert 1.5 * math.pi - slack <= radius.min().item() <= 1.5 * math.pi + 0.5
    assert 4.5 * math.pi - 0.5 <= radius.max().item() <= 4.5 * math.pi + slack
    assert points.abs().max().item() <= (4.5 * math.pi + slack) / 7.5


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_matches_the_official_generator_in_distribution(name: str) -> None:
    ours = ToySampler(name, 2000, seed=0)()
    reference = official_batch(name, 2000, np.random.RandomState(1))
    other_reference = official_batch(name, 2000, np.random.RandomState(2))
    baseline = wasserstein1(reference, other_reference)  # two finite samples of the same law
    distance = wasserstein1(ours, reference)
    assert 0 < distance <= 2 * baseline + 0.01, (distance, baseline)


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_matches_the_official_generator_in_moments(name: str) -> None:
    # W1 on 2000 points only catches gross errors; moments of 50k points catch a 5% scale error (≈ 0.05 in
    # std). Two-sample standard errors: ≤ 0.0065 for the means, ≤ 0.0045 for std and mean radius.
    n = 50_000
    ours = ToySampler(name, n, seed=0)().double().numpy()
    reference = official_batch(name, n, np.random.RandomState(1)).astype(np.float64)
    np.testing.assert_allclose(ours.mean(axis=0), reference.mean(axis=0), rtol=0, atol=0.03)
    np.testing.assert_allclose(ours.std(axis=0), reference.std(axis=0), rtol=0, atol=0.015)
    np.testing.assert_allclose(
        np.linalg.norm(ours, axis=1).mean(), np.linalg.norm(reference, axis=1).mean(), rtol=0, atol=0.015
    )


# --- determinism and state ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_same_seed_same_batches_different_seed_differs(name: str) -> None:
    a, b, c = ToySampler(name, 64, seed=7), ToySampler(name, 64, seed=7), ToySampler(name, 64, seed=8)
    for _ in range(3):
        batch_a, batch_b, batch_c = a(), b(), c()
        assert torch.equal(batch_a, batch_b)
        assert not torch.equal(batch_a, batch_c)
    assert not torch.equal(a(), a())  # fresh samples every batch


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_global_rng_untouched(name: str) -> None:
    torch.manual_seed(123)
    np.random.seed(123)
    expected_torch, expected_numpy = torch.rand(3), np.random.rand(3)
    torch.manual_seed(123)
    np.random.seed(123)
    ToySampler(name, 32, seed=0)()
    assert torch.equal(torch.rand(3), expected_torch)
    assert np.array_equal(np.random.rand(3), expected_numpy)


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_state_dict_resumes_the_exact_stream(name: str) -> None:
    sampler = ToySampler(name, 32, seed=5)
    for _ in range(3):
        sampler()
    buffer = io.BytesIO()
    torch.save(sampler.state_dict(), buffer)  # checkpoints are saved and loaded with weights_only=True
    expected = [sampler(), sampler.sample(7), sampler()]

    resumed = ToySampler(name, 32, seed=999)
    buffer.seek(0)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    got = [resumed(), resumed.sample(7), resumed()]
    for e, g in zip(expected, got, strict=True):
        assert torch.equal(e, g)


def test_state_dict_is_a_snapshot() -> None:
    sampler = ToySampler("8gaussians", 16, seed=0)
    state = sampler.state_dict()
    first = sampler()
    sampler()
    sampler.load_state_dict(state)
    assert torch.equal(sampler(), first)


def test_load_state_dict_rejects_another_dataset() -> None:
    state = ToySampler("8gaussians", 16).state_dict()
    with pytest.raises(ValueError, match="8gaussians"):
        ToySampler("swissroll", 16).load_state_dict(state)


def test_call_equals_sample_of_batch_size() -> None:
    a, b = ToySampler("25gaussians", 48, seed=1), ToySampler("25gaussians", 48, seed=1)
    assert torch.equal(a(), b.sample(48))


@pytest.mark.parametrize("n", [1, 5, 1000])
@pytest.mark.parametrize("name", TOY_DATASETS)
def test_sample_shape(name: str, n: int) -> None:
    points = ToySampler(name, 8).sample(n)
    assert points.shape == (n, 2) and points.dtype == torch.float32


# --- device and arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu"), "meta"])
@pytest.mark.parametrize("name", TOY_DATASETS)
def test_device_argument(name: str, device: str | torch.device) -> None:
    points = ToySampler(name, 16, device=device)()
    assert points.device.type == torch.device(device).type
    assert points.shape == (16, 2) and points.dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", TOY_DATASETS)
def test_same_points_on_every_device(name: str) -> None:
    cpu, cuda = ToySampler(name, 64, seed=2), ToySampler(name, 64, seed=2, device="cuda")
    batch = cuda()
    assert batch.is_cuda
    assert torch.equal(cpu(), batch.cpu())


@pytest.mark.parametrize("name", ["8gaussian", "mnist", ""])
def test_unknown_name_names_the_allowed_ones(name: str) -> None:
    for make in (lambda: ToySampler(name, 8), lambda: mode_centres(name), lambda: mode_std(name)):
        with pytest.raises(ValueError, match="8gaussians, 25gaussians, swissroll"):
            make()


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8"])
def test_bad_sizes(bad: object) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        ToySampler("8gaussians", bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must"):
        ToySampler("8gaussians", 8).sample(bad)  # type: ignore[arg-type]
