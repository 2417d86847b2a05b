"""CPU time per generator iteration of the conditional step against the unconditional one (README "Conditional").

    python benchmarks/conditional_speed.py --threads 1 --reps 7 --iters 10

Cases: the ``digits`` preset's DCGAN (W=32, batch 64, n_critic 5) and the toy MLP (512×3, batch 256) on
2-d points with 10 labels (a ``.npz`` made here); each run as ``conditioning`` none, acgan and projection.
Repetitions are interleaved (none, acgan, projection, none, ...) and timed with the process clock, so
other load on the machine changes the numbers little; the median over repetitions is reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from wgangp.config import resolve_config
from wgangp.trainer import Trainer

CONDITIONINGS = ("none", "acgan", "projection")


def _configs(tmp: Path) -> dict[str, dict[str, object]]:
    rng = np.random.default_rng(0)
    y = np.tile(np.arange(10), 256)
    x = rng.normal(size=(y.size, 2)).astype(np.float32) + y[:, None]
    np.savez(tmp / "points.npz", x=x, y=y)
    return {
        "digits DCGAN": {"preset": "digits"},
        "toy MLP": {"preset": "toy", "dataset": "vectors", "data_path": str(tmp / "points.npz")},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    parser.add_argument("--reps", type=int, default=7, help="interleaved repetitions (default: 7)")
    parser.add_argument("--iters", type=int, default=10, help="generator iterations per repetition")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), process CPU time, median of {args.reps}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for case, settings in _configs(Path(tmp)).items():
            preset = str(settings.pop("preset"))
            trainers = {
                c: Trainer(resolve_config(preset, overrides=settings | {"conditioning": c, "device": "cpu"}))
                for c in CONDITIONINGS
            }
            for trainer in trainers.values():
                trainer.train_iteration()  # warm-up: data loaded, allocator and kernels ready
            times: dict[str, list[float]] = {c: [] for c in CONDITIONINGS}
            for _ in range(args.reps):
                for c, trainer in trainers.items():
                    start = time.process_time()
                    for _ in range(args.iters):
                        trainer.train_iteration()
                    times[c].append((time.process_time() - start) / args.iters * 1e3)
            base = statistics.median(times["none"])
            for c in CONDITIONINGS:
                ms = statistics.median(times[c])
                print(f"{case:<13} {c:<11} {ms:8.2f} ms/iteration  {100 * (ms / base - 1):+6.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
