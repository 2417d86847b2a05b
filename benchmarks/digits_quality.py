"""Digits quality over CPU time: classifier-space Fréchet distance and classes covered at given minutes.

Trains the ``digits`` preset (or ``--preset``) with wgangp's trainer and evaluates the generator when the
training clock (evaluation excluded) passes each checkpoint in ``--minutes``.

    python benchmarks/digits_quality.py --minutes 2 5 10 --threads 1
"""

from __future__ import annotations

import argparse
import time

import torch

from wgangp.config import resolve_config
from wgangp.evaluation import kind_for
from wgangp.evaluation.images import LabelledImageKind
from wgangp.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="digits")
    parser.add_argument("--minutes", type=float, nargs="+", default=[2.0, 5.0, 10.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    marks = sorted(60.0 * m for m in args.minutes)
    config = resolve_config(args.preset, sets=[*args.sets, f"seed={args.seed}", "steps=100000000"])
    trainer = Trainer(config, device=torch.device("cpu"))
    kind = kind_for(config, trainer.data)
    assert isinstance(kind, LabelledImageKind)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, preset {args.preset}, seed {args.seed}"
    )
    print(f"classifier test accuracy {kind.scorer.accuracy:.3f}")
    rows = [(0.0, 0, kind.evaluate(trainer))]
    trained = 0.0
    for mark in marks:
        while trained < mark:
            start = time.perf_counter()
            for _ in range(10):
                trainer.train_iteration()
            trained += time.perf_counter() - start
        rows.append((trained, trainer.step, kind.evaluate(trainer)))
        print(f"  {trained / 60:5.1f} min  step {trainer.step:6d}  {rows[-1][2]}", flush=True)

    print(
        "\n| training time | generator iterations | classifier FD | KID | classes covered | confident fraction |"
    )
    print("|---|---|---|---|---|---|")
    for seconds, step, m in rows:
        print(
            f"| {seconds / 60:.1f} min | {step} | {m['fd']:.1f} | {m['kid']:.3g} | {m['classes_covered']:.0f} | "
            f"{m['confident_fraction']:.2f} |"
        )


if __name__ == "__main__":
    main()
