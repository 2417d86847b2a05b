"""The ``wgangp`` command: ``train``, ``eval``, ``sample``, ``compare``, ``figure``, ``bench`` and ``presets``.

Every mistake a user can make ends in one line on stderr and a non-zero exit code, never a traceback:

    0    done
    2    bad input: option, config, file, run directory; also a checkpoint write that failed (disk full)
    3    a non-finite loss, penalty or gradient stopped the run (the last good checkpoint is kept)
    130  SIGINT (Ctrl-C): the current step finished and a checkpoint was written (a second one stops at once)
    143  SIGTERM: the same
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from wgangp.config import (
    DATASET_PRESETS,
    LOSS_RECIPES,
    PRESETS,
    TrainConfig,
    describe_fields,
    explicit_keys,
    field_choices,
    parse_int,
    resolve_config,
)
from wgangp.errors import RunInterrupted, UserError

if TYPE_CHECKING:
    from torch import Tensor

    from wgangp.trainer import Trainer

__all__ = ["main"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line (not the whole usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = parse_int(text)  # the config's rule for integers: 2000, 2e3; not 1.5 or 1e30
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (>= 1); got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = parse_int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0; got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0; got {value}")
    return value


def _config_help(preset: str | None = None) -> str:
    """Every key with its default; with ``preset``, that preset's value beside it (``*``: it differs)."""
    values = resolve_config(preset).to_dict() if preset is not None else {}
    head = "Config keys (set with --set key=value or in a TOML file)"
    lines = [head + (f"; column 'preset {preset}' (*: differs from the default):" if preset else ":")]
    for name, kind, default, text in describe_fields():
        if preset is None:
            lines.append(f"  {name:<18} {kind:<5} default {default!s:<12} {text}")
            continue
        value = values[name]
        mark = "*" if value != default else " "
        lines.append(
            f"  {name:<18} {kind:<5} default {default!s:<12} preset {preset} {mark}{value!s:<12} {text}"
        )
    return "\n".join(lines)


