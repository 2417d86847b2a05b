"""Time-to-quality on 8 gaussians: seconds of training until 8/8 modes, high-quality fraction ≥ 0.7, W1 ≤ 0.08.

Runs wgangp's trainer with a preset and the plain seed-style loop (``wgangp.reference.PlainLoop``) with the
official toy recipe, in the same process, and evaluates both on the same fixed 2000-vs-2000 sets every
``--eval-every`` generator iterations. Evaluation time is not counted as training time.

    python benchmarks/time_to_quality.py --preset fast --budget 120 --plain-budget 300 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from wgangp.config import TrainConfig, resolve_config
from wgangp.data.toy import ToySampler
from wgangp.evaluation.toy import ToyKind
from wgangp.metrics.toy import toy_metrics
from wgangp.reference import PlainLoop
from wgangp.trainer import Trainer, build_models

GOAL = {"modes_covered": 8, "high_quality_fraction": 0.7, "w1": 0.08}


@dataclass
class Outcome:
    name: str
    seed: int
    seconds_to_goal: float | None
    iterations_to_goal: int | None
    ms_per_iteration: float
    final: dict[str, float]


def reached(metrics: dict[str, float]) -> bool:
    return (
        metrics["modes_covered"] >= GOAL["modes_covered"]
        and metrics["high_quality_fraction"] >= GOAL["high_quality_fraction"]
        and metrics["w1"] <= GOAL["w1"]
    )


def race(
    name: str,
    seed: int,
    iteration: Callable[[], object],
    evaluate: Callable[[], dict[str, float]],
    *,
    budget: float,
    max_iterations: int,
    eval_every: int,
) -> Outcome:
    """Train until the goal, the time budget or the iteration cap; evaluation time is excluded."""
    trained, it, metrics = 0.0, 0, {}
    while trained < budget and it < max_iterations:
        start = time.perf_counter()
        for _ in range(eval_every):
            iteration()
        trained += time.perf_counter() - start
        it += eval_every
        metrics = evaluate()
        print(f"  {name} seed {seed}: it {it:5d}  {trained:6.1f} s  {_fmt(metrics)}", flush=True)
        if reached(metrics):
            return Outcome(name, seed, trained, it, 1000 * trained / it, metrics)
    return Outcome(name, seed, None, None, 1000 * trained / max(it, 1), metrics)


def _fmt(metrics: dict[str, float]) -> str:
    return f"W1 {metrics['w1']:.3f}  modes {metrics['modes_covered']:.0f}  hq {metrics['high_quality_fraction']:.2f}"


def run_wgangp(config: TrainConfig, *, budget: float, eval_every: int) -> Outcome:
    trainer = Trainer(config, device=torch.device("cpu"))
    evaluator = ToyKind(config).evaluate
    return race(
        "wgangp",
        config.seed,
        trainer.train_iteration,
        lambda: evaluator(trainer),
        budget=budget,
        max_iterations=config.steps,
        eval_every=eval_every,
    )


def run_plain(seed: int, *, budget: float, eval_every: int) -> Outcome:
    config = resolve_config("toy", overrides={"seed": seed})
    generator, critic = build_models(config)
    data = ToySampler(config.dataset, config.batch_size, seed=seed + 2)
    loop = PlainLoop.from_config(
        config, generator, critic, data, noise=torch.Generator().manual_seed(seed + 1)
    )
    kind = ToyKind(config)

    def evaluate() -> dict[str, float]:
        with torch.no_grad():
            z = torch.randn(config.eval_samples, 2, generator=torch.Generator().manual_seed(kind.seed))
            return toy_metrics(config.dataset, generator(z), kind.real)

    return race(
        "plain", seed, loop.iteration, evaluate, budget=budget, max_iterations=10**9, eval_every=eval_every
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds of training for wgangp")
    parser.add_argument(
        "--plain-budget", type=float, default=300.0, help="seconds for the plain loop (0: skip)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--set", dest="sets", action="append", default=[])
    args = parser.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    outcomes = []
    for seed in args.seeds:
        config = resolve_config(args.preset, sets=[*args.sets, f"seed={seed}"])
        outcomes.append(run_wgangp(config, budget=args.budget, eval_every=args.eval_every))
    if args.plain_budget > 0:
        for seed in args.seeds[:1]:
            outcomes.append(run_plain(seed, budget=args.plain_budget, eval_every=args.eval_every * 2))

    print("\n| run | seed | seconds to goal | iterations | ms/iteration | final W1 | modes | hq |")
    print("|---|---|---|---|---|---|---|---|")
    for o in outcomes:
        secs = f"{o.seconds_to_goal:.1f}" if o.seconds_to_goal is not None else "not reached"
        its = o.iterations_to_goal if o.iterations_to_goal is not None else "-"
        f = o.final
        print(
            f"| {o.name} ({args.preset if o.name == 'wgangp' else 'toy, official'}) | {o.seed} | {secs} | {its} | "
            f"{o.ms_per_iteration:.1f} | {f['w1']:.3f} | {f['modes_covered']:.0f} | {f['high_quality_fraction']:.2f} |"
        )


if __name__ == "__main__":
    main()
