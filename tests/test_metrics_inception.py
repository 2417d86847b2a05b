"""FID/KID/IS through torch-fidelity with a weights file; skipped where torch-fidelity/torchvision are absent."""

from __future__ import annotations

from unittest import mock

import pytest
import torch

from wgangp.errors import UserError
from wgangp.metrics.inception import inception_metrics


def _fidelity():
    try:
        import torch_fidelity.feature_extractor_inceptionv3 as fe
    except Exception as err:  # ImportError, or torchvision's operators failing to register
        pytest.skip(
            f"torch-fidelity with a working torchvision is not installed (pip install '.[fid]'): {err}"
        )
    return fe


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """Randomly initialised Inception-v3 weights in torch-fidelity's format (the real file cannot be downloaded)."""
    fe = _fidelity()
    path = tmp_path_factory.mktemp("inception") / "weights.pth"
    torch.save({}, path)
    torch.manual_seed(0)
    with mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None):
        net = fe.FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path)
        )
    for module in net.modules():  # He init keeps activations alive through ~100 random layers
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.save(net.state_dict(), path)
    return path


def test_missing_weights_say_which_file():
    with pytest.raises(UserError, match="--inception-weights PATH to weights-inception-2015-12-05"):
        inception_metrics(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8), weights=None)


def test_foreign_weights_file_is_refused(tmp_path):
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "w.pth")
    with pytest.raises(UserError, match="not torch-fidelity's Inception-v3"):
        inception_metrics(torch.zeros(2, 3, 8, 8), None, weights=tmp_path / "w.pth", metrics=["is"])


def test_fid_kid_is_end_to_end(random_weights):
    g = torch.Generator().manual_seed(0)
    real = torch.rand(8, 1, 16, 16, generator=g) * 2 - 1  # gray: repeated to RGB
    same = inception_metrics(real, real.clone(), weights=random_weights, metrics=["fid", "kid", "is"])
    assert same["fid"] == pytest.approx(0.0, abs=1e-3)
    assert same["kid_inception"] == pytest.approx(0.0, abs=1e-3)
    assert same["inception_score"] >= 1.0 - 1e-6
    shifted = inception_metrics((real + 0.8).clamp(-1, 1), real, weights=random_weights, metrics=["fid"])
    assert shifted["fid"] > 1.0