def _presets_help() -> str:
    return "\n".join(f"  {name:<13} {text}" for name, (text, _) in PRESETS.items())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="wgangp", description="Wasserstein GANs with gradient penalty: train, evaluate, sample."
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = commands.add_parser(
        "train",
        help="train a GAN (default: WGAN-GP on 8 gaussians, preset 'fast')",
        description="Train a WGAN-GP (or a baseline) per Algorithm 1 of Gulrajani et al. 2017.",
        epilog="Presets:\n"
        + _presets_help()
        + "\n\nAll keys: wgangp train --help-config"
        + "\nExit codes: 0 done, 2 bad input or a failed write, 3 non-finite loss/penalty/gradient,"
        + " 130 SIGINT, 143 SIGTERM (after finishing the step and writing a checkpoint)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "--preset",
        choices=list(PRESETS),
        help="recipe to start from (default: fast; for an image --dataset, that dataset's preset; with --resume: the run's saved config)",
    )
    train.add_argument("--dataset", choices=field_choices("dataset"), help="training data")
    train.add_argument(
        "--data-path", metavar="PATH", help="where mnist/cifar10/folder/vectors/text/sequences data lie"
    )
    train.add_argument(
        "--loss", choices=list(LOSS_RECIPES), help="objective; baselines bring their own optimizer recipe"
    )
    train.add_argument("--steps", type=_positive_int, help="generator iterations")
    train.add_argument("--seed", type=_non_negative_int, help="seed for data, noise and weights")
    train.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    train.add_argument(
        "--precision", choices=field_choices("precision"), help="arithmetic of the networks (default: fp32)"
    )
    train.add_argument(
        "--config", metavar="FILE", help="TOML file of config keys (top level or a [train] table)"
    )
    train.add_argument(
        "--set", dest="sets", metavar="KEY=VALUE", action="append", default=[], help="override one key"
    )
    train.add_argument("--out", metavar="DIR", help="run directory (default: runs/<dataset>-<loss>-<time>)")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue RUN_DIR from its newest valid checkpoint, with its saved config and any "
        "run-control changes given (--steps to extend it)",
    )
    train.add_argument(
        "--force", action="store_true", help="with --resume: allow changes to the model, data or loss"
    )
    train.add_argument(
        "--skip-nonfinite",
        action="store_true",
        default=None,
        help="skip updates with a non-finite loss or gradient (counted in the metrics) instead of stopping",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard events")
    train.add_argument(
        "--help-config",
        action="store_true",
        help="list every config key with its default, range and the active preset's value",
    )
    train.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved config (defaults, preset, recipe, file, flags) and the run directory; "
        "train nothing, write nothing",
    )

    evaluate = commands.add_parser(
        "eval", help="metrics of a run's saved generator (toy: W1, modes, quality)"
    )
    evaluate.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        help="a run directory (its newest valid checkpoint) or a checkpoint file",
    )
    evaluate.add_argument(
        "--samples", type=_positive_int, help="generated and real samples (default: the run's)"
    )
    evaluate.add_argument("--seed", type=_non_negative_int, default=0, help="seed for the eval samples")
    evaluate.add_argument("--device", help="auto | cpu | cuda")
    evaluate.add_argument(
        "--metric",
        action="append",
        choices=["classifier", "swd", "fid", "kid", "is"],
        help="image metrics (repeatable; default: classifier for labelled sets, swd for an image folder): "
        "dataset-classifier FD/KID/classes, sliced Wasserstein distance on Laplacian patches, "
        "or Inception FID/KID/IS (needs --inception-weights)",
    )
    evaluate.add_argument(
        "--inception-weights",
        metavar="FILE",
        help="Inception-v3 weights for FID/KID/IS (torch-fidelity's file)",
    )

    sample = commands.add_parser(
        "sample", help="draw samples from a run's generator to .npy, .npz, .png or (text) .txt"
    )
    sample.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        help="a run directory (its newest valid checkpoint) or a checkpoint file",
    )
    sample.add_argument("-n", type=_positive_int, default=1000, help="number of samples (default: 1000)")
    sample.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="output file, .npy, .npz or .png (a grid for images); text runs: .txt, one decoded sequence "
        "per line; sequences: .npy/.npz in the data's units",
    )
    sample.add_argument("--seed", type=_non_negative_int, default=0, help="seed for the latents")
    sample.add_argument("--device", help="auto | cpu | cuda")
    sample.add_argument(
        "--class",
        dest="class_",
        type=_class_choice,
        metavar="K|all",
        help="conditional runs: samples of class K, or 'all': N of every class (a PNG grid has one row per "
        "class); default: labels drawn uniformly",
    )
    sample.add_argument(
        "--code",
        type=_class_choice,
        metavar="K|all",
        help="runs with latent_codes: samples of latent code K, or 'all': N of every code (a PNG grid has "
        "one row per code, one z per column); default: z as drawn",
    )
    sample.add_argument("--overwrite", action="store_true", help="replace an existing --out file")

    _add_compare_parsers(commands)

    bench = commands.add_parser(
        "bench",
        help="time a generator iteration per step path against the seed-style plain loop (toy MLP)",
        description="ms per generator iteration (toy MLP, batch 256) for each step path, with ratios against "
        "a plain seed-style loop, peak memory and FLOPs. Image models: benchmarks/step_speed.py.",
    )
    bench.add_argument("--device", default="auto", help="auto | cpu | cuda")
    bench.add_argument("--paths", nargs="+", metavar="PATH", help="step paths (default: all the device runs)")
    bench.add_argument("--reps", type=_positive_int, default=5, help="interleaved repetitions (default: 5)")
    bench.add_argument(
        "--iters", type=_positive_int, default=5, help="iterations per repetition (default: 5)"
    )

    commands.add_parser("presets", help="list the presets")
    return parser


def _class_choice(text: str) -> int | str:
    """``--class``: a class index ≥ 0 or ``all``."""
    if text == "all":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a class index >= 0 or 'all'; got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a class index >= 0 or 'all'; got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text}")
    return value


