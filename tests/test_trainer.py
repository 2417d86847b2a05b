"""The trainer computes Algorithm 1 exactly: checked against the seed-style reference loop."""

from __future__ import annotations

import pytest
import torch

from wgangp.config import resolve_config
from wgangp.data.toy import ToySampler
from wgangp.reference import PlainLoop
from wgangp.step import update as step_update
from wgangp.trainer import Trainer, build_models


def _small(**overrides):
    values = {"width": 32, "depth": 2, "batch_size": 64, "steps": 10, "penalty_weight": 10.0} | overrides
    return resolve_config("toy", overrides=values)


def _reference(config, optimizer=None):
    generator, critic = build_models(config)
    data = ToySampler(config.dataset, config.batch_size, seed=config.seed + 2)
    noise = torch.Generator().manual_seed(config.seed + 1)
    loop = PlainLoop.from_config(config, generator, critic, data, noise=noise, optimizer=optimizer)
    return loop


def _max_relative_difference(a, b):
    return max(
        float(((x - y).norm() / y.norm().clamp_min(1e-12)).detach()) for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("dataset", ["8gaussians", "swissroll"])
def test_trainer_matches_seed_loop_with_sgd(dataset):
    # SGD propagates differences linearly, so a tight tolerance tests the math (Adam would bound every
    # difference by lr and hide a wrong gradient).
    config = _small(dataset=dataset)
    trainer = Trainer(config, device=torch.device("cpu"))
    trainer.generator_opt = torch.optim.SGD(trainer.generator.parameters(), lr=1e-2)
    trainer.critic_opt = torch.optim.SGD(trainer.critic.parameters(), lr=1e-2)
    loop = _reference(config, optimizer=lambda params: torch.optim.SGD(params, lr=1e-2))
    for _ in range(3):
        stats = trainer.train_iteration()
        _d_loss, g_loss = loop.iteration()
    assert float(stats["generator_loss"]) == pytest.approx(g_loss, rel=1e-4, abs=1e-6)
    assert _max_relative_difference(trainer.critic.parameters(), loop.critic.parameters()) < 1e-4
    assert _max_relative_difference(trainer.generator.parameters(), loop.generator.parameters()) < 1e-4


def test_trainer_matches_seed_loop_with_adam():
    config = _small()
    trainer = Trainer(config, device=torch.device("cpu"))
    loop = _reference(config)
    for _ in range(3):
        stats = trainer.train_iteration()
        _, g_loss = loop.iteration()
        # Adam normalises near-zero gradients, so rounding can flip a step of size lr: compare the losses.
        assert float(stats["generator_loss"]) == pytest.approx(g_loss, rel=1e-3, abs=1e-5)


@pytest.mark.parametrize(("loss", "eps"), [("wgan-gp", 1e-8), ("wgan-gp", 1e-4), ("wgan-clip", 1e-6)])
def test_optimizer_eps_reaches_both_optimizers(loss, eps):
    trainer = Trainer(resolve_config("toy", loss=loss, overrides={"width": 8, "optimizer_eps": eps}))
    for opt in (trainer.generator_opt, trainer.critic_opt):
        assert [g["eps"] for g in opt.param_groups] == [eps]


def test_optimizer_eps_damps_adams_step_on_a_tiny_gradient():
    # Adam's first step is lr·g/(|g| + ε): ±lr for any g ≫ ε, and ≈ lr·g/ε when g ≪ ε.
    for eps, expected in ((1e-8, 1e-3 * 1e-6 / (1e-6 + 1e-8)), (1e-4, 1e-3 * 1e-6 / (1e-6 + 1e-4))):
        config = _small(optimizer_eps=eps, lr_critic=1e-3)
        trainer = Trainer(config, device=torch.device("cpu"))
        p = next(trainer.critic.parameters())
        with torch.no_grad():
            p.zero_()  # so the step is read without the rounding of a subtraction
        p.grad = torch.full_like(p, 1e-6)
        trainer.critic_opt.step()
        assert torch.allclose(-p.detach(), torch.full_like(p, expected), rtol=1e-5, atol=0)


def test_same_seed_same_run_and_different_seed_differs():
    runs = []
    for seed in (0, 0, 1):
        trainer = Trainer(_small(seed=seed), device=torch.device("cpu"))
        for _ in range(2):
            trainer.train_iteration()
        runs.append(torch.cat([p.flatten() for p in trainer.generator.parameters()]))
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_critic_frozen_during_generator_step_and_restored():
    trainer = Trainer(_small(), device=torch.device("cpu"))
    before = [p.clone() for p in trainer.critic.parameters()]
    trainer.generator_step()
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.critic.parameters(), strict=True))
    assert all(p.requires_grad for p in trainer.critic.parameters())


