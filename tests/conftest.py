"""Shared fixtures.  Oracles (tshark, gurux-dlms, dlms-cosem) never skip under CI=true."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
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


# --- shared by the C-extension audits: does a call release the GIL?


def max_pause(work: Callable[[], object]) -> tuple[float, float]:
    """Run ``work`` in a thread while this thread spins; returns (longest pause of this thread,
    wall time of ``work``).  A call that holds the GIL stalls this thread for its whole length;
    one that releases it lets this thread run on (pauses then come only from the OS)."""
    go = threading.Event()
    dur: list[float] = []

    def run() -> None:
        go.wait()  # start only once this thread is spinning, so a GIL hold shows as a pause
        t0 = time.perf_counter()
        work()
        dur.append(time.perf_counter() - t0)

    old = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:
        th = threading.Thread(target=run)
        th.start()
        last = time.perf_counter()
        gap = 0.0
        go.set()
        while th.is_alive():
            now = time.perf_counter()
            gap = max(gap, now - last)
            last = now
        th.join()
    finally:
        sys.setswitchinterval(old)
    return gap, dur[0]