def _add_compare_parsers(commands: argparse._SubParsersAction) -> None:
    from wgangp.evaluation import comparable_datasets
    from wgangp.experiments.methods import METHOD_CHOICES, METHODS

    compare = commands.add_parser(
        "compare",
        help="WGAN-GP vs weight clipping vs standard GAN at equal budget, with a report",
        description="Train WGAN-GP, WGAN with weight clipping and the standard GAN (or the --methods "
        "chosen) with the same networks, data, seed and budget; write report.html, report.md and results.json.",
    )
    compare.add_argument("--dataset", default="8gaussians", choices=comparable_datasets(), help="data")
    budget = compare.add_mutually_exclusive_group()
    budget.add_argument(
        "--steps", type=_positive_int, help="generator iterations per method (default: preset's)"
    )
    budget.add_argument("--budget", type=_positive_float, metavar="SECONDS", help="training time per method")
    compare.add_argument("--seeds", type=_positive_int, default=1, help="seeds per method (mean ± std)")
    compare.add_argument("--seed", type=_non_negative_int, default=0, help="first seed")
    compare.add_argument(
        "--preset",
        choices=list(PRESETS),
        help="recipe every method starts from (default: fast; digits: the digits preset)",
    )
    compare.add_argument(
        "--set",
        dest="sets",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one key (all methods)",
    )
    compare.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    compare.add_argument(
        "--out", metavar="DIR", help="report directory (default: runs/compare-<dataset>-<time>)"
    )
    compare.add_argument("--overwrite", action="store_true", help="replace a report already in --out")
    compare.add_argument(
        "--methods",
        metavar="M,M,...",
        help="comma-separated methods to train, from "
        + ", ".join(METHOD_CHOICES)
        + " (default: "
        + ",".join(METHODS)
        + "); wgan-gp-rmsprop is the paper's Figure 3 control (RMSProp 5e-5 + penalty)",
    )
    compare.add_argument("--no-progress", action="store_true", help="no progress bars")

    figure = commands.add_parser(
        "figure",
        help="the paper's Figure 1a (critic surfaces), 1b (gradients through a 12-layer critic) or 5 "
        "(meaningful loss curves)",
        description="Reproduce Figure 1 of Gulrajani et al. 2017: 1a, value surfaces of critics trained "
        "against real data + N(0,1) noise; 1b, per-layer gradient norms and weights of deep critics.",
    )
    figure.add_argument(
        "which",
        choices=["1a", "1b", "2", "5"],
        help="which figure (2: seven architectures × four losses; 5: meaningful loss curves)",
    )
    figure.add_argument("--out", metavar="DIR", default="figures", help="output directory (default: figures)")
    figure.add_argument(
        "--iterations",
        type=_positive_int,
        help="1a: critic steps (default 5000; --quick 500); 1b: generator iterations (default 200; --quick 30)",
    )
    figure.add_argument(
        "--width", type=_positive_int, help="hidden units per layer (default 512, the paper's)"
    )
    figure.add_argument("--batch-size", type=_positive_int, help="batch size (default 256)")
    figure.add_argument("--seed", type=_non_negative_int, default=0, help="seed")
    figure.add_argument("--resolution", type=_positive_int, default=128, help="1a: grid points per axis")
    _add_study_arguments(figure, "2: ")
    figure.add_argument(
        "--train-subset", type=_positive_int, default=200, help="5: digits the 5b runs train on (default 200)"
    )
    figure.add_argument(
        "--quick",
        action="store_true",
        help="the reduced CI run: 1a 500 steps, width 128, one Adam 1e-3 for both arms (not the official "
        "RMSProp 5e-5 / Adam 1e-4); 1b 30 iterations, batch 64",
    )
    figure.add_argument(
        "--clip-values",
        type=_positive_float,
        nargs="+",
        metavar="C",
        help="1b: the clipping bounds to run (default 0.1 0.01 0.001, the paper's)",
    )
    figure.add_argument(
        "--no-penalty",
        action="store_true",
        help="1b: leave out the gradient-penalty run (e.g. one long c = 0.1 run for its weight histograms)",
    )
    figure.add_argument(
        "--record-every",
        type=_positive_int,
        metavar="N",
        help="measure every N steps into the JSON's history (1a: recovered W1; 1b: weights at ±c); "
        "default a tenth of the run",
    )
    _add_robustness_parser(commands)


def _add_study_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """The scale-out options every study shares: --shard, --jobs, --merge, --device, --eval-samples."""
    parser.add_argument(
        "--shard",
        metavar="I/N",
        help=f"{prefix}run every N-th run from the I-th (0-based; e.g. $SLURM_ARRAY_TASK_ID/N)",
    )
    parser.add_argument(
        "--jobs", type=_positive_int, default=1, help=f"{prefix}runs in parallel, one process and core each"
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="DIR",
        help=f"{prefix}build the report from these study directories (the shards' --out) into --out",
    )
    parser.add_argument("--eval-samples", type=_positive_int, help=f"{prefix}samples scored per run")
    parser.add_argument("--device", help=f"{prefix}auto | cpu | cuda | cuda:N (default: auto)")


def _add_robustness_parser(commands: argparse._SubParsersAction) -> None:
    from wgangp.experiments.robustness import RunSettings

    defaults = RunSettings()
    robustness = commands.add_parser(
        "robustness",
        help="the paper's Table 2: random architectures, each trained with the GAN and with WGAN-GP",
        description="Draw K architectures from the paper's factors (Table 1, scaled to the data), train each "
        "with the standard GAN and with WGAN-GP for the same generator iterations, score them with the "
        "dataset classifier's score and FD, and write report.md, report.html and results.json with the "
        "paper's counts table. Reruns skip finished runs.",
    )
    robustness.add_argument("--dataset", default=defaults.dataset, choices=["digits"], help="data")
    robustness.add_argument(
        "--architectures", type=_positive_int, default=20, help="architectures drawn (paper: 200; default 20)"
    )
    robustness.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        help="seed of the draws and of the runs (arch k: seed + k)",
    )
    robustness.add_argument(
        "--steps", type=_positive_int, help=f"generator iterations per run (default {defaults.steps})"
    )
    robustness.add_argument(
        "--batch-size", type=_positive_int, help=f"batch size (default {defaults.batch_size})"
    )
    robustness.add_argument("--out", metavar="DIR", help="study directory (default: runs/robustness-<time>)")
    _add_study_arguments(robustness)


