"""The memory estimate before the first step: measured by a small probe, linear in the batch, harmless."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from wgangp.config import TrainConfig
from wgangp.errors import UserError
from wgangp.step.memory import MemoryEstimate, estimate_memory, format_bytes, saved_tensor_bytes
from wgangp.trainer import Trainer


def _mlp(width: int, d_in: int, d_out: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(d_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, d_out)
    )


def test_saved_tensor_bytes_of_a_linear_layer_is_its_input() -> None:
    """``y = x Wᵀ`` saves x for the weight's gradient (the weight itself is excluded): N·D·4 bytes."""
    layer = nn.Linear(10, 3)
    x = torch.randn(7, 10, requires_grad=True)
    assert saved_tensor_bytes(lambda: layer(x), exclude=list(layer.parameters())) == 7 * 10 * 4


def _direct(generator: nn.Module, critic: nn.Module, rows: int) -> int:
    """The critic step's saved bytes measured directly at ``rows`` (what the probe extrapolates to)."""
    g = torch.Generator().manual_seed(0)
    real, z = torch.randn(rows, 2, generator=g), torch.randn(rows, 4, generator=g)

    def step() -> None:
        with torch.no_grad():
            fake = generator(z)
        critic(torch.cat([real, fake]))
        points = torch.lerp(fake, real, torch.rand(rows, 1, generator=g)).requires_grad_(True)
        (grads,) = torch.autograd.grad(critic(points).sum(), points, create_graph=True)
        grads.flatten(1).norm(dim=1)

    return saved_tensor_bytes(step, [*generator.parameters(), *critic.parameters()])


@pytest.mark.parametrize("rows", [64, 1000])
def test_probe_extrapolates_to_the_measured_activations(rows: int) -> None:
    torch.manual_seed(0)
    generator, critic = _mlp(32, 4, 2), _mlp(48, 2, 1)
    estimate = estimate_memory(
        generator, critic, sample_shape=(2,), latent_dim=4, batch_rows=rows, generator_rows=rows,
        n_critic=5, penalty=True, optimizer_moments=2, ema=False, reference_rows=rows,
    )  # fmt: skip
    measured = _direct(generator, critic, rows)
    assert 0.98 * measured <= estimate.activations <= 1.02 * measured
    weights = sum(p.numel() for m in (generator, critic) for p in m.parameters()) * 4
    assert estimate.state == 4 * weights  # weights, gradients, Adam's two moments
    assert estimate.data == 4 * 2 * (6 * rows + rows) + 4 * 4 * rows


def test_estimate_grows_linearly_and_predicts_the_largest_batch() -> None:
    torch.manual_seed(0)
    generator, critic = _mlp(16, 2, 2), _mlp(16, 2, 1)

    def at(rows: int) -> MemoryEstimate:
        return estimate_memory(
            generator, critic, sample_shape=(2,), latent_dim=2, batch_rows=rows, generator_rows=rows,
            n_critic=5, penalty=True, optimizer_moments=2, ema=True, reference_rows=256,
        )  # fmt: skip

    small, large = at(1000), at(2000)
    assert large.total - small.total == pytest.approx(small.total - at(0).total, rel=0.01)
    budget = large.total
    assert 1990 <= small.largest_batch(budget, 1000) <= 2010


def test_probe_leaves_buffers_and_random_streams_alone() -> None:
    config = TrainConfig(dataset="digits", model="dcgan", conv_width=8, latent_dim=8, batch_size=8)
    trainer = Trainer(config)
    before = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    rng, noise = torch.get_rng_state(), trainer.noise.get_state()
    trainer.check_memory()
    after = trainer.generator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm running stats untouched
    assert torch.equal(torch.get_rng_state(), rng) and torch.equal(trainer.noise.get_state(), noise)


def test_batch_that_cannot_fit_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("wgangp.step.memory.available_memory", lambda device: 10**9)
    trainer = Trainer(TrainConfig(batch_size=10_000_000, width=16, depth=2))
    with pytest.raises(UserError) as info:
        trainer.check_memory()
    message = str(info.value)
    assert "\n" not in message and "batch_size=10000000 needs about" in message and "1.0 GB free" in message
    fits = int(message.split("about ")[-1].split(" fits")[0])
    assert 10_000 < fits < 10_000_000
    Trainer(TrainConfig(batch_size=fits // 2, width=16, depth=2)).check_memory()  # half of it is accepted


@pytest.mark.parametrize(("n", "text"), [(999, "999 B"), (1500, "1.5 KB"), (2.5e9, "2.5 GB")])
def test_format_bytes(n: float, text: str) -> None:
    assert format_bytes(n) == text
