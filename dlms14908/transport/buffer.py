"""Incremental receive buffer with commit/rollback for serial byte streams.

A parser reads tentatively from the buffer; when a whole unit (a code packet,
a data message) is available it *commits*, otherwise it *rolls back* and waits
for more bytes (style.md §b8).  Consumed bytes are discarded on commit.
"""

from __future__ import annotations


class ReceiveBuffer:
    """Bytes received so far, with a tentative read position."""

    __slots__ = ("_data", "_pos")

    def __init__(self) -> None:
        self._data = bytearray()
        self._pos = 0

    def __len__(self) -> int:
        """Number of bytes not yet consumed tentatively."""
        return len(self._data) - self._pos

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes."""
        self._data += data

    def read_byte(self) -> int | None:
        """Read one byte tentatively; ``None`` if none is buffered."""
        if self._pos >= len(self._data):
            return None
        b = self._data[self._pos]
        self._pos += 1
        return b

    def peek_byte(self, ahead: int = 0) -> int | None:
        """The byte ``ahead`` positions past the read position, or ``None``."""
        i = self._pos + ahead
        return self._data[i] if i < len(self._data) else None

    def read(self, n: int) -> bytes | None:
        """Read exactly ``n`` bytes tentatively, or ``None`` (nothing consumed)."""
        if self._pos + n > len(self._data):
            return None
        out = bytes(self._data[self._pos : self._pos + n])
        self._pos += n
        return out

    def unread(self, n: int = 1) -> None:
        """Step the read position back by ``n`` bytes (within the uncommitted part)."""
        self._pos = max(0, self._pos - n)

    def commit(self) -> None:
        """Discard everything read so far."""
        del self._data[: self._pos]
        self._pos = 0

    def rollback(self) -> None:
        """Forget the tentative reads since the last commit."""
        self._pos = 0

    def pending(self) -> bytes:
        """All buffered bytes after the last commit (for diagnostics)."""
        return bytes(self._data)

    def clear(self) -> None:
        """Drop every buffered byte."""
        self._data.clear()
        self._pos = 0
