"""The update step of Algorithm 1: one home for every path (fp32 eager, mixed precision, lazy penalty, CUDA
graph, torchrun). None of the paths changes the math; each is tested against the fp32 eager computation.

- ``spec``: :class:`StepSpec`, the step's settings, derived from the config alone;
- ``state``: :class:`TrainState`, what a step updates (networks, optimizers, noise, fp16 scalers);
- ``optim``: the one optimizer factory and the lr schedule;
- ``update``: :func:`iteration` — n_critic critic updates, then one generator update — as tensor code;
- ``paths``: which path a config runs on a device, and :class:`Iteration`, which feeds it real batches;
- ``amp``: bf16 autocast and fp16 with ``GradScaler``, following PyTorch's AMP "gradient penalty" recipe;
- ``lazy``: lazy regularisation (the penalty every k-th critic step, weight ×k; StyleGAN2's Adam rescale);
- ``graph``: the iteration captured in one CUDA graph and replayed;
- ``faults``: non-finite losses and gradients, found with one host sync.
"""

from wgangp.step.amp import autocast, mixed_precision_penalty
from wgangp.step.lazy import lazy_adam_hyperparameters, penalty_schedule
from wgangp.step.paths import Iteration, StepPath, build_iteration, choose_step_path
from wgangp.step.spec import StepSpec
from wgangp.step.state import TrainState
from wgangp.step.update import critic_update, generator_update, iteration

__all__ = [
    "Iteration",
    "StepPath",
    "StepSpec",
    "TrainState",
    "autocast",
    "build_iteration",
    "choose_step_path",
    "critic_update",
    "generator_update",
    "iteration",
    "lazy_adam_hyperparameters",
    "mixed_precision_penalty",
    "penalty_schedule",
]
