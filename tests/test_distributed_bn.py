"""Global-batch BatchNorm (``wgangp.models.global_bn``): N processes normalise, update buffers and back-propagate
exactly as one process on the whole batch; under ``torchrun`` a DCGAN generator trains as in one process.

The layer tests spawn 2 gloo processes holding 3 + 5 rows of an 8-row batch and compare with ``nn.BatchNorm`` on
all 8 rows; the training tests launch ``torchrun`` (as ``test_distributed``) on the digits data.
"""

from __future__ import annotations

import functools
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from torchrun_util import QUIET, assert_same_training, checkpoint_state, set_args, torchrun
from wgangp.cli import main
from wgangp.config import resolve_config
from wgangp.metrics import classifier as classifier_module
from wgangp.metrics.images import CLASSIFIER_CACHE, classifier_metrics
from wgangp.models.global_bn import (
    GlobalBatchNorm1d,
    GlobalBatchNorm2d,
    local_batch_statistics,
    to_global_batchnorm,
)
from wgangp.run.log import read_metrics

ROWS = (slice(0, 3), slice(3, 8))  # uneven shards of an 8-row batch
SHAPES = {
    "2d": (8, 3, 4, 5),
    "1d": (8, 6),
    "1d-length": (8, 4, 7),
    "shifted": (8, 3, 4, 5),
    "bf16": (8, 3, 4, 5),
}
# (case, under no_grad, momentum)
CASES = [("2d", False, 0.1), ("1d", False, 0.1), ("1d-length", False, 0.1), ("1d", False, None)]
CASES += [("2d", True, 0.1), ("shifted", True, 0.1)]  # the critic step's generator: no_grad, train mode
CASES += [("bf16", False, 0.1)]  # bf16 activations (autocast): statistics in fp32, output in bf16


