"""Adaptation-layer PDU codec, segmentation and reassembly (design choice, docs/wire-format.md §3)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlms14908 import profile as P
from dlms14908.adaptation import AdaptationPdu, Reassembler, decode_pdu, encode_pdu, segment_apdu
from dlms14908.errors import DecodeError, EncodeError


def test_vectors(vectors_dir) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads((vectors_dir / "adaptation" / "pdu.json").read_text())
    assert doc["source"].startswith("design choice: docs/wire-format.md §3")
    for v in doc["vectors"]:
        pdu = decode_pdu(bytes.fromhex(v["hex"]))
        for f in ("type", "dst_sap", "src_sap", "protected", "segmented", "first", "last", "counter"):
            assert getattr(pdu, f) == v[f], (v["name"], f)
        assert pdu.payload.hex() == v["payload"]
        assert encode_pdu(pdu).hex() == v["hex"]


def test_control_field_bits_come_from_the_profile() -> None:
    pdu = AdaptationPdu(P.AL_TYPE_ERROR, 1, 2, b"", protected=True, segmented=True, first=True, counter=0)
    assert encode_pdu(pdu)[0] == P.AL_CTRL_PROTECTED | P.AL_CTRL_SEGMENTED | P.AL_CTRL_FIRST | P.AL_TYPE_ERROR


@given(st.binary(max_size=2000), st.integers(1, 300), st.booleans())
def test_segment_and_reassemble(apdu: bytes, max_seg: int, protected: bool) -> None:
    segs = list(segment_apdu(apdu, dst_sap=1, src_sap=0x10, max_segment=max_seg, protected=protected))
    assert all(len(s.payload) <= max_seg for s in segs)
    assert (len(segs) == 1) == (len(apdu) <= max_seg)
    r = Reassembler()
    outs = [r.feed(("n", 1, 0x10), decode_pdu(encode_pdu(s)), float(i)) for i, s in enumerate(segs)]
    assert outs[-1] == apdu and all(o is None for o in outs[:-1])
    assert r.pending == 0 and r.dropped_count == 0


def _segs(n: int = 4) -> list[AdaptationPdu]:
    return list(segment_apdu(bytes(range(n * 10)), dst_sap=1, src_sap=16, max_segment=10))


def test_missing_segment_abandons_and_counts() -> None:
    s = _segs()
    r = Reassembler()
    assert r.feed("k", s[0], 0) is None
    assert r.feed("k", s[2], 0) is None  # segment 1 lost
    assert r.dropped_count == 1 and "segment 2 where 1 was expected" in r.dropped[0].reason
    assert r.feed("k", s[3], 0) is None and r.pending == 0


def test_gap_timeout() -> None:
    s = _segs()
    r = Reassembler(gap_timeout=5.0)
    r.feed("k", s[0], 0.0)
    assert r.next_timer() == 5.0
    r.handle_timer(4.9)
    assert r.pending == 1
    r.handle_timer(5.1)
    assert r.pending == 0 and r.dropped[-1].reason == "segment gap exceeded the timeout"
    r.feed("k", s[0], 10.0)
    assert r.feed("k", s[1], 20.0) is None and r.pending == 0


def test_memory_is_bounded() -> None:
    r = Reassembler(max_apdu=25)
    s = _segs()
    for seg in s[:2]:
        r.feed("k", seg, 0)
    assert r.feed("k", s[2], 0) is None and r.pending == 0
    assert "exceeds 25 bytes" in r.dropped[-1].reason
    r = Reassembler(max_reassemblies=3)
    for k in range(10):
        r.feed(k, s[0], float(k))
    assert r.pending == 3 and r.dropped_count == 7
    assert r.buffered_bytes == 30


def test_interleaved_keys_do_not_mix() -> None:
    a = list(segment_apdu(b"A" * 25, dst_sap=1, src_sap=16, max_segment=10))
    b = list(segment_apdu(b"B" * 25, dst_sap=1, src_sap=16, max_segment=10))
    r = Reassembler()
    got = []
    for x, y in zip(a, b):
        got += [r.feed("a", x, 0), r.feed("b", y, 0)]
    assert [g for g in got if g] == [b"A" * 25, b"B" * 25]


def test_counter_wraps_after_255() -> None:
    segs = list(segment_apdu(bytes(300), dst_sap=1, src_sap=16, max_segment=1))
    assert segs[255].counter == 255 and segs[256].counter == 0
    r = Reassembler()
    assert [r.feed("k", s, 0) for s in segs][-1] == bytes(300)


@pytest.mark.parametrize(
    ("hexstr", "field"),
    [("", "adaptation.header"), ("0001", "adaptation.header"), ("0f0110", "adaptation.ctrl.type"),
     ("200110", "adaptation.ctrl"), ("400110", "adaptation.counter"), ("60011005", "adaptation.counter")],
)
def test_malformed(hexstr: str, field: str) -> None:
    with pytest.raises(DecodeError) as e:
        decode_pdu(bytes.fromhex(hexstr))
    assert e.value.field == field


def test_encoder_misuse() -> None:
    with pytest.raises(EncodeError, match=r"adaptation\.type"):
        encode_pdu(AdaptationPdu(9, 1, 1, b""))
    with pytest.raises(EncodeError, match="dst_sap"):
        encode_pdu(AdaptationPdu(0, 256, 1, b""))
    with pytest.raises(EncodeError, match="counter"):
        encode_pdu(AdaptationPdu(0, 1, 1, b"", segmented=True))


@given(st.binary(max_size=40))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    try:
        pdu = decode_pdu(data)
    except DecodeError:
        return
    assert encode_pdu(pdu) == data


def test_a_timer_handled_at_its_own_deadline_is_gone() -> None:
    """The driver fires a timer at exactly the time next_timer() gave: handling it then must
    expire it, or virtual time stops there (a livelock found with 5 repeater retries)."""
    s = _segs()
    r = Reassembler(gap_timeout=5.0)
    r.feed("k", s[0], 0.0)
    d = r.next_timer()
    assert d == 5.0
    r.handle_timer(d)
    assert r.pending == 0 and r.next_timer() is None
    r.feed("k", s[0], 10.0)
    assert r.feed("k", s[1], 15.0) is None and r.pending == 0  # at the deadline: too late
