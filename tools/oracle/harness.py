"""Differential-testing harness: long-lived oracle workers over JSON lines.

gurux-dlms (GPL-2) and dlms-cosem (BSL-1.1) run only as separate processes from
the oracle venv (``tools/oracle/venv.py``); this module starts them, sends
requests and reads answers.  It never imports an oracle.

    with OracleWorker("gurux") as g:
        g.call("decode_data", hex="0600001391")
        # -> {"type": "double-long-unsigned", "value": 5009}

Operations (both workers unless noted): ``decode_data {hex}``,
``encode_data {value}``, ``decode_apdu {hex}``, ``encode_apdu {apdu}``
(dlms-cosem), ``caps`` (dlms-cosem), ``xml {hex}`` (gurux), ``ping``.

The normalized representation ("norm") is specified in ``shared_worker.py``
for Data; APDUs are ``{"apdu": name, ...}`` with, per name:

- get-request-normal: invoke_id_and_priority, descriptor {class_id, instance_id
  (hex), attribute_id}, access_selection (None | {selector, parameters: norm})
- get-request-next: invoke_id_and_priority, block_number
- get-request-with-list: invoke_id_and_priority, items [{descriptor, access_selection}]
- get-response-normal: invoke_id_and_priority, result ({data: norm} | {error: int})
- get-response-with-list: invoke_id_and_priority, results [result]
- get-response-with-datablock: invoke_id_and_priority, last_block, block_number,
  result ({raw_data: hex} | {error: int})
- set-request-normal: invoke_id_and_priority, descriptor, access_selection, value
- set-request-with-list: invoke_id_and_priority, items, values [norm]
- set-response-normal: invoke_id_and_priority, result (int)
- set-response-with-list: invoke_id_and_priority, results [int]
- action-request-normal: invoke_id_and_priority, descriptor {class_id,
  instance_id, method_id}, parameters (None | norm)
- action-response-normal: invoke_id_and_priority, result (int), return
  (None | {data: norm} | {error: int})
- aarq / aare: application_context_name (last arc, 1..4), ap_title (hex|None),
  mechanism_name (last arc|None), authentication_value (hex|None),
  user_information (None | {initiate-request: {...}} | {initiate-response: {...}}
  | {confirmed-service-error: {service, error_type, error}} | {ciphered: {tag, body
  (hex of security control, invocation counter, ciphertext)}}); aare adds result,
  result_source_diagnostic {acse-service-user|acse-service-provider: int}
- rlrq / rlre: reason (int|None), user_information
- read-request: variables [{variable_name}]; write-request: variables, values [norm]
- read-response: results [result]; write-response: results [int, 0 = success]
- data-notification: long_invoke_id_and_priority, date_time (hex of 12 octets | None), body
- exception-response: state_error, service_error (not invocation-counter-error)

Fields an oracle cannot observe are listed once, with the reason, in
``BLIND_FIELDS``; :func:`project` removes them from both sides before comparing.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Self

from . import venv as _venv
from .shared_worker import COSEM_CONFORMANCE_MASK, INT_TYPES, NAME_TAGS, TAG_NAMES, norm

HERE = Path(__file__).resolve().parent

WORKERS = {"gurux": "gurux_worker.py", "dlmscosem": "dlmscosem_worker.py"}


class OracleError(Exception):
    """The oracle failed on a request (its own exception, reported by the worker)."""

    def __init__(self, message: str, reply: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reply = reply or {}


class OracleUnsupported(OracleError):
    """The oracle has no implementation for this input (kind=unsupported)."""


class OracleDied(OracleError):
    """The worker process exited or stopped answering."""


def available() -> bool:
    """True when the oracle venv exists with the pinned packages."""
    return _venv.is_ready()


class OracleWorker:
    """One long-lived worker process of one oracle, answering JSON-line requests."""

    def __init__(
        self, name: str, *, python: str | os.PathLike[str] | None = None, timeout: float = 60.0
    ) -> None:
        if name not in WORKERS:
            raise ValueError(f"unknown oracle {name!r}; choose from {sorted(WORKERS)}")
        self.name = name
        self.python = str(python or _venv.venv_python())
        self.timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None
        self._buf = b""
        self._next_id = 0

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> Self:
        if self._proc is not None:
            return self
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - the worker's stderr, closed by close()
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONIOENCODING="utf-8")
        env.pop("PYTHONPATH", None)  # nothing of ours may leak into the oracle process
        self._proc = subprocess.Popen(
            [self.python, "-u", str(HERE / WORKERS[self.name])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=str(HERE),
            env=env,
        )
        if self.request({"op": "ping"}).get("result") != "pong":
            raise OracleDied(f"{self.name}: worker did not answer ping")
        return self

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin:
                proc.stdin.write(b'{"op": "quit"}\n')
                proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):  # a dead pipe, or a worker that will not quit
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests --------------------------------------------------------------
    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read()[-2000:].decode("utf-8", "replace")

    def _readline(self) -> bytes:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise OracleDied(f"{self.name}: no answer within {self.timeout}s")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise OracleDied(f"{self.name}: worker exited; stderr:\n{self._stderr_tail()}")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def request(self, req: dict[str, Any]) -> dict[str, Any]:
        """Send one request, return the worker's reply dict (``ok``, ``result`` / ``error``)."""
        if self._proc is None:
            self.start()
        assert self._proc is not None and self._proc.stdin is not None
        self._next_id += 1
        req = dict(req, id=self._next_id)
        try:
            self._proc.stdin.write(json.dumps(req).encode() + b"\n")
            self._proc.stdin.flush()
        except BrokenPipeError as exc:
            raise OracleDied(f"{self.name}: worker gone; stderr:\n{self._stderr_tail()}") from exc
        reply = json.loads(self._readline())
        if reply.get("id") != req["id"]:
            raise OracleDied(f"{self.name}: answer out of order: {reply!r}")
        return reply

    def call(self, op: str, **kw: Any) -> Any:
        """Request ``op`` and return its result; raise OracleUnsupported / OracleError."""
        reply = self.request(dict(kw, op=op))
        if reply.get("ok"):
            return reply["result"]
        msg = f"{self.name} {op}: {reply.get('error')}"
        if reply.get("kind") == "unsupported":
            raise OracleUnsupported(msg, reply)
        raise OracleError(msg, reply)


