"""The oracle harness itself (tools/oracle/harness.py): worker lifecycle, error reporting,
isolation of the GPL-2 / BSL-1.1 oracles, and the one place where representations are
normalized (``project`` / ``BLIND_FIELDS``)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_oracle_data import dlmscosem, gurux  # noqa: F401  (shared session workers)
from tools.oracle.harness import (
    BLIND_FIELDS,
    OracleDied,
    OracleError,
    OracleUnsupported,
    OracleWorker,
    encode_norm,
    project,
)

pytestmark = pytest.mark.oracle


def test_unknown_oracle_name() -> None:
    with pytest.raises(ValueError):
        OracleWorker("jdlms")


@pytest.mark.parametrize("name", ["gurux", "dlmscosem"])
def test_workers_never_load_project_code(request: pytest.FixtureRequest, name: str) -> None:
    w: OracleWorker = request.getfixturevalue(name)
    mods = w.call("modules")
    assert any(m.startswith({"gurux": "gurux_dlms", "dlmscosem": "dlms_cosem"}[name]) for m in mods)
    leaked = [m for m in mods if m.split(".")[0] in ("dlms14908", "osgp", "tools", "tests")]
    assert leaked == []


@pytest.mark.parametrize("name", ["gurux", "dlmscosem"])
def test_errors_and_unsupported_are_reported_not_fatal(
    request: pytest.FixtureRequest, name: str
) -> None:
    w: OracleWorker = request.getfixturevalue(name)
    with pytest.raises(OracleUnsupported):
        w.call("no-such-op")
    with pytest.raises(OracleError) as exc:
        w.call("decode_data", hex="06000013")  # truncated double-long-unsigned
    assert not isinstance(exc.value, OracleUnsupported)
    assert exc.value.reply.get("kind") == "error"
    # the worker survives and keeps answering in order
    assert w.call("decode_data", hex="0600001391") == {
        "type": "double-long-unsigned",
        "value": 5009,
    }
    assert w.request({"op": "ping"})["result"] == "pong"


def test_dead_worker_is_detected() -> None:
    w = OracleWorker("gurux", python="/bin/false", timeout=5)
    with pytest.raises(OracleDied):
        w.start()
    w.close()


def test_project_removes_only_listed_fields() -> None:
    n: dict[str, Any] = {
        "apdu": "aarq",
        "application_context_name": 1,
        "ap_title": None,
        "mechanism_name": None,
        "authentication_value": None,
        "user_information": {
            "initiate-request": {
                "dedicated_key": None,
                "response_allowed": False,
                "proposed_quality_of_service": 3,
                "proposed_dlms_version_number": 6,
                "proposed_conformance": 0xFFFFFF,
                "client_max_receive_pdu_size": 1200,
            }
        },
    }
    g = project("gurux", n)["user_information"]["initiate-request"]
    assert "response_allowed" not in g and "proposed_quality_of_service" not in g
    assert g["proposed_conformance"] == 0xFFFFFF and g["client_max_receive_pdu_size"] == 1200
    c = project("dlmscosem", n)["user_information"]["initiate-request"]
    # only the low 16 bits and of those only the LN ones survive for dlms-cosem's InitiateRequest
    assert c["proposed_conformance"] == 0x00FFFF & ~0x000120
    assert c["response_allowed"] is False
    # the input is not modified
    assert n["user_information"]["initiate-request"]["proposed_quality_of_service"] == 3


def test_every_blind_field_has_a_reason() -> None:
    for key, fields in BLIND_FIELDS.items():
        for path, why in fields.items():
            assert why.strip(), (key, path)


def test_encode_norm_matches_green_book_layouts() -> None:
    # dlms-vectors.md G4 data, a long length (0x81 prefix) and a bit-string's bit count
    assert encode_norm({"type": "double-long-unsigned", "value": 5009}).hex() == "0600001391"
    assert encode_norm({"type": "octet-string", "value": "00" * 130})[:3] == b"\x09\x81\x82"
    assert encode_norm({"type": "bit-string", "value": "101"}).hex() == "0403a0"
