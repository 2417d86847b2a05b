"""``wgangp compare``: equal budgets, the results schema, mean ± std, the verdict, and the report files."""

from __future__ import annotations

import base64
import json
import math
import re
import statistics

import pytest
import torch

from wgangp.cli import main
from wgangp.config import resolve_config
from wgangp.errors import UserError
from wgangp.evaluation import MetricSpec
from wgangp.evaluation.images import LabelledImageKind
from wgangp.evaluation.toy import ToyKind
from wgangp.experiments import report as report_module
from wgangp.experiments.compare import (
    METHODS,
    Budget,
    aggregate,
    dataset_kind,
    judge,
    judge_methods,
    method_config,
    run_comparison,
    run_method,
)
from wgangp.experiments.methods import CURVE_KEYS, parse_methods
from wgangp.run.rundir import load_run
from wgangp.trainer import Trainer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = ["width=16", "depth=2", "batch_size=32", "eval_samples=100", "log_every=3", "eval_every=5"]


def _sets(items=TINY):
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "report"
    argv = ["compare", "--dataset", "8gaussians", "--steps", "10", "--seeds", "2", "--out", str(out)]
    assert main([*argv, *_sets(), "--no-progress"]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_results_schema(report):
    _, results = report
    assert results["format_version"] == 1
    assert results["dataset"] == "8gaussians" and results["seeds"] == [0, 1]
    assert results["methods"] == list(METHODS)
    assert results["budget"] == {"steps": 10, "seconds": None}
    assert [m["key"] for m in results["metrics"]] == ["w1", "modes_covered", "high_quality_fraction"]
    assert set(results["claim"]) >= {"text", "holds", "decided_by", "wgan-gp", "wgan-clip"}
    for method in METHODS:
        runs = results["runs"][method]
        assert [r["seed"] for r in runs] == [0, 1]
        for run in runs:
            assert run["steps"] == 10 and run["diverged"] is None and run["seconds"] > 0
            assert [row["step"] for row in run["curves"]] == [3, 6, 9, 10]
            assert [row["step"] for row in run["evals"]] == [5, 10]
            for row in run["curves"]:
                assert {"wasserstein", "grad_norm", "critic_loss", "generator_loss", "time"} <= set(row)
                assert math.isfinite(row["grad_norm"]) and row["grad_norm"] > 0
            assert run["metrics"] == {k: v for k, v in run["evals"][-1].items() if k not in ("step", "time")}
            times = [row["time"] for row in run["curves"]]
            assert times == sorted(times)
        # Only WGAN-GP logs a penalty.
        assert all(("penalty" in row) == (method == "wgan-gp") for r in runs for row in r["curves"])


def test_summary_is_mean_and_sample_std_over_seeds(report):
    _, results = report
    for method in METHODS:
        for key in ("w1", "modes_covered", "high_quality_fraction"):
            values = [r["metrics"][key] for r in results["runs"][method]]
            stats = results["summary"][method][key]
            assert stats["n"] == 2
            assert stats["mean"] == pytest.approx(statistics.fmean(values), rel=1e-12, abs=0)
            assert stats["std"] == pytest.approx(statistics.stdev(values), rel=1e-12, abs=1e-15)


def test_methods_keep_their_own_recipes_and_share_the_rest(report):
    _, results = report
    configs = results["configs"]
    assert configs["wgan-clip"]["optimizer"] == "rmsprop" and configs["wgan-clip"]["lr_critic"] == 5e-5
    assert configs["gan"]["n_critic"] == 1 and configs["gan"]["beta2"] == 0.999
    assert configs["wgan-gp"]["optimizer"] == "adam" and configs["wgan-gp"]["n_critic"] == 5
    for key in ("dataset", "width", "depth", "batch_size", "seed", "steps", "latent_dim"):
        assert len({c[key] for c in configs.values()}) == 1, key


def test_saved_runs_reproduce_the_reported_metrics(report):
    out, results = report
    for method in METHODS:
        trainer = load_run(out / "runs" / f"{method}-seed1")
        assert trainer.step == 10 and trainer.config.loss == method and trainer.config.seed == 1
        recorded = results["runs"][method][1]["metrics"]
        assert ToyKind(trainer.config).evaluate(trainer) == pytest.approx(recorded, rel=1e-9)


def test_report_files_hold_the_table_and_the_images(report):
    out, results = report
    md = (out / "report.md").read_text()
    for method_label in ("WGAN-GP", "WGAN (weight clipping)", "standard GAN"):
        assert re.search(rf"^\| {re.escape(method_label)} \| \d", md, re.M), method_label
    gp_w1 = results["summary"]["wgan-gp"]["w1"]
    assert f"{gp_w1['mean']:.3g} ± {gp_w1['std']:.2g}" in md
    for name in ("samples.png", "curves.png"):
        assert f"]({name})" in md
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    page = (out / "report.html").read_text()
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(uris) == 2
    assert all(base64.b64decode(u)[:8] == PNG_MAGIC for u in uris)
    assert 'src="' not in re.sub(r'src="data:[^"]+"', "", page)  # self-contained: nothing else is linked
    assert "<td>WGAN-GP</td>" in page and "Claim:" in page


def test_time_budget_stops_on_training_time():
    config = method_config(
        "wgan-gp",
        dataset="8gaussians",
        seed=0,
        budget=Budget(seconds=0.05),
        sets=[*TINY, "log_every=1000", "eval_every=1000"],
    )
    assert config.steps == 1_000_000_000
    trainer = Trainer(config)
    run = run_method(trainer, ToyKind(config), Budget(seconds=0.05))
    assert run.seconds >= 0.05 and run.steps == trainer.step >= 1
    assert [row["step"] for row in run.curves] == [run.steps]  # the last iteration always logs and evaluates
    assert [row["step"] for row in run.evals] == [run.steps]


def test_a_diverging_method_is_reported_not_fatal(monkeypatch):
    config = method_config("gan", dataset="8gaussians", seed=0, budget=Budget(steps=6), sets=TINY)
    trainer = Trainer(config)
    real_iteration = trainer.train_iteration

    def poisoned():
        stats = real_iteration()
        if trainer.step >= 4:
            stats["generator_loss"] = torch.tensor(math.nan)
        return stats

    monkeypatch.setattr(trainer, "train_iteration", poisoned)
    run = run_method(trainer, ToyKind(config), Budget(steps=6))
    assert run.diverged == "non-finite generator loss at step 6"
    assert [row["step"] for row in run.curves] == [3]


@pytest.mark.parametrize(
    ("values", "mean", "std"),
    [([1.0, 2.0, 3.0], 2.0, 1.0), ([5.0], 5.0, 0.0), ([1.0, math.nan, 3.0], 2.0, math.sqrt(2.0))],
)
def test_aggregate(values, mean, std):
    stats = aggregate(values)
    assert stats["mean"] == pytest.approx(mean, abs=1e-12)
    assert stats["std"] == pytest.approx(std, abs=1e-12)


MODES, W1 = MetricSpec("modes_covered", "", "higher"), MetricSpec("w1", "", "lower")


@pytest.mark.parametrize(
    ("gp", "clip", "holds", "decided_by"),
    [
        ({"modes_covered": 8, "w1": 0.5}, {"modes_covered": 6, "w1": 0.1}, True, "modes_covered"),
        ({"modes_covered": 6, "w1": 0.1}, {"modes_covered": 8, "w1": 0.5}, False, "modes_covered"),
        ({"modes_covered": 8, "w1": 0.1}, {"modes_covered": 8, "w1": 0.5}, True, "w1"),
        ({"modes_covered": 8, "w1": 0.5}, {"modes_covered": 8, "w1": 0.1}, False, "w1"),
        ({"modes_covered": 8, "w1": 0.5}, {"modes_covered": 8, "w1": 0.5}, False, None),
    ],
)
def test_judge_is_lexicographic(gp, clip, holds, decided_by):
    summary = {
        "wgan-gp": {k: {"mean": v} for k, v in gp.items()},
        "wgan-clip": {k: {"mean": v} for k, v in clip.items()},
    }
    verdict = judge(summary, (MODES, W1))
    assert verdict["holds"] is holds and verdict["decided_by"] == decided_by


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "--steps", "5", "--budget", "3"], "not allowed with argument"),
        (["compare", "--budget", "-1"], "--budget: must be a positive number"),
        (["compare", "--budget", "nan"], "--budget: must be a positive number"),
        (["compare", "--seeds", "0"], "--seeds: must be a positive integer"),
        (["compare", "--dataset", "mnist"], "argument --dataset: invalid choice"),
        (["compare", "--set", "nope=1"], "unknown config key: nope"),
        (["figure", "1c"], "invalid choice"),
        (["figure", "1a", "--iterations", "0"], "--iterations: must be a positive integer"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(argv))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_existing_report_is_kept_without_overwrite(report, capsys):
    out, _ = report
    before = (out / "results.json").read_bytes()
    assert main(["compare", "--steps", "1", "--out", str(out), *_sets(), "--no-progress"]) == 2
    assert "already holds a report" in capsys.readouterr().err
    assert (out / "results.json").read_bytes() == before