def _version() -> str:
    from wgangp import __version__

    return f"wgangp {__version__}"


def _cmd_train(args: argparse.Namespace) -> int:
    from wgangp.distributed import shutdown
    from wgangp.run.launch import Launch, start_job
    from wgangp.run.loop import train
    from wgangp.run.resume import check_resume, find_resume_point
    from wgangp.run.rundir import default_run_dir

    if args.help_config:
        print(_config_help(args.preset or DATASET_PRESETS.get(args.dataset or "", "fast")))
        return 0
    if args.out is not None and not args.out.strip():
        raise UserError(
            "--out is empty; give a run directory, or leave --out out for runs/<dataset>-<loss>-<time>"
        )
    overrides = {
        key: value
        for key, value in (
            ("dataset", args.dataset),
            ("data_path", args.data_path),
            ("steps", args.steps),
            ("seed", args.seed),
            ("device", args.device),
            ("skip_nonfinite", args.skip_nonfinite),
            ("precision", args.precision),
        )
        if value is not None
    }
    layers = {"loss": args.loss, "config_file": args.config, "sets": args.sets, "overrides": overrides}

    def decide() -> Launch:
        """The config, run directory and resume point: read on rank 0 alone under torchrun."""
        if args.resume is None:
            if args.force:
                raise UserError("--force only applies to --resume")
            preset = args.preset or DATASET_PRESETS.get(args.dataset or "", "fast")
            config = resolve_config(preset, **layers)
            chosen = explicit_keys(args.preset, config_file=args.config, sets=args.sets, overrides=overrides)
            config = _data_defaults(config, chosen)
            return Launch(config, Path(args.out) if args.out is not None else default_run_dir(config))
        if args.overwrite or args.out is not None:
            raise UserError("--resume continues RUN_DIR in place; drop --out and --overwrite")
        resume = find_resume_point(args.resume)
        config = resolve_config(args.preset, base=resume.config, **layers)
        check_resume(resume, config, force=args.force)  # refused before rank 0 sends the state
        return Launch(config, resume.run_dir, resume)

    if args.dry_run:
        launch = decide()
        print(_dry_run_text(launch.config, launch.run_dir, resumed=launch.resume is not None))
        return 0
    # Under torchrun: join the process group (data parallelism, wgangp.distributed); else one process.
    shard, launch = start_job(decide)
    # A bar on a terminal; else (--no-progress, CI, nohup) one plain line per log row.
    bar = not args.no_progress and sys.stdout.isatty()
    try:
        result = train(
            launch.config,
            launch.run_dir,
            overwrite=args.overwrite,
            resume=launch.resume,
            force=args.force,
            progress=bar,
            tensorboard=not args.no_tensorboard,
            shard=shard,
            log_lines=not bar,
        )
        shutdown(finished=True)
    finally:
        shutdown()
    if shard.is_main:
        _print_summary(
            launch.config, result.metrics, result.seconds, result.run_dir, [str(p) for p in result.plots]
        )
    return 0


def _data_defaults(config: TrainConfig, chosen: set[str]) -> TrainConfig:
    """Defaults that follow the data: ``--dataset vectors`` takes ``latent_dim`` = the data's D unless set."""
    if config.dataset != "vectors" or "latent_dim" in chosen or not config.data_path:
        return config
    from wgangp.data import data_shape

    (dim,) = data_shape(config)
    if dim != config.latent_dim:
        warnings.warn(
            f"latent_dim = {dim}, the data's dimension D (--dataset vectors); --set latent_dim=K to choose",
            stacklevel=2,
        )
        config = config.replace(latent_dim=dim)
    return config


def _dry_run_text(config: TrainConfig, run_dir: Path, *, resumed: bool) -> str:
    """The resolved config as TOML (a valid ``--config`` file) and where the run would go."""
    defaults = TrainConfig().to_dict()
    lines = [
        f"# {'resume' if resumed else 'new run'}: {run_dir}; '# default' marks untouched keys",
        "[train]",
    ]
    for key, value in config.to_dict().items():
        text = json.dumps(value)  # TOML's strings, numbers and booleans read the same
        lines.append(f"{key} = {text}" + ("  # default" if value == defaults[key] else ""))
    return "\n".join(lines)


def _method_label(config: TrainConfig) -> str:
    """The loss, and for WGAN-GP a penalty other than the paper's: ``wgan-gp (zero-centered penalty at real)``."""
    if config.loss == "wgan-gp" and (config.penalty_kind, config.penalty_at) != ("two-sided", "interpolates"):
        return f"{config.loss} ({config.penalty_kind} penalty at {config.penalty_at})"
    return config.loss


