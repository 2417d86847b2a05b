"""Figure 1 of the paper: the measurements are exact, and reduced real runs show the paper's effects."""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from wgangp.cli import main
from wgangp.data.toy import ToySampler
from wgangp.experiments import figures
from wgangp.experiments.figures import (
    FIG1A_ITERATIONS,
    FIG1A_QUICK,
    FIG1B_STEPS,
    NoisyData,
    fraction_at_bound,
    layer_gradient_norms,
    run_figure_1b,
    write_figure_1a,
    write_figure_1b,
)
from wgangp.models.mlp import MLPCritic
from wgangp.trainer import Trainer

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
    # A reduced real run of the quick recipe (one Adam 1e-3 for both arms): 150 critic steps, width 64.
    path, summary = write_figure_1a(
        tmp_path,
        datasets=("8gaussians",),
        iterations=150,
        width=64,
        batch_size=128,
        resolution=24,
        lr=FIG1A_QUICK["lr"],
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


# --- Figure 1 at the official settings; --quick -------------------------------------------------------


class _Recorded(Trainer):
    made: ClassVar[list[Trainer]] = []

    def __init__(self, config):
        super().__init__(config)
        _Recorded.made.append(self)


@pytest.mark.parametrize(
    ("lr", "expected"),
    [
        (None, {"wgan-clip": (torch.optim.RMSprop, 5e-5), "wgan-gp": (torch.optim.Adam, 1e-4)}),
        (1e-3, {"wgan-clip": (torch.optim.Adam, 1e-3), "wgan-gp": (torch.optim.Adam, 1e-3)}),
    ],
)
def test_figure_1a_arms_train_with_their_recipes_and_record_a_history(monkeypatch, lr, expected):
    monkeypatch.setattr(figures, "Trainer", _Recorded)
    for loss, (optimizer, rate) in expected.items():
        _Recorded.made.clear()
        panel = figures.run_figure_1a(
            "8gaussians",
            loss,
            iterations=4,
            width=16,
            batch_size=32,
            eval_samples=50,
            resolution=8,
            lr=lr,
            record_every=2,
        )
        (trainer,) = _Recorded.made
        opt = trainer.critic_opt
        assert type(opt) is optimizer and [g["lr"] for g in opt.param_groups] == [rate]
        if optimizer is torch.optim.Adam:
            assert opt.param_groups[0]["betas"] == (0.5, 0.9)
        assert trainer.config.loss == loss and trainer.config.penalty_weight == 10.0
        assert panel.optimizer == f"{'rmsprop' if optimizer is torch.optim.RMSprop else 'adam'} {rate:g}"
        assert panel.iterations == 4 and [h["step"] for h in panel.history] == [2, 4]
        last = panel.history[-1]
        # The last record is the final critic, measured the same way as the panel.
        assert (last["w_estimate"], last["lipschitz"]) == (panel.w_estimate, panel.lipschitz)
        assert last["recovered"] == pytest.approx(panel.recovered, rel=1e-12, abs=0)
        for h in panel.history:
            assert h["recovered"] == pytest.approx(
                h["w_estimate"] / (h["lipschitz"] * panel.w1), rel=1e-12, abs=0
            )


@slow
def test_figure_1a_at_the_official_recipes_full(tmp_path):
    # The official recipes (clipping RMSProp 5e-5, penalty Adam 1e-4) need thousands of critic steps; the
    # README's run is width 128 × 5000 steps on three datasets. This is one dataset, 1500 steps, width 64.
    path, summary = write_figure_1a(
        tmp_path,
        datasets=("8gaussians",),
        iterations=1500,
        width=64,
        batch_size=128,
        resolution=24,
        record_every=500,
    )
    assert path.read_bytes()[:8] == PNG_MAGIC and summary["recipe"] == "official"
    clip, gp = summary["panels"]
    assert (clip["optimizer"], gp["optimizer"]) == ("rmsprop 5e-05", "adam 0.0001")
    assert clip["lipschitz"] < 0.05 and 0.5 < gp["lipschitz"] < 2.0
    assert [h["step"] for h in gp["history"]] == [500, 1000, 1500]
    assert 0.0 < clip["recovered"] < gp["recovered"] <= 1.0


FIGURE_CALLS = {"1a": "write_figure_1a", "1b": "write_figure_1b"}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["1a"], {"width": None, "lr": None, "iterations": None, "record_every": FIG1A_ITERATIONS // 10}),
        (["1a", "--quick"], {"width": 128, "lr": 1e-3, "iterations": 500, "record_every": 50}),
        (
            ["1a", "--quick", "--width", "32", "--record-every", "7"],
            {"width": 32, "lr": 1e-3, "iterations": 500, "record_every": 7},
        ),
        (["1b"], {"batch_size": None, "steps": None, "record_every": FIG1B_STEPS // 10}),
        (["1b", "--quick"], {"batch_size": 64, "steps": 30, "record_every": 3}),
        (["1b", "--quick", "--iterations", "12"], {"batch_size": 64, "steps": 12, "record_every": 1}),
        (["1b"], {"clip_values": None, "penalty": True}),
        (
            ["1b", "--clip-values", "0.1", "--no-penalty", "--iterations", "2000", "--record-every", "20"],
            {"clip_values": (0.1,), "penalty": False, "steps": 2000, "record_every": 20},
        ),
    ],
)
def test_quick_flag_picks_the_reduced_run_and_flags_override_it(tmp_path, monkeypatch, argv, expected):
    calls = []

    def fake(out, **options):
        calls.append(options)
        path = tmp_path / "f.png"
        return path, {"panels": [], "runs": []}

    monkeypatch.setattr(figures, FIGURE_CALLS[argv[0]], fake)
    assert main(["figure", *argv, "--out", str(tmp_path / "out")]) == 0
    (options,) = calls
    assert {key: options.get(key) for key in expected} == expected


def test_figure_1b_records_the_weight_histogram_over_iterations(tmp_path):
    run = run_figure_1b(0.01, steps=3, width=64, depth=3, batch_size=16, measure_samples=32, record_every=2)
    assert [h["step"] for h in run.history] == [0, 2, 3]
    assert run.history[-1]["fraction_at_bound"] == run.at_bound
    weights = run.weights.size
    for h in run.history:
        assert (
            len(h["histogram"]) == figures.HISTOGRAM_BINS and sum(h["histogram"]) == weights
        )  # all in [−c, c]
    # Everything within 1% of ±c sits in the two outer bins (each 5% of c wide).
    counts = np.histogram(run.weights, bins=figures.HISTOGRAM_BINS, range=(-0.01, 0.01))[0]
    assert run.history[-1]["histogram"] == counts.tolist()
    assert counts[0] + counts[-1] >= run.at_bound * weights
    penalty = run_figure_1b(
        None, steps=2, width=64, depth=3, batch_size=16, measure_samples=32, record_every=1
    )
    assert penalty.history == []  # no bound to pile at
    figures.plot_figure_1b(tmp_path / "b.png", [run, penalty])
    assert (tmp_path / "b.png").read_bytes()[:8] == PNG_MAGIC


def test_figure_1b_runs_only_the_chosen_bounds_and_draws_their_histograms_over_iterations(tmp_path):
    path, summary = write_figure_1b(
        tmp_path,
        clip_values=(0.01,),
        penalty=False,
        steps=3,
        width=64,
        depth=3,
        batch_size=16,
        record_every=1,
    )
    (run,) = summary["runs"]
    assert run["clip_value"] == 0.01 and [h["step"] for h in run["history"]] == [0, 1, 2, 3]
    # Two rows of panels: the picture is taller than the one without a tracked run.
    with Image.open(path) as picture:
        tall = picture.size[1]
    untracked = run_figure_1b(0.01, steps=1, width=64, depth=3, batch_size=16, measure_samples=32)
    figures.plot_figure_1b(tmp_path / "flat.png", [untracked])
    with Image.open(tmp_path / "flat.png") as picture:
        assert picture.size[1] < tall
    with pytest.raises(ValueError, match="at least one run"):
        write_figure_1b(tmp_path, clip_values=(), penalty=False)