@pytest.mark.parametrize("command", [["compare", "--steps", "1"], ["figure", "1a", "--iterations", "1"]])
def test_output_path_that_is_a_file(tmp_path, capsys, command):
    out = tmp_path / "file"
    out.write_text("keep me")
    assert main([*command, "--out", str(out)]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert out.read_text() == "keep me"


def test_budget_needs_exactly_one_kind():
    with pytest.raises(UserError, match="exactly one budget"):
        Budget()
    with pytest.raises(UserError, match="exactly one budget"):
        Budget(steps=3, seconds=1.0)


@pytest.mark.parametrize("dataset", ["8gaussians", "25gaussians"])
def test_penalty_beats_clipping_at_equal_budget_reduced(tmp_path, dataset):
    # A reduced real version of the README's run (400 iterations, MLP 128×3, 3 seeds): 3 seeds of
    # 120 iterations with MLP 64×3. Clipping's RMSProp 5e-5 has barely moved by then; WGAN-GP has not.
    results = run_comparison(
        dataset,
        tmp_path,
        budget=Budget(steps=120),
        seeds=3,
        sets=["width=64", "eval_samples=500", "log_every=40", "eval_every=120"],
        methods=("wgan-gp", "wgan-clip"),
        progress=False,
    )
    assert results["claim"]["holds"], results["claim"]
    gp, clip = results["summary"]["wgan-gp"], results["summary"]["wgan-clip"]
    assert gp["modes_covered"]["mean"] >= clip["modes_covered"]["mean"]
    assert gp["w1"]["mean"] < clip["w1"]["mean"]


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["8gaussians", "25gaussians"])
def test_penalty_beats_clipping_at_equal_budget_full(tmp_path, dataset):
    # The README's command: wgangp compare --dataset D --steps 400 --seeds 3 (preset fast).
    results = run_comparison(dataset, tmp_path, budget=Budget(steps=400), seeds=3, progress=False)
    assert results["claim"]["holds"], results["claim"]