def _print_summary(
    config: TrainConfig, metrics: dict[str, float], seconds: float, run_dir: Path, plots: list[str]
) -> None:
    print(
        f"\n{_method_label(config)} on {config.dataset}: {config.steps} generator iterations in {seconds:.1f} s"
    )
    for key, value in metrics.items():
        print(f"  {key:<22} {value:.4g}" if isinstance(value, float) else f"  {key:<22} {value}")
    print(f"run directory: {run_dir}")
    print(f"plots:         {', '.join(plots)}")
    logdir = shlex.quote(str(run_dir))
    print(f"metrics:       {run_dir / 'metrics.jsonl'} (TensorBoard: tensorboard --logdir {logdir})")


def _cmd_eval(args: argparse.Namespace) -> int:
    from wgangp.evaluation import EvalRequest, kind_for
    from wgangp.run.rundir import load_run

    trainer = load_run(args.run_dir, device=args.device)
    kind = kind_for(trainer.config, trainer.data)
    request = EvalRequest(
        samples=args.samples,
        seed=args.seed,
        metrics=args.metric or list(kind.default_metrics),
        inception_weights=args.inception_weights,
    )
    print(json.dumps(kind.evaluate_saved(trainer, Path(args.run_dir), request), indent=2))
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from wgangp.run.rundir import load_run
    from wgangp.run.samples import check_sample_output, write_samples

    out = Path(args.out)
    if out.suffix not in (".npy", ".npz", ".png", ".txt"):
        raise UserError(f"--out must end in .npy, .npz, .png or .txt; got {out.name}")
    if out.exists() and out.is_dir():
        raise UserError(f"--out {out} is a directory")
    if out.exists() and not args.overwrite:
        raise UserError(f"{out} exists; pass --overwrite to replace it, or choose another --out")
    trainer = load_run(args.run_dir, device=args.device)
    _check_sample_format(trainer.config.dataset, out)
    check_sample_output(trainer, args.n, out)
    plain = args.class_ is None and args.code is None
    if plain and not trainer.conditional and trainer.codec is None:
        # Unconditional images, toy points, vectors: streamed in bounded memory (wgangp.run.samples).
        write_samples(trainer, args.n, out, seed=args.seed)
        print(f"wrote {args.n} samples to {out}")
        return 0
    if args.code is not None:
        if args.class_ is not None:
            raise UserError("--class and --code: choose one (--class for labels, --code for latent codes)")
        labels: Tensor | None
        samples, labels, columns = _coded_samples(trainer, args.n, args.seed, args.code)
        label_key, groups = "codes", trainer.config.latent_codes
    else:
        samples, labels, columns = _draw_samples(trainer, args.n, args.seed, args.class_)
        label_key, groups = "labels", trainer.n_classes
    samples = trainer.to_data_units(samples)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if trainer.config.dataset in ("text", "sequences"):
            _write_sequence_samples(trainer, samples, out)
        elif out.suffix == ".npy":
            np.save(out, samples.numpy())
        elif out.suffix == ".npz":
            from wgangp.pictures.grid import to_uint8

            arrays: dict[str, Any] = {
                "samples": samples.numpy()
            }  # [N, ...] as generated ([−1, 1] for images)
            if samples.ndim == 4:
                arrays["images"] = to_uint8(samples)  # [N, H, W, C] uint8
            if labels is not None:
                arrays[label_key] = labels.numpy()  # [N] int64: the class (or code) of each sample
            np.savez(out, **arrays)
        elif samples.ndim == 4:
            from wgangp.pictures.grid import save_grid

            save_grid(samples, out, columns=columns)
        else:
            from wgangp.pictures.plots import plot_toy

            plot_toy(out, None, samples, trainer.critic, title=f"{args.n} samples, step {trainer.step}")
    except OSError as err:
        raise UserError(f"cannot write {out}: {err.strerror or err}") from None
    what = f"{groups} × {args.n} samples" if "all" in (args.class_, args.code) else f"{args.n} samples"
    print(f"wrote {what} to {out}")
    return 0


def _check_sample_format(dataset: str, out: Path) -> None:
    """The output formats a run's samples have: .txt for text only; no picture of text or sequences."""
    if out.suffix == ".txt" and dataset != "text":
        raise UserError(
            f"--out must end in .npy, .npz or .png for a {dataset} run (.txt holds decoded text, for text "
            f"runs); got {out.name}"
        )
    if out.suffix == ".png" and dataset in ("text", "sequences"):
        use = ".txt, .npy or .npz" if dataset == "text" else ".npy or .npz"
        raise UserError(f"--out {out.name}: a {dataset} run's samples are no picture; use {use}")


