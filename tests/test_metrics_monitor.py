"""The held-out critic monitor (§5.6): estimates, bootstrap SEs, the overfitting detector, Figure 5a's correlation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from wgangp.errors import UserError
from wgangp.metrics.monitor import (
    GAP_PATIENCE,
    GAP_SIGMAS,
    HeldOutMonitor,
    OverfitDetector,
    critic_scores,
    held_out_estimates,
    held_out_split,
    loss_quality_correlation,
    overfit_flags,
    paired_series,
)


def _scores(n: int, mean: float, std: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return mean + std * torch.randn(n, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_estimates_are_the_means_and_gap_is_exactly_their_difference(dtype: torch.dtype) -> None:
    train, val, fake = _scores(300, 2.0, 1.0, 0), _scores(200, 1.5, 2.0, 1), _scores(400, -1.0, 0.5, 2)
    train, val, fake = train.to(dtype), val.to(dtype), fake.to(dtype)
    e = held_out_estimates(train, val, fake, resamples=50)
    t, v, f = (x.double().mean().item() for x in (train, val, fake))
    assert e["w_train"] == pytest.approx(t - f, abs=1e-12)
    assert e["w_val"] == pytest.approx(v - f, abs=1e-12)
    assert e["w_gap"] == pytest.approx(t - v, abs=1e-12)
    assert e["w_gap"] == e["w_train"] - e["w_val"]


def test_gap_and_its_se_do_not_depend_on_the_fakes() -> None:
    train, val = _scores(300, 2.0, 1.0, 0), _scores(200, 1.5, 2.0, 1)
    a = held_out_estimates(train, val, _scores(100, -1.0, 0.5, 2), seed=3)
    b = held_out_estimates(train, val, _scores(100, 5.0, 9.0, 4), seed=3)
    assert b["w_gap"] == pytest.approx(a["w_gap"], abs=1e-12)
    assert b["w_gap_se"] == pytest.approx(a["w_gap_se"], abs=1e-12)
    assert b["w_train"] != pytest.approx(a["w_train"], abs=1e-3)


def test_bootstrap_se_matches_the_closed_form_and_is_seeded() -> None:
    train, val, fake = _scores(400, 2.0, 1.0, 0), _scores(300, 1.0, 2.0, 1), _scores(500, -1.0, 3.0, 2)
    e = held_out_estimates(train, val, fake, resamples=4000, seed=0)

    def var_of_mean(s: torch.Tensor) -> float:  # the bootstrap's: plug-in variance over n
        return float(s.var(unbiased=False)) / s.shape[0]

    vt, vv, vf = var_of_mean(train), var_of_mean(val), var_of_mean(fake)
    # 4000 replicates: the SE's own relative error is ~1/√8000 ≈ 1.1%.
    assert e["w_train_se"] == pytest.approx(math.sqrt(vt + vf), rel=0.05)
    assert e["w_val_se"] == pytest.approx(math.sqrt(vv + vf), rel=0.05)
    assert e["w_gap_se"] == pytest.approx(math.sqrt(vt + vv), rel=0.05)
    assert e["w_gap_z"] == pytest.approx(e["w_gap"] / e["w_gap_se"], rel=1e-12)
    assert held_out_estimates(train, val, fake, resamples=4000, seed=0) == e
    assert held_out_estimates(train, val, fake, resamples=4000, seed=1)["w_gap_se"] != e["w_gap_se"]


@pytest.mark.parametrize(
    ("train", "val", "fake", "resamples"),
    [
        (torch.ones(1), torch.ones(3), torch.ones(3), 10),
        (torch.ones(3, 1), torch.ones(3), torch.ones(3), 10),
        (torch.ones(3), torch.tensor([1.0, float("nan")]), torch.ones(3), 10),
        (torch.ones(3), torch.ones(3), torch.ones(3), 1),
    ],
)
def test_bad_scores_are_user_errors(
    train: torch.Tensor, val: torch.Tensor, fake: torch.Tensor, resamples: int
) -> None:
    with pytest.raises(UserError):
        held_out_estimates(train, val, fake, resamples=resamples)


def test_critic_scores_chunks_and_sums_score_maps() -> None:
    x = torch.arange(24.0).view(6, 1, 2, 2)
    conv = nn.Conv2d(1, 1, 1, bias=False)
    nn.init.constant_(conv.weight, 2.0)
    got = critic_scores(conv, x, batch_size=4)  # a score map [N, 1, 2, 2], summed per sample
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, 2 * x.flatten(1).sum(1).double(), rtol=0, atol=0)


def test_held_out_split_is_disjoint_and_complete() -> None:
    train, val = held_out_split(50, 12, seed=5)
    assert (train.shape[0], val.shape[0]) == (38, 12)
    assert sorted(torch.cat([train, val]).tolist()) == list(range(50))
    torch.testing.assert_close(held_out_split(50, 12, seed=5)[1], val)
    with pytest.raises(UserError):
        held_out_split(10, 9)


def test_defaults_are_three_sigmas_three_evals() -> None:
    assert (GAP_SIGMAS, GAP_PATIENCE) == (3.0, 3)
    d = OverfitDetector()
    assert (d.k, d.patience) == (3.0, 3)


def test_detector_fires_on_a_diverging_gap_not_on_a_flat_noisy_one() -> None:
    rng = np.random.default_rng(0)
    se = 0.1
    flat = rng.normal(0.0, se, 200)  # a critic that generalises: gap ~ N(0, se²)
    assert not any(overfit_flags(flat, [se] * 200))
    diverging = np.linspace(0.0, 2.0, 40) + rng.normal(0.0, se, 40)  # the gap opens to 20 se
    flags = overfit_flags(diverging, [se] * 40)
    first = flags.index(True)
    assert all(flags[first:])
    # It fires at the third eval in a row above 3 se, not earlier.
    above = diverging > GAP_SIGMAS * se
    assert above[first - 2 : first + 1].all()
    assert not above[first - 3 : first].all()


def test_detector_needs_patience_evals_in_a_row_and_resets() -> None:
    gaps = [4, 4, 0, 4, 4, 4, 4, 1, 4]
    assert overfit_flags(gaps, [1] * 9) == [False, False, False, False, False, True, True, False, False]
    d = OverfitDetector()
    for gap in gaps:
        d.update(gap, 1.0)
    assert (d.first_eval, d.streak, d.overfitting) == (5, 1, False)
    assert overfit_flags([3.0, 3.0, 3.0], [1, 1, 1]) == [False] * 3  # at k·se exactly: not above


def test_detector_state_resumes_exactly() -> None:
    gaps = [4, 4, 4, 0, 4, 4, 4, 4]
    whole = overfit_flags(gaps, [1] * 8, k=2.0, patience=3)
    first = OverfitDetector(k=2.0, patience=3)
    head = [first.update(g, 1.0) for g in gaps[:5]]
    resumed = OverfitDetector()
    resumed.load_state_dict(first.state_dict())
    assert (resumed.k, resumed.patience) == (2.0, 3)
    assert head + [resumed.update(g, 1.0) for g in gaps[5:]] == whole
    assert resumed.state_dict() == {"k": 2.0, "patience": 3, "streak": 4, "evals": 8, "first_eval": 2}


@pytest.mark.parametrize(("k", "patience"), [(0.0, 3), (-1.0, 3), (3.0, 0)])
def test_detector_rejects_bad_settings(k: float, patience: int) -> None:
    with pytest.raises(UserError):
        OverfitDetector(k=k, patience=patience)


def test_correlation_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=30)
    y = 2 * x + rng.normal(size=30)
    x[3] = x[7] = x[11]  # ties, averaged in the ranks
    got = loss_quality_correlation(x.tolist(), y.tolist())
    assert got["pearson"] == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    assert got["spearman"] == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)


def test_correlation_closed_forms() -> None:
    assert loss_quality_correlation([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(
        {"pearson": 1.0, "spearman": 1.0}
    )
    monotone = loss_quality_correlation([1, 2, 3, 4], [1, 8, 27, 64])
    assert monotone["spearman"] == pytest.approx(1.0, abs=1e-12)
    assert 0.9 < monotone["pearson"] < 1.0
    assert loss_quality_correlation([1, 2, 3], [3, 2, 1]) == pytest.approx(
        {"pearson": -1.0, "spearman": -1.0}
    )
    assert all(math.isnan(v) for v in loss_quality_correlation([1, 1, 1], [1, 2, 3]).values())
    with pytest.raises(UserError):
        loss_quality_correlation([1, 2], [1, 2])


def test_paired_series_pairs_log_and_eval_rows_by_step() -> None:
    rows = [
        {"step": 50, "critic_loss": -3.0},
        {"step": 100, "critic_loss": -2.0},
        {"step": 100, "fd": 20.0},
        {"step": 150, "critic_loss": -1.5},
        {"step": 200, "critic_loss": -1.0},
        {"step": 200, "fd": 10.0},
        {"step": 250, "fd": 9.0},  # no log row at this step
    ]
    assert paired_series(rows) == ([100, 200], [2.0, 1.0], [20.0, 10.0])


class _Memoriser(nn.Module):
    """A critic scoring points near its "memorised" set higher: D(x) = bonus·[x₀ > 0] + x.sum()."""

    def __init__(self) -> None:
        super().__init__()
        self.bonus = nn.Parameter(torch.tensor(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bonus * (x[:, 0] > 0).to(x.dtype) + x.sum(1)


def test_monitor_reports_keys_and_fires_when_the_critic_memorises() -> None:
    g = torch.Generator().manual_seed(0)
    train = torch.randn(400, 3, generator=g).abs()  # x₀ > 0: all "memorised"
    val = torch.randn(400, 3, generator=g).abs()
    val[:, 1] += 2 * val[:, 0]
    val[:, 0] *= -1  # x₀ < 0, and x.sum() distributed as the training points'
    fakes = torch.randn(300, 3, generator=g)
    critic = _Memoriser()
    calls = []

    def fake_fn() -> torch.Tensor:
        calls.append(1)
        return fakes

    monitor = HeldOutMonitor(critic, train, val, fake_fn, resamples=200)
    out = monitor()
    assert set(out) == {
        "w_train",
        "w_val",
        "w_gap",
        "w_train_se",
        "w_val_se",
        "w_gap_se",
        "w_gap_z",
        "w_overfit",
    }
    assert all(isinstance(v, float) for v in out.values())
    expected_gap = float(train.sum(1).double().mean() - val.sum(1).double().mean())
    assert out["w_gap"] == pytest.approx(expected_gap, abs=1e-5)
    flags = [out["w_overfit"]]
    for bonus in (2.0, 2.0, 2.0, 2.0, 0.0):
        critic.bonus.data.fill_(bonus)
        out = monitor()
        flags.append(out["w_overfit"])
        assert out["w_gap"] == pytest.approx(expected_gap + bonus, abs=1e-5)  # float32 critic
    assert flags == [0.0, 0.0, 0.0, 1.0, 1.0, 0.0]
    assert len(calls) == 6
    resumed = HeldOutMonitor(critic, train, val, fakes)
    resumed.load_state_dict(monitor.state_dict())
    assert resumed.detector.state_dict() == monitor.detector.state_dict()


def test_monitor_rejects_mismatched_shapes() -> None:
    with pytest.raises(UserError):
        HeldOutMonitor(lambda x: x.sum(1), torch.ones(4, 3), torch.ones(4, 2), torch.ones(4, 3))
    with pytest.raises(UserError):
        HeldOutMonitor(lambda x: x.sum(1), torch.ones(4, 3), torch.ones(4, 3), torch.ones(4, 2))()