def _inputs(shape: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A BatchNorm with non-trivial γ, β; two global batches; the loss's fixed per-row weights ``R``."""
    gen = torch.Generator().manual_seed(sum(map(ord, shape)))
    size = SHAPES[shape]
    layer = nn.BatchNorm2d(size[1]) if len(size) == 4 else nn.BatchNorm1d(size[1])
    with torch.no_grad():
        layer.weight.copy_(1 + 0.3 * torch.randn(size[1], generator=gen))
        layer.bias.copy_(0.3 * torch.randn(size[1], generator=gen))
    first, second, weights = (torch.randn(size, generator=gen) for _ in range(3))
    if shape == "shifted":  # |mean| ≫ std: E[x²] − E[x]² would lose every digit of σ² in fp32
        offset = 1e3 * (1 + torch.arange(size[1])).view(1, -1, 1, 1)
        first, second = first + offset, second * 0.5 + offset
    if shape == "bf16":
        first, second = first.bfloat16(), second.bfloat16()
    return layer, first, second, weights


def _run(layer: nn.Module, first, second, weights, rows: slice, *, no_grad: bool) -> dict[str, torch.Tensor]:
    """Two training-mode forwards (buffers move twice); the shard-mean loss of the second, back-propagated."""
    with torch.no_grad():
        layer(first[rows])
    x = second[rows].clone().requires_grad_(not no_grad)
    with torch.set_grad_enabled(not no_grad):
        y = layer(x)
    out = {"y": y.detach(), **{k: v.clone() for k, v in layer.state_dict().items()}}
    if not no_grad:
        (y * weights[rows]).flatten(1).sum(1).mean().backward()  # L_r: a mean over this shard's rows
        out |= {"x.grad": x.grad, "weight.grad": layer.weight.grad, "bias.grad": layer.bias.grad}
    return out


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=2, timeout=timedelta(seconds=30)
    )
    try:
        results = {}
        for shape, no_grad, momentum in CASES:
            layer, first, second, weights = _inputs(shape)
            layer.momentum = momentum
            layer = to_global_batchnorm(layer)
            results[(shape, no_grad, momentum)] = _run(
                layer, first, second, weights, ROWS[rank], no_grad=no_grad
            )
        # Forwards on one rank alone must not wait for the other: eval mode, and local statistics.
        layer = to_global_batchnorm(_inputs("2d")[0])
        x = _inputs("2d")[1][ROWS[rank]]
        results["eval"] = layer.eval()(x)
        with local_batch_statistics(layer.train()):
            results["local"] = layer(x)
        results["local buffers"] = layer.running_mean.clone()
        dist.barrier()
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> list[dict]:
    """Each rank's results of every case, computed by 2 spawned gloo processes."""
    tmp = tmp_path_factory.mktemp("bn")
    mp.spawn(_worker, args=(str(tmp / "store"), str(tmp)), nprocs=2, join=True)
    return [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.mark.parametrize(("shape", "no_grad", "momentum"), CASES)
def test_two_ranks_equal_batchnorm_on_the_whole_batch(two_ranks, shape, no_grad, momentum):
    layer, first, second, weights = _inputs(shape)
    layer.momentum = momentum
    # bf16: the reference is fp32 BatchNorm on the same (bf16-rounded) values.
    whole = _run(layer, first.float(), second.float(), weights, slice(0, 8), no_grad=no_grad)
    ranks = [r[(shape, no_grad, momentum)] for r in two_ranks]
    close = {"rtol": 1e-5, "atol": 1e-6}
    # Shifted: x ~ 3e3 has an fp32 spacing of 2.4e-4, so μ does too, and y = γ(x − μ)/σ with σ = 0.5 ...
    y_close = {"rtol": 0, "atol": 1e-3} if shape == "shifted" else close
    if shape == "bf16":  # ... and bf16 outputs (and input gradients) are rounded to 8 bits
        assert ranks[0]["y"].dtype == ranks[0]["x.grad"].dtype == torch.bfloat16
        y_close = {"rtol": 1e-2, "atol": 1e-2}
        whole = whole | {k: whole[k].bfloat16() for k in ("y", "x.grad")}
    torch.testing.assert_close(torch.cat([r["y"] for r in ranks]), whole["y"], **y_close)
    for key in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.equal(ranks[0][key], ranks[1][key]), key  # the same on every rank, bit for bit
        torch.testing.assert_close(ranks[0][key], whole[key], **close)  # ... but σ² is exact
    if no_grad:
        assert "x.grad" not in ranks[0]
        return
    # The trainer sums w_r × each rank's gradient (w_r = n_r / N): that is the whole batch's gradient.
    shares = [(s.stop - s.start) / 8 for s in ROWS]
    x_grad = torch.cat([w * r["x.grad"] for w, r in zip(shares, ranks, strict=True)])
    torch.testing.assert_close(x_grad, whole["x.grad"], **y_close)
    for key in ("weight.grad", "bias.grad"):
        summed = sum(w * r[key] for w, r in zip(shares, ranks, strict=True))
        torch.testing.assert_close(summed, whole[key], rtol=1e-5, atol=1e-5 if shape != "bf16" else 1e-2)


def test_alone_on_one_rank_eval_and_local_statistics(two_ranks):
    layer, x, _, _ = _inputs("2d")
    for rank, rows in enumerate(ROWS):
        with torch.no_grad():
            evaluated, local = layer.eval()(x[rows]), layer.train()(x[rows])
        layer.reset_running_stats()
        torch.testing.assert_close(two_ranks[rank]["eval"], evaluated, rtol=0, atol=0)
        torch.testing.assert_close(two_ranks[rank]["local"], local, rtol=1e-6, atol=1e-6)
        assert torch.equal(two_ranks[rank]["local buffers"], torch.zeros(3))  # left alone


@pytest.mark.parametrize("kind", [nn.BatchNorm1d, nn.BatchNorm2d])
def test_conversion_keeps_parameters_buffers_and_keys(kind):
    net = nn.Sequential(nn.Linear(4, 4), kind(4), nn.Sequential(kind(4)))
    before = dict(net.state_dict(keep_vars=True))
    converted = to_global_batchnorm(net)
    assert converted is net
    new = GlobalBatchNorm1d if kind is nn.BatchNorm1d else GlobalBatchNorm2d
    assert [type(m) for m in net.modules()] == [nn.Sequential, nn.Linear, new, nn.Sequential, new]
    after = net.state_dict(keep_vars=True)
    assert list(after) == list(before) and all(after[k] is before[k] for k in before)
    # One process (no process group): exactly nn.BatchNorm.
    x = torch.randn(5, 4) if kind is nn.BatchNorm1d else torch.randn(5, 4, 3, 3)
    reference = kind(4)
    torch.testing.assert_close(net[1](x), reference(x), rtol=0, atol=0)


def test_local_statistics_leave_plain_batchnorm_buffers_alone():
    layer = nn.BatchNorm1d(3)
    with local_batch_statistics(layer):
        y = layer(torch.randn(6, 3) + 5).detach()
    assert torch.equal(layer.running_mean, torch.zeros(3)) and int(layer.num_batches_tracked) == 0
    assert layer.track_running_stats and abs(float(y.mean())) < 1e-6  # normalised by its own batch


# End to end: the DCGAN generator on 8×8 digits (its BatchNorm1d after the linear layer; at 8×8 it has no
# BatchNorm2d, which the layer tests cover). A lazy penalty (every 10th critic step: at iteration 1, not 2)
# runs the fast step and leaves iteration 2's log row without ‖∇D‖, so rank 0 alone probes for it with the
# generator in train mode: a collective there would leave rank 0 waiting (dist_timeout fails the job),
# a running-buffer update would make rank 0's buffers differ from one process's.
DIGITS = ["--dataset", "digits", *QUIET[: QUIET.index("--dataset")]]
# 15 + 16 rows; without the digits preset's latent code, so the generator's BatchNorms are plain ones.
DIGITS_SETTINGS = {"resolution": 8, "conv_width": 4, "batch_size": 31, "penalty_every": 10, "latent_codes": 0}


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    """The eval metric's classifier cache, trained for one step only (rank 0 loads it at the run's end)."""
    cache = tmp_path_factory.mktemp("classifier")
    config = resolve_config("digits", overrides=DIGITS_SETTINGS)
    quick = functools.partial(classifier_module.train_classifier, steps=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(classifier_module, "train_classifier", quick)
        classifier_metrics(config, cache_dir=cache, reference_samples=16)
    return cache / CLASSIFIER_CACHE


def _digits_run(out: Path, classifier: Path, nproc: int, **extra: object) -> dict:
    args = ["--out", str(out), "--steps", "2", *set_args(**DIGITS_SETTINGS | extra), *DIGITS]
    out.mkdir()
    shutil.copy(classifier, out / CLASSIFIER_CACHE)
    if nproc == 1:
        assert main(["train", *args]) == 0
    else:
        torchrun(nproc, args)
    return checkpoint_state(out, 2)


def _assert_same_buffers(a: dict, b: dict) -> None:
    """The generator's BatchNorm buffers: the variance to 1e-5; the mean to the bound of its input's bias.

    The linear layer's bias before BatchNorm has an exactly-zero gradient (normalising removes it), so
    Adam moves it by rounding noise, up to ``lr`` per update in either sign (see ``assert_same_training``);
    it shifts the layer's input, hence ``running_mean``, but neither the output nor ``running_var``.
    """
    (a_buffers, b_buffers), step = ((x["generator"] for x in (a, b)), b["step"])
    assert a_buffers["input.1.num_batches_tracked"] == b_buffers["input.1.num_batches_tracked"]
    torch.testing.assert_close(
        a_buffers["input.1.running_var"], b_buffers["input.1.running_var"], rtol=1e-5, atol=0
    )
    noise = 2 * b["config"]["lr_generator"] * step
    torch.testing.assert_close(
        a_buffers["input.1.running_mean"], b_buffers["input.1.running_mean"], rtol=0, atol=noise
    )


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, classifier) -> Path:
    out = tmp_path_factory.mktemp("digits") / "one"
    _digits_run(out, classifier, 1)
    return out


def test_two_processes_train_a_batchnorm_generator_as_one(one_process, classifier, tmp_path):
    two = _digits_run(tmp_path / "two", classifier, 2)
    assert_same_training(two, checkpoint_state(one_process, 2))
    _assert_same_buffers(two, checkpoint_state(one_process, 2))
    rows = [read_metrics(run) for run in (tmp_path / "two", one_process)]
    rows = [[r for r in run if "critic_loss" in r] for run in rows]  # the training rows, not eval's
    assert [r["step"] for r in rows[0]] == [r["step"] for r in rows[1]] == [1, 2]
    assert "penalty" in rows[1][0] and "penalty" not in rows[1][1]  # iteration 2's ‖∇D‖ is the probe's
    # (Not generator_loss: the critic's output bias moves by Adam's rounding-noise steps, see above.)
    for key in ("grad_norm", "critic_loss", "wasserstein"):
        assert [r[key] for r in rows[0]] == pytest.approx([r[key] for r in rows[1]], rel=1e-5), key


def test_without_sync_batchnorm_two_processes_differ(one_process, classifier, tmp_path):
    """The check above can fail: per-process statistics (DDP without SyncBatchNorm) change the training."""
    two = _digits_run(tmp_path / "two", classifier, 2, sync_batchnorm=False)
    with pytest.raises(AssertionError):
        assert_same_training(two, checkpoint_state(one_process, 2))
    with pytest.raises(AssertionError):
        _assert_same_buffers(two, checkpoint_state(one_process, 2))


def test_two_processes_train_a_coded_generator_as_one(classifier, tmp_path):
    # The digits preset's latent code: its conditional BatchNorms normalise with the global batch too.
    one = _digits_run(tmp_path / "one", classifier, 1, latent_codes=10)
    two = _digits_run(tmp_path / "two", classifier, 2, latent_codes=10)
    assert any(key.startswith("inner.") for key in two["generator"])  # the coded generator really ran
    assert_same_training(two, one)
