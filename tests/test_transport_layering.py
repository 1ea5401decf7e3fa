"""The sans-I/O cores import no I/O modules (style.md §b1)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORES = [
    "dlms14908/lon/transaction.py",
    "dlms14908/lon/events.py",
    "dlms14908/transport/niframe.py",
    "dlms14908/transport/smip.py",
    "dlms14908/transport/channel.py",
    "dlms14908/transport/buffer.py",
    "dlms14908/transport/simnet.py",
]
IO_MODULES = {"asyncio", "serial", "socket", "select", "threading", "time", "tty", "pty"}


@pytest.mark.parametrize("path", CORES)
def test_core_has_no_io_imports(path: str) -> None:
    tree = ast.parse((ROOT / path).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & IO_MODULES, f"{path} imports {imported & IO_MODULES}"