def _write_sequence_samples(trainer: Any, samples: Any, out: Path) -> None:
    """Text: decoded lines (.txt) or the softmax outputs [N, V, T] (.npy/.npz, with the charmap);
    sequences: [N, C, T] in the data's units (de-standardised with the run's statistics)."""
    import numpy as np

    from wgangp.data import Charmap, SeriesFormat
    from wgangp.data.text import as_line

    codec = trainer.codec
    if isinstance(codec, Charmap):
        if out.suffix == ".txt":
            lines = [as_line(s) for s in codec.decode(samples.float(), strip_pad=True)]
            out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        elif out.suffix == ".npy":
            np.save(out, samples.float().numpy())
        else:
            chars = np.array(list(codec.chars))
            np.savez(out, samples=samples.float().numpy(), indices=samples.argmax(1).numpy(), charmap=chars)
        return
    assert isinstance(codec, SeriesFormat)
    series = codec.to_units(samples.float()).numpy()  # [N, C, T]
    if out.suffix == ".npy":
        np.save(out, series)
    else:
        np.savez(out, samples=series)


def _draw_samples(
    trainer: Trainer, n: int, seed: int, chosen: int | str | None
) -> tuple[Tensor, Tensor | None, int | None]:
    """``(samples [N, ...], labels [N] or None, grid columns or None)`` for ``wgangp sample``'s ``--class``."""
    import torch

    if chosen is not None and not trainer.conditional:
        hint = (
            f" (its {trainer.config.latent_codes} latent codes: --code)"
            if trainer.config.latent_codes
            else ""
        )
        raise UserError(
            "--class needs a class-conditional run (conditioning=acgan or projection); this run is "
            f"unconditional{hint}"
        )
    if chosen == "all":
        from wgangp.evaluation.images import class_rows

        samples, columns = class_rows(trainer, n, seed=seed)
        return samples, torch.arange(trainer.n_classes).repeat_interleave(n), columns
    if isinstance(chosen, int):
        if chosen >= trainer.n_classes:
            raise UserError(
                f"--class {chosen} is out of range: this run has {trainer.n_classes} classes (0..{trainer.n_classes - 1})"
            )
        labels = torch.full((n,), chosen, dtype=torch.int64)
        return trainer.sample(n, seed=seed, labels=labels).cpu(), labels, None
    samples, drawn = trainer.sample_labelled(n, seed=seed)
    return samples.cpu(), None if drawn is None else drawn.cpu(), None


def _coded_samples(
    trainer: Trainer, n: int, seed: int, chosen: int | str
) -> tuple[Tensor, Tensor, int | None]:
    """``wgangp sample --code``: ``(samples, codes, grid columns or None)`` of a ``latent_codes`` run."""
    import torch

    from wgangp.evaluation.images import code_rows
    from wgangp.models.coded import with_code

    k = trainer.config.latent_codes
    if not k:
        raise UserError("--code needs a run trained with latent_codes (InfoGAN's code); this run has none")
    if chosen == "all":
        samples, columns = code_rows(trainer, n, seed=seed)
        return samples, torch.arange(k).repeat_interleave(n), columns
    assert isinstance(chosen, int)
    if chosen >= k:
        raise UserError(f"--code {chosen} is out of range: this run has {k} codes (0..{k - 1})")
    codes = torch.full((n,), chosen, dtype=torch.int64)
    z = torch.randn(n, trainer.config.latent_dim, generator=torch.Generator().manual_seed(seed))
    return trainer.sample_from(with_code(z, codes, k)).cpu(), codes, None


