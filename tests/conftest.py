"""Test-suite options: ``slow`` tests (minutes of training) run only when ``WGANGP_SLOW=1``."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("WGANGP_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set WGANGP_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
