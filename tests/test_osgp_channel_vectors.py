"""Our own OSGP-AES-128-PSK transcripts (vectors/osgp/handshake_*.json, protected_*.json).

The layouts are a design choice (docs/wire-format.md §4).  The transcripts are produced by
osgp.channel with deterministic CTR_DRBGs; this test (1) regenerates them and requires
byte equality, and (2) re-verifies every stored value with ``cryptography`` alone (CMAC,
AESCCM, RFC 3394 unwrap), following reference osgp-62056-8-8.md §2.4-2.7 independently of
osgp.keys / osgp.channel.  Regenerate with ``python tests/test_osgp_channel_vectors.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.ciphers.algorithms import AES
from cryptography.hazmat.primitives.cmac import CMAC
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SOURCE = "design choice: docs/wire-format.md §4"
HANDSHAKE = ROOT / "vectors" / "osgp" / "handshake_gpsk_psk.json"
PROTECTED = ROOT / "vectors" / "osgp" / "protected_frames.json"

NNAP_ID = bytes.fromhex("4e4e41500001")
LNAP_ID = bytes.fromhex("0400a1b2c3d4")
PSK = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
HDR = bytes.fromhex("800110")  # adaptation ctrl P=1 TYPE=xDLMS, dst SAP 0x01, src SAP 0x10
UP_HDR = bytes.fromhex("801001")
MGMT_HDR = bytes.fromhex("810101")  # P=1 TYPE=security
DEST = bytes.fromhex("0105")  # LonTalk destination subnet 1 / node 5 (opaque to the channel)
UP_DEST = bytes.fromhex("0101")
BC_DEST = bytes.fromhex("00")


def build() -> tuple[dict, dict]:
    from osgp.channel import BroadcastSender, Role, SecureChannel, SendHandshake, SendProtected
    from osgp.drbg import CtrDrbg
    from osgp.keys import derive_kek, derive_session_keys

    def drbg(p: bytes) -> CtrDrbg:
        return CtrDrbg(p, entropy=bytes)

    nn = SecureChannel(
        role=Role.NNAP, local_id=NNAP_ID, peer_id=LNAP_ID, psk=PSK, random=drbg(b"NNAP")
    )
    ln = SecureChannel(
        role=Role.LNAP, local_id=LNAP_ID, peer_id=NNAP_ID, psk=PSK, random=drbg(b"LNAP")
    )
    msgs = [("ChallengeRequest", "NNAP", nn.start_handshake(0.0))]
    for name, sender, ch in (
        ("ChallengeResponse", "LNAP", ln),
        ("CommissionRequest", "NNAP", nn),
        ("CommissionResponse", "LNAP", ln),
    ):
        peer_msg = msgs[-1][2]
        ev = ch.receive_message(peer_msg, 0.0)
        msgs.append((name, sender, next(e.data for e in ev if isinstance(e, SendHandshake))))
    nn.receive_message(msgs[-1][2], 0.0)
    rand_s, rand_c = msgs[0][2][7:23], msgs[1][2][13:29]
    keys = derive_session_keys(PSK, rand_c=rand_c, id_c=LNAP_ID, rand_s=rand_s, id_s=NNAP_ID)
    handshake = {
        "source": SOURCE,
        "description": "Challenge/Commission exchange (EAP-GPSK analogue), reference osgp-62056-8-8.md §2.4-2.5",
        "drbg": "osgp.drbg.CtrDrbg(personalization, entropy=zero bytes); NNAP personalization 'NNAP', LNAP 'LNAP'",
        "psk": PSK.hex(),
        "id_s": NNAP_ID.hex(),
        "id_c": LNAP_ID.hex(),
        "csuite": "000000000100",
        "rand_s": rand_s.hex(),
        "rand_c": rand_c.hex(),
        "kek": derive_kek(PSK, LNAP_ID).hex(),
        "mk": keys.mk.hex(),
        "sk": keys.sk.hex(),
        "pk": keys.pk.hex(),
        "unicast_key_id": 0,
        "initial_seq": 1,
        "messages": [{"name": n, "sender": s, "hex": m.hex()} for n, s, m in msgs],
    }

    entries = []

    def frame(name, ch_tx, ch_rx, pt, hdr, dest, key, source_id, **kw):
        body = ch_tx.protect(pt, header=hdr, dest=dest, now=1.0)
        ev = ch_rx.receive_protected(body, header=hdr, dest=dest, now=1.0, **kw)
        entries.append(
            {
                "name": name,
                "key": key.hex(),
                "source_id": source_id.hex(),
                "key_id": body[0],
                "seq": int.from_bytes(body[1:5], "big"),
                "header": hdr.hex(),
                "dest": dest.hex(),
                "plaintext": pt.hex(),
                "body": body.hex(),
            }
        )
        return ev

    frame(
        "unicast downlink (get-request)",
        nn,
        ln,
        bytes.fromhex("c001c100030100010800ff0200"),
        HDR,
        DEST,
        keys.pk,
        NNAP_ID,
    )
    frame("unicast downlink, SeqNo 2", nn, ln, b"\x01\x02\x03", HDR, DEST, keys.pk, NNAP_ID)
    frame(
        "unicast uplink",
        ln,
        nn,
        bytes.fromhex("c401c100060000c350"),
        UP_HDR,
        UP_DEST,
        keys.pk,
        LNAP_ID,
    )
    # Unicast key renewal: UpdateDomainKeys under the old key, answer, first frame under the new key.
    udk = next(e.data for e in nn.renew_unicast_key(2.0) if isinstance(e, SendProtected))
    ev = frame(
        "UpdateDomainKeys (unicast renewal)",
        nn,
        ln,
        udk,
        MGMT_HDR,
        DEST,
        keys.pk,
        NNAP_ID,
        management=True,
    )
    resp = next(e.data for e in ev if isinstance(e, SendProtected))
    frame(
        "UpdateDomainKeysResponse",
        ln,
        nn,
        resp,
        MGMT_HDR,
        UP_DEST,
        keys.pk,
        LNAP_ID,
        management=True,
    )
    new_key = ln._uc_rx[1].key
    frame(
        "unicast downlink under the renewed key", nn, ln, b"\x05\x06", HDR, DEST, new_key, NNAP_ID
    )
    # Broadcast key distribution and one broadcast frame.
    bs = BroadcastSender(NNAP_ID, random=drbg(b"BCAST"))
    bs.new_key()
    udk_bc = next(e.data for e in nn.send_broadcast_key(bs, 3.0) if isinstance(e, SendProtected))
    frame(
        "UpdateDomainKeys (broadcast key)",
        nn,
        ln,
        udk_bc,
        MGMT_HDR,
        DEST,
        new_key,
        NNAP_ID,
        management=True,
    )
    bs.activate()
    body = bs.protect(b"\x0f\x00\x00\x00\x01", header=HDR, dest=BC_DEST, now=4.0)
    entries.append(
        {
            "name": "broadcast",
            "key": bs._tx.key.hex(),
            "source_id": NNAP_ID.hex(),
            "key_id": body[0],
            "seq": int.from_bytes(body[1:5], "big"),
            "header": HDR.hex(),
            "dest": BC_DEST.hex(),
            "plaintext": "0f00000001",
            "body": body.hex(),
        }
    )
    protected = {
        "source": SOURCE,
        "description": "Protected PDU bodies KeyID||SeqNo||CCM(ct||tag8), nonce = source ID||SeqNo||KeyID||ctrl||00, "
        "AAD = header||KeyID||SeqNo||dest (reference osgp-62056-8-8.md §2.6-2.7), continuing the handshake "
        "in handshake_gpsk_psk.json",
        "kek": handshake["kek"],
        "entries": entries,
    }
    return handshake, protected


# --------------------------------------------------------------------------- independent checks
def _cmac(key: bytes, data: bytes) -> bytes:
    c = CMAC(AES(key))
    c.update(data)
    return c.finalize()


def _gkdf(key: bytes, z: bytes, n: int) -> bytes:
    return b"".join(_cmac(key, i.to_bytes(2, "big") + z) for i in range(1, (n + 15) // 16 + 1))[:n]


def test_stored_vectors_are_what_the_code_produces():
    handshake, protected = build()
    assert json.loads(HANDSHAKE.read_text()) == handshake
    assert json.loads(PROTECTED.read_text()) == protected


def test_handshake_vector_independently():
    v = json.loads(HANDSHAKE.read_text())
    assert v["source"] == SOURCE
    h = {
        k: bytes.fromhex(v[k])
        for k in ("psk", "id_s", "id_c", "csuite", "rand_s", "rand_c", "kek", "mk", "sk", "pk")
    }
    inp = h["rand_c"] + h["id_c"] + h["rand_s"] + h["id_s"]
    assert _gkdf(h["psk"], b"OSGP-KEK\x00" + h["id_c"], 16) == h["kek"]
    assert _gkdf(h["psk"], b"\x00\x10" + h["psk"] + h["csuite"] + inp, 16) == h["mk"]
    sched = _gkdf(h["mk"], inp, 160)
    assert sched[128:144] == h["sk"] and sched[144:160] == h["pk"]
    m = [bytes.fromhex(x["hex"]) for x in v["messages"]]
    assert [x["name"] for x in v["messages"]] == [
        "ChallengeRequest",
        "ChallengeResponse",
        "CommissionRequest",
        "CommissionResponse",
    ]
    assert m[0] == b"\x01" + h["id_s"] + h["rand_s"] + h["csuite"]
    assert m[1][:-16] == b"\x02" + h["id_c"] + h["id_s"] + h["rand_c"] + h["rand_s"] + h["csuite"]
    assert m[1][-16:] == _cmac(h["sk"], m[1][:-16])
    head = b"\x03" + h["rand_c"] + h["rand_s"] + h["id_s"] + h["csuite"]
    assert m[2].startswith(head) and len(m[2]) == len(head) + 13 + 16
    assert m[2][-16:] == _cmac(h["sk"], m[2][:-16])
    pd = AESCCM(h["pk"], tag_length=8).decrypt(
        h["id_s"] + bytes(6) + b"\x01", m[2][len(head) : -16], head[1:]
    )
    assert pd == v["initial_seq"].to_bytes(4, "big") + bytes([v["unicast_key_id"]])
    assert m[3][:2] == b"\x04\x00"
    assert m[3][2:] == _cmac(h["sk"], m[3][:2] + h["rand_c"] + h["rand_s"] + h["id_c"] + h["id_s"])


def test_protected_vectors_independently():
    v = json.loads(PROTECTED.read_text())
    assert v["source"] == SOURCE
    kek = bytes.fromhex(v["kek"])
    wrapped = {}
    for e in v["entries"]:
        key, body = bytes.fromhex(e["key"]), bytes.fromhex(e["body"])
        hdr, dest = bytes.fromhex(e["header"]), bytes.fromhex(e["dest"])
        assert body[0] == e["key_id"] and int.from_bytes(body[1:5], "big") == e["seq"]
        nonce = bytes.fromhex(e["source_id"]) + body[1:5] + bytes((body[0], hdr[0], 0))
        pt = AESCCM(key, tag_length=8).decrypt(nonce, body[5:], hdr + body[:5] + dest)
        assert pt.hex() == e["plaintext"]
        if e["name"].startswith("UpdateDomainKeys ("):  # RFC 3394 under K_kek
            assert pt[0] == 0x05 and len(pt) == 27
            wrapped[pt[1], pt[2]] = aes_key_unwrap(kek, pt[3:27])
    renewed = next(e for e in v["entries"] if e["name"] == "unicast downlink under the renewed key")
    assert (
        wrapped[(1, 0)].hex() == renewed["key"] and renewed["key_id"] == 1 and renewed["seq"] == 1
    )
    bc = next(e for e in v["entries"] if e["name"] == "broadcast")
    assert wrapped[(0, 1)].hex() == bc["key"]


if __name__ == "__main__":
    hs, pr = build()
    HANDSHAKE.write_text(json.dumps(hs, indent=2) + "\n")
    PROTECTED.write_text(json.dumps(pr, indent=2) + "\n")
    print("wrote", HANDSHAKE, PROTECTED)