def test_penalty_beats_clipping_on_digits_reduced(tmp_path):
    # Reduced real version of the digits comparison: a DCGAN of width 16, 150 iterations, one seed. The
    # classifier is trained once and shared by both methods (cached in the report directory).
    results = run_comparison(
        "digits",
        tmp_path,
        budget=Budget(steps=150),
        preset="digits",
        sets=["conv_width=16", "eval_samples=300", "log_every=50", "eval_every=150"],
        methods=("wgan-gp", "wgan-clip"),
        progress=False,
    )
    assert results["claim"]["holds"], results["claim"]
    gp, clip = results["summary"]["wgan-gp"], results["summary"]["wgan-clip"]
    assert gp["fd"]["mean"] < clip["fd"]["mean"]
    assert gp["classes_covered"]["mean"] >= clip["classes_covered"]["mean"]
    report = (tmp_path / "report.md").read_text()
    assert "classifier FD" in report and "Samples (a fixed latent batch)" in report
    # The classifier score exp E_x KL(p(y|x) ‖ p(y)) over all the eval samples, recomputed from the saved run.
    trainer = load_run(tmp_path / "runs" / "wgan-gp-seed0")
    kind = dataset_kind(trainer.config, cache_dir=tmp_path)
    _, probs = kind.scorer.embed(kind.fakes(trainer, trainer.config.eval_samples))
    p = probs.double()
    expected = math.exp(float(torch.special.xlogy(p, p / p.mean(0, keepdim=True)).sum(1).mean()))
    assert results["runs"]["wgan-gp"][0]["metrics"]["score"] == pytest.approx(expected, rel=1e-9, abs=0)
    assert 1.0 <= clip["score"]["mean"] < gp["score"]["mean"] <= 10.0


