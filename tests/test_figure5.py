"""Figure 5 (meaningful loss curves), a reduced real run: its numbers are recomputed from the runs' logs.

The full-size command (``wgangp figure 5``, 2,000 iterations per run) is in the README; this trains the
three runs for a few iterations with tiny networks and checks that the correlation, the estimates and the
detector's step in the summary are exactly what the runs logged, and that the arms are what they claim.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from wgangp.cli import main
from wgangp.experiments.figure5 import FIG5B_LOSSES, figure5_configs, write_figure_5
from wgangp.metrics.monitor import overfit_flags
from wgangp.run.log import read_metrics

TINY = {"conv_width": 4, "batch_size": 16, "eval_samples": 64, "log_every": 3, "latent_dim": 8}


@pytest.fixture(scope="module")
def figure(tmp_path_factory):
    out = tmp_path_factory.mktemp("fig5")
    path, summary = write_figure_5(out, steps=12, eval_every=3, train_subset=40, holdout=30, overrides=TINY)
    return out, path, summary


def test_the_runs_are_the_papers_arms():
    configs = figure5_configs(steps=10, eval_every=5, train_subset=40, holdout=30)
    assert set(configs) == {"5a", *(f"5b-{loss}" for loss in FIG5B_LOSSES)}
    a, gp, clip = configs["5a"], configs["5b-wgan-gp"], configs["5b-wgan-clip"]
    assert (a.dataset, a.train_subset, a.monitor_holdout, a.loss) == ("digits", 0, 0, "wgan-gp")
    assert (gp.train_subset, gp.monitor_holdout, gp.loss, gp.optimizer) == (40, 30, "wgan-gp", "adam")
    assert (clip.loss, clip.optimizer, clip.lr_critic, clip.clip_value) == (
        "wgan-clip",
        "rmsprop",
        5e-5,
        0.01,
    )
    # The two 5b arms differ only by the loss recipe.
    recipe = {"loss", "optimizer", "lr_critic", "lr_generator", "clip_value", "beta1", "beta2", "n_critic"}
    differ = {k for k, v in gp.to_dict().items() if clip.to_dict()[k] != v}
    assert differ <= recipe


def test_5a_correlation_is_recomputed_from_the_log(figure):
    out, _, summary = figure
    rows = read_metrics(out / "runs" / "5a")
    weight = summary["configs"]["5a"]["penalty_weight"]
    losses = {r["step"]: -(r["critic_loss"] + weight * r["penalty"]) for r in rows if "critic_loss" in r}
    estimates = {r["step"]: r["wasserstein"] for r in rows if "wasserstein" in r}
    fds = {r["step"]: r["fd"] for r in rows if "fd" in r}
    steps = sorted(set(losses) & set(fds))
    assert steps == [3, 6, 9, 12] == summary["5a"]["steps"]
    x, y = [losses[s] for s in steps], [fds[s] for s in steps]
    assert summary["5a"]["neg_critic_loss"] == x and summary["5a"]["fd"] == y
    r = summary["5a"]["correlation"]
    assert r["pearson"] == pytest.approx(float(np.corrcoef(x, y)[0, 1]), abs=1e-12)
    assert r["spearman"] == pytest.approx(float(stats.spearmanr(x, y).statistic), abs=1e-12)
    w = [estimates[s] for s in steps]
    assert summary["5a"]["estimate"] == pytest.approx(w, abs=1e-12)
    r = summary["5a"]["estimate_correlation"]
    assert r["pearson"] == pytest.approx(float(np.corrcoef(w, y)[0, 1]), abs=1e-12)
    assert summary["5a"]["correlation"] != summary["5a"]["estimate_correlation"]  # the penalty counts


@pytest.mark.parametrize("loss", FIG5B_LOSSES)
def test_5b_estimates_are_the_monitors(figure, loss):
    out, _, summary = figure
    run = summary["5b"][loss]
    rows = [r for r in read_metrics(out / "runs" / f"5b-{loss}") if "w_gap" in r]
    assert run["steps"] == [r["step"] for r in rows] == [3, 6, 9, 12]
    for key in ("w_train", "w_val", "w_gap", "w_gap_se"):
        assert run[key] == [r[key] for r in rows]
    assert run["w_gap"] == [t - v for t, v in zip(run["w_train"], run["w_val"], strict=True)]
    flags = overfit_flags(run["w_gap"], run["w_gap_se"])
    assert flags == [bool(r["w_overfit"]) for r in rows]  # the run's own detector agrees
    expected = next((s for s, f in zip(run["steps"], flags, strict=True) if f), None)
    assert run["overfit_step"] == expected
    assert run["final_z"] == pytest.approx(run["w_gap"][-1] / run["w_gap_se"][-1], rel=1e-12)
    summary_json = json.loads((out / "runs" / f"5b-{loss}" / "summary.json").read_text())
    assert summary_json["overfitting"] == (expected is not None)


def test_the_figure_and_its_numbers_are_written(figure):
    out, path, summary = figure
    assert path == out / "figure_5.png" and path.stat().st_size > 10_000
    saved = json.loads(path.with_suffix(".json").read_text())
    assert saved["5a"]["correlation"] == summary["5a"]["correlation"]
    assert saved["configs"]["5b-wgan-clip"]["train_subset"] == 40


def test_the_cli_offers_figure_5(capsys):
    with pytest.raises(SystemExit):
        main(["figure", "--help"])
    assert "{1a,1b,2,5}" in capsys.readouterr().out