# ----------------------------------------------------------------------------- our side


def ours_data_norm(value: Any) -> dict[str, Any]:
    """Normalize a typed value of ``dlms14908.axdr`` (CONTRACTS.md) to norm."""
    from dlms14908 import axdr

    if value is None:
        return norm("null-data", None)
    if value is axdr.DONT_CARE or isinstance(value, axdr.DontCare):
        return norm("dont-care", None)
    if isinstance(value, bool):
        return norm("boolean", value)
    for cls, name in _ours_int_types(axdr):
        if isinstance(value, cls):
            v = int(value)
            if name == "bcd":
                v &= 0xFF
            return norm(name, v)
    if isinstance(value, axdr.Float32):
        import struct

        return norm("float32", struct.pack(">f", float(value)).hex().upper())
    if isinstance(value, axdr.Float64):
        import struct

        return norm("float64", struct.pack(">d", float(value)).hex().upper())
    if isinstance(value, axdr.BitString):
        return norm("bit-string", value.bits)
    if isinstance(value, axdr.DateTime):
        return norm("date-time", bytes(value.to_bytes()).hex().upper())
    if isinstance(value, axdr.Date):
        return norm("date", bytes(value.to_bytes()).hex().upper())
    if isinstance(value, axdr.Time):
        return norm("time", bytes(value.to_bytes()).hex().upper())
    if isinstance(value, axdr.OctetString):
        return norm("octet-string", bytes(value).hex().upper())
    if isinstance(value, axdr.VisibleString):
        return norm("visible-string", str(value))
    if isinstance(value, axdr.Utf8String):
        return norm("utf8-string", str(value))
    if isinstance(value, axdr.Structure):
        return norm("structure", [ours_data_norm(x) for x in value])
    if isinstance(value, axdr.Array):
        return norm("array", [ours_data_norm(x) for x in value])
    if isinstance(value, axdr.CompactArray):
        raise TypeError("compact-array has no norm (neither oracle decodes it usably)")
    if isinstance(value, bytes):
        return norm("octet-string", value.hex().upper())
    if isinstance(value, str):
        return norm("visible-string", value)
    raise TypeError(f"no norm for {type(value).__name__}")


def _ours_int_types(axdr: Any) -> list[tuple[Any, str]]:
    names = {
        "Integer": "integer",
        "Long": "long",
        "DoubleLong": "double-long",
        "Long64": "long64",
        "Unsigned": "unsigned",
        "LongUnsigned": "long-unsigned",
        "DoubleLongUnsigned": "double-long-unsigned",
        "Long64Unsigned": "long64-unsigned",
        "Enum": "enum",
        "Bcd": "bcd",
    }
    return [(getattr(axdr, k), v) for k, v in names.items()]


