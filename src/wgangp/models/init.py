"""Weight initialisation of the convolutional models, as tflib does it in the official code.

Layers followed by a ReLU-family activation get He-uniform weights (std ``√(2/fan_in)``); the layers
whose output is a shortcut, an image or a score get Glorot-uniform weights (std ``√(2/(fan_in + fan_out))``);
every bias starts at 0. PyTorch's default (``U(±1/√fan_in)``, std ``1/√(3·fan_in)``) is ~2.4× smaller than
He; we follow the official code rather than compare the two here.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["init_weights_"]


@torch.no_grad()
def init_weights_(module: nn.Module, *, glorot: Iterable[nn.Module] = ()) -> None:
    """He-uniform for every conv/linear in ``module``, Glorot-uniform for those in ``glorot``; zero biases."""
    glorot_ids = {id(m) for m in glorot}
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if id(layer) in glorot_ids:
                nn.init.xavier_uniform_(layer.weight)
            else:
                nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
