"""TOML key file loader: validation, messages without key material, permission warning."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from dlms14908.cli.common import Exit, KeyFileError, exit_code_for
from dlms14908.keyfile import KeyFileWarning, load_keyfile, parse_keyfile

EK = "000102030405060708090A0B0C0D0E0F"
AK = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
BK = "0F0E0D0C0B0A09080706050403020100"
ST = "4D4D4D0000BC614E"


def _write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    p = tmp_path / "keys.toml"
    p.write_text(text)
    os.chmod(p, mode)
    return p


def test_full_dlms_table(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        f'[dlms]\nek = "{EK}"\nak = "{AK.lower()}"\nbk = "{BK[:8]} {BK[8:]}"\n'
        f'system_title = "4D:4D:4D:00:00:BC:61:4E"\nclient_system_title = "4D4D4D0000000001"\n'
        '[osgp]\nomak = "whatever the owner wants"\n',
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0600: no warning
        kf = load_keyfile(p)
    d = kf.require_dlms()
    assert d.keys.ek == bytes.fromhex(EK) and d.keys.ak == bytes.fromhex(AK)
    assert d.keys.bk == bytes.fromhex(BK) and d.keys.dk is None
    assert d.system_title == bytes.fromhex(ST)
    assert d.sender_system_title(from_client=True) == bytes.fromhex("4D4D4D0000000001")
    assert d.sender_system_title(from_client=False) == bytes.fromhex(ST)
    assert d.sender_system_title(from_client=None) == bytes.fromhex(ST)
    assert kf.tables["osgp"] == {"omak": "whatever the owner wants"}  # raw tables kept for others
    text = repr(kf) + repr(d)
    for secret in (EK, AK, BK):
        assert secret.lower() not in text.lower()


def test_minimal_and_missing_table(tmp_path: Path) -> None:
    kf = parse_keyfile(f'[dlms]\nek = "{EK}"\nak = "{AK}"\n')
    assert kf.dlms is not None and kf.dlms.system_title is None and kf.dlms.keys.bk is None
    kf2 = parse_keyfile('[osgp]\nx = "1"\n', path="k.toml")
    assert kf2.dlms is None
    with pytest.raises(KeyFileError, match=r"no \[dlms\] table"):
        kf2.require_dlms()


@pytest.mark.parametrize(
    "body,needle",
    [
        (f'ak = "{AK}"', r"\[dlms\] ek: missing"),
        (f'ek = "{EK}"', r"\[dlms\] ak: missing"),
        (f'ek = "{EK[:-2]}"\nak = "{AK}"', r"\[dlms\] ek: must be 16 bytes, got 15"),
        (f'ek = "{EK}"\nak = "{AK}ZZ"', r"\[dlms\] ak: not valid hex"),
        (f'ek = "{EK}"\nak = 12345', r"\[dlms\] ak: must be a hex string"),
        (f'ek = "{EK}"\nak = "{AK}"\nbk = "{BK}00"', r"\[dlms\] bk: must be 16 bytes, got 17"),
        (
            f'ek = "{EK}"\nak = "{AK}"\nsystem_title = "{ST}00"',
            r"\[dlms\] system_title: must be 8 bytes",
        ),
        (f'ek = "{EK}"\nak = "{AK}"\nekk = "{EK}"', r"\[dlms\]: unknown field\(s\) ekk"),
    ],
)
def test_errors_name_field_never_value(tmp_path: Path, body: str, needle: str) -> None:
    p = _write(tmp_path, "[dlms]\n" + body + "\n")
    with pytest.raises(KeyFileError, match=needle) as ei:
        load_keyfile(p)
    msg = str(ei.value).lower()
    for secret in (EK, AK, BK, EK[:-2], AK + "ZZ"):
        assert secret.lower() not in msg
    assert exit_code_for(ei.value) is Exit.KEYFILE


def test_not_toml_quotes_position_only(tmp_path: Path) -> None:
    p = _write(tmp_path, f'[dlms]\nek = "{EK}"\nak = {AK}\n')  # unquoted value
    with pytest.raises(KeyFileError, match=r"not valid TOML at line 3") as ei:
        load_keyfile(p)
    assert AK.lower() not in str(ei.value).lower()


def test_dlms_not_a_table() -> None:
    with pytest.raises(KeyFileError, match=r"\[dlms\]: must be a table"):
        parse_keyfile('dlms = "x"\n')


def test_missing_unreadable_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="no such key file"):
        load_keyfile(tmp_path / "absent.toml")
    with pytest.raises(KeyFileError, match="cannot read"):
        load_keyfile(tmp_path)  # a directory
    p = tmp_path / "bin.toml"
    p.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(KeyFileError, match="not UTF-8"):
        load_keyfile(p)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_group_or_world_readable_warns(tmp_path: Path, mode: int) -> None:
    p = _write(tmp_path, f'[dlms]\nek = "{EK}"\nak = "{AK}"\n', mode)
    with pytest.warns(KeyFileWarning, match="chmod 600") as rec:
        kf = load_keyfile(p)
    assert kf.dlms is not None  # a warning, not a failure
    assert EK.lower() not in str(rec[0].message).lower()


def test_kek_and_lls_password_are_loaded_and_hidden() -> None:
    kf = parse_keyfile(
        f'[dlms]\nek = "{EK}"\nak = "{AK}"\nkek = "{BK}"\nlls_password = "secretpw"\n'
    )
    d = kf.require_dlms()
    assert d.kek == bytes.fromhex(BK) and d.lls_password == b"secretpw"
    text = repr(kf) + repr(d)
    assert "secretpw" not in text and BK.lower() not in text.lower()
    with pytest.raises(KeyFileError, match=r"\[dlms\] lls_password: must be a string"):
        parse_keyfile(f'[dlms]\nek = "{EK}"\nak = "{AK}"\nlls_password = 12345678\n')
