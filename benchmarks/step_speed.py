"""ms per generator iteration for each step path, against the seed-style plain loop (also `wgangp bench`).

    python benchmarks/step_speed.py                      # toy MLP b256 (+ DCGAN, ResNet on CUDA)
    python benchmarks/step_speed.py --cases toy dcgan --paths eager bf16 --reps 7 --json out.json

Cases: ``toy`` (the paper's MLP, batch 256) and the BENCHMARK-ONLY paper-shaped CIFAR ``dcgan`` and
``resnet`` (batch 64) from ``bench_models.py``. Paths: see ``wgangp.experiments.bench.PATHS``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_models
from wgangp.experiments.bench import (
    CPU_PATHS,
    CUDA_PATHS,
    PATHS,
    BenchCase,
    format_table,
    run_benchmark,
    toy_case,
)
from wgangp.trainer import resolve_device


def _image_case(name: str, generator: type[nn.Module], critic: type[nn.Module]) -> BenchCase:
    def make() -> tuple[nn.Module, nn.Module]:
        torch.manual_seed(0)
        return generator(), critic()

    return BenchCase(
        name, make, latent_dim=bench_models.LATENT, sample_shape=(3, 32, 32), batch_size=64, conv=True
    )


CASES = {
    "toy": toy_case,
    "dcgan": lambda: _image_case("dcgan", bench_models.DCGANGenerator, bench_models.DCGANCritic),
    "resnet": lambda: _image_case("resnet", bench_models.ResNetGenerator, bench_models.ResNetCritic),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument(
        "--cases", nargs="+", choices=list(CASES), help="default: toy (+ dcgan resnet on CUDA)"
    )
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), help="default: every path the device runs")
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions (median reported)")
    parser.add_argument("--iters", type=int, default=10, help="iterations per timed repetition")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations per path first")
    parser.add_argument("--json", type=Path, help="also write rows and facts as JSON here")
    parser.add_argument(
        "--clock",
        choices=["wall", "process"],
        default="wall",
        help="process: CPU seconds (CPU only; shared machines)",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = device.type == "cuda"
    cases = args.cases or (["toy", "dcgan", "resnet"] if cuda else ["toy"])
    paths = tuple(args.paths or (CUDA_PATHS if cuda else CPU_PATHS))
    rows, facts = run_benchmark(
        [CASES[name]() for name in cases], paths, device, reps=args.reps, iters=args.iters,
        warmup=args.warmup, clock=args.clock, log=lambda line: print(line, flush=True),
    )  # fmt: skip
    print()
    print(format_table(rows, facts))
    if args.json:
        args.json.write_text(json.dumps({"facts": facts, "rows": [asdict(r) for r in rows]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
