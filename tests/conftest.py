"""Shared test setup: `slow` tests run only with WGANGP_SLOW=1; `gpu` tests only where CUDA is available."""

from __future__ import annotations

import os

import pytest
import torch


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_slow = os.environ.get("WGANGP_SLOW") == "1"
    skip_slow = pytest.mark.skip(reason="long quality run; set WGANGP_SLOW=1 to run it")
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture
def no_tf32():
    """TF32 off for a GPU test: its matmul rounding (~1e-3) would hide real differences between paths."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
