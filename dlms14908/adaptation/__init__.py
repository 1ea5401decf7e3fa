"""IEC 62056-8-8 adaptation layer (design-choice layout in :mod:`dlms14908.profile` §3)."""

from .pdu import (
    AdaptationPdu,
    Reassembler,
    ReassemblyDropped,
    decode_pdu,
    decode_pdu_at,
    encode_pdu,
    header_bytes,
    segment_apdu,
)

__all__ = [
    "AdaptationPdu",
    "Reassembler",
    "ReassemblyDropped",
    "decode_pdu",
    "decode_pdu_at",
    "encode_pdu",
    "header_bytes",
    "segment_apdu",
]
