"""Durable state of OSGP-AES-128-PSK channels: SQLite (stdlib ``sqlite3``) in WAL mode.

Two tables:

* ``reservations(slot, ceiling)``: per transmit key, the sequence-number ceiling
  reserved so far.  :meth:`ChannelStore.reserve` commits (``synchronous=FULL``)
  before it returns, and only ever raises a ceiling, so a number below it was
  never used before the reservation was on disk; after a crash a channel
  resumes *at* the ceiling and cannot reuse a nonce.
* ``snapshots(name, kind, body)``: keys, replay windows and intrusion counters
  of a :class:`~osgp.channel.ChannelSnapshot` / ``BroadcastSnapshot`` (JSON).
  Keys are stored in the clear: protect the database file like a key file.

The store implements :class:`osgp.channel.SequencePersistence`; pass it as
``persistence=`` to a channel.  Key bytes never appear in a repr, a log record
or an error message raised here.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Self

from dlms14908.errors import DecodeError
from osgp.channel import (
    BroadcastSnapshot,
    ChannelSnapshot,
    ChannelState,
    Counters,
    KeySnapshot,
    Role,
)

__all__ = ["ChannelStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reservations (
    slot    TEXT PRIMARY KEY,
    ceiling INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    name    TEXT PRIMARY KEY,
    kind    TEXT NOT NULL,
    body    TEXT NOT NULL
);
"""
# Reservations only ever go up.
_RAISE_CEILING = (
    "INSERT INTO reservations(slot, ceiling) VALUES (?, ?) "
    "ON CONFLICT(slot) DO UPDATE SET ceiling = MAX(ceiling, excluded.ceiling)"
)


def _key_to_json(k: KeySnapshot) -> dict[str, Any]:
    return {
        "role": k.role,
        "key_id": k.key_id,
        "key": k.key.hex(),
        "slot": k.slot,
        "ceiling": k.ceiling,
        "highest": k.highest,
        "bitmap": k.bitmap,
    }


def _key_from_json(d: Any) -> KeySnapshot:
    try:
        return KeySnapshot(
            role=str(d["role"]),
            key_id=int(d["key_id"]),
            key=bytes.fromhex(d["key"]),
            slot=None if d["slot"] is None else str(d["slot"]),
            ceiling=int(d["ceiling"]),
            highest=int(d["highest"]),
            bitmap=int(d["bitmap"]),
        )
    except (KeyError, TypeError, ValueError):
        raise DecodeError("corrupt key entry", field="store.keys") from None


class ChannelStore:
    """Keys, counters and sequence reservations of many channels in one SQLite file.

    Thread-safe (one connection, one lock); one writer process per file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"<ChannelStore {str(self.path)!r}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- SequencePersistence ---------------------------------------------------------------
    def reserve(self, slot: str, ceiling: int) -> None:
        """Durably raise the reservation ceiling of ``slot`` (never lowers it)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(_RAISE_CEILING, (slot, int(ceiling)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def ceiling(self, slot: str) -> int:
        """The durable ceiling of ``slot`` (0 if never reserved)."""
        with self._lock:
            row = self._db.execute(
                "SELECT ceiling FROM reservations WHERE slot = ?", (slot,)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def save_snapshot(self, snapshot: ChannelSnapshot | BroadcastSnapshot) -> None:
        """Store a channel or broadcast-sender snapshot and raise its reservation ceilings."""
        if isinstance(snapshot, ChannelSnapshot):
            kind = "channel"
            body: dict[str, Any] = {
                "role": snapshot.role.value,
                "local_id": snapshot.local_id.hex(),
                "peer_id": snapshot.peer_id.hex(),
                "psk": snapshot.psk.hex(),
                "state": snapshot.state.value,
                "generation": snapshot.generation,
                "consecutive_failures": snapshot.consecutive_failures,
                "counters": {
                    f: getattr(snapshot.counters, f) for f in Counters.__dataclass_fields__
                },
                "keys": [_key_to_json(k) for k in snapshot.keys],
            }
        elif isinstance(snapshot, BroadcastSnapshot):
            kind = "broadcast"
            body = {
                "source_id": snapshot.source_id.hex(),
                "generation": snapshot.generation,
                "keys": [_key_to_json(k) for k in snapshot.keys],
            }
        else:
            raise TypeError(f"not a snapshot: {type(snapshot).__name__}")
        text = json.dumps(body, separators=(",", ":"))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO snapshots(name, kind, body) VALUES (?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET kind = excluded.kind, body = excluded.body",
                    (snapshot.name, kind, text),
                )
                for k in snapshot.keys:
                    if k.slot is not None:
                        self._db.execute(_RAISE_CEILING, (k.slot, k.ceiling))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- loading ---------------------------------------------------------------------------
    def _load(self, name: str, kind: str) -> tuple[dict[str, Any], list[KeySnapshot]] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT kind, body FROM snapshots WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                return None
            if row[0] != kind:
                raise DecodeError(
                    f"{name!r} is a {row[0]} snapshot, not {kind}", field="store.kind"
                )
            try:
                body = json.loads(row[1])
                raw_keys = body["keys"]
            except (ValueError, KeyError, TypeError):
                raise DecodeError("corrupt snapshot", field="store.body") from None
            keys = []
            for entry in raw_keys:
                k = _key_from_json(entry)
                if k.slot is not None:
                    # Resume at the durable ceiling: numbers reserved before a crash are skipped.
                    r = self._db.execute(
                        "SELECT ceiling FROM reservations WHERE slot = ?", (k.slot,)
                    ).fetchone()
                    if r is not None and int(r[0]) > k.ceiling:
                        k = KeySnapshot(
                            k.role, k.key_id, k.key, k.slot, int(r[0]), k.highest, k.bitmap
                        )
                keys.append(k)
        return body, keys

    def load_channel(self, name: str) -> ChannelSnapshot | None:
        """The stored snapshot of channel ``name`` (ceilings raised to the durable reservations)."""
        loaded = self._load(name, "channel")
        if loaded is None:
            return None
        body, keys = loaded
        try:
            return ChannelSnapshot(
                name=name,
                role=Role(body["role"]),
                local_id=bytes.fromhex(body["local_id"]),
                peer_id=bytes.fromhex(body["peer_id"]),
                psk=bytes.fromhex(body["psk"]),
                state=ChannelState(body["state"]),
                generation=int(body["generation"]),
                keys=tuple(keys),
                consecutive_failures=int(body["consecutive_failures"]),
                counters=Counters(**{k: int(v) for k, v in body["counters"].items()}),
            )
        except (KeyError, TypeError, ValueError):
            raise DecodeError("corrupt channel snapshot", field="store.body") from None

    def load_broadcast(self, name: str) -> BroadcastSnapshot | None:
        """The stored snapshot of broadcast sender ``name``."""
        loaded = self._load(name, "broadcast")
        if loaded is None:
            return None
        body, keys = loaded
        try:
            return BroadcastSnapshot(
                name=name,
                source_id=bytes.fromhex(body["source_id"]),
                generation=int(body["generation"]),
                keys=tuple(keys),
            )
        except (KeyError, TypeError, ValueError):
            raise DecodeError("corrupt broadcast snapshot", field="store.body") from None

    def names(self) -> list[str]:
        """Names of all stored snapshots."""
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT name FROM snapshots ORDER BY name")]

    def delete(self, name: str) -> None:
        """Forget a snapshot (e.g. to recommission a FAILED channel).  Reservations stay."""
        with self._lock:
            self._db.execute("DELETE FROM snapshots WHERE name = ?", (name,))
