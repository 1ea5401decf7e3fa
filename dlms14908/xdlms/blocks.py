"""Sans-I/O helpers for xDLMS service-specific block transfer (Green Book §9.3.x:
GET with datablocks, SET with datablocks, ACTION with pblocks).

Blocks are numbered from 1; GET-Request-Next and the SET/ACTION acknowledgements
carry the number of the last block received.  The raw data of all blocks
concatenated is the A-XDR encoding of the value.
"""

from __future__ import annotations

from typing import Any

from .. import axdr
from ..errors import EncodeError, LocalProtocolError, RemoteProtocolError, ServiceError
from ._base import Apdu
from .ln import (
    ActionRequestWithFirstPblock,
    ActionRequestWithPblock,
    GetRequestNext,
    GetResponseWithDatablock,
    SetRequestWithDatablock,
    SetRequestWithFirstDatablock,
)
from .types import AccessSelector, AttributeDescriptor, MethodDescriptor

__all__ = [
    "BlockSequenceError",
    "DataBlockCollector",
    "GetBlockCollector",
    "action_request_blocks",
    "set_request_blocks",
    "split_blocks",
]


class BlockSequenceError(RemoteProtocolError):
    """The peer sent a block out of sequence, after the last one, or too much data."""


def split_blocks(raw: bytes, block_size: int, first_number: int = 1
                 ) -> list[tuple[bool, int, bytes]]:
    """Cut ``raw`` into ``(last_block, block_number, chunk)`` triples of at most
    ``block_size`` bytes (one empty last block for empty input)."""
    if not isinstance(block_size, int) or block_size < 1:
        raise EncodeError("block_size must be a positive int", field="block_size")
    raw = bytes(raw)
    chunks = [raw[i:i + block_size] for i in range(0, len(raw), block_size)] or [b""]
    n = len(chunks)
    return [(i == n - 1, first_number + i, c) for i, c in enumerate(chunks)]


def set_request_blocks(invoke_id_and_priority: int, attribute: AttributeDescriptor, raw: bytes,
                       block_size: int, access_selection: AccessSelector | None = None
                       ) -> list[Apdu]:
    """SET-Request-With-First-Datablock followed by SET-Request-With-Datablock APDUs
    carrying ``raw`` (the A-XDR encoded value, e.g. ``axdr.encode(value)``)."""
    out: list[Apdu] = []
    for last, num, chunk in split_blocks(raw, block_size):
        if num == 1:
            out.append(SetRequestWithFirstDatablock(invoke_id_and_priority, attribute, last, num,
                                                    chunk, access_selection))
        else:
            out.append(SetRequestWithDatablock(invoke_id_and_priority, last, num, chunk))
    return out


def action_request_blocks(invoke_id_and_priority: int, method: MethodDescriptor, raw: bytes,
                          block_size: int) -> list[Apdu]:
    """ACTION-Request-With-First-Pblock followed by ACTION-Request-With-Pblock APDUs
    carrying ``raw`` (the A-XDR encoded method parameters)."""
    out: list[Apdu] = []
    for last, num, chunk in split_blocks(raw, block_size):
        if num == 1:
            out.append(ActionRequestWithFirstPblock(invoke_id_and_priority, method, last, num,
                                                    chunk))
        else:
            out.append(ActionRequestWithPblock(invoke_id_and_priority, last, num, chunk))
    return out


class DataBlockCollector:
    """Collects numbered blocks (1, 2, 3, ...) until the last-block flag.

    ``max_bytes`` bounds the reassembled size (a hostile peer cannot exhaust memory)."""

    def __init__(self, *, max_bytes: int | None = None) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self._last_number = 0
        self._done = False
        self._max = max_bytes

    @property
    def done(self) -> bool:
        return self._done

    @property
    def last_block_number(self) -> int:
        """Number of the last block accepted (0 before the first)."""
        return self._last_number

    def add(self, last_block: bool, block_number: int, raw_data: bytes) -> bool:
        """Accept one block; returns True once the last block has arrived."""
        if self._done:
            raise BlockSequenceError(f"block {block_number} after the last block")
        if block_number != self._last_number + 1:
            raise BlockSequenceError(
                f"expected block {self._last_number + 1}, got {block_number}")
        self._size += len(raw_data)
        if self._max is not None and self._size > self._max:
            raise BlockSequenceError(f"reassembled data exceeds {self._max} bytes")
        self._parts.append(bytes(raw_data))
        self._last_number = block_number
        self._done = bool(last_block)
        return self._done

    @property
    def data(self) -> bytes:
        """The concatenated raw data (only once complete)."""
        if not self._done:
            raise LocalProtocolError("block transfer not complete")
        return b"".join(self._parts)

    def value(self) -> Any:
        """The reassembled raw data decoded as one A-XDR Data value."""
        return axdr.decode_all(self.data)


class GetBlockCollector(DataBlockCollector):
    """Client side of GET with datablocks: feed each GET-Response-With-Datablock to
    :meth:`receive`; while it returns False send :meth:`next_request`."""

    def receive(self, apdu: GetResponseWithDatablock) -> bool:
        if not isinstance(apdu, GetResponseWithDatablock):
            raise LocalProtocolError(f"expected GetResponseWithDatablock, got {type(apdu).__name__}")
        if apdu.error is not None:
            raise ServiceError(f"block {apdu.block_number}: data-access-result {apdu.error.name}",
                               hint=apdu.error)
        return self.add(apdu.last_block, apdu.block_number, apdu.raw_data)

    def next_request(self, invoke_id_and_priority: int) -> GetRequestNext:
        """The GET-Request-Next acknowledging the last block received."""
        if self._done:
            raise LocalProtocolError("block transfer already complete")
        if self._last_number == 0:
            raise LocalProtocolError("no block received yet")
        return GetRequestNext(invoke_id_and_priority, self._last_number)
