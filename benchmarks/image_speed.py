"""ms per generator iteration (5 critic steps with the penalty + 1 generator step) of the paper's CIFAR
networks at batch 64: the wgangp trainer vs the seed-style plain loop, same models, same run.

Real images are sklearn's digits converted to 32×32×3 (the speed does not depend on the pixels), so no
dataset is needed. Usage: ``python benchmarks/image_speed.py [--iterations 3] [--threads N] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import time

import torch

from wgangp.config import resolve_config
from wgangp.reference import PlainLoop
from wgangp.trainer import Trainer, build_models


def _time(step, iterations: int, device: torch.device) -> float:
    step()  # warm-up: allocator, cuDNN/oneDNN kernel choice
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / iterations * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="*", default=["cifar-dcgan", "cifar-resnet"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads, batch 64")
    for preset in args.models:
        config = resolve_config(
            preset, overrides={"dataset": "digits", "resolution": 32, "channels": 3, "device": args.device}
        )
        trainer = Trainer(config, device=device)
        ours = _time(trainer.train_iteration, args.iterations, device)
        generator, critic = (m.to(device) for m in build_models(config))
        plain = PlainLoop.from_config(config, generator, critic, trainer.data)
        seed_loop = _time(plain.iteration, args.iterations, device)
        print(
            f"{preset:<13} wgangp {ours:9.1f} ms/it   seed-style loop {seed_loop:9.1f} ms/it   ratio {seed_loop / ours:.2f}×"
        )


if __name__ == "__main__":
    main()
