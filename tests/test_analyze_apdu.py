"""``dlms-analyze apdu``: tree and JSON output, decryption with a key file, errors, exit codes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlms14908.analyzer.apdu_cmd import parse_hex
from dlms14908.analyzer.cli import main
from dlms14908.cli.common import Exit
from dlms14908.errors import DecodeError
from dlms14908.keyfile import KeyFileWarning
from tests.conftest import ROOT, VECTORS

EK = "000102030405060708090A0B0C0D0E0F"
AK = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
BK = "0F0E0D0C0B0A09080706050403020100"
SERVER_ST = "4D4D4D0000BC614E"
SECRETS = (EK, AK, BK)

GCM = {
    v["id"]: v for v in json.loads((VECTORS / "xdlms" / "security_gcm.json").read_text())["vectors"]
}
GEN = {
    v["id"]: v
    for v in json.loads((VECTORS / "xdlms" / "security_generated.json").read_text())["vectors"]
}
V2 = GCM["V2"]["ciphered"]
G4_PLAIN = "C401C1000600001391"  # GET-Response-Normal, double-long-unsigned 5009
# GB AARQ with ciphered LLS (dlms-vectors.md A4): calling-AP-title = server test title, LLS
# password "12345678", user-information = glo-initiate-request V6 (carries a dedicated key)
A4 = (
    "6066A109060760857405080103A60A04084D4D4D0000BC614E8A0207808B0760857405080201"
    "AC0A80083132333435363738BE3404322130300123456780"
    "1302FF8A7874133D414CED25B42534D28DB0047720606B175BD52211BE6841DB204D39EE6FDB8E356855"
)


def _keyfile(tmp_path: Path, body: str | None = None, mode: int = 0o600) -> str:
    p = tmp_path / "keys.toml"
    p.write_text(
        body
        if body is not None
        else f'[dlms]\nek = "{EK}"\nak = "{AK}"\nbk = "{BK}"\n' f'system_title = "{SERVER_ST}"\n'
    )
    os.chmod(p, mode)
    return str(p)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["apdu", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _no_secrets(*texts: str) -> None:
    for t in texts:
        low = t.lower().replace(" ", "")
        for s in SECRETS:
            assert s.lower() not in low


def test_tree_for_plain_apdu_with_spaces(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "C4 01 C1 00", "06 00001391")
    assert code == 0 and err == ""
    assert "get-response" in out.lower() and "5009" in out and "9 bytes" in out


def test_json_for_plain_apdu(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, G4_PLAIN, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["length"] == 9
    assert "get-response" in json.dumps(report["apdu"]).lower()
    assert "5009" in json.dumps(report["apdu"])


def test_ciphered_without_keys_shows_header_only(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, V2, "--json")
    assert code == 0
    r = json.loads(out)
    sec = r["security"]
    assert sec["form"] == "glo-ciphering" and sec["tag"] == "0xC8" and sec["protects"] == "0xC0"
    assert sec["security_control"] == {
        "value": "0x30",
        "suite": 0,
        "authenticated": True,
        "encrypted": True,
        "broadcast_key": False,
        "compressed": False,
    }
    assert sec["invocation_counter"] == 0x01234567
    assert sec["authentication_tag"] == "7D825C3BE4A77C3FCC056B6B"
    assert "inner" not in r and "--keys" in r["note"]


def test_authentication_only_is_shown_unverified_without_keys(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _run(capsys, GCM["V4"]["ciphered"], "--json")
    assert code == 0
    r = json.loads(out)
    assert (
        r["inner"]["verified"] is False and "get-request" in json.dumps(r["inner"]["apdu"]).lower()
    )


def test_decrypt_with_keyfile_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, V2, "--keys", _keyfile(tmp_path), "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["inner"]["verified"] is True
    assert r["inner"]["plaintext"] == GCM["V2"]["plaintext"]
    assert r["security"]["sender_system_title"] == SERVER_ST
    inner = json.dumps(r["inner"]["apdu"]).lower()
    assert "get-request" in inner and "8" in inner  # class 8 (Clock)
    _no_secrets(out, err)


def test_decrypt_with_keyfile_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, V2, "--keys", _keyfile(tmp_path))
    assert code == 0, err
    assert "glo-get-request" in out and "security_control" in out and "0x30" in out
    assert "get-request" in out.split("inner", 1)[1]
    assert GCM["V2"]["plaintext"] in out
    _no_secrets(out, err)


def test_broadcast_general_glo_data_notification(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v = GEN["G7"]
    code, out, err = _run(capsys, v["ciphered"], "--keys", _keyfile(tmp_path), "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["security"]["security_control"]["broadcast_key"] is True
    assert r["security"]["system_title"] == v["system_title"]
    assert r["inner"]["plaintext"] == v["plaintext"]
    assert "notification" in json.dumps(r["inner"]["apdu"]).lower()


def test_aarq_nested_ciphered_user_information_is_decrypted_and_redacted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # no system_title in the key file: the AARQ's calling-AP-title is used
    kf = _keyfile(tmp_path, f'[dlms]\nek = "{EK}"\nak = "{AK}"\n')
    code, out, err = _run(capsys, A4, "--keys", kf, "--json")
    assert code == 0, err
    r = json.loads(out)
    (nested,) = r["ciphered"]
    assert "user_information" in nested["path"]
    assert nested["security"]["sender_system_title"] == SERVER_ST
    assert nested["inner"]["verified"] is True
    text = json.dumps(r)
    assert "initiate" in json.dumps(nested["inner"]["apdu"]).lower()
    # the dedicated key inside the InitiateRequest and the LLS password are never printed
    assert "00112233445566778899aabbccddeeff" not in text.lower()
    assert "3132333435363738" not in text and "12345678" not in text
    assert "<redacted" in text and "withheld" in nested["inner"]["plaintext"]
    _no_secrets(out, err)


def test_system_title_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kf = _keyfile(tmp_path, f'[dlms]\nek = "{EK}"\nak = "{AK}"\n')
    code, out, err = _run(capsys, V2, "--keys", kf)
    assert code == Exit.PROTOCOL and "--system-title" in err and out == ""
    code, out, err = _run(
        capsys, V2, "--keys", kf, "--system-title", "4D 4D 4D 00 00 BC 61 4E", "--json"
    )
    assert code == 0 and json.loads(out)["inner"]["plaintext"] == GCM["V2"]["plaintext"]
    code, out, err = _run(capsys, V2, "--keys", kf, "--system-title", "4D4D")
    assert code == Exit.DECODE and "--system-title" in err


@pytest.mark.parametrize("bad", ["C8 1G", "C81", "", "zz"])
def test_bad_hex(capsys: pytest.CaptureFixture[str], bad: str) -> None:
    code, out, err = _run(capsys, bad)
    assert code == Exit.DECODE
    assert out == "" and err.count("\n") == 1 and err.startswith("dlms-analyze: error: hex")


@pytest.mark.parametrize("hexstr", [V2[:-4], "C8", "C0 01", "C4 01 C1 00 06 0000"])
def test_malformed_apdu(capsys: pytest.CaptureFixture[str], hexstr: str) -> None:
    code, out, err = _run(capsys, hexstr)
    assert code == Exit.DECODE and out == "" and err.count("\n") == 1


def test_wrong_key_is_security_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kf = _keyfile(tmp_path, f'[dlms]\nek = "{EK}"\nak = "{BK}"\nsystem_title = "{SERVER_ST}"\n')
    code, out, err = _run(capsys, V2, "--keys", kf)
    assert code == Exit.SECURITY and out == "" and err.count("\n") == 1
    assert "does not verify" in err
    _no_secrets(out, err)


@pytest.mark.parametrize(
    "body,needle",
    [
        (f'[dlms]\nek = "{EK[:-2]}"\nak = "{AK}"\n', "[dlms] ek: must be 16 bytes"),
        (f'[dlms]\nek = "{EK}"\n', "[dlms] ak: missing"),
        (f'[dlms]\nek = "{EK}"\nak = {AK}\n', "not valid TOML"),
        ('[osgp]\nx = "1"\n', "no [dlms] table"),
    ],
)
def test_bad_key_file_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, needle: str
) -> None:
    code, out, err = _run(capsys, V2, "--keys", _keyfile(tmp_path, body))
    assert code == Exit.KEYFILE == 4
    assert out == "" and err.count("\n") == 1 and needle in err
    _no_secrets(out, err)
    assert EK[:-2].lower() not in err.lower()


def test_missing_key_file_exit_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _run(capsys, V2, "--keys", str(tmp_path / "nope.toml"))
    assert code == Exit.KEYFILE and "no such key file" in err


def test_world_readable_key_file_warns_but_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.warns(KeyFileWarning):
        code, out, _ = _run(capsys, V2, "--keys", _keyfile(tmp_path, mode=0o644), "--json")
    assert code == 0 and json.loads(out)["inner"]["verified"] is True


def test_keys_are_not_accepted_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ei:
        main(["apdu", V2, "--ek", EK])
    assert ei.value.code == Exit.USAGE
    capsys.readouterr()


def test_parse_hex_forms() -> None:
    assert parse_hex("0xC0 01:02-03_04") == bytes.fromhex("C001020304")
    assert parse_hex(["c0", "01"]) == b"\xc0\x01"
    with pytest.raises(DecodeError) as ei:
        parse_hex("C0 0")
    assert ei.value.field == "hex"


def test_real_process_exit_codes(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "dlms14908.analyzer.cli", "apdu"]
    ok = subprocess.run(
        [*cmd, V2, "--keys", _keyfile(tmp_path)],
        check=False, capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert ok.returncode == 0 and "glo-get-request" in ok.stdout, ok.stderr
    bad = subprocess.run([*cmd, "C8 1G"], check=False, capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == Exit.DECODE and bad.stdout == "" and len(bad.stderr.splitlines()) == 1


def test_tree_keeps_long_hex_whole_and_hides_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kf = _keyfile(tmp_path, f'[dlms]\nek = "{EK}"\nak = "{AK}"\n')
    code, out, err = _run(capsys, A4, "--keys", kf)
    assert code == 0, err
    assert "41DB204D39EE6FDB8E356855" in out  # the whole ciphertext + tag on one line
    assert "initiate-request" in out and "mechanism_name: low (1)" in out
    assert "12345678" not in out and "3132333435363738" not in out
    assert "00112233445566778899AABBCCDDEEFF" not in out.upper()
    _no_secrets(out, err)


@given(st.binary(max_size=64))
@settings(max_examples=200)
def test_random_bytes_raise_only_our_errors(data: bytes) -> None:
    from rich.console import Console

    from dlms14908.analyzer.apdu_cmd import analyze, render_tree
    from dlms14908.errors import ProtocolError
    from dlms14908.keyfile import parse_keyfile

    dlms = parse_keyfile(
        f'[dlms]\nek = "{EK}"\nak = "{AK}"\nbk = "{BK}"\nsystem_title = "{SERVER_ST}"\n'
    ).dlms
    for blob in (data, b"\xc8" + data, b"\xdb\x08" + data, b"\x60" + data):
        for keys in (None, dlms):
            try:
                report = analyze(blob, dlms=keys)
            except ProtocolError:
                continue
            json.dumps(report)
            Console(file=io.StringIO(), width=1000).print(render_tree(report))


def test_rlre_picks_the_server_system_title_by_direction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # dlms-vectors.md R4: RLRE carrying glo-initiate-response V7 (sent by the server)
    r4 = "6328800100BE230421" + GCM["V7"]["ciphered"]
    kf = _keyfile(
        tmp_path,
        f'[dlms]\nek = "{EK}"\nak = "{AK}"\nclient_system_title = "4D4D4D0000000001"\n'
        f'server_system_title = "{SERVER_ST}"\n',
    )
    code, out, err = _run(capsys, r4, "--keys", kf, "--json")
    assert code == 0, err
    (nested,) = json.loads(out)["ciphered"]
    assert nested["security"]["sender_system_title"] == SERVER_ST
    assert nested["inner"]["plaintext"] == GCM["V7"]["plaintext"]
    assert "initiate-response" in json.dumps(nested["inner"]["apdu"])


# An association secret written by SET (Association LN attribute 7) or ACTION
# (change_HLS_secret) is a password/key in clear: hidden like the LLS password.
_PW = "5365637265745057"  # "SecretPW"
_SECRET_SET = "C101C1000F0000280000FF0700" + "0908" + _PW
_SECRET_ACTION = "C301C1000F0000280000FF020109" + "08" + _PW
_SECRET_SET_LIST = (
    "C104C102" + "0001" + "00002A0000FF" + "0200" + "000F" + "0000280000FF" + "0700"
    + "02" + "0A024142" + "0908" + _PW
)
_PLAIN_SET = "C101C100010000600100FF0200" + "0908" + _PW  # Data 0.0.96.1.0.255: not secret


@pytest.mark.parametrize("hexstr", [_SECRET_SET, _SECRET_ACTION, _SECRET_SET_LIST])
def test_association_secret_writes_are_redacted(
    capsys: pytest.CaptureFixture[str], hexstr: str
) -> None:
    for extra in ((), ("--json",)):
        code, out, err = _run(capsys, hexstr, *extra)
        assert code == 0, err
        assert _PW.lower() not in out.lower() and "SecretPW" not in out
        assert "<redacted secret>" in out
    # the other item of a with-list request stays visible
    if hexstr == _SECRET_SET_LIST:
        assert "AB" in out


def test_non_secret_set_value_is_shown(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, _PLAIN_SET, "--json")
    assert code == 0 and _PW.lower() in out.lower() and "redacted" not in out


def test_ciphered_secret_write_withholds_plaintext(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dlms14908.xdlms.ciphering import SecurityKeys, protect

    keys = SecurityKeys(bytes.fromhex(EK), bytes.fromhex(AK))
    ciphered = protect(
        bytes.fromhex(_SECRET_SET),
        keys=keys,
        system_title=bytes.fromhex("4D4D4D0000000001"),
        invocation_counter=7,
        security_control=0x30,
        kind="glo",
    )
    code, out, err = _run(
        capsys, ciphered.hex(), "--keys", _keyfile(tmp_path), "--system-title",
        "4D4D4D0000000001", "--json",
    )
    assert code == 0, err
    inner = json.loads(out)["inner"]
    assert inner["verified"] is True and "withheld" in inner["plaintext"]
    assert _PW.lower() not in out.lower()
    _no_secrets(out)
