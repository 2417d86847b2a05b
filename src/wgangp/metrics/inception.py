"""FID, KID and Inception Score with the standard Inception-v3, through torch-fidelity.

The network, its resizing to 299×299 and its feature layers are torch-fidelity's (Obukhov et al.,
github.com/toshas/torch-fidelity), which reproduces the reference TensorFlow FID/IS numbers. Nothing is
downloaded: the weights come from a file the user gives (torch-fidelity's
``weights-inception-2015-12-05-6726825d.pth``). torch-fidelity needs torchvision; both are the ``fid`` extra
(``pip install 'wgangp[fid]'``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from wgangp.errors import UserError

__all__ = ["INCEPTION_METRICS", "WEIGHTS_FILE", "inception_metrics"]

INCEPTION_METRICS = ("fid", "kid", "is")
WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"


class _Uint8Images(Dataset[Tensor]):
    """Images in [−1, 1] ``[N, C, H, W]`` as torch-fidelity's input: ``uint8 [3, H, W]`` (gray repeated)."""

    def __init__(self, images: Tensor) -> None:
        x = ((images.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
        self.images = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> Tensor:
        return self.images[i].contiguous()


def _check_weights(path: str | Path | None) -> Path:
    if not path:
        raise UserError(
            f"FID/KID/IS need the Inception-v3 weights file: pass --inception-weights PATH to {WEIGHTS_FILE} "
            "(torch-fidelity's release asset; nothing is downloaded)"
        )
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Inception weights file not found: {path}")
    try:
        # torch-fidelity loads it with weights_only=False; refuse anything that is not plain tensors first.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserError(f"cannot load Inception weights {path}: {str(err).splitlines()[0][:200]}") from None
    fc = state.get("fc.weight") if isinstance(state, dict) else None
    if fc is None or tuple(fc.shape) != (1008, 2048):
        raise UserError(f"{path} is not torch-fidelity's Inception-v3 state dict (no fc.weight [1008, 2048])")
    return path


def inception_metrics(
    fake: Tensor,
    real: Tensor | None,
    *,
    weights: str | Path | None,
    metrics: Iterable[str] = INCEPTION_METRICS,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
) -> dict[str, float]:
    """FID, KID (mean and std) and/or IS of ``fake`` images (vs ``real`` for FID/KID), both in [−1, 1].

    ``FID = ‖μ_r − μ_f‖² + Tr(Σ_r + Σ_f − 2(Σ_r Σ_f)^{1/2})`` on Inception pool features (Heusel et al.
    2017); KID = unbiased polynomial-kernel MMD² (Bińkowski et al. 2018); IS = ``exp E KL(p(y|x) ‖ p(y))``
    (Salimans et al. 2016). Inputs ``[N, C, H, W]``, C ∈ {1, 3}.
    """
    wanted = set(metrics)
    unknown = wanted - set(INCEPTION_METRICS)
    if unknown:
        raise ValueError(f"unknown Inception metric(s): {', '.join(sorted(unknown))}")
    path = _check_weights(weights)
    try:
        import torch_fidelity
    except Exception as err:  # ImportError, or torchvision failing to load its operators
        raise UserError(
            f"FID/KID/IS need torch-fidelity and a working torchvision: pip install 'wgangp[fid]' ({err})"
        ) from None
    if ("fid" in wanted or "kid" in wanted) and real is None:
        raise ValueError("FID and KID need real images")
    n = fake.shape[0] if real is None else min(fake.shape[0], real.shape[0])
    result = torch_fidelity.calculate_metrics(
        input1=_Uint8Images(fake),
        input2=None if real is None else _Uint8Images(real),
        cuda=torch.device(device).type == "cuda",
        batch_size=batch_size,
        isc="is" in wanted,
        fid="fid" in wanted,
        kid="kid" in wanted,
        kid_subset_size=min(1000, n),
        isc_splits=min(10, fake.shape[0]),
        feature_extractor_weights_path=str(path),
        cache=False,
        save_cpu_ram=True,
        verbose=False,
    )
    names = {
        "frechet_inception_distance": "fid",
        "kernel_inception_distance_mean": "kid_inception",
        "kernel_inception_distance_std": "kid_inception_std",
        "inception_score_mean": "inception_score",
        "inception_score_std": "inception_score_std",
    }
    return {names[k]: float(v) for k, v in result.items() if k in names}