@pytest.mark.slow
def test_penalty_beats_clipping_on_digits_full(tmp_path):
    # The README's command: wgangp compare --dataset digits --seeds 3 (preset digits, 2000 iterations).
    results = run_comparison("digits", tmp_path, budget=Budget(steps=2000), seeds=3, preset="digits")
    assert results["claim"]["holds"], results["claim"]


# --- Figure 3's arms: --methods ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["wgan-gp", "wgan-clip", "gan"])
def test_a_loss_method_is_exactly_its_loss_recipe(method):
    # The methods that are losses resolve exactly as `--loss` does (what compare always trained).
    via_method = method_config(method, dataset="8gaussians", seed=3, budget=Budget(steps=7), sets=TINY)
    via_loss = resolve_config(
        "fast", loss=method, sets=TINY, overrides={"dataset": "8gaussians", "seed": 3, "steps": 7}
    )
    assert via_method == via_loss


@pytest.mark.parametrize("preset", ["fast", "digits"])
def test_the_rmsprop_arm_is_the_penalty_with_clippings_optimizer(preset):
    budget = Budget(steps=2)
    rms = method_config("wgan-gp-rmsprop", dataset="8gaussians", seed=0, budget=budget, preset=preset)
    adam = method_config("wgan-gp", dataset="8gaussians", seed=0, budget=budget, preset=preset)
    clip = method_config("wgan-clip", dataset="8gaussians", seed=0, budget=budget, preset=preset)
    assert rms.loss == "wgan-gp" and rms.optimizer == "rmsprop"
    assert rms.lr_critic == rms.lr_generator == clip.lr_critic == 5e-5
    assert rms.penalty_weight == adam.penalty_weight == resolve_config(preset).penalty_weight
    changed = {k for k, v in rms.to_dict().items() if adam.to_dict()[k] != v}
    assert changed == {"optimizer", "lr_critic", "lr_generator"}


def test_the_rmsprop_arm_really_steps_with_rmsprop_and_the_penalty():
    config = method_config("wgan-gp-rmsprop", dataset="8gaussians", seed=0, budget=Budget(steps=1), sets=TINY)
    trainer = Trainer(config)
    for opt in (trainer.critic_opt, trainer.generator_opt):
        assert type(opt) is torch.optim.RMSprop
        assert [group["lr"] for group in opt.param_groups] == [5e-5] * len(opt.param_groups)
    before = [p.detach().clone() for p in trainer.critic.parameters()]
    stats = trainer.critic_step()
    assert float(stats["penalty"]) > 0
    # RMSProp's first step moves a weight by lr·g/(√((1 − α)·g²) + ε) = 10·lr (α = 0.99) wherever g ≠ 0;
    # Adam's first step would move it by its lr.
    moved = torch.cat(
        [(p.detach() - b).abs().flatten() for p, b in zip(trainer.critic.parameters(), before, strict=True)]
    )
    assert float(moved.max()) == pytest.approx(10 * 5e-5, rel=1e-3)


def _tiny_comparison(tmp_path, methods):
    return run_comparison(
        "8gaussians",
        tmp_path,
        budget=Budget(steps=6),
        sets=[*TINY, "eval_every=3"],
        methods=methods,
        progress=False,
    )


