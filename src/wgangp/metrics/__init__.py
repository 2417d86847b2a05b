"""Sample-quality metrics (toy: exact W1 and mode coverage)."""

from wgangp.metrics.toy import mode_stats, toy_metrics, wasserstein1

__all__ = ["mode_stats", "toy_metrics", "wasserstein1"]
