"""Key material for ``dlms-analyze capture --keys FILE`` (a TOML key file, :mod:`dlms14908.keyfile`).

Tables read here (design choice; documented in the analyzer report and in
``dlms-analyze capture --help``)::

    [dlms]                      # DLMS security suite 0, see dlms14908.keyfile
    ek = "..."  ak = "..."  system_title = "..."

    [osgp]                      # OSGP-AES-128-PSK (IEC 62056-8-8 Annex D), same fields as dlms-cli:
    psk = "32 hex"              #   default PSK of every meter
    nnap_id = "12 hex"          #   NNAP ID (nonce source of downlink frames)
    [osgp.meters]               #   PSK per meter Neuron ID
    "045E00000107" = "32 hex"
    [osgp.sessions]             # analyzer only: session keys (K_uc) when the handshake is not in the capture
    "045E00000107" = { key_id = 1, key = "32 hex" }

    [legacy]                    # legacy OSGP (OMA digest + RC4), osgp.legacy
    oma_key = "24 hex"          #   the 12-byte OMA key
    codes = [0x3E]              #   LonTalk message codes carrying legacy OSGP messages
    encrypted = true            #   data = RC4(m) || digest (true) or m || digest (false)

Key values never appear in reprs or messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..cli.common import KeyFileError

if TYPE_CHECKING:
    from ..keyfile import DlmsKeyTable, KeyFile


def hex_field(*a: Any, **kw: Any) -> Any:
    from ..keyfile import hex_field as _hex_field  # imported on use: keeps the no-key start fast

    return _hex_field(*a, **kw)


__all__ = [
    "AnalyzerKeys",
    "LegacyKeys",
    "OsgpSessionKey",
    "keys_from_keyfile",
    "load_analyzer_keys",
]

DEFAULT_NNAP_ID = bytes.fromhex("4e4e41500001")


@dataclass(frozen=True)
class OsgpSessionKey:
    """A unicast session key K_uc of one meter (Neuron ID), KeyID ``key_id``."""

    neuron_id: bytes
    key_id: int
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class LegacyKeys:
    oma_key: bytes = field(repr=False)
    codes: frozenset[int] = frozenset()
    encrypted: bool = True


@dataclass(frozen=True)
class AnalyzerKeys:
    """Everything the analyzer may use to verify and decrypt."""

    dlms: DlmsKeyTable | None = None
    default_psk: bytes | None = field(default=None, repr=False)
    psks: dict[bytes, bytes] = field(default_factory=dict, repr=False)
    nnap_id: bytes = DEFAULT_NNAP_ID
    sessions: tuple[OsgpSessionKey, ...] = ()
    legacy: LegacyKeys | None = None

    def psk_for(self, neuron_id: bytes | None) -> bytes | None:
        if neuron_id is not None and neuron_id in self.psks:
            return self.psks[neuron_id]
        return self.default_psk

    @property
    def osgp_enabled(self) -> bool:
        return self.default_psk is not None or bool(self.psks) or bool(self.sessions)


def _parse_sessions(raw: Any) -> tuple[OsgpSessionKey, ...]:
    if not isinstance(raw, dict):
        raise KeyFileError("[osgp.sessions]: must be a table of Neuron ID = { key_id, key }")
    out = []
    for nid_text, entry in raw.items():
        nid = hex_field({"id": nid_text}, "osgp.sessions", "id", 6, required=True)
        where = f"osgp.sessions.{nid_text}"
        if not isinstance(entry, dict):
            raise KeyFileError(f"[{where}]: must be a table {{ key_id, key }}")
        key_id = entry.get("key_id", 1)
        if not isinstance(key_id, int) or isinstance(key_id, bool) or not 0 <= key_id <= 255:
            raise KeyFileError(f"[{where}] key_id: must be 0..255")
        key = hex_field(entry, where, "key", 16, required=True)
        assert nid is not None and key is not None
        out.append(OsgpSessionKey(nid, key_id, key))
    return tuple(out)


def _parse_osgp(
    table: Any,
) -> tuple[bytes | None, dict[bytes, bytes], bytes, tuple[OsgpSessionKey, ...]]:
    if not isinstance(table, dict):
        raise KeyFileError("[osgp]: must be a table")
    unknown = set(table) - {"psk", "nnap_id", "meters", "sessions"}
    if unknown:
        raise KeyFileError(f"[osgp]: unknown field(s) {', '.join(sorted(unknown))}")
    psk = hex_field(table, "osgp", "psk", 16, required=False)
    nnap = hex_field(table, "osgp", "nnap_id", 6, required=False) or DEFAULT_NNAP_ID
    meters: dict[bytes, bytes] = {}
    raw = table.get("meters", {})
    if not isinstance(raw, dict):
        raise KeyFileError("[osgp.meters]: must be a table of Neuron ID = PSK")
    for nid_text, value in raw.items():
        nid = hex_field({"id": nid_text}, "osgp.meters", "id", 6, required=True)
        key = hex_field({"psk": value}, f"osgp.meters.{nid_text}", "psk", 16, required=True)
        assert nid is not None and key is not None
        meters[nid] = key
    sessions = _parse_sessions(table.get("sessions", {}))
    return psk, meters, nnap, sessions


def _parse_legacy(table: Any) -> LegacyKeys:
    if not isinstance(table, dict):
        raise KeyFileError("[legacy]: must be a table")
    unknown = set(table) - {"oma_key", "codes", "encrypted"}
    if unknown:
        raise KeyFileError(f"[legacy]: unknown field(s) {', '.join(sorted(unknown))}")
    key = hex_field(table, "legacy", "oma_key", 12, required=True)
    codes = table.get("codes", [])
    if not isinstance(codes, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 0xFF for c in codes
    ):
        raise KeyFileError("[legacy] codes: must be a list of message codes 0..255")
    enc = table.get("encrypted", True)
    if not isinstance(enc, bool):
        raise KeyFileError("[legacy] encrypted: must be true or false")
    assert key is not None
    return LegacyKeys(key, frozenset(codes), enc)


def keys_from_keyfile(kf: KeyFile) -> AnalyzerKeys:
    """The analyzer's view of a parsed key file."""
    tables = kf.tables
    psk: bytes | None = None
    meters: dict[bytes, bytes] = {}
    nnap = DEFAULT_NNAP_ID
    sessions: tuple[OsgpSessionKey, ...] = ()
    if "osgp" in tables:
        psk, meters, nnap, sessions = _parse_osgp(tables["osgp"])
    legacy = _parse_legacy(tables["legacy"]) if "legacy" in tables else None
    return AnalyzerKeys(kf.dlms, psk, meters, nnap, sessions, legacy)


def load_analyzer_keys(path: str | None) -> AnalyzerKeys:
    """Load ``path`` (or no keys when None).  Raises :class:`KeyFileError`."""
    if path is None:
        return AnalyzerKeys()
    from ..keyfile import load_keyfile

    return keys_from_keyfile(load_keyfile(path))
