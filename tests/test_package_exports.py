"""The packages' ``__all__`` lists: plain strings, exactly what ``from pkg import *`` gives,
and in step with the modules they re-export (the lists are written out by hand)."""

from __future__ import annotations

import importlib
import types

import pytest

import osgp
from dlms14908 import acse, errors
from dlms14908.adaptation import pdu
from dlms14908.lon import crc, frame

# package -> the names it must re-export besides its own
REEXPORTS: dict[str, set[str]] = {
    "dlms14908": {"__version__", *errors.__all__},
    "dlms14908.adaptation": set(pdu.__all__),
    "dlms14908.lon": {"append_crc", "check_crc", "crc16", "strip_crc", *frame.__all__},
    "dlms14908.xdlms": set(acse.__all__),
    "osgp": {"AuthenticationFailed", "InvalidTag", "ReplayError", "SecurityError", *osgp._LAZY},
}
# typing helpers a package imports for its own annotations, not API
_NOT_API = {"annotations", "Any"}


@pytest.mark.parametrize("name", sorted(REEXPORTS))
def test_all_is_a_plain_list_of_unique_strings(name: str) -> None:
    pkg = importlib.import_module(name)
    assert type(pkg.__all__) is list
    assert all(type(n) is str for n in pkg.__all__)
    assert len(set(pkg.__all__)) == len(pkg.__all__)


@pytest.mark.parametrize("name", sorted(REEXPORTS))
def test_star_import_exports_exactly_all(name: str) -> None:
    pkg = importlib.import_module(name)
    ns: dict[str, object] = {}
    exec(f"from {name} import *", ns)  # the statement under test
    del ns["__builtins__"]
    assert set(ns) == set(pkg.__all__)
    for n, v in ns.items():
        assert v is getattr(pkg, n), n


@pytest.mark.parametrize("name", sorted(REEXPORTS))
def test_all_follows_the_reexported_modules(name: str) -> None:
    pkg = importlib.import_module(name)
    missing = REEXPORTS[name] - set(pkg.__all__)
    assert not missing, f"{name}.__all__ lacks {sorted(missing)}"
    # and nothing public sits in the package namespace without being exported
    public = {
        n for n, v in vars(pkg).items()
        if not n.startswith("_") and n not in _NOT_API and not isinstance(v, types.ModuleType)
    }
    assert public <= set(pkg.__all__), sorted(public - set(pkg.__all__))


def test_crc_names_are_the_crc_module_functions() -> None:
    import dlms14908.lon as lon

    for n in ("append_crc", "check_crc", "crc16", "strip_crc"):
        assert getattr(lon, n) is getattr(crc, n)