def ours_data_from_norm(n: dict[str, Any]) -> Any:
    """Build our typed value from norm (the inverse of :func:`ours_data_norm`)."""
    from dlms14908 import axdr

    t: str = n["type"]
    v: Any = n.get("value")
    if t == "null-data":
        return None
    if t == "dont-care":
        return axdr.DONT_CARE
    if t == "boolean":
        return bool(v)
    if t in INT_TYPES:
        cls = {name: c for c, name in _ours_int_types(axdr)}[t]
        return cls(v)
    if t in ("float32", "float64"):
        import struct

        fmt = ">f" if t == "float32" else ">d"
        return (axdr.Float32 if t == "float32" else axdr.Float64)(
            struct.unpack(fmt, bytes.fromhex(v))[0]
        )
    if t == "bit-string":
        return axdr.BitString(v)
    if t == "octet-string":
        return axdr.OctetString(bytes.fromhex(v))
    if t == "visible-string":
        return axdr.VisibleString(v)
    if t == "utf8-string":
        return axdr.Utf8String(v)
    if t == "date-time":
        return axdr.DateTime.from_bytes(bytes.fromhex(v))
    if t == "date":
        return axdr.Date.from_bytes(bytes.fromhex(v))
    if t == "time":
        return axdr.Time.from_bytes(bytes.fromhex(v))
    if t == "array":
        return axdr.Array([ours_data_from_norm(x) for x in v])
    if t == "structure":
        return axdr.Structure([ours_data_from_norm(x) for x in v])
    raise TypeError(f"cannot build {t}")


