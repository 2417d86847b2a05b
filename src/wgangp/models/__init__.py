"""Networks: map inputs to outputs and know nothing about training."""

from wgangp.models.mlp import MLPCritic, MLPGenerator

__all__ = ["MLPCritic", "MLPGenerator"]
