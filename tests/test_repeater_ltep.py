"""Annex E (LTEP proxy) codec and repeater/agent rules."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlms14908.errors import DecodeError, EncodeError, ProxyError
from dlms14908.repeater import (
    LONG_TIMERS_MS,
    NORMAL_TIMERS_MS,
    AddressType,
    AgentSend,
    AltKey,
    AuthKeyType,
    BroadcastTarget,
    Forward,
    GroupTarget,
    Hop,
    NeuronIdTarget,
    NodeAddress,
    ProxyFailure,
    ProxyMode,
    ProxyRequest,
    ProxySuccess,
    ServiceType,
    Sicb,
    SubnetNodeTarget,
    TxCtrl,
    build_chain,
    chain_timeout_ms,
    decode_completion,
    decode_request,
    encode_completion,
    encode_request,
    failing_node,
    hop_adjust_ms,
    process,
    raise_for_completion,
)


@pytest.fixture(scope="module")
def ltep_vectors(vectors_dir):  # type: ignore[no-untyped-def]
    return json.loads((vectors_dir / "repeater" / "ltep.json").read_text())


def test_public_example_decodes_and_reencodes(ltep_vectors) -> None:  # type: ignore[no-untyped-def]
    for v in ltep_vectors["vectors"]:
        wire = bytes.fromhex(v["hex"])
        req = decode_request(wire)
        assert req.count == v["count"]
        assert [(h.subnet, h.node) for h in req.hops] == [tuple(h) for h in v["hops"]]
        assert (None if req.txctrl is None else [req.txctrl.retry, req.txctrl.timer]) == v["txctrl"]
        assert int(req.sicb.type) == v["sicb"]["type"]
        assert int(req.sicb.service) == v["sicb"]["service"]
        assert int(req.sicb.mode) == v["sicb"]["mode"]
        assert [req.sicb.txctrl.retry, req.sicb.txctrl.timer] == v["sicb"]["txctrl"]
        assert isinstance(req.target, SubnetNodeTarget)
        assert (req.target.subnet, req.target.node) == (v["target"]["subnet"], v["target"]["node"])
        assert req.apdu.hex() == v["apdu"]
        assert encode_request(req) == wire


def test_repeater_forwards_exactly_the_public_second_frame(ltep_vectors) -> None:  # type: ignore[no-untyped-def]
    first, second = (bytes.fromhex(v["hex"]) for v in ltep_vectors["vectors"])
    act = process(first, own_subnet=1, src_subnet=1, received_service=ServiceType.ACKD)
    assert isinstance(act, Forward)
    assert act.next_hop == NodeAddress(1, 5)
    assert act.frame == second
    assert (act.retry, act.timer_ms) == (3, 384)
    agent = process(second, own_subnet=1, src_subnet=1, received_service=ServiceType.ACKD)
    assert isinstance(agent, AgentSend)
    assert agent.target_subnet == 1 and agent.target == SubnetNodeTarget(7, 1)
    assert agent.apdu == b"\x00\x01\x02" and agent.service is ServiceType.ACKD
    assert agent.timer_ms == 384 and agent.auth_key is None


def test_timer_tables(ltep_vectors) -> None:  # type: ignore[no-untyped-def]
    assert list(NORMAL_TIMERS_MS) == ltep_vectors["timers"]["normal_ms"]
    assert list(LONG_TIMERS_MS) == ltep_vectors["timers"]["long_ms"]
    assert TxCtrl(0, 4).timer_ms(long_timer=True) == 16384
    with pytest.raises(EncodeError, match=r"txctrl\.timer"):
        TxCtrl(0, 5).timer_ms(long_timer=True)


TARGETS = {
    AddressType.GROUP: GroupTarget(0x21, 5),
    AddressType.SUBNET_NODE: SubnetNodeTarget(7, 3, alt_path=True),
    AddressType.NEURON_ID: NeuronIdTarget(bytes.fromhex("0102030405a6"), 2),
    AddressType.BROADCAST: BroadcastTarget(4, 9),
    AddressType.GROUP_COMPACT: GroupTarget(0x22, 0, compact=True),
    AddressType.SUBNET_NODE_COMPACT_SRC: SubnetNodeTarget(9, None, compact=AddressType.SUBNET_NODE_COMPACT_SRC),
    AddressType.NEURON_ID_COMPACT: NeuronIdTarget(bytes.fromhex("0a0b0c0d0e0f")),
    AddressType.SUBNET_NODE_COMPACT_DEST: SubnetNodeTarget(11, None, compact=AddressType.SUBNET_NODE_COMPACT_DEST),
}


@pytest.mark.parametrize("atype", list(AddressType))
def test_every_address_type_has_the_public_size(atype: AddressType, ltep_vectors) -> None:  # type: ignore[no-untyped-def]
    req = ProxyRequest(
        hops=(), sicb=Sicb(atype, ServiceType.UNACKD, TxCtrl(1, 2)), target=TARGETS[atype], apdu=b"\x3f"
    )
    wire = encode_request(req)
    # total of ProxyHeader + SICB + target address (code byte and APDU excluded)
    assert len(wire) - 2 == ltep_vectors["header_sicb_address_sizes"]["by_type"][str(int(atype))]
    assert wire[2] >> 5 == atype
    assert decode_request(wire) == req


def test_compact_targets_resolve_their_subnet() -> None:
    def agent(atype: AddressType) -> AgentSend:
        req = ProxyRequest((), Sicb(atype, ServiceType.ACKD, TxCtrl(1, 1)), TARGETS[atype], b"\x01")
        act = process(encode_request(req), own_subnet=40, src_subnet=50, received_service=ServiceType.ACKD)
        assert isinstance(act, AgentSend)
        return act

    assert agent(AddressType.SUBNET_NODE_COMPACT_SRC).target_subnet == 50
    assert agent(AddressType.SUBNET_NODE_COMPACT_DEST).target_subnet == 40
    assert agent(AddressType.NEURON_ID_COMPACT).target_subnet == 0
    assert agent(AddressType.GROUP_COMPACT).service is ServiceType.UNACKD  # size 0 => unackd
    assert agent(AddressType.SUBNET_NODE).alt_path is True


def test_alternate_key_is_bytewise_sum_mod_256() -> None:
    delta = bytes([1, 2, 3, 0xFF, 0x80, 0])
    req = ProxyRequest(
        (), Sicb(AddressType.SUBNET_NODE, ServiceType.ACKD, TxCtrl(2, 3), mode=ProxyMode.ALTKEY),
        SubnetNodeTarget(5, 1), b"\x00", alt_key=AltKey(AuthKeyType.STANDARD, delta),
    )
    wire = encode_request(req)
    assert wire[4] == 0x00 and wire[5:11] == delta  # key type byte then the delta
    act = process(wire, own_subnet=1, src_subnet=1, received_service=ServiceType.ACKD,
                  domain_key=bytes([0x10, 0x20, 0x30, 0x02, 0x80, 0x55]))
    assert isinstance(act, AgentSend)
    assert act.auth_key == bytes([0x11, 0x22, 0x33, 0x01, 0x00, 0x55])
    assert "auth_key" not in repr(act) and delta.hex() not in repr(req)
    oma = AltKey(AuthKeyType.OMA, bytes(range(12)))
    assert oma.apply(bytes([0xFF] * 12)) == bytes([0xFF] + list(range(11)))
    with pytest.raises(EncodeError, match="altkey"):
        process(wire, own_subnet=1, src_subnet=1, received_service=ServiceType.ACKD)


def test_three_repeater_chain_end_to_end() -> None:
    chain = [NodeAddress(1, 10), NodeAddress(2, 20, alt_path=True), NodeAddress(3, 30)]
    first, frame = build_chain(chain, SubnetNodeTarget(40, 3), b"\x01hello", service=ServiceType.REQUEST)
    assert first == chain[0]
    assert decode_request(frame).count == 2
    src = 9
    for i, node in enumerate(chain):
        act = process(frame, own_subnet=node.subnet, src_subnet=src, received_service=ServiceType.REQUEST)
        if i < len(chain) - 1:
            assert isinstance(act, Forward)
            assert act.next_hop == chain[i + 1]
            frame, src = act.frame, node.subnet
        else:
            assert isinstance(act, AgentSend)
            assert act.apdu == b"\x01hello" and act.service is ServiceType.REQUEST


def test_uniform_chain_omits_subnets() -> None:
    chain = [NodeAddress(5, 1), NodeAddress(5, 2), NodeAddress(5, 3)]
    _, frame = build_chain(chain, SubnetNodeTarget(9, 5), b"\x00")
    req = decode_request(frame)
    assert req.uniform_by_dest and all(h.subnet is None for h in req.hops)
    assert frame[1] == 0x80 | 2 and frame[2:4] == bytes([2, 3])  # path|node bytes only
    act = process(frame, own_subnet=5, src_subnet=1, received_service=ServiceType.ACKD)
    assert isinstance(act, Forward) and act.next_hop == NodeAddress(5, 2)
    by_src = ProxyRequest((Hop(4),), Sicb(AddressType.SUBNET_NODE, ServiceType.ACKD, TxCtrl(0, 0)),
                          SubnetNodeTarget(1, 1), b"\x00", txctrl=TxCtrl(1, 1), uniform_by_src=True)
    act = process(encode_request(by_src), own_subnet=5, src_subnet=77, received_service=ServiceType.ACKD)
    assert isinstance(act, Forward) and act.next_hop == NodeAddress(77, 4)


def test_all_agents_delivers_locally_for_unacked_only() -> None:
    req = ProxyRequest((Hop(2, 1), Hop(3, 1)), Sicb(AddressType.BROADCAST, ServiceType.UNACKD, TxCtrl(0, 1)),
                       BroadcastTarget(1), b"\x05", txctrl=TxCtrl(1, 2), all_agents=True)
    wire = encode_request(req)
    act = process(wire, own_subnet=1, src_subnet=1, received_service=ServiceType.UNACKD_RPT)
    assert isinstance(act, Forward) and act.local_agent_frame is not None
    assert act.local_agent_frame[1] == 0x00  # header 0x00: count 0, no flags
    assert act.local_agent_frame[2:] == wire[1 + 1 + 4 + 1:]  # everything after the ProxyTxCtrl
    local = process(act.local_agent_frame, own_subnet=1, src_subnet=1, received_service=ServiceType.UNACKD)
    assert isinstance(local, AgentSend) and local.apdu == b"\x05"
    ackd = process(wire, own_subnet=1, src_subnet=1, received_service=ServiceType.ACKD)
    assert isinstance(ackd, Forward) and ackd.local_agent_frame is None


def test_hop_adjust_rules() -> None:
    assert hop_adjust_ms(3, TxCtrl(0, 10), False) == 1536
    assert hop_adjust_ms(3, TxCtrl(0, 2), True) == 1536
    assert hop_adjust_ms(3, TxCtrl(0, 8), False) == 768
    assert hop_adjust_ms(3, TxCtrl(0, 7), False) == 256
    # timeout bound grows with every hop
    t = [chain_timeout_ms(n, TxCtrl(3, 9), TxCtrl(3, 9)) for n in range(4)]
    assert t == sorted(t) and len(set(t)) == 4
    assert t[0] == 4 * 384 + 1000


def test_completions_and_failing_hop() -> None:
    assert decode_completion(b"\x4d") == ProxySuccess()
    assert decode_completion(b"\x4d\xc4\x01") == ProxySuccess(b"\xc4\x01")
    assert decode_completion(b"\x4c\x02") == ProxyFailure(2)
    assert encode_completion(ProxyFailure(2)) == b"\x4c\x02"
    chain = [NodeAddress(1, 1), NodeAddress(1, 2), NodeAddress(1, 3)]
    assert failing_node(chain, ProxyFailure(2)) == 0
    assert failing_node(chain, ProxyFailure(0)) == 2
    with pytest.raises(ProxyError, match="hop 1: repeater 1/2 could not reach repeater 1/3") as e:
        raise_for_completion(chain, ProxyFailure(1))
    assert e.value.hop == 1
    with pytest.raises(ProxyError, match="could not reach the target"):
        raise_for_completion(chain, ProxyFailure(0))
    assert raise_for_completion(chain, ProxySuccess(b"x")) == b"x"
    for bad, fld in [(b"", "code"), (b"\x4c", "count"), (b"\x4c\x10", "count"), (b"\x00", "code")]:
        with pytest.raises(DecodeError, match=fld):
            decode_completion(bad)


def test_malformed_frames_name_the_field() -> None:
    cases = {
        "4e00": "proxy.code",
        "4d02": "proxy.hop[0].subnet",
        "4d010105": "proxy.txctrl",
        "4d00": "sicb",
        "4d0020": "sicb.txctrl",
        "4d002039": "target.subnet",
        "4d00203901": "target.node",
        "4d0020390107": "proxy.apdu",
        "4d00423901": "altkey.delta",
        "4d0042390901": "altkey.type",
        "4d41010539203901070001": "proxy.txctrl.timer",
    }
    for hx, fld in cases.items():
        with pytest.raises(DecodeError) as e:
            decode_request(bytes.fromhex(hx))
        assert e.value.field == fld, hx


def test_encoder_rejects_inconsistent_requests() -> None:
    sicb = Sicb(AddressType.SUBNET_NODE, ServiceType.ACKD, TxCtrl(1, 1))
    with pytest.raises(EncodeError, match="txctrl"):
        encode_request(ProxyRequest((Hop(1, 1),), sicb, SubnetNodeTarget(1, 1), b"\x00"))
    with pytest.raises(EncodeError, match=r"sicb\.type"):
        encode_request(ProxyRequest((), sicb, BroadcastTarget(1), b"\x00"))
    with pytest.raises(EncodeError, match="subnet"):
        encode_request(ProxyRequest((Hop(1),), sicb, SubnetNodeTarget(1, 1), b"\x00", txctrl=TxCtrl(0, 0)))
    with pytest.raises(EncodeError, match=r"hop\.node"):
        Hop(128, 1)


# ------------------------------------------------------------------ properties

txctrls = st.builds(TxCtrl, st.integers(0, 15), st.integers(0, 15))


@st.composite
def requests(draw: st.DrawFn) -> ProxyRequest:
    atype = draw(st.sampled_from(list(AddressType)))
    u8, n7 = st.integers(0, 255), st.integers(0, 127)
    target = {
        AddressType.GROUP: st.builds(GroupTarget, u8, u8),
        AddressType.GROUP_COMPACT: st.builds(GroupTarget, u8, st.just(0), st.just(True)),
        AddressType.SUBNET_NODE: st.builds(SubnetNodeTarget, n7, u8, st.booleans()),
        AddressType.SUBNET_NODE_COMPACT_SRC: st.builds(
            SubnetNodeTarget, n7, st.none(), st.booleans(), st.just(AddressType.SUBNET_NODE_COMPACT_SRC)),
        AddressType.SUBNET_NODE_COMPACT_DEST: st.builds(
            SubnetNodeTarget, n7, st.none(), st.booleans(), st.just(AddressType.SUBNET_NODE_COMPACT_DEST)),
        AddressType.NEURON_ID: st.builds(NeuronIdTarget, st.binary(min_size=6, max_size=6), u8),
        AddressType.NEURON_ID_COMPACT: st.builds(NeuronIdTarget, st.binary(min_size=6, max_size=6)),
        AddressType.BROADCAST: st.builds(BroadcastTarget, u8, u8),
    }[atype]
    uniform = draw(st.sampled_from(["none", "dest", "src"]))
    n = draw(st.integers(0, 15))
    hops = tuple(Hop(draw(n7), None if uniform != "none" else draw(u8), draw(st.booleans())) for _ in range(n))
    long_timer = draw(st.booleans())
    tx = draw(st.builds(TxCtrl, st.integers(0, 15), st.integers(0, 4 if long_timer else 15))) if n else None
    mode = draw(st.sampled_from(list(ProxyMode)))
    alt = None
    if mode is ProxyMode.ALTKEY:
        kt = draw(st.sampled_from(list(AuthKeyType)))
        alt = AltKey(kt, draw(st.binary(min_size=6 * (1 + kt), max_size=6 * (1 + kt))))
    return ProxyRequest(
        hops=hops,
        sicb=Sicb(atype, draw(st.sampled_from(list(ServiceType))), draw(txctrls), draw(st.booleans()), mode),
        target=draw(target),
        apdu=draw(st.binary(min_size=1, max_size=40)),
        txctrl=tx,
        uniform_by_dest=uniform == "dest",
        uniform_by_src=uniform == "src",
        long_timer=long_timer,
        all_agents=draw(st.booleans()),
        alt_key=alt,
    )


@given(requests())
def test_roundtrip(req: ProxyRequest) -> None:
    assert decode_request(encode_request(req)) == req


@given(requests())
def test_repeater_pops_exactly_one_hop(req: ProxyRequest) -> None:
    wire = encode_request(req)
    act = process(wire, own_subnet=3, src_subnet=4, received_service=ServiceType.UNACKD,
                  domain_key=bytes(len(req.alt_key.delta)) if req.alt_key else None)
    if req.hops:
        assert isinstance(act, Forward)
        fwd = decode_request(act.frame)
        assert fwd.hops == req.hops[1:] and fwd.apdu == req.apdu and fwd.target == req.target
        assert len(act.frame) == len(wire) - (1 if req.uniform else 2) - (0 if fwd.hops else 1)
    else:
        assert isinstance(act, AgentSend) and act.apdu == req.apdu


@given(st.binary(max_size=64))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    for fn in (decode_request, decode_completion):
        for blob in (b"\x4d" + data, data):
            try:
                fn(blob)
            except DecodeError:
                pass


def test_package_exports_every_public_name_of_its_modules() -> None:
    """dlms14908.repeater lists its exports as strings (static tools cannot read a starred
    __all__): the list stays exactly the union of the two modules' and every name resolves."""
    import dlms14908.repeater as pkg
    from dlms14908.repeater import ltep, rules

    assert sorted(pkg.__all__) == sorted([*ltep.__all__, *rules.__all__])
    assert len(set(pkg.__all__)) == len(pkg.__all__)
    for name in pkg.__all__:
        assert getattr(pkg, name) is getattr(ltep if name in ltep.__all__ else rules, name)