def encode_norm(n: dict[str, Any]) -> bytes:
    """Reference A-XDR encoding of a norm, for generating inputs only (tag, length, content).

    Used to hand oracles the *same* bytes in the benchmark and in vector checks;
    correctness of our codec is never judged against this function alone.
    """
    t: str = n["type"]
    v: Any = n.get("value")
    tag = bytes([NAME_TAGS[t]])

    def length(k: int) -> bytes:
        if k < 0x80:
            return bytes([k])
        b = k.to_bytes((k.bit_length() + 7) // 8, "big")
        return bytes([0x80 | len(b)]) + b

    if t in ("null-data", "dont-care"):
        return tag
    if t == "boolean":
        return tag + (b"\x01" if v else b"\x00")
    if t in INT_TYPES:
        size, signed = INT_TYPES[t]
        return tag + int(v).to_bytes(size, "big", signed=signed)
    if t in ("float32", "float64", "date-time", "date", "time"):
        return tag + bytes.fromhex(v)
    if t == "bit-string":
        nbits = len(v)
        padded = v + "0" * (-nbits % 8)
        body = int(padded, 2).to_bytes(len(padded) // 8, "big") if padded else b""
        return tag + length(nbits) + body
    if t == "octet-string":
        body = bytes.fromhex(v)
        return tag + length(len(body)) + body
    if t in ("visible-string", "utf8-string"):
        body = v.encode("ascii" if t == "visible-string" else "utf-8")
        return tag + length(len(body)) + body
    if t in ("array", "structure"):
        return tag + length(len(v)) + b"".join(encode_norm(x) for x in v)
    raise TypeError(f"cannot encode {t}")  # pragma: no cover


# ----------------------------------------------------------------------------- our APDUs


def _x() -> Any:
    from dlms14908 import acse, xdlms
    from dlms14908.obis import Obis

    return xdlms, acse, Obis


def _ours_access_norm(sel: Any) -> dict[str, Any] | None:
    if sel is None:
        return None
    from dlms14908 import axdr

    raw = sel.to_bytes()  # selector + parameters, whichever typed descriptor it is
    return {"selector": raw[0], "parameters": ours_data_norm(axdr.decode_all(raw[1:]))}


def _ours_result_norm(r: Any) -> dict[str, Any]:
    xdlms, _, _ = _x()
    if isinstance(r, xdlms.DataAccessResult):
        return {"error": int(r)}
    return {"data": ours_data_norm(r)}


def _ours_ui_norm(ui: Any) -> dict[str, Any] | None:
    xdlms, _, _ = _x()
    if ui is None:
        return None
    if isinstance(ui, xdlms.InitiateRequest):
        return {
            "initiate-request": {
                "dedicated_key": ui.dedicated_key.hex().upper()
                if ui.dedicated_key is not None
                else None,
                "response_allowed": bool(ui.response_allowed),
                "proposed_quality_of_service": ui.proposed_quality_of_service,
                "proposed_dlms_version_number": ui.proposed_dlms_version_number,
                "proposed_conformance": int(ui.proposed_conformance),
                "client_max_receive_pdu_size": ui.client_max_receive_pdu_size,
            }
        }
    if isinstance(ui, xdlms.InitiateResponse):
        return {
            "initiate-response": {
                "negotiated_quality_of_service": ui.negotiated_quality_of_service,
                "negotiated_dlms_version_number": ui.negotiated_dlms_version_number,
                "negotiated_conformance": int(ui.negotiated_conformance),
                "server_max_receive_pdu_size": ui.server_max_receive_pdu_size,
                "vaa_name": ui.vaa_name,
            }
        }
    if isinstance(ui, xdlms.CipheredApdu):
        if ui.system_title is not None:
            raise TypeError("general-ciphering user-information has no norm")
        body = (
            bytes((ui.security_control,)) + ui.invocation_counter.to_bytes(4, "big") + ui.ciphertext
        )
        return {"ciphered": {"tag": ui.tag, "body": body.hex().upper()}}
    if isinstance(ui, xdlms.ConfirmedServiceError):
        return {
            "confirmed-service-error": {
                "service": int(ui.service),
                "error_type": int(ui.error_type),
                "error": int(ui.value),
            }
        }
    raise TypeError(f"no norm for user-information {type(ui).__name__}")


def ours_apdu_norm(apdu: Any) -> dict[str, Any]:
    """Normalize an APDU object of ``dlms14908.xdlms`` / ``dlms14908.acse`` (see module doc)."""
    xdlms, acse, _ = _x()

    def desc(d: Any, member: str) -> dict[str, Any]:
        return {
            "class_id": d.class_id,
            "instance_id": bytes(d.instance_id).hex().upper(),
            member: getattr(d, member),
        }

    iip = getattr(apdu, "invoke_id_and_priority", None)
    if isinstance(apdu, xdlms.GetRequestNormal):
        return {
            "apdu": "get-request-normal",
            "invoke_id_and_priority": iip,
            "descriptor": desc(apdu.attribute, "attribute_id"),
            "access_selection": _ours_access_norm(apdu.access_selection),
        }
    if isinstance(apdu, xdlms.GetRequestNext):
        return {
            "apdu": "get-request-next",
            "invoke_id_and_priority": iip,
            "block_number": apdu.block_number,
        }
    if isinstance(apdu, xdlms.GetRequestWithList):
        return {
            "apdu": "get-request-with-list",
            "invoke_id_and_priority": iip,
            "items": [
                {
                    "descriptor": desc(a.attribute, "attribute_id"),
                    "access_selection": _ours_access_norm(a.access_selection),
                }
                for a in apdu.attributes
            ],
        }
    if isinstance(apdu, xdlms.GetResponseNormal):
        return {
            "apdu": "get-response-normal",
            "invoke_id_and_priority": iip,
            "result": _ours_result_norm(apdu.result),
        }
    if isinstance(apdu, xdlms.GetResponseWithList):
        return {
            "apdu": "get-response-with-list",
            "invoke_id_and_priority": iip,
            "results": [_ours_result_norm(r) for r in apdu.results],
        }
    if isinstance(apdu, xdlms.GetResponseWithDatablock):
        return {
            "apdu": "get-response-with-datablock",
            "invoke_id_and_priority": iip,
            "last_block": bool(apdu.last_block),
            "block_number": apdu.block_number,
            "result": {"error": int(apdu.error)}
            if apdu.error is not None
            else {"raw_data": bytes(apdu.raw_data).hex().upper()},
        }
    if isinstance(apdu, xdlms.SetRequestNormal):
        return {
            "apdu": "set-request-normal",
            "invoke_id_and_priority": iip,
            "descriptor": desc(apdu.attribute, "attribute_id"),
            "access_selection": _ours_access_norm(apdu.access_selection),
            "value": ours_data_norm(apdu.value),
        }
    if isinstance(apdu, xdlms.SetRequestWithList):
        return {
            "apdu": "set-request-with-list",
            "invoke_id_and_priority": iip,
            "items": [
                {
                    "descriptor": desc(a.attribute, "attribute_id"),
                    "access_selection": _ours_access_norm(a.access_selection),
                }
                for a in apdu.attributes
            ],
            "values": [ours_data_norm(v) for v in apdu.values],
        }
    if isinstance(apdu, xdlms.SetResponseNormal):
        return {
            "apdu": "set-response-normal",
            "invoke_id_and_priority": iip,
            "result": int(apdu.result),
        }
    if isinstance(apdu, xdlms.SetResponseWithList):
        return {
            "apdu": "set-response-with-list",
            "invoke_id_and_priority": iip,
            "results": [int(r) for r in apdu.results],
        }
    if isinstance(apdu, xdlms.ActionRequestNormal):
        return {
            "apdu": "action-request-normal",
            "invoke_id_and_priority": iip,
            "descriptor": desc(apdu.method, "method_id"),
            "parameters": None
            if apdu.parameters is xdlms.ABSENT
            else ours_data_norm(apdu.parameters),
        }
    if isinstance(apdu, xdlms.ActionResponseNormal):
        rp = apdu.return_parameters
        return {
            "apdu": "action-response-normal",
            "invoke_id_and_priority": iip,
            "result": int(apdu.result),
            "return": None if rp is xdlms.ABSENT else _ours_result_norm(rp),
        }
    if isinstance(apdu, (xdlms.ReadRequest, xdlms.WriteRequest)):
        sn: dict[str, Any] = {
            "apdu": "read-request" if isinstance(apdu, xdlms.ReadRequest) else "write-request",
            "variables": [_ours_sn_var(v) for v in apdu.variables],
        }
        if isinstance(apdu, xdlms.WriteRequest):
            sn["values"] = [ours_data_norm(v) for v in apdu.values]
        return sn
    if isinstance(apdu, xdlms.ReadResponse):
        return {"apdu": "read-response", "results": [_ours_result_norm(r) for r in apdu.results]}
    if isinstance(apdu, xdlms.WriteResponse):
        return {"apdu": "write-response", "results": [int(r) for r in apdu.results]}
    if isinstance(apdu, xdlms.DataNotification):
        return {
            "apdu": "data-notification",
            "long_invoke_id_and_priority": apdu.long_invoke_id_and_priority,
            "date_time": None
            if apdu.date_time is None
            else apdu.date_time.to_bytes().hex().upper(),
            "body": ours_data_norm(apdu.body),
        }
    if isinstance(apdu, xdlms.ExceptionResponse):
        if apdu.invocation_counter is not None:
            raise TypeError("invocation-counter-error has no norm")
        return {
            "apdu": "exception-response",
            "state_error": int(apdu.state_error),
            "service_error": int(apdu.service_error),
        }
    if isinstance(apdu, (acse.AARQ, acse.AARE)):
        req = isinstance(apdu, acse.AARQ)
        out: dict[str, Any] = {
            "apdu": "aarq" if req else "aare",
            "application_context_name": int(apdu.application_context_name),
            "ap_title": _hex_or_none(apdu.calling_ap_title if req else apdu.responding_ap_title),
            "mechanism_name": int(apdu.mechanism_name) if apdu.mechanism_name is not None else None,
            "authentication_value": _hex_or_none(
                apdu.calling_authentication_value if req else apdu.responding_authentication_value
            ),
        }
        if not req:
            which = (
                "acse-service-provider"
                if isinstance(apdu.diagnostic, acse.AcseServiceProviderDiagnostic)
                else "acse-service-user"
            )
            out["result"] = int(apdu.result)
            out["result_source_diagnostic"] = {which: int(apdu.diagnostic)}
        out["user_information"] = _ours_ui_norm(apdu.user_information)
        return out
    if isinstance(apdu, (acse.RLRQ, acse.RLRE)):
        return {
            "apdu": "rlrq" if isinstance(apdu, acse.RLRQ) else "rlre",
            "reason": int(apdu.reason) if apdu.reason is not None else None,
            "user_information": _ours_ui_norm(apdu.user_information),
        }
    raise TypeError(f"no norm for {type(apdu).__name__}")


def _ours_sn_var(v: Any) -> dict[str, Any]:
    xdlms, _, _ = _x()
    if not isinstance(v, xdlms.VariableName):
        raise TypeError(f"no norm for SN variable access {type(v).__name__}")
    return {"variable_name": v.name}


def _hex_or_none(b: bytes | None) -> str | None:
    return bytes(b).hex().upper() if b is not None else None


def ours_apdu_from_norm(n: dict[str, Any]) -> Any:
    """Build our APDU object from an APDU norm (inverse of :func:`ours_apdu_norm`)."""
    xdlms, acse, Obis = _x()

    def attr(d: dict[str, Any]) -> Any:
        return xdlms.AttributeDescriptor(
            d["class_id"], Obis.from_bytes(bytes.fromhex(d["instance_id"])), d["attribute_id"]
        )

    def meth(d: dict[str, Any]) -> Any:
        return xdlms.MethodDescriptor(
            d["class_id"], Obis.from_bytes(bytes.fromhex(d["instance_id"])), d["method_id"]
        )

    def acc(a: dict[str, Any] | None) -> Any:
        if a is None:
            return None
        return xdlms.AccessSelection(a["selector"], ours_data_from_norm(a["parameters"]))

    def res(r: dict[str, Any]) -> Any:
        return (
            xdlms.DataAccessResult(r["error"]) if "error" in r else ours_data_from_norm(r["data"])
        )

    def ui(u: dict[str, Any] | None) -> Any:
        if u is None:
            return None
        if "initiate-request" in u:
            r = u["initiate-request"]
            return xdlms.InitiateRequest(
                proposed_conformance=xdlms.Conformance(r["proposed_conformance"]),
                client_max_receive_pdu_size=r["client_max_receive_pdu_size"],
                proposed_dlms_version_number=r["proposed_dlms_version_number"],
                dedicated_key=bytes.fromhex(r["dedicated_key"]) if r["dedicated_key"] else None,
                response_allowed=r["response_allowed"],
                proposed_quality_of_service=r["proposed_quality_of_service"],
            )
        if "initiate-response" in u:
            r = u["initiate-response"]
            return xdlms.InitiateResponse(
                negotiated_conformance=xdlms.Conformance(r["negotiated_conformance"]),
                server_max_receive_pdu_size=r["server_max_receive_pdu_size"],
                negotiated_dlms_version_number=r["negotiated_dlms_version_number"],
                vaa_name=r["vaa_name"],
                negotiated_quality_of_service=r["negotiated_quality_of_service"],
            )
        if "ciphered" in u:
            c = u["ciphered"]
            body = bytes.fromhex(c["body"])
            return xdlms.CipheredApdu(c["tag"], body[0], int.from_bytes(body[1:5], "big"), body[5:])
        r = u["confirmed-service-error"]
        return xdlms.ConfirmedServiceError(
            xdlms.ConfirmedServiceErrorChoice(r["service"]),
            xdlms.ServiceErrorType(r["error_type"]),
            r["error"],
        )

    k = n["apdu"]
    iip = n.get("invoke_id_and_priority")
    if k == "get-request-normal":
        return xdlms.GetRequestNormal(iip, attr(n["descriptor"]), acc(n["access_selection"]))
    if k == "get-request-next":
        return xdlms.GetRequestNext(iip, n["block_number"])
    if k == "get-request-with-list":
        return xdlms.GetRequestWithList(
            iip,
            tuple(
                xdlms.AttributeDescriptorWithSelection(
                    attr(i["descriptor"]), acc(i["access_selection"])
                )
                for i in n["items"]
            ),
        )
    if k == "get-response-normal":
        return xdlms.GetResponseNormal(iip, res(n["result"]))
    if k == "get-response-with-list":
        return xdlms.GetResponseWithList(iip, tuple(res(r) for r in n["results"]))
    if k == "get-response-with-datablock":
        r = n["result"]
        return xdlms.GetResponseWithDatablock(
            iip,
            n["last_block"],
            n["block_number"],
            raw_data=bytes.fromhex(r.get("raw_data", "")),
            error=xdlms.DataAccessResult(r["error"]) if "error" in r else None,
        )
    if k == "set-request-normal":
        return xdlms.SetRequestNormal(
            iip, attr(n["descriptor"]), ours_data_from_norm(n["value"]), acc(n["access_selection"])
        )
    if k == "set-request-with-list":
        return xdlms.SetRequestWithList(
            iip,
            tuple(
                xdlms.AttributeDescriptorWithSelection(
                    attr(i["descriptor"]), acc(i["access_selection"])
                )
                for i in n["items"]
            ),
            tuple(ours_data_from_norm(v) for v in n["values"]),
        )
    if k == "set-response-normal":
        return xdlms.SetResponseNormal(iip, xdlms.DataAccessResult(n["result"]))
    if k == "set-response-with-list":
        return xdlms.SetResponseWithList(
            iip, tuple(xdlms.DataAccessResult(r) for r in n["results"])
        )
    if k == "action-request-normal":
        p = n["parameters"]
        return xdlms.ActionRequestNormal(
            iip, meth(n["descriptor"]), xdlms.ABSENT if p is None else ours_data_from_norm(p)
        )
    if k == "action-response-normal":
        r = n["return"]
        return xdlms.ActionResponseNormal(
            iip, xdlms.ActionResult(n["result"]), xdlms.ABSENT if r is None else res(r)
        )
    if k == "read-request":
        return xdlms.ReadRequest(
            tuple(xdlms.VariableName(v["variable_name"]) for v in n["variables"])
        )
    if k == "write-request":
        return xdlms.WriteRequest(
            tuple(xdlms.VariableName(v["variable_name"]) for v in n["variables"]),
            tuple(ours_data_from_norm(v) for v in n["values"]),
        )
    if k == "read-response":
        return xdlms.ReadResponse(tuple(res(r) for r in n["results"]))
    if k == "write-response":
        return xdlms.WriteResponse(tuple(xdlms.DataAccessResult(r) for r in n["results"]))
    if k == "data-notification":
        from dlms14908 import axdr

        dt = n["date_time"]
        return xdlms.DataNotification(
            n["long_invoke_id_and_priority"],
            ours_data_from_norm(n["body"]),
            None if dt is None else axdr.DateTime.from_bytes(bytes.fromhex(dt)),
        )
    if k == "exception-response":
        return xdlms.ExceptionResponse(
            xdlms.StateError(n["state_error"]), xdlms.ServiceErrorCode(n["service_error"])
        )
    if k == "aarq":
        return acse.AARQ(
            application_context_name=acse.ApplicationContextName(n["application_context_name"]),
            user_information=ui(n["user_information"]),
            sender_acse_requirements=n["mechanism_name"] is not None,
            mechanism_name=acse.MechanismName(n["mechanism_name"])
            if n["mechanism_name"] is not None
            else None,
            calling_authentication_value=bytes.fromhex(n["authentication_value"])
            if n["authentication_value"]
            else None,
            calling_ap_title=bytes.fromhex(n["ap_title"]) if n["ap_title"] else None,
        )
    if k == "aare":
        ((which, diag),) = n["result_source_diagnostic"].items()
        return acse.AARE(
            application_context_name=acse.ApplicationContextName(n["application_context_name"]),
            result=acse.AssociationResult(n["result"]),
            diagnostic=(
                acse.AcseServiceUserDiagnostic(diag)
                if which == "acse-service-user"
                else acse.AcseServiceProviderDiagnostic(diag)
            ),
            user_information=ui(n["user_information"]),
            responder_acse_requirements=n["mechanism_name"] is not None,
            mechanism_name=acse.MechanismName(n["mechanism_name"])
            if n["mechanism_name"] is not None
            else None,
            responding_authentication_value=bytes.fromhex(n["authentication_value"])
            if n["authentication_value"]
            else None,
            responding_ap_title=bytes.fromhex(n["ap_title"]) if n["ap_title"] else None,
        )
    if k == "rlrq":
        return acse.RLRQ(
            reason=acse.ReleaseRequestReason(n["reason"]) if n["reason"] is not None else None,
            user_information=ui(n["user_information"]),
        )
    if k == "rlre":
        return acse.RLRE(
            reason=acse.ReleaseResponseReason(n["reason"]) if n["reason"] is not None else None,
            user_information=ui(n["user_information"]),
        )
    raise TypeError(f"cannot build {k}")


# ----------------------------------------------------------------------------- comparison

CONFORMANCE_MASKS = {
    # dlms-anchors §5 #3: dlms-cosem's Conformance keeps only 17 LN bits
    "LN17": COSEM_CONFORMANCE_MASK,
    # dlms-cosem InitiateRequest.from_bytes hands Conformance.from_bytes 3 octets, which skips
    # its first one as the BIT STRING "unused bits" octet: the top 8 bits are lost
    "LN17LOW16": COSEM_CONFORMANCE_MASK & 0x00FFFF,
    # dlms-cosem (Long-)InvokeIdAndPriority keep no reserved bits (4-5 / 24-27)
    "IIP": 0xCF,
    "LIIP": 0xF0FFFFFF,
}

# Fields an oracle cannot observe, per (oracle, apdu).  Removed from BOTH sides by
# project(); every entry says why.
BLIND_FIELDS: dict[tuple[str, str], dict[str, str]] = {
    ("gurux", "aarq"): {
        "user_information.initiate-request.response_allowed":
            "gurux SIMPLE_XML never prints response-allowed (_GXAPDU.parseInitiate)",
        "user_information.initiate-request.proposed_quality_of_service":
            "gurux SIMPLE_XML prints the QoS *length*, not its value",
    },
    ("gurux", "rlrq"): {
        "user_information.initiate-request.response_allowed": "as for aarq",
        "user_information.initiate-request.proposed_quality_of_service": "as for aarq",
    },
    ("gurux", "aare"): {
        "user_information.initiate-response.negotiated_quality_of_service":
            "gurux skips the negotiated-QoS value of an InitiateResponse",
    },
    ("gurux", "rlre"): {
        "user_information.initiate-response.negotiated_quality_of_service": "as for aare",
    },
    ("dlmscosem", "*"): {
        "invoke_id_and_priority&IIP": "reserved bits 4-5 dropped by InvokeIdAndPriority",
        "long_invoke_id_and_priority&LIIP": "reserved bits 24-27 dropped by LongInvokeIdAndPriority",
        "access_selection.parameters": (
            "dlms-cosem parses range access into its RangeDescriptor model and re-encodes it "
            "lossily (hundredths and clock status of the datetimes are lost)"
        ),
        "items[].access_selection.parameters": "as above",
        "user_information.initiate-request.proposed_quality_of_service":
            "dlms-cosem reports 0 for an absent proposed-QoS",
        "user_information.initiate-response.negotiated_quality_of_service":
            "dlms-cosem reports 0 for an absent negotiated-QoS",
    },
    ("dlmscosem", "data-notification"): {
        "date_time": "dlms-cosem keeps the date-time as a datetime.datetime; presence is "
        "compared by the test instead",
    },
    ("dlmscosem", "aarq"): {
        # dlms-anchors §5 #3: Conformance keeps only the 17 LN bits (SN and reserved dropped).
        "user_information.initiate-request.proposed_conformance&LN17LOW16": "only the 17 LN bits kept (§5 #3)",
    },
    ("dlmscosem", "aare"): {
        "user_information.initiate-response.negotiated_conformance&LN17": "only the 17 LN bits kept (§5 #3)",
        "user_information.initiate-response.vaa_name": "dlms-cosem does not keep the VAA name (it asserts 0x0007)",
    },
    ("dlmscosem", "rlre"): {
        "user_information.initiate-response.negotiated_conformance&LN17": "only the 17 LN bits kept (§5 #3)",
        "user_information.initiate-response.vaa_name": "as for aare",
    },
    ("dlmscosem", "rlrq"): {
        "user_information.initiate-request.proposed_conformance&LN17LOW16": "only the 17 LN bits kept (§5 #3)",
    },
}


def project(oracle: str, n: dict[str, Any]) -> dict[str, Any]:
    """Copy of an APDU norm without the fields ``oracle`` cannot observe (BLIND_FIELDS).

    Paths are dotted; ``name[]`` walks every element of a list; a trailing ``&MASK``
    (a key of ``CONFORMANCE_MASKS``) keeps only those conformance bits instead of deleting
    the field.
    """
    out = json.loads(json.dumps(n))
    paths = list(BLIND_FIELDS.get((oracle, n.get("apdu", "")), {}))
    paths += list(BLIND_FIELDS.get((oracle, "*"), {}))
    for entry in paths:
        path, _, mask = entry.partition("&")
        _drop(out, path.split("."), CONFORMANCE_MASKS[mask] if mask else None)
    if oracle == "gurux":
        _gurux_strings(out)
    return out


def _gurux_strings(node: Any) -> None:
    """gurux prints a visible-/utf8-string as text only when every octet is 0 or 32..127
    (trailing NULs stripped), as spaced upper-case hex otherwise (``GXByteBuffer.getString``):
    put ours in the same form, so a string with control octets compares (idempotent, so it
    is applied to both sides)."""
    if isinstance(node, list):
        for x in node:
            _gurux_strings(x)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") in ("visible-string", "utf8-string") and isinstance(node.get("value"), str):
        v = node["value"]
        raw = v.encode("utf-8") if node["type"] == "utf8-string" else v.encode("latin-1", "replace")
        if all(b == 0 or 32 <= b <= 127 for b in raw):
            node["value"] = v.rstrip("\x00")
        else:
            node["value"] = " ".join(f"{b:02X}" for b in raw)
        return
    for x in node.values():
        _gurux_strings(x)


def _drop(node: Any, keys: list[str], mask: int | None) -> None:
    if not isinstance(node, dict) or not keys:
        return
    k = keys[0]
    if k.endswith("[]"):
        for item in node.get(k[:-2]) or []:
            _drop(item, keys[1:], mask)
        return
    if len(keys) > 1:
        _drop(node.get(k), keys[1:], mask)
        return
    if k not in node:
        return
    if mask is not None:
        node[k] &= mask
    else:
        del node[k]


__all__ = [
    "BLIND_FIELDS",
    "TAG_NAMES",
    "OracleDied",
    "OracleError",
    "OracleUnsupported",
    "OracleWorker",
    "available",
    "encode_norm",
    "ours_apdu_from_norm",
    "ours_apdu_norm",
    "ours_data_from_norm",
    "ours_data_norm",
    "project",
]
