"""Build the optional AES-NI extension osgp._ccm (metadata lives in pyproject.toml).

The extension is optional: without a C compiler (or on a non-x86 machine) the
install still succeeds and osgp.ccm uses the `cryptography` fallback.  The code
is compiled without -maes; AES-NI functions carry target attributes and the
module checks the CPU at import (__builtin_cpu_supports), so the same binary is
safe on CPUs without AES-NI.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup

# Default: the full CPython API (version-specific wheel).  Measured on the 64-byte
# batch path it costs ~12 ns/frame less than the limited API (function calls instead
# of macros for every tuple/bytes access).  OSGP_CCM_LIMITED_API=1 builds the
# limited-API (abi3, cp311+) variant instead.
FULL_API = os.environ.get("OSGP_CCM_LIMITED_API", "") in ("", "0")

try:
    from wheel.bdist_wheel import bdist_wheel as _bdist_wheel
except ImportError:  # pragma: no cover
    _bdist_wheel = None

cmdclass = {}
if _bdist_wheel is not None and not FULL_API:

    class bdist_wheel_abi3(_bdist_wheel):  # type: ignore[misc, valid-type]
        def get_tag(self) -> tuple[str, str, str]:
            python, abi, plat = super().get_tag()
            if python.startswith("cp"):
                return "cp311", "abi3", plat
            return python, abi, plat

    cmdclass["bdist_wheel"] = bdist_wheel_abi3

compile_args = [] if sys.platform == "win32" else ["-O3", "-std=c11", "-fno-strict-aliasing", "-Wall"]

setup(
    ext_modules=[
        Extension(
            "osgp._ccm",
            sources=["osgp/_ccm.c"],
            define_macros=[] if FULL_API else [("Py_LIMITED_API", "0x030B0000")],
            py_limited_api=not FULL_API,
            extra_compile_args=compile_args,
            optional=True,
        )
    ],
    cmdclass=cmdclass,
)
