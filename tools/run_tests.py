#!/usr/bin/env python3
"""Install what the tests need and run them all.

1. ``pip install -e .[test]`` (builds the osgp._ccm C extension in place);
2. tshark through apt-get when it is missing (root, non-interactive);
3. the isolated oracle venv (gurux-dlms, dlms-cosem) under ``.cache/``;
4. the C extension's extra checks (second kernel, optional build, stubtest), ruff and mypy,
   then pytest over ``tests/`` (extra arguments are passed to pytest).

Under ``CI=true`` a missing oracle is an error, never a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sh(*cmd: str, **kw: object) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def ensure_tshark() -> None:
    if shutil.which("tshark"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print("[tshark] missing and cannot apt-get install it (not root / no apt)", flush=True)
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sh("apt-get", "update", "-qq", env=env)
    sh("apt-get", "install", "-y", "-qq", "--no-install-recommends", "tshark", env=env)


def main() -> int:
    os.chdir(ROOT)
    sh(sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e", ".[test]")
    ensure_tshark()
    from tools.oracle import venv

    venv.ensure()
    # The C CCM extension first: its plain (non-VAES) batch kernel, the optional-build
    # packaging tests (no compiler -> fallback), and its .pyi against the module.
    extra = [
        (dict(os.environ, OSGP_CCM_KERNEL="xmm"),
         [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
          "tests/test_ccm_vectors.py", "tests/test_ccm_differential.py"]),
        (None, [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--run-slow",
                "tests/test_ccm_build.py"]),
        # GCM (DLMS suite 0) as on a CPU without PCLMULQDQ: the cryptography fallback (the
        # C-only cases skip here by design, CI unset; the full run below covers them)
        (dict(os.environ, OSGP_CCM_ASSUME_NO_PCLMULQDQ="1", CI=""),
         [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_gcm_vectors.py",
          "tests/test_ciphering.py", "tests/test_ciphering_context.py", "tests/test_ciphering_independent.py"]),
        (None, [sys.executable, "-m", "mypy.stubtest", "osgp._ccm"]),
        # static checks: the rule set and the files are in pyproject.toml
        (None, [sys.executable, "-m", "ruff", "check", "dlms14908", "osgp", "tools", "tests", "benchmarks"]),
        (None, [sys.executable, "-m", "mypy"]),
    ]
    rc = 0
    for env, extra_cmd in extra:
        print("+", " ".join(extra_cmd), flush=True)
        rc = rc or subprocess.call(extra_cmd, env=env)
    # then every test (its summary line closes the output)
    args = sys.argv[1:]
    cmd = [sys.executable, "-m", "pytest", *args]
    if not any(a.startswith("-n") for a in args):
        cmd += ["-n", "2"]
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd) or rc


if __name__ == "__main__":
    sys.exit(main())
