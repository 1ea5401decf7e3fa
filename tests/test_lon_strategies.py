"""Hypothesis strategies for valid ISO/IEC 14908-1 frames (shared by the lon/pcap/tshark tests)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dlms14908.lon.frame import (
    Apdu,
    AuthPdu,
    AuthType,
    BroadcastAddress,
    Frame,
    GroupAckAddress,
    GroupAddress,
    L2Header,
    NeuronIdAddress,
    Npdu,
    NvApdu,
    Spdu,
    SpduType,
    SubnetNodeAddress,
    Tpdu,
    TpduType,
    decode_frame,
    encode_frame,
)

subnet = st.integers(0, 255)
node = st.integers(0, 127)

l2_headers = st.builds(L2Header, st.booleans(), st.booleans(), st.integers(0, 63))

addresses = st.one_of(
    st.builds(BroadcastAddress, subnet, node, subnet),
    st.builds(GroupAddress, subnet, node, subnet),
    st.builds(SubnetNodeAddress, subnet, node, subnet, node),
    st.builds(GroupAckAddress, subnet, node, subnet, node, subnet, st.integers(0, 63)),
    st.builds(NeuronIdAddress, subnet, node, subnet, st.binary(min_size=6, max_size=6)),
)

domains = st.sampled_from((0, 1, 3, 6)).flatmap(lambda n: st.binary(min_size=n, max_size=n))

apdu_data = st.binary(max_size=24)
apdus = st.one_of(
    st.builds(Apdu, st.integers(0, 0x7F), apdu_data),
    st.builds(NvApdu, st.integers(0, 0x3FFF), apdu_data, st.integers(0, 1)),
)
m_lists = st.binary(max_size=8)


@st.composite
def tpdus(draw: st.DrawFn) -> Tpdu:
    t = draw(st.sampled_from(list(TpduType)))
    apdu = draw(apdus) if t in (TpduType.ACKD, TpduType.UNACKD_RPT, TpduType.REM_MSG) else None
    m_list = draw(m_lists) if t in (TpduType.REMINDER, TpduType.REM_MSG) else None
    return Tpdu(t, draw(st.integers(0, 15)), apdu, m_list, draw(st.booleans()))


@st.composite
def spdus(draw: st.DrawFn) -> Spdu:
    t = draw(st.sampled_from(list(SpduType)))
    apdu = draw(apdus) if t in (SpduType.REQUEST, SpduType.RESPONSE, SpduType.REM_MSG) else None
    m_list = draw(m_lists) if t in (SpduType.REMINDER, SpduType.REM_MSG) else None
    return Spdu(t, draw(st.integers(0, 15)), apdu, m_list, draw(st.booleans()))


@st.composite
def authpdus(draw: st.DrawFn) -> AuthPdu:
    fmt = draw(st.integers(0, 3))
    group = draw(subnet) if fmt == 1 else None
    return AuthPdu(
        draw(st.sampled_from(list(AuthType))),
        draw(st.integers(0, 15)),
        fmt,
        draw(st.binary(min_size=8, max_size=8)),
        group,
    )


enclosed = st.one_of(tpdus(), spdus(), authpdus(), apdus)
npdus = st.builds(Npdu, addresses, enclosed, domains)
frames = st.builds(Frame, npdus, l2_headers)


@given(frames)
def test_generated_frames_are_canonical(frame: Frame) -> None:
    wire = encode_frame(frame)
    assert decode_frame(wire) == frame
    assert encode_frame(decode_frame(wire)) == wire
