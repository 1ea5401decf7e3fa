"""OBIS codes: the four notations, bytes, names, bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlms14908.errors import DecodeError, EncodeError
from dlms14908.obis import Obis

groups = st.tuples(*[st.integers(0, 255)] * 6)


@given(groups)
def test_all_notations_round_trip(g: tuple) -> None:
    o = Obis(*g)
    a, b, c, d, e, f = g
    for text in (
        f"{a}-{b}:{c}.{d}.{e}.{f}",
        f"{a}-{b}:{c}.{d}.{e}*{f}",
        f"{a}.{b}.{c}.{d}.{e}.{f}",
        bytes(g).hex(),
        bytes(g).hex().upper(),
        f"  {a}-{b}:{c}.{d}.{e}.{f} ",
    ):
        assert Obis.parse(text) == o
    assert str(o) == f"{a}-{b}:{c}.{d}.{e}.{f}"
    assert Obis.parse(str(o)) == o
    assert bytes(o) == bytes(g) and Obis.from_bytes(bytes(g)) == o
    assert Obis.coerce(bytes(g)) == Obis.coerce(str(o)) == Obis.coerce(g) == o
    assert o.name is None or isinstance(o.name, str)


def test_examples() -> None:
    o = Obis.parse("1-0:1.8.0.255")
    assert (o.a, o.b, o.c, o.d, o.e, o.f) == (1, 0, 1, 8, 0, 255)
    assert bytes(o) == bytes.fromhex("0100010800FF")
    assert Obis.parse("1-0:1.8.0") == o  # F omitted means 255
    assert repr(o) == "Obis('1-0:1.8.0.255')"
    assert hash(o) == hash(Obis(1, 0, 1, 8, 0, 255))
    assert sorted([Obis.parse("1-0:2.8.0.255"), o])[0] == o


@pytest.mark.parametrize(
    "text,words",
    [
        ("1-0:1.8.0.255", ["active energy import", "total"]),
        ("1-0:1.8.2.255", ["active energy import", "tariff 2"]),
        ("1-0:2.8.0.255", ["active energy export"]),
        ("1-0:1.7.0.255", ["active power import", "instantaneous"]),
        ("1-0:32.7.0.255", ["voltage l1", "instantaneous"]),
        ("1-0:52.7.0.255", ["voltage l2"]),
        ("1-0:71.7.0.255", ["current l3"]),
        ("1-0:31.7.0.255", ["current l1"]),
        ("0-0:1.0.0.255", ["clock"]),
        ("1-0:99.1.0.255", ["load profile 1"]),
        ("1-0:99.2.0.255", ["load profile 2"]),
        ("0-0:40.0.0.255", ["association"]),
        ("0-0:43.0.0.255", ["security setup"]),
        ("0-0:43.0.3.255", ["security setup 3"]),
        ("0-0:96.3.10.255", ["disconnect control"]),
        ("0-0:44.0.0.255", ["image transfer"]),
        ("0-0:32.0.0.255", ["14908 identification"]),
        ("0-0:32.1.0.255", ["14908 protocol setup"]),
        ("0-0:32.2.0.255", ["14908 protocol status"]),
        ("0-0:32.3.0.255", ["14908 diagnostic"]),
        ("0-2:32.3.0.255", ["14908 diagnostic", "channel 2"]),
        ("1-0:1.8.0.101", ["historical value 101"]),
    ],
)
def test_names(text: str, words: list[str]) -> None:
    name = Obis.parse(text).name
    assert name is not None
    for w in words:
        assert w in name.lower(), name


def test_unknown_has_no_name() -> None:
    assert Obis.parse("0-0:32.4.0.255").name is None  # D outside 0..3
    assert Obis.parse("7-0:3.0.0.255").name is None
    assert Obis.parse("0-0:32.0.1.255").name is None  # E must be 0


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "abc",
        "1-0:1.8",
        "1-0:1.8.0.256",
        "256.0.1.8.0.255",
        "1-0:1.8.0.255.1",
        "0100010800F",
        "0100010800FFF",
        "1-0:1.8.0.-1",
        "1--0:1.8.0.255",
        "1.0.1.8.0",
        "01000108 00FF",
        "\u0661-0:1.8.0.255",
        "1-0:1.8.0.255\n1",
    ],
)
def test_bad_text_is_decode_error(bad: str) -> None:
    with pytest.raises(DecodeError) as ei:
        Obis.parse(bad)
    assert ei.value.field == "obis"


@pytest.mark.parametrize("bad", [b"", b"\x00" * 5, b"\x00" * 7, "010001"])
def test_bad_bytes_is_decode_error(bad: object) -> None:
    with pytest.raises(DecodeError) as ei:
        Obis.from_bytes(bad)  # type: ignore[arg-type]
    assert ei.value.field == "obis"


def test_non_string_and_bad_groups() -> None:
    with pytest.raises(DecodeError):
        Obis.parse(12345)  # type: ignore[arg-type]
    with pytest.raises(DecodeError):
        Obis.coerce(3.5)
    with pytest.raises(EncodeError):
        Obis(1, 0, 1, 8, 0, 256)


@given(st.text(max_size=30))
def test_random_text_only_decode_error(text: str) -> None:
    try:
        o = Obis.parse(text)
    except DecodeError:
        return
    assert Obis.parse(str(o)) == o
