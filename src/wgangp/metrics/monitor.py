"""Meaningful loss curves (Gulrajani et al. 2017, §5.6, Figure 5): the critic's estimate on held-out data.

The critic's estimate of the Wasserstein distance, ``Ŵ(X) = E[D(x)] − E[D(x̃)]`` over real points ``X`` and
generated points ``x̃``, is computed twice per evaluation: on a fixed subset of the *training* data and on
*held-out* real data, both against the SAME fake batch. The gap

    gap = Ŵ(X_train) − Ŵ(X_val) = E[D(x_train)] − E[D(x_val)]

is then free of the fakes' noise; a critic that memorises its training points scores them above unseen
ones and the gap grows (Figure 5b: 1,000 MNIST digits, the validation estimate diverges from the training
one). Standard errors come from a seeded bootstrap of the three score sets (the fakes resampled once per
replicate and shared, so the gap's replicates are exactly ``mean(train*) − mean(val*)``).

- :func:`critic_scores`: ``D(x)`` of a set in chunks, float64 on the CPU.
- :func:`held_out_estimates`: ``w_train``, ``w_val``, ``w_gap`` and their bootstrap standard errors.
- :func:`overfit_flags` / :class:`OverfitDetector`: the gap above ``k`` standard errors ``patience`` evals
  in a row (resumable state).
- :func:`loss_quality_correlation` / :func:`paired_series`: Pearson and Spearman correlation of the
  negative critic loss with a sample-quality metric over training (Figure 5a; FD falls as ``−L_D`` falls,
  so a meaningful curve gives a correlation near +1).
- :class:`HeldOutMonitor`: all of it for a live critic, a dict of floats for ``metrics.jsonl``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from wgangp.data.sampler import epoch_order
from wgangp.errors import UserError

__all__ = [
    "GAP_PATIENCE",
    "GAP_SIGMAS",
    "HeldOutMonitor",
    "OverfitDetector",
    "critic_scores",
    "held_out_estimates",
    "held_out_split",
    "loss_quality_correlation",
    "overfit_flags",
    "paired_series",
]

# The detector's defaults. Without overfitting the gap is ~N(0, se²) over the draw of the fixed sets, so
# one eval exceeds 3 se with probability 0.00135; the fixed sets make successive evals correlated, so the
# streak of 3 is what guards against one unlucky draw or a transient spike of a fast-moving critic (3
# successive evals of an independent null: ~2.5e-9), and at eval_every 100–500 iterations it costs a
# delay of a few hundred to ~1,500 iterations, small beside the tens of thousands over which Figure 5b's
# gap opens.
GAP_SIGMAS = 3.0
GAP_PATIENCE = 3
BOOTSTRAP_RESAMPLES = 1000  # the SE's own relative error is ~1/√(2·1000) ≈ 2%


def _as_scores(name: str, scores: Tensor) -> Tensor:
    if scores.ndim != 1 or scores.shape[0] < 2:
        raise UserError(
            f"{name} must be a 1-d tensor of at least 2 critic scores; got shape {list(scores.shape)}"
        )
    if not torch.isfinite(scores).all():
        raise UserError(f"{name} holds non-finite critic scores")
    return scores.detach().to("cpu", torch.float64)


@torch.no_grad()
def critic_scores(critic: Callable[[Tensor], Tensor], x: Tensor, *, batch_size: int = 1024) -> Tensor:
    """``D(x)`` for a set ``x`` ``[N, ...]`` in chunks of ``batch_size``: ``[N]`` float64 on the CPU.

    ``x`` moves to the critic's device chunk by chunk (the first parameter's, when it has one). A score
    map ``[N, 1, h, w]`` is summed per sample, as the penalty does. No gradients, no mode change (the
    critic has no BatchNorm, so train and eval modes agree).

    >>> critic_scores(lambda x: x.sum(1), torch.ones(3, 2)).tolist()
    [2.0, 2.0, 2.0]
    """
    if batch_size < 1:
        raise UserError(f"batch_size must be at least 1; got {batch_size}")
    device = None
    if isinstance(critic, nn.Module):
        device = next((p.device for p in critic.parameters()), None)
    out = []
    for chunk in x.split(batch_size):
        scores = critic(chunk if device is None else chunk.to(device))
        out.append(scores.reshape(chunk.shape[0], -1).sum(1).to("cpu", torch.float64))  # [n]
    return torch.cat(out)


def held_out_estimates(
    train_scores: Tensor,
    val_scores: Tensor,
    fake_scores: Tensor,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, float]:
    """The critic's estimate on training and held-out real data against the same fakes, with bootstrap SEs.

    ``w_train = mean(D(x_train)) − mean(D(x̃))``, ``w_val = mean(D(x_val)) − mean(D(x̃))``,
    ``w_gap = w_train − w_val = mean(D(x_train)) − mean(D(x_val))`` (§5.6; all in float64). The SEs are
    the standard deviations (ddof 1) over ``resamples`` bootstrap replicates: each replicate resamples the
    three sets with replacement from a ``torch.Generator`` seeded by ``seed``, one fake resample shared by
    both estimates. Shapes: ``[N_train]``, ``[N_val]``, ``[M]`` scores, each at least 2.

    Returns ``w_train``, ``w_val``, ``w_gap``, ``w_train_se``, ``w_val_se``, ``w_gap_se`` and
    ``w_gap_z = w_gap / w_gap_se`` (0 when the SE is 0).

    >>> e = held_out_estimates(torch.tensor([2.0, 4.0]), torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0]))
    >>> e["w_train"], e["w_val"], e["w_gap"]
    (3.0, 2.0, 1.0)
    """
    train = _as_scores("train_scores", train_scores)
    val = _as_scores("val_scores", val_scores)
    fake = _as_scores("fake_scores", fake_scores)
    if resamples < 2:
        raise UserError(f"resamples must be at least 2; got {resamples}")
    fake_mean = fake.mean()
    w_train = float(train.mean() - fake_mean)
    w_val = float(val.mean() - fake_mean)

    g = torch.Generator().manual_seed(seed)

    def boot(s: Tensor) -> Tensor:  # [B] bootstrap means
        return s[torch.randint(s.shape[0], (resamples, s.shape[0]), generator=g)].mean(1)

    train_b, val_b, fake_b = boot(train), boot(val), boot(fake)  # [B] each
    gap_se = float((train_b - val_b).std())
    gap = w_train - w_val
    return {
        "w_train": w_train,
        "w_val": w_val,
        "w_gap": gap,
        "w_train_se": float((train_b - fake_b).std()),
        "w_val_se": float((val_b - fake_b).std()),
        "w_gap_se": gap_se,
        "w_gap_z": gap / gap_se if gap_se > 0 else 0.0,
    }


def held_out_split(n: int, val_size: int, *, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Disjoint index sets ``(train [n − val_size], val [val_size])`` of ``range(n)``, a fixed shuffle by ``seed``.

    The held-out part must never be trained on; the trainer's data must then be ``data[train]``.

    >>> [t.shape[0] for t in held_out_split(10, 3)]
    [7, 3]
    """
    if not 2 <= val_size <= n - 2:
        raise UserError(f"held-out size must be between 2 and n − 2 = {n - 2}; got {val_size}")
    order = epoch_order(n, seed, 0)
    return order[val_size:], order[:val_size]


