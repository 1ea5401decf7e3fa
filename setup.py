"""Build the optional AES-NI extension osgp._ccm (metadata lives in pyproject.toml).

The extension is optional: without a C compiler (or on a non-x86 machine) the
install still succeeds and osgp.ccm uses the `cryptography` fallback.  The code
is compiled without -maes; AES-NI functions carry target attributes and the
module checks the CPU at import (__builtin_cpu_supports), so the same binary is
safe on CPUs without AES-NI.
"""

from __future__ import annotations

import sys

from setuptools import Extension, setup

try:
    from wheel.bdist_wheel import bdist_wheel as _bdist_wheel
except ImportError:  # pragma: no cover
    _bdist_wheel = None

cmdclass = {}
if _bdist_wheel is not None:

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
            define_macros=[("Py_LIMITED_API", "0x030B0000")],
            py_limited_api=True,
            extra_compile_args=compile_args,
            optional=True,
        )
    ],
    cmdclass=cmdclass,
)