def test_methods_selects_the_arms_and_the_report_lists_them(tmp_path):
    methods = ("wgan-gp-rmsprop", "gan")
    results = _tiny_comparison(tmp_path, methods)
    assert results["methods"] == list(methods)
    assert set(results["runs"]) == set(results["summary"]) == set(results["configs"]) == set(methods)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["gan-seed0", "wgan-gp-rmsprop-seed0"]
    assert all(r["method"] == m for m in methods for r in results["runs"][m])
    assert results["configs"]["wgan-gp-rmsprop"]["optimizer"] == "rmsprop"
    # Only the penalised arm logs a penalty; its recipe line names λ.
    assert all("penalty" in row for row in results["runs"]["wgan-gp-rmsprop"][0]["curves"])
    assert not any("penalty" in row for row in results["runs"]["gan"][0]["curves"])
    md = (tmp_path / "report.md").read_text()
    assert md.startswith("# WGAN-GP (RMSProp) vs standard GAN: 8gaussians\n")
    assert "WGAN-GP (RMSProp): rmsprop lr 5e-05, n_critic 5, MLP 16×2, λ = 0.1" in md
    assert re.search(r"^\| WGAN-GP \(RMSProp\) \| \d", md, re.M) and "| WGAN (weight clipping) |" not in md
    # No clipping arm: the claim is not tested, and the one pair says which method is better.
    claim = results["claim"]
    assert claim["holds"] is None and claim["not_tested"] == "--methods has no wgan-clip"
    assert "**not tested** here (--methods has no wgan-clip)" in md
    (pair,) = results["pairs"]
    assert pair["compared"] == ["wgan-gp-rmsprop", "gan"]
    ranking = ToyKind(method_config("gan", dataset="8gaussians", seed=0, budget=Budget(steps=6))).ranking
    assert pair == judge(results["summary"], ranking, "wgan-gp-rmsprop", "gan")
    # Curves against both axes: generator iterations and training time, per logged row and per evaluation.
    for method in methods:
        (run,) = results["runs"][method]
        for rows in (run["curves"], run["evals"]):
            assert [r["step"] for r in rows] == sorted(r["step"] for r in rows) and rows[-1]["step"] == 6
            assert all(0 < r["time"] <= run["seconds"] for r in rows)
        assert (
            run["cpu_seconds"] > 0 and results["summary"][method]["cpu_seconds"]["mean"] == run["cpu_seconds"]
        )


@pytest.mark.parametrize(
    ("methods", "compared", "not_tested", "pairs"),
    [
        (
            METHODS,
            ["wgan-gp", "wgan-clip"],
            None,
            [("wgan-gp", "wgan-clip"), ("wgan-gp", "gan"), ("wgan-clip", "gan")],
        ),
        (
            ("gan", "wgan-clip", "wgan-gp-rmsprop", "wgan-gp"),
            ["wgan-gp", "wgan-clip"],
            None,
            [
                ("wgan-gp", "wgan-gp-rmsprop"),
                ("wgan-gp", "gan"),
                ("wgan-gp", "wgan-clip"),
                ("wgan-gp-rmsprop", "gan"),
                ("wgan-gp-rmsprop", "wgan-clip"),
                ("gan", "wgan-clip"),
            ],
        ),
        (
            ("wgan-clip", "wgan-gp-rmsprop"),
            ["wgan-gp-rmsprop", "wgan-clip"],
            None,
            [("wgan-gp-rmsprop", "wgan-clip")],
        ),
        (("wgan-gp", "gan"), ["wgan-gp"], "--methods has no wgan-clip", [("wgan-gp", "gan")]),
        (
            ("wgan-clip", "gan"),
            ["wgan-clip"],
            "--methods has no WGAN-GP arm (wgan-gp or wgan-gp-rmsprop)",
            [("wgan-clip", "gan")],
        ),
        (("gan",), [], "--methods has no WGAN-GP arm (wgan-gp or wgan-gp-rmsprop) and no wgan-clip", []),
    ],
)
def test_the_claim_compares_the_arms_that_were_run(methods, compared, not_tested, pairs):
    means = {"wgan-gp": 8, "wgan-gp-rmsprop": 7, "wgan-clip": 2, "gan": 5}
    summary = {m: {"modes_covered": {"mean": means[m]}, "w1": {"mean": 1.0}} for m in methods}
    claim, got = judge_methods(summary, (MODES, W1), methods, "GP wins")
    assert claim["compared"] == compared
    if not_tested is None:
        assert claim["holds"] is True and claim["decided_by"] == "modes_covered"
        assert claim[compared[0]] == means[compared[0]] and claim[compared[1]] == 2
        assert claim["text"] == (
            "GP wins" if compared[0] == "wgan-gp" else "GP wins (WGAN-GP arm: WGAN-GP (RMSProp))"
        )
    else:
        assert claim["holds"] is None and claim["not_tested"] == not_tested
    assert [tuple(p["compared"]) for p in got] == pairs
    for pair in got:
        a, b = pair["compared"]
        assert pair["holds"] is (means[a] > means[b])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("wgan-gp,hinge", "unknown method 'hinge' in --methods"),
        ("wgan-gp, wgan-gp", "--methods names 'wgan-gp' twice"),
        ("", "--methods needs at least one method"),
        (",", "--methods needs at least one method"),
    ],
)
def test_bad_methods_are_refused_before_anything_is_written(tmp_path, text, message):
    with pytest.raises(UserError, match=re.escape(message)):
        parse_methods(text)
    with pytest.raises(UserError, match=re.escape(message.replace(" in --methods", ""))):
        methods = [m.strip() for m in text.split(",") if m.strip()]
        run_comparison(
            "8gaussians", tmp_path / "out", budget=Budget(steps=1), methods=methods, progress=False
        )
    assert not (tmp_path / "out").exists()


