"""TOML key files: where the command-line tools get key material.

Keys are never taken on the command line.  A key file is TOML (read with the
standard library's :mod:`tomllib`); this module understands the ``[dlms]``
table (DLMS security suite 0)::

    [dlms]
    ek = "000102030405060708090A0B0C0D0E0F"   # global unicast encryption key
    ak = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"   # authentication key
    bk = "..."                                # optional: global broadcast key
    dk = "..."                                # optional: dedicated key
    kek = "..."                               # optional: master key (key transfer)
    lls_password = "12345678"                 # optional: LLS secret (text)
    system_title = "4D4D4D0000BC614E"         # optional: default peer system title
    client_system_title = "..."               # optional, overrides for APDUs from the client
    server_system_title = "..."               # optional, overrides for APDUs from the server

Other tables (``[osgp]``, ...) are kept raw in :attr:`KeyFile.tables` for
the modules that own them.  Errors raise
:class:`dlms14908.cli.common.KeyFileError` naming the table and field, never
the value.  A file readable by group or others only triggers a
:class:`KeyFileWarning`.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

from .cli.common import KeyFileError
from .errors import EncodeError
from .xdlms.ciphering import KEY_LENGTH, SYSTEM_TITLE_LENGTH, SecurityKeys

__all__ = [
    "DlmsKeyTable",
    "KeyFile",
    "KeyFileWarning",
    "hex_field",
    "load_keyfile",
    "parse_keyfile",
]


class KeyFileWarning(UserWarning):
    """The key file is usable but unsafe (e.g. readable by other users)."""


_HEX_JUNK = re.compile(r"[\s:_-]")


@overload
def hex_field(
    table: dict[str, Any], table_name: str, name: str, length: int, *, required: Literal[True]
) -> bytes: ...
@overload
def hex_field(
    table: dict[str, Any], table_name: str, name: str, length: int, *, required: bool
) -> bytes | None: ...
def hex_field(
    table: dict[str, Any], table_name: str, name: str, length: int, *, required: bool
) -> bytes | None:
    """Read ``table[name]`` as a hex string of exactly ``length`` bytes.

    Spaces, ``:``, ``-`` and ``_`` are allowed as separators.  Raises
    :class:`KeyFileError` naming ``[table_name] name`` but never the value."""
    where = f"[{table_name}] {name}"
    if name not in table:
        if required:
            raise KeyFileError(f"{where}: missing")
        return None
    value = table[name]
    if not isinstance(value, str):
        raise KeyFileError(f"{where}: must be a hex string")
    text = _HEX_JUNK.sub("", value)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise KeyFileError(f"{where}: not valid hex") from None
    if len(raw) != length:
        raise KeyFileError(f"{where}: must be {length} bytes, got {len(raw)}")
    return raw


@dataclass(frozen=True)
class DlmsKeyTable:
    """The ``[dlms]`` table: suite 0 keys and optional peer system titles."""

    keys: SecurityKeys
    system_title: bytes | None = None
    client_system_title: bytes | None = None
    server_system_title: bytes | None = None
    kek: bytes | None = field(default=None, repr=False)
    lls_password: bytes | None = field(default=None, repr=False)

    def sender_system_title(self, *, from_client: bool | None) -> bytes | None:
        """The system title to use for an APDU sent by the client (True), the
        server (False) or an unknown side (None)."""
        if from_client is True and self.client_system_title is not None:
            return self.client_system_title
        if from_client is False and self.server_system_title is not None:
            return self.server_system_title
        return self.system_title


_DLMS_FIELDS = {
    "ek",
    "ak",
    "bk",
    "dk",
    "kek",
    "lls_password",
    "system_title",
    "client_system_title",
    "server_system_title",
}


@dataclass(frozen=True)
class KeyFile:
    """A parsed key file.  ``tables`` holds every top-level table as parsed
    (raw, never shown in a repr); ``dlms`` the validated ``[dlms]`` table."""

    path: str | None
    tables: dict[str, Any] = field(repr=False)
    dlms: DlmsKeyTable | None = None

    def require_dlms(self) -> DlmsKeyTable:
        """The ``[dlms]`` table, or :class:`KeyFileError` if the file has none."""
        if self.dlms is None:
            raise KeyFileError(f"{self.path or 'key file'}: no [dlms] table")
        return self.dlms


def _parse_dlms(table: object) -> DlmsKeyTable:
    if not isinstance(table, dict):
        raise KeyFileError("[dlms]: must be a table")
    unknown = sorted(set(table) - _DLMS_FIELDS)
    if unknown:
        raise KeyFileError(f"[dlms]: unknown field(s) {', '.join(unknown)}")
    ek = hex_field(table, "dlms", "ek", KEY_LENGTH, required=True)
    ak = hex_field(table, "dlms", "ak", KEY_LENGTH, required=True)
    bk = hex_field(table, "dlms", "bk", KEY_LENGTH, required=False)
    dk = hex_field(table, "dlms", "dk", KEY_LENGTH, required=False)
    titles = {
        n: hex_field(table, "dlms", n, SYSTEM_TITLE_LENGTH, required=False)
        for n in ("system_title", "client_system_title", "server_system_title")
    }
    kek = hex_field(table, "dlms", "kek", KEY_LENGTH, required=False)
    password = table.get("lls_password")
    if password is not None and not isinstance(password, str):
        raise KeyFileError("[dlms] lls_password: must be a string")
    try:
        keys = SecurityKeys(ek=ek, ak=ak, bk=bk, dk=dk)
    except EncodeError as exc:  # pragma: no cover - lengths are checked above
        raise KeyFileError(f"[dlms] {exc.field}: invalid") from None
    return DlmsKeyTable(
        keys=keys,
        kek=kek,
        lls_password=None if password is None else password.encode("utf-8"),
        **titles,
    )


def parse_keyfile(text: str, *, path: str | None = None) -> KeyFile:
    """Parse key-file text (see the module docstring)."""
    label = path or "key file"
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)"; quote only the position.
        m = re.search(r"line (\d+), column (\d+)", str(exc))
        pos = f" at line {m.group(1)}, column {m.group(2)}" if m else ""
        raise KeyFileError(f"{label}: not valid TOML{pos}") from None
    dlms = _parse_dlms(tables["dlms"]) if "dlms" in tables else None
    return KeyFile(path=path, tables=tables, dlms=dlms)


def _warn_if_shared(p: Path) -> None:
    if os.name != "posix":
        return
    try:
        mode = p.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.warn(
            f"key file {p} is accessible by group or others (mode {stat.S_IMODE(mode):04o}); "
            "chmod 600 it",
            KeyFileWarning,
            stacklevel=3,
        )


def load_keyfile(path: str | os.PathLike[str]) -> KeyFile:
    """Read and validate a TOML key file.  Raises :class:`KeyFileError`."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{p}: no such key file") from None
    except OSError as exc:
        raise KeyFileError(
            f"{p}: cannot read key file ({exc.strerror or type(exc).__name__})"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFileError(f"{p}: not UTF-8 text") from None
    kf = parse_keyfile(text, path=str(p))
    _warn_if_shared(p)
    return kf