def test_iteration_runs_n_critic_critic_steps(monkeypatch):
    trainer = Trainer(_small(n_critic=3), device=torch.device("cpu"))
    calls = []
    original = step_update.critic_update
    monkeypatch.setattr(step_update, "critic_update", lambda *a, **k: calls.append(1) or original(*a, **k))
    stats = trainer.train_iteration()
    assert len(calls) == 3
    assert set(stats) == {"critic_loss", "wasserstein", "penalty", "grad_norm", "generator_loss"}


def test_weight_clipping_baseline_keeps_weights_in_bounds():
    config = resolve_config("toy", loss="wgan-clip", overrides={"width": 32, "depth": 2, "batch_size": 64})
    assert (config.optimizer, config.lr_critic, config.n_critic, config.clip_value) == (
        "rmsprop",
        5e-5,
        5,
        0.01,
    )
    trainer = Trainer(config, device=torch.device("cpu"))
    assert isinstance(trainer.critic_opt, torch.optim.RMSprop)
    stats = trainer.train_iteration()
    assert "penalty" not in stats
    assert max(float(p.detach().abs().max()) for p in trainer.critic.parameters()) <= 0.01 + 1e-7


def test_standard_gan_baseline_recipe():
    config = resolve_config("toy", loss="gan", overrides={"width": 32, "depth": 2, "batch_size": 64})
    assert (config.n_critic, config.lr_critic, config.beta2) == (1, 2e-4, 0.999)
    trainer = Trainer(config, device=torch.device("cpu"))
    stats = trainer.train_iteration()
    # BCE of an untrained critic is near 2·log 2 for the discriminator.
    assert 0.5 < float(stats["critic_loss"]) < 3.0
    assert "penalty" not in stats


def test_probe_grad_norm_does_not_touch_training_streams():
    a, b = Trainer(_small(), device=torch.device("cpu")), Trainer(_small(), device=torch.device("cpu"))
    a.probe_grad_norm(torch.randn(16, 2))
    a.train_iteration()
    b.train_iteration()
    for x, y in zip(a.generator.parameters(), b.generator.parameters(), strict=True):
        assert torch.equal(x, y)


def test_ema_and_linear_decay():
    config = _small(ema_decay=0.9, lr_decay="linear", steps=4)
    trainer = Trainer(config, device=torch.device("cpu"))
    raw = [p.clone() for p in trainer.generator.parameters()]
    trainer.train_iteration()
    # After one update: ema = 0.9·θ0 + 0.1·θ1.
    for ema, p0, p1 in zip(
        trainer.generator_ema.parameters(), raw, trainer.generator.parameters(), strict=True
    ):
        torch.testing.assert_close(ema, 0.9 * p0 + 0.1 * p1)
    assert trainer.critic_opt.param_groups[0]["lr"] == pytest.approx(config.lr_critic * 0.75)
    for _ in range(3):
        trainer.train_iteration()
    assert trainer.generator_opt.param_groups[0]["lr"] == pytest.approx(0.0)


def test_state_dict_round_trip_continues_identically():
    config = _small(ema_decay=0.5, lr_decay="linear")
    straight = Trainer(config, device=torch.device("cpu"))
    for _ in range(4):
        straight.train_iteration()
    first = Trainer(config, device=torch.device("cpu"))
    for _ in range(2):
        first.train_iteration()
    resumed = Trainer(config, device=torch.device("cpu"))
    resumed.load_state_dict(first.state_dict())
    for _ in range(2):
        resumed.train_iteration()
    assert resumed.step == 4
    for x, y in zip(straight.generator.parameters(), resumed.generator.parameters(), strict=True):
        assert torch.equal(x, y)
    for x, y in zip(straight.critic.parameters(), resumed.critic.parameters(), strict=True):
        assert torch.equal(x, y)