def test_parse_methods_keeps_the_order_given():
    assert parse_methods(" gan,wgan-gp-rmsprop ,wgan-clip") == ("gan", "wgan-gp-rmsprop", "wgan-clip")


def _fake_results(metrics):
    run = {
        "seed": 0,
        "diverged": None,
        "curves": [{"step": s, "time": 0.1 * s, **dict.fromkeys(CURVE_KEYS, 1.0 + s)} for s in (1, 2)],
        "evals": [{"step": s, "time": 0.1 * s, **{m["key"]: float(s) for m in metrics}} for s in (1, 2)],
    }
    return {
        "metrics": metrics,
        "methods": ["wgan-gp", "wgan-gp-rmsprop"],
        "runs": {"wgan-gp": [run], "wgan-gp-rmsprop": [run]},
    }


@pytest.mark.parametrize(
    ("dataset", "columns"),
    [
        ("digits", ["classifier FD ↓", "classifier score ↑"]),
        ("8gaussians", ["W1 ↓"]),
    ],
)
def test_curves_are_drawn_against_iterations_and_training_time(tmp_path, monkeypatch, dataset, columns):
    if dataset == "digits":
        specs = LabelledImageKind.metrics
    else:
        specs = ToyKind(method_config("gan", dataset=dataset, seed=0, budget=Budget(steps=1))).metrics
    metrics = [vars(spec) for spec in specs]
    figures = []
    monkeypatch.setattr(report_module, "save_figure", lambda fig, path: figures.append(fig))
    report_module.plot_compare_curves(tmp_path / "curves.png", _fake_results(metrics))
    (fig,) = figures
    axes = fig.get_axes()
    titles = ["E[D(x)] − E[D(x̃)]", "mean ‖∇D(x̂)‖", "critic loss", "generator loss", *columns]
    assert [ax.get_title() for ax in axes] == titles * 2
    assert [ax.get_xlabel() for ax in axes] == ["generator iteration"] * len(titles) + [
        "training time (s)"
    ] * len(titles)
    # Each panel has one line per method, at the logged steps (top row) or times (bottom row).
    for index, ax in enumerate(axes):
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == ["WGAN-GP", "WGAN-GP (RMSProp)"]
        expected = [1, 2] if index < len(titles) else [0.1, 0.2]
        assert list(lines[0].get_xdata()) == pytest.approx(expected, abs=1e-12)
