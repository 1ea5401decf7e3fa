"""The CLI boundary: one line on stderr, a distinct exit code per failure class."""

from __future__ import annotations

import pytest

from dlms14908.cli.common import Exit, KeyFileError, PortError, exit_code_for, run_guarded
from dlms14908.errors import (
    AuthenticationFailed,
    CrcError,
    DecodeError,
    DlmsTimeout,
    ProtocolError,
    ProxyError,
    TransactionFailed,
)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (KeyFileError("[dlms] ek: not 16 bytes"), Exit.KEYFILE),
        (PortError("cannot open /dev/ttyUSB9"), Exit.PORT),
        (CrcError("mismatch", field="crc"), Exit.FINDINGS),
        (DecodeError("too short", field="tag"), Exit.DECODE),
        (DlmsTimeout("no answer"), Exit.TIMEOUT),
        (TransactionFailed("retries exhausted"), Exit.TIMEOUT),
        (ProxyError("no response", hop=1), Exit.PROXY),
        (AuthenticationFailed("bad tag"), Exit.SECURITY),
        (ProtocolError("other"), Exit.PROTOCOL),
        (ConnectionRefusedError("refused"), Exit.PORT),
        (ZeroDivisionError("bug"), Exit.INTERNAL),
    ],
)
def test_exit_codes_are_distinct_per_class(exc: BaseException, code: Exit) -> None:
    assert exit_code_for(exc) is code


def test_run_guarded_prints_one_line_and_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    def boom() -> int:
        raise DecodeError("length 300 exceeds remaining 2 bytes", field="octet-string.length", offset=7)

    assert run_guarded("dlms-analyze", boom) == Exit.DECODE
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert err == "dlms-analyze: error: octet-string.length (at byte 7): length 300 exceeds remaining 2 bytes\n"


def test_run_guarded_passes_success_through() -> None:
    assert run_guarded("x", lambda: 0) == 0


def test_proxy_error_names_hop() -> None:
    assert str(ProxyError("no response from target", hop=2)) == "hop 2: no response from target"
    assert ProxyError("x", hop=2).hop == 2


def test_decode_error_is_a_value_error_and_protocol_error() -> None:
    e = DecodeError("bad", field="npdu.version")
    assert isinstance(e, ValueError) and isinstance(e, ProtocolError)
    assert e.field == "npdu.version" and str(e) == "npdu.version: bad"
