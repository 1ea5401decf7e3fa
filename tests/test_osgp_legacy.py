"""Legacy OSGP OMA digest + RC4 (decode only), against the public vector of reference §8."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher
from hypothesis import given
from hypothesis import strategies as st

from dlms14908.errors import AuthenticationFailed, DecodeError, EncodeError, ProtocolError
from osgp import legacy


def _vectors(vectors_dir):
    data = json.loads((vectors_dir / "osgp" / "legacy_oma_rc4.json").read_text())
    assert data["source"]
    return data["vectors"]


def _encrypt(message: bytes, key: bytes) -> bytes:
    """Test-only encryptor built from the public composition (reference §6.2)."""
    tag = legacy.oma_digest(message, key)
    k = bytearray(legacy.derive_encryption_key(key))
    for i in range(8):
        k[i] ^= tag[i]
    return Cipher(ARC4(bytes(k)), mode=None).encryptor().update(message) + tag


def test_vector_digest_key_and_decrypt(vectors_dir):
    for v in _vectors(vectors_dir):
        key, msg = bytes.fromhex(v["key"]), bytes.fromhex(v["message"])
        assert legacy.oma_digest(msg, key).hex() == v["digest"]
        ek = legacy.derive_encryption_key(key)
        assert ek.hex() == v["encryption_key"]
        rc4_key = bytes(a ^ b for a, b in zip(ek[:8], bytes.fromhex(v["digest"]), strict=False)) + ek[8:]
        assert rc4_key.hex() == v["rc4_key"]
        assert legacy.decrypt(bytes.fromhex(v["ciphertext"]), key) == msg
        assert _encrypt(msg, key).hex() == v["ciphertext"]


def test_padding_boundaries_are_distinct_but_zero_padding_equivalent():
    key = bytes(range(12))
    # The digest zero-pads to 144 bytes: trailing zeros inside a block do not change it [C].
    assert legacy.oma_digest(b"\x01", key) == legacy.oma_digest(b"\x01" + bytes(143), key)
    assert legacy.oma_digest(b"\x01", key) != legacy.oma_digest(b"\x01" + bytes(144), key)
    assert legacy.oma_digest(b"\x01", key) != legacy.oma_digest(b"\x02", key)


def test_tampered_ciphertext_and_wrong_key_fail(vectors_dir):
    v = _vectors(vectors_dir)[0]
    key, ct = bytes.fromhex(v["key"]), bytearray.fromhex(v["ciphertext"])
    for pos in (0, len(ct) // 2, len(ct) - 1):
        bad = bytearray(ct)
        bad[pos] ^= 0x01
        with pytest.raises(AuthenticationFailed):
            legacy.decrypt(bytes(bad), key)
    with pytest.raises(AuthenticationFailed):
        legacy.decrypt(bytes(ct), bytes(12))


def test_short_input_and_bad_key():
    with pytest.raises(DecodeError) as ei:
        legacy.decrypt(b"\x00" * 7, bytes(12))
    assert ei.value.field == "digest"
    secret = bytes.fromhex("0123456789abcdef01234567")
    with pytest.raises(EncodeError) as ee:
        legacy.oma_digest(b"", secret[:11])
    assert secret[:11].hex() not in str(ee.value)


@given(st.binary(max_size=400), st.binary(min_size=12, max_size=12))
def test_roundtrip(msg, key):
    assert legacy.decrypt(_encrypt(msg, key), key) == msg


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_our_errors(data):
    try:
        legacy.decrypt(data, b"\xdf" * 12)
    except ProtocolError as exc:
        assert isinstance(exc, (DecodeError, AuthenticationFailed))
