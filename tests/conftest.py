"""Shared fixtures.  Oracles (tshark, gurux-dlms, dlms-cosem) never skip under CI=true."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "vectors"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# The machine is shared and noisy: no per-example deadlines; CI gets a fixed, moderate budget.
settings.register_profile(
    "default", deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", deadline=None, max_examples=2000)
# CI is reproducible: the same examples every run (derived from each test), no example database;
# local runs keep exploring new random examples (and what they find gets fixed and pinned)
settings.register_profile(
    "ci", deadline=None, max_examples=100, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if IN_CI else "default"))

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def require(condition: bool, what: str) -> None:
    """Skip locally when an oracle is missing, but fail under CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true", pytrace=False)
    pytest.skip(f"{what} not available")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: opt in with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    return VECTORS


@pytest.fixture(scope="session")
def tshark() -> str:
    path = shutil.which("tshark")
    require(path is not None, "tshark")
    assert path is not None
    return path
