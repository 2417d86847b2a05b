"""Figure 1 of the paper: the measurements are exact, and reduced real runs show the paper's effects."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from wgangp.data.toy import ToySampler
from wgangp.experiments.figures import (
    NoisyData,
    fraction_at_bound,
    layer_gradient_norms,
    run_figure_1b,
    write_figure_1a,
    write_figure_1b,
)
from wgangp.models.mlp import MLPCritic

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
slow = pytest.mark.slow


def test_layer_gradient_norms_match_a_manual_backward():
    torch.manual_seed(0)
    critic = MLPCritic(2, width=8, depth=3)
    real, fake = torch.randn(5, 2), torch.randn(7, 2)
    # Reference: run the layers by hand and differentiate w.r.t. each ReLU output.
    h, outputs = torch.cat([real, fake]), []
    for layer in critic.net:
        h = layer(h)
        if isinstance(layer, nn.ReLU):
            outputs.append(h)
    scores = h.squeeze(-1)
    loss = scores[5:].mean() - scores[:5].mean()
    expected = torch.stack([g.double().norm() for g in torch.autograd.grad(loss, outputs)])
    got = layer_gradient_norms(critic, real, fake)
    assert got.shape == (3,) and got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=0)
    assert all(p.grad is None for p in critic.parameters())  # only the activations were differentiated


def test_fraction_at_bound_counts_weights_within_one_percent():
    module = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 3))
    with torch.no_grad():
        module[0].weight.copy_(torch.tensor([[0.1, -0.1], [0.0995, 0.098]]))
        module[1].weight.copy_(torch.tensor([[-0.09901, 0.05], [0.0, 0.1], [-0.1, 0.01]]))
        module[1].bias.fill_(0.1)  # biases are not weights
    # |w| ≥ 0.099: 0.1, -0.1, 0.0995, -0.09901, 0.1, -0.1 → 6 of 10.
    assert fraction_at_bound(module, 0.1) == pytest.approx(0.6, abs=1e-12)


def test_noisy_data_is_real_data_plus_unit_gaussian_noise():
    fixed = NoisyData("8gaussians", seed=3)
    out = fixed(torch.empty(400, 2))
    real = ToySampler("8gaussians", 1, seed=3).sample(400)
    noise = torch.randn(real.shape, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(out, real + noise)
    assert list(fixed.parameters()) == []


def test_figure_1a_penalty_holds_the_gradient_near_one_and_clipping_far_below(tmp_path):
    # A reduced real run: 150 critic steps, width 64, coarse grid.
    path, summary = write_figure_1a(
        tmp_path, datasets=("8gaussians",), iterations=150, width=64, batch_size=128, resolution=24
    )
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert json.loads(path.with_suffix(".json").read_text()) == json.loads(json.dumps(summary))
    clip, gp = summary["panels"]
    assert (clip["loss"], gp["loss"]) == ("wgan-clip", "wgan-gp")
    assert 0.7 < gp["lipschitz"] < 2.0  # the penalty pulls ‖∇D‖ to 1
    assert clip["lipschitz"] < 0.05  # clipping at ±0.01 holds the critic far below 1-Lipschitz
    assert clip["w1"] == gp["w1"] and 0.6 < gp["w1"] < 1.1  # same points: real vs real + N(0, 1)
    for panel in (clip, gp):
        assert 0.0 < panel["recovered"] <= 1.0  # a 1-Lipschitz critic cannot see more than W1
    assert gp["recovered"] > clip["recovered"]


@pytest.mark.parametrize(("clip_value", "steps"), [(0.001, 2), (0.01, 2)])
def test_figure_1b_small_clip_values_vanish_and_pile_at_the_bound(clip_value, steps):
    run = run_figure_1b(clip_value, steps=steps, width=512, batch_size=32, measure_samples=256)
    assert run.layer_norms.shape == (12,)
    assert run.trend == "vanishing" and run.span >= 1e6
    assert run.at_bound is not None and run.at_bound >= 0.5


def test_figure_1b_penalty_stays_flat():
    run = run_figure_1b(None, steps=5, width=512, batch_size=32, measure_samples=256)
    assert run.trend == "flat" and run.span < 3.0 and run.at_bound is None


@slow
def test_figure_1b_large_clip_value_explodes_full(tmp_path):
    # The README's run: width 512, batch 64, 30 generator iterations (measured: span 22, exploding).
    path, summary = write_figure_1b(tmp_path, steps=30, width=512, batch_size=64)
    spans = {r["clip_value"]: r for r in summary["runs"]}
    assert spans[0.1]["trend"] == "exploding" and spans[0.1]["span"] >= 10
    assert spans[0.001]["trend"] == "vanishing" and spans[0.001]["span"] >= 10
    assert spans[None]["span"] < 3
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_figure_1b_large_clip_value_explodes_reduced():
    run = run_figure_1b(0.1, steps=12, width=512, batch_size=64, measure_samples=256)
    assert run.trend == "exploding"
    assert run.span >= 3.0
