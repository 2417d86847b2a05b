"""wgangp: Wasserstein GANs with gradient penalty, correct and fast.

The gradient-penalty library is re-exported here::

    from wgangp import gradient_penalty
    loss = critic(fake).mean() - critic(real).mean() + 10 * gradient_penalty(critic, real, fake)
"""

from wgangp.losses import (
    clip_weights_,
    gan_critic_loss,
    gan_generator_loss,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from wgangp.penalty import (
    dragan_points,
    gradient_norms,
    gradient_penalty,
    interpolate,
    penalty_from_gradients,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "clip_weights_",
    "dragan_points",
    "gan_critic_loss",
    "gan_generator_loss",
    "gradient_norms",
    "gradient_penalty",
    "interpolate",
    "penalty_from_gradients",
    "wasserstein_critic_loss",
    "wasserstein_generator_loss",
]
