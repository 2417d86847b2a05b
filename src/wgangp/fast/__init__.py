"""Fast paths for Algorithm 1: mixed precision, lazy penalties, a whole-iteration CUDA graph, benchmarks' FLOPs.

None of these changes the math of a training step; each is tested against the fp32 eager trainer.

- ``amp``: bf16 autocast and fp16 with ``GradScaler``, following PyTorch's AMP "gradient penalty" recipe.
- ``lazy``: lazy regularisation (the penalty every k-th critic step, weight ×k; StyleGAN2's Adam rescale).
- ``step``: one generator iteration (n_critic critic updates + one generator update) as plain tensor code,
  shared by the fast eager path and the CUDA graph.
- ``graph``: that iteration captured in one CUDA graph and replayed.
- ``paths``: which path a config runs on this device, and the optimizers each path needs.
- ``flops``: FLOPs of any step, counted over aten ops with a dispatch mode.
"""

from wgangp.fast.amp import autocast, mixed_precision_penalty
from wgangp.fast.lazy import lazy_adam_hyperparameters, penalty_schedule
from wgangp.fast.paths import FastIteration, StepPath, choose_step_path

__all__ = [
    "FastIteration",
    "StepPath",
    "autocast",
    "choose_step_path",
    "lazy_adam_hyperparameters",
    "mixed_precision_penalty",
    "penalty_schedule",
]