def overfit_flags(
    gaps: Sequence[float], ses: Sequence[float], *, k: float = GAP_SIGMAS, patience: int = GAP_PATIENCE
) -> list[bool]:
    """Per eval, whether the gap has exceeded ``k`` standard errors for the last ``patience`` evals in a row.

    ``flag_t = all(gap_s > k·se_s for s in (t − patience, t])``; one eval at or below ``k·se`` resets the
    streak. The pure form of :class:`OverfitDetector` (e.g. over a finished run's ``metrics.jsonl``).

    >>> overfit_flags([5, 5, 5, 0, 5], [1, 1, 1, 1, 1], patience=2)
    [False, True, True, False, False]
    """
    detector = OverfitDetector(k=k, patience=patience)
    return [detector.update(gap, se) for gap, se in zip(gaps, ses, strict=True)]


class OverfitDetector:
    """The critic overfits when ``w_gap > k·w_gap_se`` for ``patience`` evals in a row (see :data:`GAP_SIGMAS`).

    ``update(gap, se)`` returns the current flag; ``first_eval`` is the index (0-based count of updates) of
    the first eval that fired, ``None`` before. ``state_dict``/``load_state_dict`` carry it across a resume.
    """

    def __init__(self, *, k: float = GAP_SIGMAS, patience: int = GAP_PATIENCE) -> None:
        if not k > 0:
            raise UserError(f"the gap threshold k must be positive; got {k}")
        if patience < 1:
            raise UserError(f"patience must be at least 1 eval; got {patience}")
        self.k, self.patience = float(k), int(patience)
        self.streak = 0  # evals in a row above k·se, up to now
        self.evals = 0
        self.first_eval: int | None = None

    def update(self, gap: float, se: float) -> bool:
        """Record one eval's gap and its SE; return whether the detector fires now."""
        self.streak = self.streak + 1 if gap > self.k * se else 0
        self.evals += 1
        fired = self.streak >= self.patience
        if fired and self.first_eval is None:
            self.first_eval = self.evals - 1
        return fired

    @property
    def overfitting(self) -> bool:
        return self.streak >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "patience": self.patience,
            "streak": self.streak,
            "evals": self.evals,
            "first_eval": self.first_eval,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.k, self.patience = float(state["k"]), int(state["patience"])
        self.streak, self.evals = int(state["streak"]), int(state["evals"])
        self.first_eval = None if state["first_eval"] is None else int(state["first_eval"])


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (Spearman's convention)."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(x.shape[0])
    ranks[order] = np.arange(1, x.shape[0] + 1)
    values, inverse = np.unique(x, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks, minlength=values.shape[0])
    counts = np.bincount(inverse, minlength=values.shape[0])
    return (sums / counts)[inverse]


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    xc, yc = x - x.mean(), y - y.mean()
    denom = np.sqrt((xc * xc).sum() * (yc * yc).sum())
    return float((xc * yc).sum() / denom) if denom > 0 else float("nan")


def loss_quality_correlation(neg_critic_loss: Sequence[float], quality: Sequence[float]) -> dict[str, float]:
    """Pearson and Spearman correlation of ``−L_D`` with a quality metric over training (Figure 5a).

    ``pearson = Σ(x − x̄)(y − ȳ) / √(Σ(x − x̄)² Σ(y − ȳ)²)``; ``spearman`` is the Pearson correlation of
    the ranks (ties averaged). NaN when either series is constant. For FD (lower is better) a meaningful
    loss curve gives a value near +1: both fall as training goes on.

    >>> loss_quality_correlation([3.0, 2.0, 1.0], [30.0, 25.0, 5.0])["spearman"]
    1.0
    """
    x = np.asarray(neg_critic_loss, dtype=np.float64)
    y = np.asarray(quality, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.shape[0] < 3:
        raise UserError(
            f"the correlation needs two series of the same length, at least 3; got {x.shape} and {y.shape}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise UserError("the correlation needs finite values in both series")
    return {"pearson": _pearson(x, y), "spearman": _pearson(_ranks(x), _ranks(y))}


def paired_series(
    rows: Sequence[Mapping[str, Any]], *, loss_key: str = "critic_loss", quality_key: str = "fd"
) -> tuple[list[int], list[float], list[float]]:
    """``(steps, −loss, quality)`` at every step where ``metrics.jsonl`` rows hold both keys.

    The loss comes from the log rows (a window mean up to that step), the quality metric from the eval
    rows of the same step; evals at steps without a log row are skipped. Feed the last two to
    :func:`loss_quality_correlation`.
    """
    losses: dict[int, float] = {}
    qualities: dict[int, float] = {}
    for row in rows:
        step = int(row["step"])
        if loss_key in row:
            losses[step] = -float(row[loss_key])
        if quality_key in row:
            qualities[step] = float(row[quality_key])
    steps = sorted(set(losses) & set(qualities))
    return steps, [losses[s] for s in steps], [qualities[s] for s in steps]


class HeldOutMonitor:
    """The held-out critic monitor of §5.6 for a live critic: one call per eval, a dict for ``metrics.jsonl``.

    Args:
        critic: the critic module (scored without gradients) or any function ``[N, ...] -> [N]``.
        train_real: a fixed subset of the training data ``[N_train, ...]``.
        val_real: held-out real data, never trained on ``[N_val, ...]``.
        fakes: the fake batch ``[M, ...]``, or a function returning it at each call (e.g. the generator on
            fixed latents: ``lambda: trainer.sample(m, seed=s)``); both estimates use the same one.
        resamples, seed: the bootstrap's (seeded, so a resumed run reports the same SEs).
        k, patience: the :class:`OverfitDetector`'s.

    ``monitor()`` returns ``w_train``, ``w_val``, ``w_gap``, their ``*_se``, ``w_gap_z`` and
    ``w_overfit`` (1.0 while the detector fires, else 0.0). ``state_dict`` is the detector's.
    """

    def __init__(
        self,
        critic: Callable[[Tensor], Tensor],
        train_real: Tensor,
        val_real: Tensor,
        fakes: Tensor | Callable[[], Tensor],
        *,
        resamples: int = BOOTSTRAP_RESAMPLES,
        seed: int = 0,
        k: float = GAP_SIGMAS,
        patience: int = GAP_PATIENCE,
        batch_size: int = 1024,
    ) -> None:
        if train_real.shape[1:] != val_real.shape[1:]:
            raise UserError(
                f"training and held-out samples differ in shape: {list(train_real.shape[1:])} vs "
                f"{list(val_real.shape[1:])}"
            )
        self.critic = critic
        self.train_real, self.val_real = train_real, val_real
        self.fakes = fakes
        self.resamples, self.seed, self.batch_size = resamples, seed, batch_size
        self.detector = OverfitDetector(k=k, patience=patience)

    def __call__(self) -> dict[str, float]:
        fakes = self.fakes() if callable(self.fakes) else self.fakes
        if fakes.shape[1:] != self.train_real.shape[1:]:
            raise UserError(
                f"fake samples {list(fakes.shape[1:])} differ in shape from the real {list(self.train_real.shape[1:])}"
            )
        score = lambda x: critic_scores(self.critic, x, batch_size=self.batch_size)  # noqa: E731
        out = held_out_estimates(
            score(self.train_real),
            score(self.val_real),
            score(fakes),
            resamples=self.resamples,
            seed=self.seed,
        )
        out["w_overfit"] = float(self.detector.update(out["w_gap"], out["w_gap_se"]))
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"detector": self.detector.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.detector.load_state_dict(state["detector"])