def _cmd_compare(args: argparse.Namespace) -> int:
    import time

    from wgangp.experiments.compare import Budget, run_comparison
    from wgangp.experiments.methods import METHODS, parse_methods
    from wgangp.experiments.report import markdown_table, pair_lines

    methods = METHODS if args.methods is None else parse_methods(args.methods)

    preset = args.preset or DATASET_PRESETS.get(args.dataset, "fast")
    steps = args.steps
    if steps is None and args.budget is None:
        steps = resolve_config(preset, sets=args.sets).steps
    budget = Budget(steps=steps, seconds=args.budget)
    out = (
        Path(args.out)
        if args.out
        else Path("runs") / f"compare-{args.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    if (out / "results.json").exists() and not args.overwrite:
        raise UserError(
            f"{out} already holds a report; pass --overwrite to replace it or choose another --out"
        )
    results = run_comparison(
        args.dataset,
        out,
        budget=budget,
        seeds=args.seeds,
        first_seed=args.seed,
        preset=preset,
        sets=args.sets,
        device=args.device,
        methods=methods,
        progress=not args.no_progress,
    )
    print(f"\n{args.dataset}, {budget.describe()}, seeds {results['seeds']}:\n")
    print(markdown_table(results))
    claim = results["claim"]
    if claim["holds"] is None:
        print(f"\n{claim['text']}: not tested ({claim['not_tested']})")
    else:
        print(f"\n{claim['text']}: {'holds' if claim['holds'] else 'does not hold'}")
    for line in pair_lines(results):
        print(f"  {line}")
    print(f"report: {out / 'report.html'} ({out / 'report.md'}, {out / 'results.json'})")
    return 0


def _run_settings(args: argparse.Namespace, steps: int | None) -> Any:
    from wgangp.experiments.robustness import RunSettings

    chosen: dict[str, Any] = {
        key: value
        for key, value in (
            ("steps", steps),
            ("batch_size", args.batch_size),
            ("eval_samples", args.eval_samples),
        )
        if value is not None
    }
    return RunSettings(**chosen)


def _run_or_merge(args: argparse.Namespace, study: Any, out: Path, write: Callable[..., Any]) -> Path | None:
    """Run this shard of ``study`` into ``out`` (or merge ``--merge`` dirs); write the report once complete.

    Returns the report's directory, or ``None`` when runs of other shards are still missing.
    """
    from wgangp.experiments.robustness import RUNS_DIR, collect, finish_study
    from wgangp.experiments.study import parse_shard

    if out.exists() and not out.is_dir():
        raise UserError(f"output path {out} exists and is not a directory")
    if args.merge:
        if args.shard:
            raise UserError("--merge builds the report from finished shards; drop --shard")
        results = collect(args.merge, out, name=study.name)
        write(results, out)
        return out
    shard = parse_shard(args.shard) if args.shard else (0, 1)
    try:
        finish_study(study, out, shard=shard, jobs=args.jobs, device=args.device or "auto")
    except RuntimeError as err:
        raise UserError(f"{err}; rerun the same command to retry them", exit_code=1) from None
    done = {p.stem for p in (out / RUNS_DIR).glob("*.json")}
    missing = [spec["run_id"] for spec in study.runs if spec["run_id"] not in done]
    if missing:
        print(
            f"shard {shard[0]}/{shard[1]} done: {len(study.runs) - len(missing)} of {len(study.runs)} runs "
            f"in {out}; when every shard has finished: --merge DIR... --out REPORT_DIR"
        )
        return None
    write(collect([out], out, name=study.name), out)
    return out


def _cmd_robustness(args: argparse.Namespace) -> int:
    import time

    from wgangp.experiments.robustness import make_robustness_study, write_robustness_report

    out = Path(args.out) if args.out else Path("runs") / f"robustness-{time.strftime('%Y%m%d-%H%M%S')}"
    study = make_robustness_study(args.architectures, args.seed, _run_settings(args, args.steps))
    report = _run_or_merge(args, study, out, write_robustness_report)
    if report is not None:
        summary = json.loads((report / "results.json").read_text())
        print(
            f"\n{summary['architectures_count']} architectures, real score {summary['reference']['real_score']:.3g}:"
        )
        print(
            "| Min. score | Only GAN | Only WGAN-GP | Both | Neither |\n"
            + "\n".join(
                f"| {row['threshold']:.2f} | {row['only_gan']} | {row['only_wgangp']} | {row['both']} | "
                f"{row['neither']} |"
                for row in summary["counts"]
            )
        )
        print(f"report: {report / 'report.html'} ({report / 'report.md'}, {report / 'results.json'})")
    return 0


def _cmd_figure_2(args: argparse.Namespace) -> int:
    from wgangp.experiments.figure2 import make_figure2_study, write_figure2_report

    if args.width is not None:
        raise UserError("figure 2 has its own seven architectures; drop --width")
    study = make_figure2_study(args.seed, _run_settings(args, args.iterations))
    out = Path(args.out) / "figure_2"
    report = _run_or_merge(args, study, out, write_figure2_report)
    if report is not None:
        summary = json.loads((report / "results.json").read_text())
        for arch in summary["architectures"]:
            cells = "  ".join(f"{loss} {arch['runs'][loss]['score']:.3g}" for loss in summary["losses"])
            print(f"{arch['name']:<18} {cells}")
        print(f"figure: {report / summary['images']['figure']} (report: {report / 'report.html'})")
    return 0


def _cmd_figure(args: argparse.Namespace) -> int:
    from wgangp.experiments.figures import (
        FIG1A_ITERATIONS,
        FIG1A_QUICK,
        FIG1B_QUICK,
        FIG1B_STEPS,
        write_figure_1a,
        write_figure_1b,
    )

    if args.which == "2":
        return _cmd_figure_2(args)
    given = [
        f"--{n.replace('_', '-')}" for n in ("shard", "merge", "eval_samples", "device") if getattr(args, n)
    ]
    if given or args.jobs != 1:
        raise UserError(f"{', '.join(given) or '--jobs'} only applies to figure 2")
    if args.which != "1b" and (args.clip_values or args.no_penalty):
        raise UserError(
            f"{'--clip-values' if args.clip_values else '--no-penalty'} only applies to figure 1b"
        )
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {out} exists and is not a directory")
    options = {
        key: value
        for key, value in (("width", args.width), ("batch_size", args.batch_size), ("seed", args.seed))
        if value is not None
    }
    if args.which == "5":
        return _figure_5(args, out)
    if args.which == "1a":
        options = (FIG1A_QUICK if args.quick else {}) | options
        if args.iterations is not None:
            options["iterations"] = args.iterations
        length = int(options.get("iterations", FIG1A_ITERATIONS))
        options["record_every"] = args.record_every or max(1, length // 10)
        path, summary = write_figure_1a(out, resolution=args.resolution, **options)
        for row in summary["panels"]:
            print(
                f"{row['dataset']:<12} {row['loss']:<10} W estimate {row['w_estimate']:.4g}  "
                f"max ‖∇D‖ {row['lipschitz']:.4g}  recovers {row['recovered']:.1%} of W1 = {row['w1']:.4g}"
            )
    else:
        options = (FIG1B_QUICK if args.quick else {}) | options
        if args.iterations is not None:
            options["steps"] = args.iterations
        length = int(options.get("steps", FIG1B_STEPS))
        options["record_every"] = args.record_every or max(1, length // 10)
        if args.clip_values:
            options["clip_values"] = tuple(args.clip_values)
        path, summary = write_figure_1b(out, penalty=not args.no_penalty, **options)
        for row in summary["runs"]:
            bound = "" if row["fraction_at_bound"] is None else f"  at ±c: {row['fraction_at_bound']:.1%}"
            print(f"{row['label']:<28} layer-norm span ×{row['span']:.3g} ({row['trend']}){bound}")
    print(f"figure: {path} (numbers: {path.with_suffix('.json')})")
    return 0


def _figure_5(args: argparse.Namespace, out: Path) -> int:
    from wgangp.experiments.figure5 import write_figure_5

    overrides = {"conv_width": args.width} if args.width is not None else {}
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    steps = {"steps": args.iterations} if args.iterations is not None else {}
    path, summary = write_figure_5(
        out, train_subset=args.train_subset, seed=args.seed, overrides=overrides, **steps
    )
    r = summary["5a"]["correlation"]
    print(
        f"5a: −L_D vs FD over {len(summary['5a']['steps'])} evals: Pearson {r['pearson']:.3f}, "
        f"Spearman {r['spearman']:.3f}"
    )
    for loss, run in summary["5b"].items():
        fired = "never" if run["overfit_step"] is None else f"from step {run['overfit_step']}"
        print(
            f"5b {loss:<10} final gap {run['final_gap']:.4g} ({run['final_z']:.1f} SE), overfitting {fired}"
        )
    print(f"figure: {path} (numbers: {path.with_suffix('.json')})")
    return 0


def _one_line_warning(command: str) -> Callable[..., None]:
    """Warnings as ``wgangp CMD: warning: ...`` lines, without the source line Python adds."""

    def show(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
        print(f"wgangp {command}: warning: {message}", file=sys.stderr)

    return show


def _cmd_bench(args: argparse.Namespace) -> int:
    from wgangp.experiments.bench import CPU_PATHS, CUDA_PATHS, PATHS, format_table, run_benchmark, toy_case
    from wgangp.trainer import resolve_device

    device = resolve_device(args.device)
    paths = tuple(args.paths or (CUDA_PATHS if device.type == "cuda" else CPU_PATHS))
    unknown = [p for p in paths if p not in PATHS]
    if unknown:
        raise UserError(f"unknown path(s) {', '.join(unknown)}; choose from {', '.join(PATHS)}")
    if device.type != "cuda" and any(PATHS[p].graph for p in paths):
        raise UserError("graph paths need CUDA; on the CPU choose from " + ", ".join(CPU_PATHS))
    rows, facts = run_benchmark(
        [toy_case()], paths, device, reps=args.reps, iters=args.iters, log=lambda _: None
    )
    print(format_table(rows, facts))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.command == "presets":
            print(_presets_help())
            return 0
        handler = {
            "train": _cmd_train,
            "eval": _cmd_eval,
            "sample": _cmd_sample,
            "compare": _cmd_compare,
            "figure": _cmd_figure,
            "robustness": _cmd_robustness,
            "bench": _cmd_bench,
        }[args.command]
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(args.command)
            return handler(args)
    except UserError as err:
        print(f"wgangp {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except RunInterrupted as err:
        print(f"wgangp {args.command}: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"wgangp {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
