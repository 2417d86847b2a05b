"""The held-out critic monitor wired into a run (§5.6): the split, the estimates, the warning, resume.

The pure functions (bootstrap, detector, correlation) are tested in test_metrics_monitor.py; here their
wiring: the held-out rows are never trained on, the logged gap is exactly the difference of the two
means of the run's own critic, the warning fires through the run loop on a diverging series and not on a
flat one, a resumed run reports what an unbroken one does, and the monitor draws from no training stream.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from wgangp.config import config_from_dict, resolve_config
from wgangp.data import build_sampler
from wgangp.data.sampler import HOLDOUT_SEED, epoch_order, split_rows
from wgangp.errors import UserError
from wgangp.evaluation import kind_for
from wgangp.metrics import monitor as monitor_module
from wgangp.metrics.monitor import critic_scores
from wgangp.run.loop import OverfitWarning, load_run, train
from wgangp.run.resume import find_resume_point
from wgangp.trainer import Trainer

N_VECTORS = 240


@pytest.fixture
def vectors(tmp_path):
    """A small vectors dataset whose rows are their own index (so a row's origin is readable)."""
    data = np.arange(N_VECTORS, dtype=np.float32)[:, None].repeat(3, 1) / N_VECTORS
    path = tmp_path / "v.npy"
    np.save(path, data)
    return path


def _config(path, **overrides):
    small = {
        "dataset": "vectors",
        "data_path": str(path),
        "width": 16,
        "depth": 2,
        "latent_dim": 2,
        "batch_size": 16,
        "eval_samples": 32,
        "steps": 8,
        "log_every": 2,
        "eval_every": 2,
        "plot_every": 10**6,
        "checkpoint_every": 4,
        "lr_critic": 1e-3,
        "lr_generator": 1e-3,
    }
    return config_from_dict(small | overrides)


# -- The split -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "subset", "held"), [(100, 0, 10), (100, 30, 20), (100, 30, 70), (50, 10, 0)])
def test_split_rows_is_disjoint_and_takes_the_fixed_shuffle(n, subset, held):
    train, val = split_rows(n, train_subset=subset, held_out=held)
    order = epoch_order(n, HOLDOUT_SEED, 0)
    assert train.tolist() == sorted(order[: subset or n - held].tolist())
    assert val.tolist() == sorted(order[n - held :].tolist())
    assert not set(train.tolist()) & set(val.tolist())
    assert train.shape[0] == (subset or n - held) and val.shape[0] == held


def test_a_train_subset_is_the_same_with_or_without_a_held_out_set():
    assert torch.equal(split_rows(100, train_subset=30)[0], split_rows(100, train_subset=30, held_out=50)[0])


@pytest.mark.parametrize(
    ("subset", "held", "message"),
    [
        (101, 0, "train_subset=101, but the dataset has only 100"),
        (0, 1, "at least 2"),
        (30, 71, "monitor_holdout=71 does not fit in the 70 samples"),
        (0, 100, "does not fit in 100 samples"),
    ],
)
def test_split_rows_refuses_sizes_the_data_cannot_give(subset, held, message):
    with pytest.raises(UserError, match=message):
        split_rows(100, train_subset=subset, held_out=held)


def test_the_sampler_never_serves_a_held_out_row(vectors):
    config = _config(vectors, monitor_holdout=40, batch_size=20)
    sampler = build_sampler(config)
    held = sampler.held_out()
    assert held is not None and held.shape == (40, 3)
    held_rows = set(np.rint(held[:, 0].numpy() * N_VECTORS).astype(int).tolist())
    assert held_rows == set(split_rows(N_VECTORS, held_out=40)[1].tolist())
    seen = set()
    for _ in range(3 * (N_VECTORS - 40) // 20):  # three epochs
        seen |= set(np.rint(sampler()[:, 0].numpy() * N_VECTORS).astype(int).tolist())
    assert seen == set(range(N_VECTORS)) - held_rows
    assert build_sampler(_config(vectors)).held_out() is None


def test_train_subset_trains_on_its_rows_only(vectors):
    sampler = build_sampler(_config(vectors, train_subset=32, batch_size=16))
    seen = set()
    for _ in range(8):
        seen |= set(np.rint(sampler()[:, 0].numpy() * N_VECTORS).astype(int).tolist())
    assert seen == set(split_rows(N_VECTORS, train_subset=32)[0].tolist())


# -- The estimates through the wiring -------------------------------------------------------------------


def test_the_logged_gap_is_exactly_the_difference_of_the_two_means(vectors, tmp_path):
    config = _config(vectors, monitor_holdout=50, monitor_samples=60)
    run = train(config, tmp_path / "run", progress=False, tensorboard=False).run_dir
    last = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["step"] == config.steps

    trainer = load_run(run)  # the critic at the last eval
    kind = kind_for(config, trainer.data)
    train_real = trainer.data.reference(60, seed=config.seed + 3_000_017)
    val_real = trainer.data.held_out()
    assert val_real is not None and val_real.shape[0] == 50 and train_real.shape[0] == 60
    d_train = critic_scores(trainer.critic, train_real)
    d_val = critic_scores(trainer.critic, val_real)
    fakes = trainer.sample(60, seed=config.seed + 3_000_018, ema=False)
    d_fake = critic_scores(trainer.critic, fakes)
    # Exactly w_train − w_val, both against the same fakes: the difference of the two real means (to
    # float64 rounding; the fakes' mean cancels).
    assert last["w_gap"] == last["w_train"] - last["w_val"]
    assert last["w_gap"] == pytest.approx(float(d_train.mean() - d_val.mean()), abs=1e-12, rel=0)
    assert last["w_gap"] != pytest.approx(0.0, abs=1e-6)  # a real gap, not a vacuous zero
    assert last["w_train"] == float(d_train.mean() - d_fake.mean())
    assert last["w_val"] == float(d_val.mean() - d_fake.mean())
    assert last["w_gap_z"] == pytest.approx(last["w_gap"] / last["w_gap_se"], rel=1e-12)
    # The monitor of a reloaded run gives the same numbers (a fixed subset, fixed latents, seeded bootstrap).
    again = kind.monitor(trainer)
    assert again is not None
    assert {k: v for k, v in again().items() if k != "w_overfit"} == {
        k: last[k] for k in ("w_train", "w_val", "w_gap", "w_train_se", "w_val_se", "w_gap_se", "w_gap_z")
    }


def test_the_monitor_draws_from_no_training_stream(vectors, tmp_path):
    """A train_subset run trains exactly the same with the monitor on as off."""
    off = train(_config(vectors, train_subset=100), tmp_path / "off", progress=False, tensorboard=False)
    on = train(
        _config(vectors, train_subset=100, monitor_holdout=60),
        tmp_path / "on",
        progress=False,
        tensorboard=False,
    )
    a, b = load_run(off.run_dir), load_run(on.run_dir)
    for x, y in ((a.generator, b.generator), (a.critic, b.critic)):
        for p, q in zip(x.state_dict().values(), y.state_dict().values(), strict=True):
            assert torch.equal(p, q)
    assert "w_gap" in on.metrics and "w_gap" not in off.metrics


# -- The warning through the run loop -------------------------------------------------------------------


def _scripted(monkeypatch, gaps):
    """Replace the estimates by a scripted gap series with SE 1, one value per eval."""
    series = iter(gaps)

    def estimates(train_scores, val_scores, fake_scores, *, resamples, seed):
        gap = float(next(series))
        return {
            "w_train": gap,
            "w_val": 0.0,
            "w_gap": gap,
            "w_train_se": 1.0,
            "w_val_se": 1.0,
            "w_gap_se": 1.0,
            "w_gap_z": gap,
        }

    monkeypatch.setattr(monitor_module, "held_out_estimates", estimates)


@pytest.mark.parametrize(
    ("gaps", "fires_at"),
    [
        ([0, 1, 2, 4, 5, 6, 7, 8], 6),
        ([2.9] * 8, None),
        ([4, 4, 0, 4, 4, 0, 4, 4], None),
        ([0, 0, 0, 0, 0, 4, 4, 4], 8),
    ],
    ids=["diverging", "flat-below-k", "interrupted-streaks", "fires-at-the-last-eval"],
)
def test_the_warning_fires_on_a_diverging_series_only(vectors, tmp_path, monkeypatch, gaps, fires_at):
    _scripted(monkeypatch, gaps)
    config = _config(vectors, monitor_holdout=20, eval_every=1)  # 8 evals; k = 3, patience = 3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = train(config, tmp_path / "run", progress=False, tensorboard=False).run_dir
    fired = [w for w in caught if issubclass(w.category, OverfitWarning)]
    summary = json.loads((run / "summary.json").read_text())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    flags = [row["w_overfit"] for row in rows if "w_overfit" in row]
    assert len(flags) == 8
    if fires_at is None:
        assert fired == [] and summary["overfitting"] is False and summary["overfitting_warning"] is None
        assert flags == [0.0] * 8
    else:
        assert len(fired) == 1 and f"at step {fires_at}" in str(fired[0].message)
        assert summary["overfitting"] is True
        assert summary["overfitting_warning"]["step"] == fires_at
        assert summary["overfitting_warning"]["w_gap"] == gaps[fires_at - 1]
        assert flags.index(1.0) == fires_at - 1


# -- Resume ---------------------------------------------------------------------------------------------


def test_resume_with_the_monitor_is_bit_exact(vectors, tmp_path, monkeypatch):
    config = _config(
        vectors, monitor_holdout=40, steps=12, eval_every=2, overfit_sigmas=0.01, overfit_patience=4
    )
    # The hair trigger fires by step 12: the streak is what the resume must bring back.
    with pytest.warns(OverfitWarning):
        straight = train(config, tmp_path / "straight", progress=False, tensorboard=False).run_dir
    short = train(config.replace(steps=6), tmp_path / "resumed", progress=False, tensorboard=False).run_dir
    # Back to step 4 (checkpoint_every=4): the detector's streak must come back from the checkpoint.
    (short / "checkpoints" / "step_0000006.pt").unlink()
    point = find_resume_point(short)
    assert point.step == 4
    with pytest.warns(OverfitWarning):
        resumed = train(config, short, resume=point, progress=False, tensorboard=False).run_dir

    def rows(run):
        return [
            {k: v for k, v in json.loads(line).items() if k != "time"}
            for line in (run / "metrics.jsonl").read_text().splitlines()
        ]

    assert rows(resumed) == rows(straight)
    keep = ("overfitting", "overfitting_warning", "w_gap", "w_gap_se")
    s1, s2 = (json.loads((r / "summary.json").read_text()) for r in (straight, resumed))
    assert {k: s1[k] for k in keep} == {k: s2[k] for k in keep}
    a, b = load_run(straight), load_run(resumed)
    for p, q in zip(a.critic.state_dict().values(), b.critic.state_dict().values(), strict=True):
        assert torch.equal(p, q)


# -- Sampling with batch statistics -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["running", "batch"])
def test_trainer_samples_with_the_configured_batchnorm_statistics(mode):
    from wgangp.models.sampling import generate

    config = resolve_config("digits", overrides={"conv_width": 4, "sample_batchnorm": mode, "steps": 2})
    trainer = Trainer(config, device=torch.device("cpu"))
    trainer.train_iteration()
    z = torch.randn(16, config.latent_dim, generator=torch.Generator().manual_seed(5))
    expected = generate(trainer.generator, z, batchnorm=mode)
    assert torch.equal(trainer.sample(16, seed=5, ema=False), expected)
    other = generate(trainer.generator, z, batchnorm="batch" if mode == "running" else "running")
    assert not torch.allclose(expected, other)
    assert trainer.generator.training  # sampling leaves the training mode alone


def test_batch_statistics_sample_in_training_sized_batches():
    from wgangp.models.sampling import generate

    config = resolve_config(
        "digits", overrides={"conv_width": 4, "batch_size": 16, "sample_batchnorm": "batch"}
    )
    trainer = Trainer(config, device=torch.device("cpu"))
    z = torch.randn(40, config.latent_dim, generator=torch.Generator().manual_seed(5))
    chunks = [
        generate(trainer.generator, part, batchnorm="batch") for part in z.tensor_split(3)
    ]  # 14, 13, 13
    assert torch.equal(trainer.sample(40, seed=5, ema=False), torch.cat(chunks))
    assert not torch.allclose(
        trainer.sample(40, seed=5, ema=False), generate(trainer.generator, z, batchnorm="batch")
    )
