"""Text (``--dataset text``, the paper's language model of Sec. 5.5): n-gram JS divergences, decoded samples.

The metric is the official one (gan_language.py): the Jensen–Shannon divergence in bits between the
character n-gram distributions (n = 1..4) of ``eval_samples`` decoded generator samples (argmax per
position; the paper: 640) and of all training sequences. Its *floor*, logged beside it as
``js{n}_floor``, is the same JS between the held-out sequences (``held_out``, as many as the samples, up
to ``eval_samples``) and the training ones: what a generator that reproduced the data would score.
Pictures: ``grid_samples`` decoded sequences of a fixed latent batch in ``samples/<step>.txt`` (one per
line, trailing pads dropped, line breaks shown as ↵) and in TensorBoard's text tab.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wgangp.config import TrainConfig
from wgangp.data import Charmap, TextSampler
from wgangp.data.text import as_line
from wgangp.evaluation.base import GRID_SEED, DataKind, EvalRequest, ImageLog, MetricSpec, Sampler
from wgangp.metrics.text import ORDERS, text_metrics

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from wgangp.trainer import Trainer

__all__ = ["TextKind", "decoded_samples"]

PANEL_LINES = 16  # sequences in one panel of compare's samples figure


def decoded_samples(trainer: Trainer, n: int, *, seed: int, strip_pad: bool = False) -> list[str]:
    """``n`` generated sequences decoded with the run's charmap (from latents seeded by ``seed``)."""
    charmap = trainer.codec
    if not isinstance(charmap, Charmap):
        raise ValueError(f"a {trainer.config.dataset} run has no charmap")
    return charmap.decode(trainer.sample(n, seed=seed).float(), strip_pad=strip_pad)


class TextKind(DataKind):
    """JS₁..JS₄ of decoded samples against the training sequences, with the real-vs-real floor."""

    datasets = ("text",)
    embedded = ("text",)  # Python's own pydoc_data.topics without --data-path
    compares = True
    metrics = tuple(MetricSpec(f"js{n}", f"JS{n} ↓", "lower") for n in ORDERS)
    ranking = (MetricSpec("js4", "JS4 ↓", "lower"), MetricSpec("js1", "JS1 ↓", "lower"))
    claim = "WGAN-GP reaches a lower 4-gram JS divergence than weight clipping"

    def __init__(
        self, config: TrainConfig, sampler: Sampler | None = None, cache_dir: Path | None = None
    ) -> None:
        if not isinstance(sampler, TextSampler):
            raise TypeError("TextKind needs the run's TextSampler")
        self.text = sampler.text
        super().__init__(config, sampler, cache_dir)
        self.training = self.text.strings("train")

    @functools.cached_property
    def floor(self) -> dict[str, float]:
        """``js{n}_floor``: the held-out sequences (up to ``eval_samples``) against the training ones."""
        held = self.text.strings("held_out")[: self.config.eval_samples]
        if not held:
            return {}
        return {f"{k}_floor": v for k, v in text_metrics(held, self.training).items()}

    def evaluate(self, trainer: Trainer) -> dict[str, float]:
        return self._scores(trainer, self.config.eval_samples, self.seed)

    def evaluate_saved(self, trainer: Trainer, run_dir: Path, request: EvalRequest) -> dict[str, Any]:
        out = super().evaluate_saved(trainer, run_dir, request)
        kind = TextKind(self.config.replace(eval_samples=out["samples"]), self.sampler)
        return out | kind._scores(trainer, out["samples"], request.seed)

    def _scores(self, trainer: Trainer, n: int, seed: int) -> dict[str, float]:
        samples = decoded_samples(trainer, n, seed=seed)
        return text_metrics(samples, self.training) | self.floor

    def draw(self, trainer: Trainer, run_dir: Path, name: str, log: ImageLog | None = None) -> Path | None:
        lines = [
            as_line(s)
            for s in decoded_samples(trainer, self.config.grid_samples, seed=GRID_SEED, strip_pad=True)
        ]
        path = run_dir / "samples" / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        if log is not None:
            # Indented by four spaces: a Markdown code block, so TensorBoard keeps spaces and columns.
            log.write_text("samples", "\n".join("    " + line for line in lines), trainer.step)
        return path

    def draw_panel(self, ax: Axes, trainer: Trainer, *, title: str) -> None:
        lines = [as_line(s) for s in decoded_samples(trainer, PANEL_LINES, seed=self.seed, strip_pad=True)]
        ax.text(
            0.0,
            1.0,
            "\n".join(lines),
            family="monospace",
            fontsize=6,
            va="top",
            ha="left",
            transform=ax.transAxes,
            parse_math=False,  # "$" in text is a character, not mathtext
        )
        super().draw_panel(ax, trainer, title=title)
