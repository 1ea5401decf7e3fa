"""Packaging of the optional C extension: ``setup.py``'s build without a C compiler
still succeeds (the ``cryptography`` fallback is used) and a normal build produces
``osgp/_ccm*.so``.  (``pip install .`` / ``pip install -e .`` in fresh venvs were
checked by hand; pip needs ``wheel`` or setuptools >= 70.1, which this env lacks.)

Slow (two local builds, ~10 s): run with ``--run-slow``."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


def _build(tmp_path: Path, env_extra: dict[str, str]) -> tuple[Path, subprocess.CompletedProcess[str]]:
    src = tmp_path / "src"
    skip = (".git", ".cache", "build", "*.so", "__pycache__", "*.egg-info", "captures", "tests", "vectors")
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*skip))
    env = dict(os.environ, **env_extra)
    r = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=src, env=env,
                       capture_output=True, text=True, timeout=300, check=False)
    return src, r


def _implementation(target: Path) -> str:
    code = (
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'Editable' not in repr(f)]  # ignore the dev install\n"
        "import osgp.ccm as c\n"
        f"assert c.__file__.startswith({str(target)!r}), c.__file__\n"
        "k = c.AesCcm(bytes(16)); assert k.decrypt(bytes(13), k.encrypt(bytes(13), b'x', b''), b'') == b'x'\n"
        "print(c.IMPLEMENTATION)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    env.pop("OSGP_PURE_PYTHON", None)
    out = subprocess.run([sys.executable, "-c", code], cwd=target, env=env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_build_without_compiler_uses_fallback(tmp_path: Path) -> None:
    src, r = _build(tmp_path, {"CC": str(tmp_path / "no-such-cc")})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "osgp._ccm" in r.stderr + r.stdout  # the optional-extension warning
    assert not glob.glob(str(src / "osgp" / "_ccm*.so"))
    assert _implementation(src) == "python"


def test_build_produces_extension(tmp_path: Path) -> None:
    src, r = _build(tmp_path, {})
    assert r.returncode == 0, r.stdout + r.stderr
    assert glob.glob(str(src / "osgp" / "_ccm*.so"))
    assert _implementation(src) == "c"
