"""Sample-quality metrics (toy: exact W1 and mode coverage; text: n-gram JS; signals: value/spectral W1)."""

from wgangp.metrics.signals import signal_floor, signal_metrics, spectral_w1, value_w1
from wgangp.metrics.text import ngram_js, ngram_js_floor, text_metrics
from wgangp.metrics.toy import mode_stats, toy_metrics, wasserstein1

__all__ = [
    "mode_stats",
    "ngram_js",
    "ngram_js_floor",
    "signal_floor",
    "signal_metrics",
    "spectral_w1",
    "text_metrics",
    "toy_metrics",
    "value_w1",
    "wasserstein1",
]
