"""The bad-input catalogue: every case ends in one line on stderr, a non-zero exit, and no file touched.

Each row is one thing a user can get wrong (README: "Bad input → what happens"). The test snapshots the
whole working directory, including a finished run, before and after the command and requires it to be
byte-for-byte unchanged: nothing overwritten, removed, renamed or created. Image-data cases are here too;
their finer behaviour (mixed sizes and modes, a corrupt file among good ones) is in test_data_images.py.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from wgangp.cli import main
from wgangp.penalty import gradient_penalty
from wgangp.run.checkpoint import load_checkpoint

TINY = [
    *("--set", "width=16", "--set", "depth=2", "--set", "batch_size=32", "--set", "eval_samples=64"),
    *(
        "--set",
        "log_every=2",
        "--set",
        "eval_every=2",
        "--set",
        "plot_every=100",
        "--set",
        "checkpoint_every=2",
    ),
    *("--no-progress", "--no-tensorboard"),
]


def _write(name: str, text: str) -> Callable[[Path], None]:
    return lambda tmp: (tmp / name).write_text(text)


def _truncate_checkpoints(tmp: Path) -> None:
    for path in (tmp / "run" / "checkpoints").glob("step_*.pt"):
        path.write_bytes(path.read_bytes()[:200])  # checkpoint.pt is a link to the newest: torn too


def _checkpoint_variant(name: str, change: Callable[[dict], dict]) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        state = load_checkpoint(tmp / "run" / "checkpoint.pt")
        torch.save(change(state), tmp / name)

    return setup


def _evil_pickle(tmp: Path) -> None:
    class Payload:
        def __reduce__(self):
            return (open, (str(tmp / "pwned"), "w"))

    torch.save({"format_version": 2, "step": 0, "x": Payload()}, tmp / "evil.pt")


def _image_folder(*, corrupt_only: bool) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        folder = tmp / "imgs"
        folder.mkdir()
        (folder / "broken.png").write_bytes(b"not a png")
        if corrupt_only:
            (folder / "also_broken.jpg").write_bytes(b"\xff\xd8 truncated")

    return setup


def _npy(name: str, array: object) -> Callable[[Path], None]:
    import numpy as np

    return lambda tmp: np.save(tmp / name, np.asarray(array))


def _train_images(run: Path) -> None:
    sets = ["--set", "conv_width=8", "--set", "batch_size=16", "--set", "eval_every=100"]
    assert main(["train", "--dataset", "digits", "--steps", "1", "--out", str(run), *sets, *TINY[8:]]) == 0


def _train_text(run: Path) -> None:
    sets = ["--set", "width=8", "--set", "depth=1", "--set", "batch_size=16", "--set", "seq_len=8"]
    assert main(["train", "--dataset", "text", "--steps", "1", "--out", str(run), *sets, *TINY[8:]]) == 0


def _labelled_vectors(name: str, labels: list[int]) -> Callable[[Path], None]:
    """A ``.npz`` of 2-d vectors ``x`` with class labels ``y`` (repeated to 320 rows)."""

    def setup(tmp: Path) -> None:
        import numpy as np

        y = np.resize(np.asarray(labels), 320)
        x = np.random.default_rng(0).normal(size=(320, 2)) + y[:, None]
        np.savez(tmp / name, x=x, y=y)

    return setup


def _class_folder_with_an_empty_class(tmp: Path) -> None:
    from PIL import Image

    for name in ("cat", "dog"):
        (tmp / "classes" / name).mkdir(parents=True)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(tmp / "classes" / "cat" / "a.png")


def _conditional_run(tmp: Path) -> None:
    """``crun``: a finished 10-class AC-GAN run (MLP on labelled vectors)."""
    _labelled_vectors("ten.npz", list(range(10)))(tmp)
    data = ["--dataset", "vectors", "--data-path", str(tmp / "ten.npz"), "--set", "conditioning=acgan"]
    assert main(["train", "--out", str(tmp / "crun"), "--steps", "2", *data, *TINY]) == 0


def _two_studies(tmp: Path) -> None:
    for name, study_id in (("s1", "aaaa"), ("s2", "bbbb")):
        runs = tmp / name / "runs"
        runs.mkdir(parents=True)
        result = {"study": "robustness", "study_id": study_id, "run_id": f"{name}-gan", "metrics": {}}
        (runs / f"{name}-gan.json").write_text(json.dumps(result))


def _locked_dir(tmp: Path) -> None:
    (tmp / "locked").mkdir()
    (tmp / "locked").chmod(0o555)


def _fifo(name: str) -> Callable[[Path], None]:
    return lambda tmp: os.mkfifo(tmp / name)


def _early_run(tmp: Path) -> None:
    """A run killed before its first checkpoint: a config, nothing to resume."""
    (tmp / "early").mkdir()
    shutil.copy(tmp / "run" / "config.json", tmp / "early" / "config.json")


_HELD: list = []  # locks a case holds while its command runs (released after it)


def _hold_lock(tmp: Path) -> None:
    from wgangp.run.lock import RunLock

    _HELD.append(RunLock(tmp / "run").acquire())


@dataclass(frozen=True)
class Case:
    id: str
    argv: list[str]  # "{tmp}" and "{run}" are filled in
    message: str
    setup: Callable[[Path], None] | None = None
    code: int = 2


CASES = [
    # Config keys, types and ranges.
    Case("unknown key (--set)", ["train", "--set", "colour=3"], "unknown config key: colour"),
    Case(
        "unknown key (config file)",
        ["train", "--config", "{tmp}/c.toml"],
        "unknown config key(s): colour",
        _write("c.toml", "colour = 3\n"),
    ),
    Case("wrong type (--set)", ["train", "--set", "steps=abc"], "steps must be an integer"),
    Case(
        "wrong type (config file)",
        ["train", "--config", "{tmp}/c.toml"],
        "steps must be an integer; got 'ten'",
        _write("c.toml", 'steps = "ten"\n'),
    ),
    Case("wrong type (bool)", ["train", "--set", "skip_nonfinite=maybe"], "must be true or false"),
    Case("steps zero (flag)", ["train", "--steps", "0"], "--steps: must be a positive integer"),
    Case("steps not a number", ["train", "--steps", "ten"], "--steps: must be a positive integer"),
    Case("steps negative", ["train", "--set", "steps=-5"], "steps must be in [1, inf)"),
    Case("batch size zero", ["train", "--set", "batch_size=0"], "batch_size must be in [1, inf)"),
    Case("n_critic zero", ["train", "--set", "n_critic=0"], "n_critic must be in [1, inf)"),
    Case("lambda negative", ["train", "--set", "penalty_weight=-1"], "penalty_weight must be in [0, inf)"),
    Case("lambda infinite", ["train", "--set", "penalty_weight=inf"], "penalty_weight must be finite"),
    Case("lr zero", ["train", "--set", "lr_critic=0"], "lr_critic must be in (0, inf)"),
    Case("lr negative", ["train", "--set", "lr_generator=-1e-4"], "lr_generator must be in (0, inf)"),
    Case("lr NaN", ["train", "--set", "lr_generator=nan"], "lr_generator must be finite"),
    Case("penalty fraction zero", ["train", "--set", "penalty_fraction=0"], "must be in (0, 1]"),
    Case("eval samples one", ["train", "--set", "eval_samples=1"], "eval_samples must be in [2, inf)"),
    Case("keep zero checkpoints", ["train", "--set", "keep_checkpoints=0"], "keep_checkpoints must be in"),
    Case("--set without =", ["train", "--set", "steps"], "--set takes key=value"),
    # Unknown names.
    Case("unknown dataset (flag)", ["train", "--dataset", "imagenet"], "argument --dataset: invalid choice"),
    Case("unknown dataset (--set)", ["train", "--set", "dataset=imagenet"], "dataset must be one of"),
    Case("unknown preset", ["train", "--preset", "huge"], "argument --preset: invalid choice"),
    Case("unknown loss (flag)", ["train", "--loss", "hinge"], "argument --loss: invalid choice"),
    Case("unknown loss (--set)", ["train", "--set", "loss=hinge"], "loss must be one of wgan-gp"),
    Case(
        "BatchNorm critic", ["train", "--set", "critic_norm=batch"], "critic_norm must be one of none, layer"
    ),
    Case("unknown device", ["train", "--device", "tpu"], "device must be auto, cpu, cuda"),
    # Architecture factors (model factored) and the studies (wgangp robustness, figure 2).
    Case(
        "unknown activation",
        ["train", "--dataset", "digits", "--set", "model=factored", "--set", "activation=swish"],
        "activation must be one of relu, leaky_relu, elu, softplus, tanh, gated; got 'swish'",
    ),
    Case(
        "conv depth below 1",
        ["train", "--dataset", "digits", "--set", "model=factored", "--set", "conv_depth=0"],
        "conv_depth must be in [1, inf)",
    ),
    Case(
        "BatchNorm critic with wgan-gp (factored)",
        ["train", "--dataset", "digits", "--set", "model=factored", "--set", "critic_norm=batch"],
        "critic_norm must be one of none, layer with loss wgan-gp",
    ),
    Case(
        "factor without model factored",
        ["train", "--dataset", "digits", "--set", "activation=tanh"],
        "activation set, but only model factored uses it; add model=factored",
    ),
    Case("robustness: shard 3/2", ["robustness", "--shard", "3/2"], "--shard must be i/n with 0 ≤ i < n"),
    Case(
        "robustness: merge of different studies",
        ["robustness", "--merge", "{tmp}/s1", "{tmp}/s2"],
        "merge one study at a time",
        _two_studies,
    ),
    Case(
        "robustness: merge of a dir that is no study",
        ["robustness", "--merge", "{tmp}/run"],
        "not a study directory",
    ),
    Case(
        "figure 2 with --width", ["figure", "2", "--width", "8"], "figure 2 has its own seven architectures"
    ),
    Case(
        "figure 1a with --clip-values", ["figure", "1a", "--clip-values", "0.1"], "only applies to figure 1b"
    ),
    Case("figure 1b with a bound ≤ 0", ["figure", "1b", "--clip-values", "0"], "must be a positive number"),
    Case("unknown command", ["frobnicate"], "invalid choice"),
    # Files and output paths.
    Case("config file missing", ["train", "--config", "{tmp}/none.toml"], "config file not found"),
    Case(
        "config file unparsable",
        ["train", "--config", "{tmp}/c.toml"],
        "cannot parse config file",
        _write("c.toml", "steps = = 3\n"),
    ),
    Case(
        "config file not a table",
        ["train", "--config", "{tmp}/c.json"],
        "must hold a table of keys",
        _write("c.json", "[1, 2]"),
    ),
    Case(
        "output dir is a file",
        ["train", "--out", "{tmp}/file", *TINY],
        "exists and is not a directory",
        _write("file", "keep me"),
    ),
    Case(
        "output dir not writable",
        ["train", "--out", "{tmp}/locked/run", *TINY],
        "cannot write to output directory",
        _locked_dir,
    ),
    Case(
        "run dir holds a different run",
        ["train", "--out", "{run}", "--set", "width=32", *TINY],
        "already holds a run; pass --resume",
    ),
    # Resume.
    Case("resume: no such dir", ["train", "--resume", "{tmp}/none"], "run directory not found"),
    Case("resume: not a run", ["train", "--resume", "{tmp}"], "has no checkpoint"),
    Case(
        "resume: changed architecture",
        ["train", "--resume", "{run}", "--steps", "8", "--set", "width=32"],
        "the config changes width (16 → 32); pass --force",
    ),
    Case(
        "resume: changed dataset",
        ["train", "--resume", "{run}", "--steps", "8", "--dataset", "swissroll"],
        "the config changes dataset ('8gaussians' → 'swissroll')",
    ),
    Case(
        "resume: changed loss",
        ["train", "--resume", "{run}", "--steps", "8", "--loss", "wgan-clip"],
        "the config changes loss ('wgan-gp' → 'wgan-clip')",
    ),
    Case(
        "resume: changed architecture, forced",
        ["train", "--resume", "{run}", "--steps", "8", "--set", "width=32", "--force"],
        "the checkpoint does not fit the model of its config: Error(s) in loading state_dict",
    ),
    Case("resume: run already finished", ["train", "--resume", "{run}"], "is already at step 4 of steps=4"),
    Case("resume with --out", ["train", "--resume", "{run}", "--out", "{tmp}/x"], "drop --out"),
    Case("--force without --resume", ["train", "--force"], "--force only applies to --resume"),
    Case(
        "resume: every checkpoint truncated",
        ["train", "--resume", "{run}", "--steps", "8"],
        "no valid checkpoint in",
        _truncate_checkpoints,
    ),
    # Image and vector data (the first read happens before the run directory is written).
    Case("mnist without a path", ["train", "--dataset", "mnist"], "dataset mnist needs --data-path DIR"),
    Case(
        "missing data path",
        ["train", "--dataset", "cifar10", "--data-path", "{tmp}/none"],
        "is not a directory",
    ),
    Case(
        "CIFAR dir with missing files",
        ["train", "--dataset", "cifar10", "--data-path", "{tmp}/cifar"],
        "data_batch_1",
        lambda tmp: (tmp / "cifar").mkdir(),
    ),
    Case(
        "MNIST dir with missing files",
        ["train", "--dataset", "mnist", "--data-path", "{tmp}/mnist"],
        "train-images-idx3-ubyte",
        lambda tmp: (tmp / "mnist").mkdir(),
    ),
    Case(
        "empty image folder",
        ["train", "--dataset", "folder", "--data-path", "{tmp}/empty", "--set", "resolution=8"],
        "folder:",
        lambda tmp: (tmp / "empty").mkdir(),
    ),
    Case(
        "folder of corrupt images only",
        ["train", "--dataset", "folder", "--data-path", "{tmp}/imgs", "--set", "resolution=8"],
        "folder:",
        _image_folder(corrupt_only=True),
    ),
    Case(
        ".npy with the wrong rank",
        ["train", "--dataset", "vectors", "--data-path", "{tmp}/v.npy"],
        "must hold a 2-d array",
        _npy("v.npy", [1.0, 2.0, 3.0]),
    ),
    Case(
        ".npy with non-finite values",
        ["train", "--dataset", "vectors", "--data-path", "{tmp}/nan.npy"],
        "non-finite value",
        _npy("nan.npy", [[1.0, float("nan")]] * 300),
    ),
    Case(
        "dataset smaller than a batch",
        ["train", "--dataset", "vectors", "--data-path", "{tmp}/few.npy", "--set", "batch_size=64"],
        "fewer than one batch",
        _npy("few.npy", [[1.0, 2.0]] * 10),
    ),
    Case(
        "resolution the model cannot make",
        ["train", "--dataset", "digits", "--set", "model=dcgan", "--set", "resolution=12"],
        "DCGAN models make 28×28 or 2^k×2^k images",
    ),
    Case(
        "resolution the digits model cannot make",
        ["train", "--dataset", "digits", "--set", "resolution=12"],
        "model digits: the digits models make 8×8 images; got 12×12",
    ),
    # Checkpoints given to eval and sample.
    Case("eval: no such run", ["eval", "{tmp}/none"], "run directory not found"),
    Case("eval: dir without checkpoint", ["eval", "{tmp}"], "has no checkpoint"),
    Case("eval: truncated checkpoint", ["eval", "{run}"], "cannot load checkpoint", _truncate_checkpoints),
    Case(
        "eval: checkpoint of another format",
        ["eval", "{tmp}/old.pt"],
        "has checkpoint format 1, this wgangp reads format 2",
        _checkpoint_variant("old.pt", lambda s: s | {"format_version": 1}),
    ),
    Case(
        "eval: checkpoint of a different model",
        ["eval", "{tmp}/other.pt"],
        "does not fit the model of its config: Error(s) in loading state_dict for MLPGenerator",
        _checkpoint_variant("other.pt", lambda s: s | {"config": s["config"] | {"width": 32}}),
    ),
    Case(
        "eval: torch file that is no checkpoint",
        ["eval", "{tmp}/t.pt"],
        "is not a wgangp checkpoint",
        lambda tmp: torch.save({"weights": torch.ones(2)}, tmp / "t.pt"),
    ),
    Case(
        "eval: text file as checkpoint",
        ["eval", "{tmp}/c.toml"],
        "cannot load checkpoint",
        _write("c.toml", "x"),
    ),
    Case(
        "eval: pickle that runs code",
        ["eval", "{tmp}/evil.pt"],
        "refused, it would load io.open",
        _evil_pickle,
    ),
    Case("eval: zero samples", ["eval", "{run}", "--samples", "0"], "--samples: must be a positive integer"),
    Case("sample: no such run", ["sample", "{tmp}/none", "--out", "{tmp}/s.npy"], "run directory not found"),
    Case(
        "sample: bad suffix",
        ["sample", "{run}", "--out", "{tmp}/s.txt"],
        "--out must end in .npy, .npz or .png",
    ),
    # Text and sequences (Sec. 5.5; 1-d signals).
    Case(
        "text: empty file",
        ["train", "--dataset", "text", "--data-path", "{tmp}/e.txt", *TINY],
        "is empty",
        _write("e.txt", "\n  \n"),
    ),
    Case(
        "text: binary file",
        ["train", "--dataset", "text", "--data-path", "{tmp}/b.txt", *TINY],
        "is binary",
        lambda tmp: (tmp / "b.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00"),
    ),
    Case(
        "text: not UTF-8",
        ["train", "--dataset", "text", "--data-path", "{tmp}/l.txt", *TINY],
        "is not UTF-8",
        lambda tmp: (tmp / "l.txt").write_bytes("café au lait\n".encode("latin-1") * 50),
    ),
    Case(
        "text: fewer sequences than a batch",
        ["train", "--dataset", "text", "--data-path", "{tmp}/few.txt", *TINY],
        "fewer than one batch",
        _write("few.txt", "a short line\n" * 20),
    ),
    Case(
        "text: seq_len below 4", ["train", "--dataset", "text", "--set", "seq_len=3"], "seq_len must be in [4"
    ),
    Case(
        "sequences: .npy of rank 1",
        ["train", "--dataset", "sequences", "--data-path", "{tmp}/r1.npy", *TINY],
        "must hold [N, C, T] or [N, T] series",
        _npy("r1.npy", [1.0, 2.0, 3.0]),
    ),
    Case(
        "sequences: .npy of rank 4",
        ["train", "--dataset", "sequences", "--data-path", "{tmp}/r4.npy", *TINY],
        "must hold [N, C, T] or [N, T] series",
        _npy("r4.npy", [[[[1.0, 2.0]]]] * 100),
    ),
    Case(
        "sequences: NaN in a series",
        ["train", "--dataset", "sequences", "--data-path", "{tmp}/nan.npy", *TINY],
        "non-finite value",
        _npy("nan.npy", [[0.0, 1.0, float("nan"), 1.0]] * 100),
    ),
    Case("sequences: no data path", ["train", "--dataset", "sequences", *TINY], "needs --data-path"),
    Case(
        "sample: .txt of an image run",
        ["sample", "{tmp}/img", "--out", "{tmp}/s.txt"],
        "(.txt holds decoded text, for text runs)",
        lambda tmp: _train_images(tmp / "img"),
    ),
    Case(
        "sample: .png of a text run",
        ["sample", "{tmp}/txt", "--out", "{tmp}/s.png"],
        "a text run's samples are no picture",
        lambda tmp: _train_text(tmp / "txt"),
    ),
    Case(
        "sample: out is a dir",
        ["sample", "{run}", "--out", "{tmp}/d.npy"],
        "is a directory",
        lambda t: (t / "d.npy").mkdir(),
    ),
    Case(
        "sample: out under a file",
        ["sample", "{run}", "--out", "{tmp}/file/s.npy"],
        "cannot write",
        _write("file", "keep me"),
    ),
    Case(
        "sample: zero samples",
        ["sample", "{run}", "-n", "0", "--out", "{tmp}/s.npy"],
        "-n: must be a positive",
    ),
    # InfoGAN's categorical code (README "Conditional", latent_codes).
    Case(
        "latent code of one category",
        ["train", "--set", "latent_codes=1"],
        "latent_codes must be 0 (off) or at least 2",
    ),
    Case(
        "latent code longer than z",
        ["train", "--dataset", "digits", "--set", "latent_codes=40"],
        "latent_codes=40 takes the code from z's first K entries; it must be at most latent_dim=16",
    ),
    Case(
        "latent code with labels",
        ["train", "--dataset", "digits", "--set", "latent_codes=10", "--set", "conditioning=acgan"],
        "latent_codes is the unsupervised code; with conditioning=acgan the labels are the classes",
    ),
    Case(
        "latent code on a model without class inputs",
        ["train", "--dataset", "text", "--set", "latent_codes=4"],
        "latent_codes needs a model with class inputs",
    ),
    Case(
        "sample --code on a run without a code",
        ["sample", "{run}", "-n", "2", "--code", "1", "--out", "{tmp}/s.npy"],
        "--code needs a run trained with latent_codes",
    ),
    Case(
        "sample --class and --code together",
        ["sample", "{run}", "-n", "2", "--class", "1", "--code", "1", "--out", "{tmp}/s.npy"],
        "--class and --code: choose one",
    ),
    Case(
        "sample --code with a negative code",
        ["sample", "{run}", "-n", "2", "--code", "-1", "--out", "{tmp}/s.npy"],
        "must be a class index >= 0 or 'all'",
    ),
    # Class-conditional runs (README "Conditional").
    Case(
        "conditioning on a dataset without labels",
        ["train", "--set", "conditioning=acgan"],
        "conditioning=acgan needs class labels; dataset 8gaussians has none",
    ),
    Case(
        "conditioning on vectors without labels (.npy)",
        ["train", "--dataset", "vectors", "--data-path", "{tmp}/v.npy", "--set", "conditioning=projection"],
        "vectors with labels need a .npz holding x [N, D] and y [N]",
        _npy("v.npy", [[1.0, 2.0]] * 300),
    ),
    Case(
        "n_classes without conditioning",
        ["train", "--set", "n_classes=10"],
        "n_classes=10 needs conditioning",
    ),
    Case(
        "labels out of range (n_classes)",
        [
            *("train", "--dataset", "vectors", "--data-path", "{tmp}/v.npz", "--set", "conditioning=acgan"),
            *("--set", "n_classes=3"),
            *TINY,
        ],
        "v.npz: y must be < n_classes = 3; got 4",
        _labelled_vectors("v.npz", [0, 1, 2, 3, 4]),
    ),
    Case(
        "labels out of range (negative)",
        ["train", "--dataset", "vectors", "--data-path", "{tmp}/v.npz", "--set", "conditioning=acgan", *TINY],
        "v.npz: y must be class indices ≥ 0; got -1",
        _labelled_vectors("v.npz", [0, 1, -1]),
    ),
    Case(
        "class folder with an empty class",
        [
            *("train", "--dataset", "folder", "--data-path", "{tmp}/classes", "--set", "resolution=8"),
            *("--set", "conditioning=acgan", "--set", "model=dcgan"),
            *TINY,
        ],
        "class folder(s) dog in",
        _class_folder_with_an_empty_class,
    ),
    Case(
        "sample: --class on an unconditional run",
        ["sample", "{run}", "--class", "0", "--out", "{tmp}/s.npz"],
        "--class needs a class-conditional run",
    ),
    Case(
        "sample: --class 12 on a 10-class run",
        ["sample", "{tmp}/crun", "--class", "12", "--out", "{tmp}/s.npz"],
        "--class 12 is out of range: this run has 10 classes (0..9)",
        _conditional_run,
    ),
    Case(
        "sample: --class not a class",
        ["sample", "{run}", "--class", "seven", "--out", "{tmp}/s.npz"],
        "--class: must be a class index >= 0 or 'all'",
    ),
    # Issue 12: what surprised a new user.
    Case(
        "lambda zero with wgan-gp",
        ["train", "--set", "penalty_weight=0"],
        "penalty_weight=0 with loss wgan-gp trains an unconstrained critic",
    ),
    Case("int too large (--set)", ["train", "--set", "steps=1e30"], "steps must be an integer; got '1e30'"),
    Case("int with a fraction (flag)", ["train", "--steps", "1.5"], "--steps: must be a positive integer"),
    Case(
        "key at the top level and in [train]",
        ["train", "--config", "{tmp}/c.toml"],
        "sets steps both at the top level (3) and in [train] (5); keep one",
        _write("c.toml", "steps = 3\n[train]\nsteps = 5\n"),
    ),
    Case("config is a directory", ["train", "--config", "{tmp}"], "is a directory; give the TOML file"),
    Case("config is a FIFO", ["train", "--config", "{tmp}/pipe"], "is not a regular file", _fifo("pipe")),
    Case("empty --out", ["train", "--out", ""], "--out is empty"),
    Case(
        "batch that cannot fit in memory",
        ["train", "--set", "batch_size=100000000"],
        "batch_size=100000000 needs about",
    ),
    Case(
        "standardize without vectors",
        ["train", "--set", "standardize=true"],
        "standardize applies to --dataset vectors and sequences only",
    ),
    Case(
        "critic_spectrum without the 1-D ResNet",
        ["train", "--set", "critic_spectrum=true"],
        "critic_spectrum needs model resnet1d (sequences); got model",
    ),
    Case(
        ".npy of Python objects",
        ["train", "--dataset", "vectors", "--data-path", "{tmp}/o.npy"],
        "holds Python objects (dtype object), not numbers",
        lambda tmp: __import__("numpy").save(tmp / "o.npy", __import__("numpy").array([{"a": 1}] * 4)),
    ),
    Case(
        ".npy of strings",
        ["train", "--dataset", "vectors", "--data-path", "{tmp}/s.npy"],
        "holds strings (dtype <U1), not real numbers",
        _npy("s.npy", [["a", "b"]] * 4),
    ),
    Case(
        "resume: stopped before its first checkpoint",
        ["train", "--resume", "{tmp}/early"],
        "it stopped before its first checkpoint",
        _early_run,
    ),
    Case(
        "resume: run in use",
        ["train", "--resume", "{run}", "--steps", "8"],
        "is in use by process",
        _hold_lock,
    ),
    Case("eval: checkpoint path is a FIFO", ["eval", "{tmp}/pipe"], "is a FIFO (named pipe)", _fifo("pipe")),
    Case(
        "sample: out exists",
        ["sample", "{run}", "--out", "{tmp}/s.npy"],
        "exists; pass --overwrite to replace it",
        _npy("s.npy", [1.0]),
    ),
    Case(
        "sample: more than the disk holds",
        ["sample", "{run}", "-n", "1000000000000000", "--out", "{tmp}/s.npy"],
        "8.0 PB",
    ),
    Case(
        "sample: too many points for a png",
        ["sample", "{run}", "-n", "2000000", "--out", "{tmp}/s.png"],
        "a .png shows at most 1000000 points",
    ),
    # The held-out critic monitor and sampling (README "Reading the curves").
    Case(
        "train_subset on toy data",
        ["train", "--set", "train_subset=100", *TINY],
        "is sampled afresh for every batch: it has no finite training set",
    ),
    Case(
        "monitor_holdout on toy data",
        ["train", "--set", "monitor_holdout=100", *TINY],
        "is sampled afresh for every batch: it has no finite training set",
    ),
    Case(
        "monitor_samples without the monitor",
        ["train", "--set", "monitor_samples=100", *TINY],
        "monitor_samples needs the monitor on",
    ),
    Case(
        "train_subset above the data",
        ["train", "--dataset", "digits", "--set", "train_subset=5000", *TINY],
        "train_subset=5000, but the dataset has only 1797 samples",
    ),
    Case(
        "monitor_holdout of one sample",
        ["train", "--dataset", "digits", "--set", "monitor_holdout=1", *TINY],
        "monitor_holdout must be 0 (off) or at least 2 samples",
    ),
    Case(
        "monitor_holdout beyond what train_subset leaves",
        ["train", "--dataset", "digits", "--set", "train_subset=1000", "--set", "monitor_holdout=900", *TINY],
        "monitor_holdout=900 does not fit in the 797 samples train_subset=1000 leaves",
    ),
    Case("overfit_sigmas zero", ["train", "--set", "overfit_sigmas=0"], "overfit_sigmas must be in (0, inf)"),
    Case(
        "sample_batchnorm unknown",
        ["train", "--set", "sample_batchnorm=eval"],
        "sample_batchnorm must be one of",
    ),
    # compare --methods (Figure 3's arms).
    Case(
        "compare: unknown method",
        ["compare", "--steps", "1", "--methods", "wgan-gp,wgan-lp", "--out", "{tmp}/cmp"],
        "unknown method 'wgan-lp' in --methods; choose from wgan-gp, wgan-gp-rmsprop, wgan-clip, gan",
    ),
    Case(
        "compare: duplicate method",
        ["compare", "--steps", "1", "--methods", "gan,wgan-gp,gan", "--out", "{tmp}/cmp"],
        "--methods names 'gan' twice; give each method once",
    ),
    Case(
        "compare: no methods",
        ["compare", "--steps", "1", "--methods", " , ", "--out", "{tmp}/cmp"],
        "--methods needs at least one method",
    ),
]
if not torch.cuda.is_available():
    CASES.append(
        Case("CUDA asked for, none here", ["train", "--device", "cuda", *TINY], "CUDA is not available")
    )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", "--out", str(run), "--steps", "4", *TINY]) == 0
    return run


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _deny_writes_under(locked: Path, monkeypatch) -> None:
    """Root ignores permission bits: refuse writes below ``locked`` as the kernel would for anyone else."""
    mkdir = pathlib.Path.mkdir

    def guarded(self, *args, **kwargs):
        if locked in Path(self).parents or Path(self) == locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", guarded)


def test_catalogue_is_large_enough():
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case, finished_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a default --out would land here, inside the snapshot
    shutil.copytree(finished_run, tmp_path / "run")
    if case.setup is not None:
        case.setup(tmp_path)
    if (tmp_path / "locked").is_dir() and os.geteuid() == 0:
        _deny_writes_under(tmp_path / "locked", monkeypatch)
    before = _snapshot(tmp_path)
    capsys.readouterr()

    argv = [arg.format(tmp=tmp_path, run=tmp_path / "run") for arg in case.argv]
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    finally:
        if (tmp_path / "locked").is_dir():
            (tmp_path / "locked").chmod(0o755)
        after = _snapshot(tmp_path)  # before a held lock is released (which empties its file)
        while _HELD:
            _HELD.pop().release()

    err = capsys.readouterr().err
    assert code == case.code, err
    assert err.count("\n") == 1, err
    assert case.message in err, err
    assert "Traceback" not in err
    assert after == before


def test_batchnorm_critic_is_refused_by_the_penalty_library():
    critic = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    real, fake = torch.randn(4, 2), torch.randn(4, 2)
    with pytest.raises(ValueError, match="critic contains BatchNorm") as info:
        gradient_penalty(critic, real, fake)
    assert "\n" not in str(info.value)
