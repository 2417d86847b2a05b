"""Data sources: the paper's 2-d toy distributions (generated, no download)."""

from wgangp.data.toy import TOY_DATASETS, ToySampler, mode_centres, mode_std

__all__ = ["TOY_DATASETS", "ToySampler", "mode_centres", "mode_std"]
