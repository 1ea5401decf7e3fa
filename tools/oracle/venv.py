"""Create (once) the isolated oracle venv holding gurux-dlms and dlms-cosem.

The oracles are GPL-2 (gurux-dlms) and BSL-1.1 (dlms-cosem): they are never
imported into our packages; tests talk to them through worker processes
started from this venv (see ``tools/oracle/harness.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ORACLE_PACKAGES = ("gurux-dlms==1.0.203", "dlms-cosem==25.1.0")
VENV_DIR = Path(os.environ.get("DLMS14908_ORACLE_VENV", ROOT / ".cache" / "oracle-venv"))


def venv_python() -> Path:
    return VENV_DIR / "bin" / "python"


def _stamp() -> Path:
    return VENV_DIR / ".oracle-packages"


def is_ready() -> bool:
    s = _stamp()
    return venv_python().exists() and s.exists() and s.read_text() == "\n".join(ORACLE_PACKAGES)


def ensure(verbose: bool = True) -> Path:
    """Create the venv and install the pinned oracles if not done already."""
    if is_ready():
        return venv_python()
    VENV_DIR.parent.mkdir(parents=True, exist_ok=True)
    if verbose:
        print(f"[oracle] creating {VENV_DIR} with {', '.join(ORACLE_PACKAGES)}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV_DIR)], check=True)
    subprocess.run(
        [str(venv_python()), "-m", "pip", "install", "-q", "--disable-pip-version-check", *ORACLE_PACKAGES],
        check=True,
    )
    _stamp().write_text("\n".join(ORACLE_PACKAGES))
    return venv_python()


if __name__ == "__main__":
    print(ensure())
