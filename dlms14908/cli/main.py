"""``dlms-cli``: read, write and operate DLMS/COSEM meters over ISO/IEC 14908 (IEC 62056-8-8).

Global options (before or after the command): ``--port URL``, ``--meter ADDR``, ``--keys FILE``,
``--source ADDR``, ``--via CHAIN``, ``--capture FILE``, ``--client public|management``,
``--auth lls|hls``, ``--timeout S``, ``--json``.  Commands: ``read``, ``set``, ``action``, ``profile``,
``objects``, ``info``.  Keys only ever come from the TOML key file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import warnings
from collections.abc import Callable, Coroutine
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table

from .. import axdr
from ..aio_client import SCALER_ATTRIBUTE, Client, Measurement, resolve_class_id
from ..client import ClientSettings
from ..cosem import ScalerUnit, decode_attribute, get_class
from ..cosem.classes import UnknownClass
from ..errors import DecodeError, EncodeError
from ..keyfile import KeyFile, KeyFileWarning, load_keyfile
from ..obis import Obis
from ..profile import AL_MAX_APDU, SAP_MANAGEMENT_CLIENT, SAP_PUBLIC_CLIENT
from ..xdlms.ciphering import CipheringKind
from .common import KeyFileError, run_guarded
from .ports import SIM_NOTICE, MeterAddress, is_sim, open_link, parse_meter, parse_via

__all__ = ["DEFAULT_CLIENT_SYSTEM_TITLE", "build_parser", "main", "parse_value"]

PROG = "dlms-cli"
#: the client's system title when the key file names none ("DLC" + 5 bytes)
DEFAULT_CLIENT_SYSTEM_TITLE = b"DLC\x00\x00\x00\x00\x01"


# --------------------------------------------------------------------------- argument types


def _class_of(obis: Obis, class_id: int | None) -> int:
    """The interface class given with -c, or the usual one of ``obis``; a usage error when
    neither is known."""
    from ..errors import LocalProtocolError

    try:
        return resolve_class_id(obis, class_id)
    except LocalProtocolError:
        raise _UsageError(f"{obis}: unknown object, give its interface class with -c CLASS") from None


def _obis_arg(text: str) -> Obis:
    try:
        return Obis.parse(text)
    except DecodeError:
        raise argparse.ArgumentTypeError(f"not an OBIS code: {text!r} (e.g. 1-0:1.8.0.255)") from None


def _meter_arg(text: str) -> MeterAddress:
    try:
        return parse_meter(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _source_arg(text: str) -> MeterAddress:
    a = _meter_arg(text)
    if a.neuron_id is not None:
        raise argparse.ArgumentTypeError(f"{text!r}: give the head-end's address as subnet/node")
    return a


def _via_arg(text: str) -> tuple[MeterAddress, ...]:
    try:
        chain = parse_via(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if any(h.neuron_id is not None for h in chain):
        raise argparse.ArgumentTypeError(f"{text!r}: repeaters are given as subnet/node (e.g. 1/3,1/5)")
    if len(set(chain)) != len(chain):
        raise argparse.ArgumentTypeError(f"{text!r}: a repeater appears twice in the chain")
    return chain


def _entries_arg(text: str) -> tuple[int, int]:
    a, sep, b = text.partition(":")
    try:
        first, last = int(a), (int(b) if b else 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FIRST:LAST, got {text!r}") from None
    if not sep or first < 1 or last < 0 or (last and last < first):
        raise argparse.ArgumentTypeError(f"expected FIRST:LAST with 1 <= FIRST <= LAST, got {text!r}")
    return first, last


def _time_arg(text: str) -> datetime:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _pdu_size(text: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 12 <= v <= 0xFFFF:
        raise argparse.ArgumentTypeError("must be 12..65535")
    return v


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return v


_INT_TYPES: dict[str, type] = {
    "i8": axdr.Integer, "i16": axdr.Long, "i32": axdr.DoubleLong, "i64": axdr.Long64,
    "u8": axdr.Unsigned, "u16": axdr.LongUnsigned, "u32": axdr.DoubleLongUnsigned,
    "u64": axdr.Long64Unsigned, "enum": axdr.Enum,
}


def parse_value(text: str) -> Any:
    """A typed A-XDR value from ``TYPE:VALUE``: ``null``, ``bool:true``, ``i8``/``i16``/``i32``/
    ``i64``/``u8``/``u16``/``u32``/``u64``/``enum:N``, ``f32``/``f64:X``, ``octets:HEX``,
    ``str:TEXT``, ``utf8:TEXT``, ``bits:0101``, ``obis:1-0:1.8.0.255`` (octet-string),
    ``datetime:ISO`` (octet-string(12)).  ValueError with a clear message otherwise."""
    if text == "null":
        return None
    kind, sep, rest = text.partition(":")
    if not sep:
        raise ValueError(f"value {text!r}: expected TYPE:VALUE, e.g. u16:5 or octets:0102")
    kind = kind.lower()
    try:
        if kind in _INT_TYPES:
            return _INT_TYPES[kind](int(rest, 0))
        if kind == "bool":
            if rest.lower() not in ("true", "false", "1", "0"):
                raise ValueError("bool is true or false")
            return rest.lower() in ("true", "1")
        if kind == "f32":
            return axdr.Float32(float(rest))
        if kind == "f64":
            return axdr.Float64(float(rest))
        if kind == "octets":
            return axdr.OctetString(bytes.fromhex(rest.replace(" ", "")))
        if kind == "str":
            return axdr.VisibleString(rest)
        if kind == "utf8":
            return axdr.Utf8String(rest)
        if kind == "bits":
            return axdr.BitString(rest)
        if kind == "obis":
            return axdr.OctetString(bytes(Obis.parse(rest)))
        if kind == "datetime":
            dt = _time_arg(rest)
            return axdr.OctetString(axdr.DateTime.from_datetime(dt, hundredths=False).to_bytes())
    except (ValueError, EncodeError, DecodeError, argparse.ArgumentTypeError) as exc:
        raise ValueError(f"value {text!r}: {exc}") from None
    raise ValueError(f"value {text!r}: unknown type {kind!r} (i8..u64, enum, bool, f32, f64, octets, "
                     "str, utf8, bits, obis, datetime, null)")


# --------------------------------------------------------------------------- rendering


def _dt_text(v: axdr.DateTime) -> str:
    """ISO 8601 when fully specified (clock status appended when not 0), else the COSEM text."""
    try:
        text = v.to_datetime().isoformat(sep=" ", timespec="seconds")
    except DecodeError:
        return str(v)
    return text if not v.status else f"{text} status=0x{int(v.status):02X}"


def _enum_name(v: Enum) -> str:
    # a flag value no single member names (0, or unnamed bits) has no name on Python 3.11
    name: str | None = v.name
    return name.lower() if name is not None else str(v.value)


def render(v: Any) -> str:
    """Human text for a typed value."""
    if isinstance(v, Enum):
        return _enum_name(v)
    if isinstance(v, axdr.DateTime):
        return _dt_text(v)
    if isinstance(v, (Obis, ScalerUnit, axdr.Date, axdr.Time, Measurement)):
        return str(v)
    if isinstance(v, axdr.BitString):
        return v.bits
    if isinstance(v, (bytes, bytearray)):
        b = bytes(v)
        if b and all(32 <= c < 127 for c in b):
            return f"{b.hex().upper()} ({b.decode()!r})"
        return b.hex().upper()
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if is_dataclass(v) and not isinstance(v, type):
        return "{" + ", ".join(f"{f.name}={render(getattr(v, f.name))}" for f in fields(v)) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(render(x) for x in v) + "]"
    if isinstance(v, axdr.CompactArray):
        return "[" + ", ".join(render(x) for x in v.values) + "]"
    return str(v)


def jsonable(v: Any) -> Any:
    """A JSON view of a typed value (Data values as ``{"type", "value"}``)."""
    if isinstance(v, Enum):
        return {"name": _enum_name(v), "value": v.value}
    if isinstance(v, axdr.DateTime):
        return _dt_text(v)
    if isinstance(v, (Obis, axdr.Date, axdr.Time)):
        return str(v)
    if isinstance(v, ScalerUnit):
        return {"scaler": v.scaler, "unit": jsonable(v.unit) if isinstance(v.unit, Enum) else v.unit}
    if is_dataclass(v) and not isinstance(v, type):
        return {f.name: jsonable(getattr(v, f.name)) for f in fields(v)}
    if isinstance(v, list) and not isinstance(v, (axdr.Array, axdr.Structure)):
        return [jsonable(x) for x in v]
    try:
        return axdr.to_jsonable(v)
    except EncodeError:
        return str(v)


# --------------------------------------------------------------------------- parser


def _add_globals(p: argparse.ArgumentParser, *, sub: bool) -> None:
    d: Any = argparse.SUPPRESS if sub else None
    g = p.add_argument_group("connection")
    g.add_argument("--port", default=d if sub else "sim", metavar="URL",
                   help="cnip://HOST:PORT (CN/IP over UDP), /dev/ttyUSB0 or serial://DEV?kind=u61 "
                        "(transceiver), socket://HOST:PORT, rfc2217://HOST:PORT, or 'sim' = the "
                        "built-in simulated network (default; sim://?loss=0.1&seed=N&down=2/11 "
                        "for a lossy channel or switched-off nodes)")
    g.add_argument("--meter", type=_meter_arg, default=d if sub else MeterAddress(1, 7),
                   metavar="ADDR", help="subnet/node (e.g. 1/7) or 12-hex-digit Neuron ID (default 1/7)")
    g.add_argument("--keys", default=d, metavar="FILE",
                   help="TOML key file: [dlms] ek, ak, dk, lls_password, system titles; "
                        "[osgp] psk, nnap_id, [osgp.meters] NEURON_ID = PSK (turns on OSGP-AES-128-PSK)")
    g.add_argument("--source", type=_source_arg, default=d, metavar="ADDR",
                   help="this head-end's own subnet/node on a real port (default 1/126); give "
                        "head-ends sharing a channel distinct addresses")
    g.add_argument("--via", type=_via_arg, default=d, metavar="CHAIN",
                   help="Annex E repeater chain, first hop first (e.g. 1/3,1/5)")
    g.add_argument("--capture", default=d, metavar="FILE",
                   help="record every frame as pcap (LINKTYPE 252; tshark -r FILE opens it)")
    g.add_argument("--client", choices=("public", "management"), default=d if sub else "public",
                   help="public client (SAP 0x10, no security) or management client (SAP 0x01)")
    g.add_argument("--auth", choices=("lls", "hls"), default=d,
                   help="management authentication (default: hls when the key file has ek/ak)")
    g.add_argument("--timeout", type=_positive, default=d if sub else 10.0, metavar="S",
                   help="seconds to wait for each answer (default 10; with --via at least the "
                        "repeater chain's own retry time, so a failing hop is named)")
    g.add_argument("--max-pdu", type=_pdu_size, default=d if sub else AL_MAX_APDU, metavar="N",
                   help="largest xDLMS APDU the client accepts (default 65535: the adaptation layer "
                        "segments any APDU up to that size, so block transfer would only add frames)")
    g.add_argument("--json", action="store_true", default=d if sub else False,
                   help="machine-readable output")


_EPILOG = """\
examples:
  dlms-cli read 1-0:1.8.0.255                          (built-in simulated network)
  dlms-cli --port cnip://127.0.0.1:1628 --meter 1/7 --json read 0-0:1.0.0.255
  dlms-cli --port /dev/ttyUSB0 --meter 4/1 --via 2/10,3/10 --keys keys.toml \\
           --client management profile --from 2026-01-01T00:00 --to 2026-01-02T00:00
  dlms-cli --keys keys.toml --client management set 0-0:1.0.0.255 -a 3 i16:60
  dlms-cli --keys keys.toml --client management action 0-0:96.3.10.255 -m 1

exit codes:
  0 ok, 2 usage (bad OBIS, value, address), 3 undecodable answer, 4 key file,
  5 port cannot be opened, 6 timeout / meter did not answer, 7 repeater chain failed
  (the message names the hop), 8 authentication or decryption failed, 9 other protocol
  error (e.g. access denied by the meter), 70 internal error.
"""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error report (exit code 2, no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Read, write and operate DLMS/COSEM meters over ISO/IEC 14908 (IEC 62056-8-8). "
                    "Keys are read from --keys FILE only, never from the command line.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_globals(parser, sub=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def cmd(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        _add_globals(p, sub=True)
        return p

    p = cmd("read", "read one attribute (registers: value with scaler and unit)")
    p.add_argument("obis", type=_obis_arg, metavar="OBIS", help="logical name, e.g. 1-0:1.8.0.255")
    p.add_argument("-a", "--attr", type=int, default=2, help="attribute index (default 2)")
    p.add_argument("-c", "--class", dest="class_id", type=int, help="interface class (guessed if omitted)")
    p.set_defaults(func=cmd_read)

    p = cmd("set", "write one attribute")
    p.add_argument("obis", type=_obis_arg, metavar="OBIS", help="logical name, e.g. 1-0:1.8.0.255")
    p.add_argument("-a", "--attr", type=int, required=True, help="attribute index")
    p.add_argument("-c", "--class", dest="class_id", type=int, help="interface class (guessed if omitted)")
    p.add_argument("value", metavar="VALUE",
                   help="TYPE:VALUE with TYPE one of i8 i16 i32 i64 u8 u16 u32 u64 enum bool f32 f64 "
                        "octets(hex) str utf8 bits obis datetime(ISO 8601), or null; "
                        "e.g. u16:5, octets:0102, datetime:2026-01-01T00:00Z")
    p.set_defaults(func=cmd_set)

    p = cmd("action", "invoke a method")
    p.add_argument("obis", type=_obis_arg, metavar="OBIS", help="logical name, e.g. 1-0:1.8.0.255")
    p.add_argument("-m", "--method", type=int, required=True, help="method index")
    p.add_argument("-c", "--class", dest="class_id", type=int, help="interface class (guessed if omitted)")
    p.add_argument("value", nargs="?", metavar="VALUE",
                   help="parameter TYPE:VALUE as for set (default i8:0)")
    p.set_defaults(func=cmd_action)

    p = cmd("profile", "read a profile generic buffer (all, by time range or by entries)")
    p.add_argument("obis", type=_obis_arg, metavar="OBIS", nargs="?", default=Obis(1, 0, 99, 1, 0, 255),
                   help="profile generic (default 1-0:99.1.0.255)")
    p.add_argument("--from", dest="from_", type=_time_arg, metavar="ISO", help="range start (UTC if no zone)")
    p.add_argument("--to", type=_time_arg, metavar="ISO", help="range end")
    p.add_argument("--entries", type=_entries_arg, metavar="A:B", help="entries A..B (1-based; B empty = last)")
    p.set_defaults(func=cmd_profile)

    p = cmd("objects", "list the object_list of the association as a table")
    p.set_defaults(func=cmd_objects)

    p = cmd("info", "show the ISO/IEC 14908 objects (classes 130-133)")
    p.set_defaults(func=cmd_info)
    return parser


# --------------------------------------------------------------------------- session set-up


def _settings(args: argparse.Namespace, kf: KeyFile | None) -> ClientSettings:
    pdu = getattr(args, "max_pdu", AL_MAX_APDU)
    if args.client == "public":
        return ClientSettings.public(max_receive_pdu_size=pdu)
    dl = kf.dlms if kf is not None else None
    if dl is None:
        if is_sim(args.port):
            from ..sim import DEFAULT_KEYS, DEFAULT_PASSWORD
            _note("no --keys: using the simulator's lab secrets")
            if args.auth == "lls":
                return ClientSettings.management_lls(DEFAULT_PASSWORD, max_receive_pdu_size=pdu)
            return ClientSettings.management_hls(
                DEFAULT_KEYS, DEFAULT_CLIENT_SYSTEM_TITLE, max_receive_pdu_size=pdu,
                invocation_counter=_reserve_invocation_counters(_ic_key(args, DEFAULT_CLIENT_SYSTEM_TITLE)))
        raise KeyFileError("--client management needs --keys FILE with a [dlms] table "
                           "(lls_password, or ek and ak)")
    auth = args.auth or "hls"
    if auth == "lls":
        if not dl.lls_password:
            raise KeyFileError(f"{kf.path if kf else 'key file'}: [dlms] lls_password: missing (needed for --auth lls)")
        return ClientSettings.management_lls(dl.lls_password, max_receive_pdu_size=pdu)
    st = dl.client_system_title or DEFAULT_CLIENT_SYSTEM_TITLE
    server_st = dl.server_system_title or dl.system_title
    return ClientSettings.management_hls(
        dl.keys, st, ciphering=CipheringKind.DEDICATED if dl.keys.dk is not None else CipheringKind.GLOBAL,
        dedicated_key=dl.keys.dk, server_system_title=server_st, max_receive_pdu_size=pdu,
        invocation_counter=_reserve_invocation_counters(_ic_key(args, st)))


_STDERR = Console(stderr=True, highlight=False, soft_wrap=True)


# Suite 0 forbids reusing an invocation counter under one key, and a meter refuses any IC not
# above the last one it accepted, so the next IC to send is kept across runs in a small JSON
# state file ($DLMS14908_STATE_DIR or ~/.local/state/dlms14908), one counter per client system
# title: the same meter reached through another port (a USB transceiver re-enumerated as
# /dev/ttyUSB1, CN/IP instead of serial) or addressed by Neuron ID instead of subnet/node must
# not see the counter go back.  (Entries "<title>@<port>/<meter>" of earlier versions count too.)


def _state_file() -> Path:
    base = os.environ.get("DLMS14908_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "dlms14908")
    return Path(base) / "invocation-counters.json"


def _ic_key(args: argparse.Namespace, client_st: bytes) -> str:
    return client_st.hex().upper()


#: invocation counters set aside for one run before it starts: a run that is killed before it
#: can store its last counter must not make the next run reuse counters the meter has seen
IC_RESERVE = 1024


def _reserve_invocation_counters(key: str) -> int:
    """The first invocation counter of this run; the store moves IC_RESERVE beyond it first."""
    ic = load_invocation_counter(key)
    save_invocation_counter(key, min(ic + IC_RESERVE, 0xFFFFFFFF))
    return ic


def load_invocation_counter(key: str) -> int:
    """The next invocation counter to use for ``key`` (0 when none is stored)."""
    try:
        data = json.loads(_state_file().read_text())
        vals = [v for k, v in data.items() if k == key or k.startswith(key + "@")]
    except (OSError, ValueError, AttributeError):
        return 0
    vals = [v for v in vals if isinstance(v, int) and 0 <= v <= 0xFFFFFFFF]
    return max(vals, default=0)


def save_invocation_counter(key: str, value: int) -> None:
    """Remember the next invocation counter for ``key`` (best effort, atomic replace)."""
    path = _state_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                data = {}
        except (OSError, ValueError):
            data = {}
        if value <= data.get(key, -1):
            return
        data[key] = value
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError as exc:
        _note(f"warning: cannot save the invocation counter ({exc.strerror or exc})")


def _announce_sim(line: str) -> None:
    _note(f"sim: {line}")


def _note(text: str) -> None:
    _STDERR.print(f"{PROG}: {text}", markup=False)


def _load_keys(path: str | None) -> KeyFile | None:
    """The key file; its warnings (e.g. readable by others) become one ``warning:`` line."""
    if not path:
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", KeyFileWarning)
        kf = load_keyfile(path)
    for w in caught:
        _note(f"warning: {w.message}")
    return kf


def _session(args: argparse.Namespace, body: Callable[[Client], Coroutine[Any, Any, int]]) -> int:
    kf = _load_keys(getattr(args, "keys", None))
    if is_sim(args.port):
        _note(SIM_NOTICE)
    settings = _settings(args, kf)
    sap = SAP_PUBLIC_CLIENT if args.client == "public" else SAP_MANAGEMENT_CLIENT

    async def run() -> int:
        source = getattr(args, "source", None)
        link = open_link(args.port, args.meter, getattr(args, "via", None), kf,
                         getattr(args, "capture", None), client_sap=sap, announce=_announce_sim,
                         **({"source": source} if source is not None else {}))
        client = Client(link, settings, timeout=args.timeout)
        try:
            await client.connect()
            return await body(client)
        finally:
            try:
                await client.close()
            finally:
                cipher = client.conn.cipher
                if cipher is not None and settings.system_title is not None:
                    save_invocation_counter(_ic_key(args, settings.system_title),
                                            cipher.next_invocation_counter)

    return asyncio.run(run())


def _out(args: argparse.Namespace, obj: Any, human: Callable[[Console], None]) -> None:
    if args.json:
        sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    else:
        human(Console(highlight=False))


def _name(obis: Obis) -> str:
    return obis.name or ""


def _class_name(cid: int) -> str:
    try:
        return get_class(cid).name
    except UnknownClass:
        return f"class {cid}"


# --------------------------------------------------------------------------- commands


def cmd_read(args: argparse.Namespace) -> int:
    obis: Obis = args.obis
    cid = _class_of(obis, args.class_id)

    async def body(c: Client) -> int:
        result: dict[str, Any] = {"obis": str(obis), "name": obis.name, "class_id": cid,
                                  "attribute": args.attr}
        if cid in SCALER_ATTRIBUTE and args.attr == 2:
            m = await c.read_register(obis, class_id=cid)
            result.update(value=axdr.to_jsonable(m.raw),
                          scaled={"value": m.value, "unit": m.unit.symbol if hasattr(m.unit, "symbol") else m.unit,
                                  "scaler": m.scaler_unit.scaler},
                          text=str(m))
        else:
            raw = await c.get(obis, class_id=cid, attr=args.attr, typed=False)
            typed = decode_attribute(cid, args.attr, raw)
            result.update(value=jsonable(typed), data=axdr.to_jsonable(raw), text=render(typed))

        def human(con: Console) -> None:
            label = f" ({obis.name})" if obis.name else ""
            attr = "" if args.attr == 2 else f" attribute {args.attr}"
            con.print(f"[bold]{obis}[/bold]{label}{attr}", end="")
            con.print(" = ", end="")
            con.print(f"[bold green]{result['text']}[/bold green]")
        _out(args, result, human)
        return 0

    return _session(args, body)


def cmd_set(args: argparse.Namespace) -> int:
    obis: Obis = args.obis
    cid = _class_of(obis, args.class_id)
    value = args.parsed_value

    async def body(c: Client) -> int:
        await c.set(obis, value, class_id=cid, attr=args.attr)
        _out(args, {"obis": str(obis), "class_id": cid, "attribute": args.attr,
                    "value": axdr.to_jsonable(value), "result": "success"},
             lambda con: con.print(f"{obis} attribute {args.attr} := {render(value)}: [green]success[/green]"))
        return 0

    return _session(args, body)


def cmd_action(args: argparse.Namespace) -> int:
    obis: Obis = args.obis
    cid = _class_of(obis, args.class_id)
    param = args.parsed_value if args.value is not None else axdr.Integer(0)

    async def body(c: Client) -> int:
        ret = await c.action(obis, args.method, param, class_id=cid)
        _out(args, {"obis": str(obis), "class_id": cid, "method": args.method, "result": "success",
                    "return": None if ret is None else axdr.to_jsonable(ret)},
             lambda con: con.print(f"{obis} method {args.method}: [green]success[/green]"
                                   + ("" if ret is None else f", returned {render(ret)}")))
        return 0

    return _session(args, body)


def cmd_profile(args: argparse.Namespace) -> int:
    obis: Obis = args.obis
    if args.entries is not None and (args.from_ is not None or args.to is not None):
        raise _UsageError("give --from/--to or --entries, not both")
    if args.from_ is not None and args.to is not None and args.from_ > args.to:
        raise _UsageError(f"--from {args.from_.isoformat()} is after --to {args.to.isoformat()}")

    async def body(c: Client) -> int:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(TextColumn("reading profile"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=_STDERR, transient=True,
                      disable=not _STDERR.is_terminal) as bar:
            task = bar.add_task("profile", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            buf = await c.read_profile(obis, from_=args.from_, to=args.to, entries=args.entries,
                                       progress=progress)
        cols = [f"{co.logical_name}:{co.attribute_index}" for co in buf.columns]
        rows = [[render(v) for v in r] for r in buf.rows]

        def human(con: Console) -> None:
            t = Table(title=f"{obis} {obis.name or ''} ({len(rows)} entries)")
            for i, co in enumerate(buf.columns):
                t.add_column(f"{co.logical_name.name or co.logical_name}", justify="right", no_wrap=i == 0)
            for r in rows:
                t.add_row(*r)
            con.print(t)
        _out(args, {"obis": str(obis), "columns": cols, "entries": len(rows),
                    "rows": [[jsonable(v) for v in r] for r in buf.rows]}, human)
        return 0

    return _session(args, body)


def cmd_objects(args: argparse.Namespace) -> int:
    async def body(c: Client) -> int:
        objs = await c.object_list()
        items = []
        for o in objs:
            ln = o.logical_name
            attrs = o.access_rights.attribute_access
            readable = [int(a.attribute_id) for a in attrs if int(a.access_mode) in (1, 3, 4, 6)]
            writable = [int(a.attribute_id) for a in attrs if int(a.access_mode) in (2, 3, 5, 6)]
            methods = [int(m.method_id) for m in o.access_rights.method_access if int(m.access_mode)]
            items.append({"obis": str(ln), "name": ln.name, "class_id": int(o.class_id),
                          "class": _class_name(int(o.class_id)), "version": int(o.version),
                          "read": readable, "write": writable, "methods": methods})

        def human(con: Console) -> None:
            t = Table(title=f"object list ({len(items)} objects)")
            t.add_column("OBIS", no_wrap=True)
            t.add_column("class", no_wrap=True, justify="right")
            t.add_column("object", ratio=3, min_width=14)
            for col in ("read", "write", "methods"):
                t.add_column(col, no_wrap=True)
            for it in items:
                t.add_row(it["obis"], f"{it['class_id']}/{it['version']}", it["name"] or "",
                          _ranges(it["read"]), _ranges(it["write"]), _ranges(it["methods"]))
            con.print(t)
        _out(args, {"objects": items}, human)
        return 0

    return _session(args, body)


def _ranges(ns: list[int]) -> str:
    """1,2,3,5 -> "1-3,5"."""
    out: list[str] = []
    for n in sorted(ns):
        if out and "-" in out[-1] and int(out[-1].split("-")[1]) == n - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        elif out and "-" not in out[-1] and int(out[-1]) == n - 1:
            out[-1] = f"{out[-1]}-{n}"
        else:
            out.append(str(n))
    return ",".join(out)


INFO_OBJECTS = ((130, Obis(0, 0, 32, 0, 0, 255)), (131, Obis(0, 0, 32, 1, 0, 255)),
                (132, Obis(0, 0, 32, 2, 0, 255)), (133, Obis(0, 0, 32, 3, 0, 255)))


def cmd_info(args: argparse.Namespace) -> int:
    async def body(c: Client) -> int:
        out: list[dict[str, Any]] = []
        for cid, ln in INFO_OBJECTS:
            ic = get_class(cid)
            refs = [(cid, ln, a.index) for a in ic.attributes[1:]]
            vals = await c.get_with_list(refs, typed=True)
            attrs = {}
            for a, v in zip(ic.attributes[1:], vals):
                attrs[a.name] = ({"error": str(v)} if isinstance(v, Exception) else jsonable(v))
            out.append({"obis": str(ln), "class_id": cid, "class": ic.name,
                        "attributes": attrs, "_text": {a.name: (str(v) if isinstance(v, Exception) else render(v))
                                                       for a, v in zip(ic.attributes[1:], vals)}})

        def human(con: Console) -> None:
            for o in out:
                t = Table(title=f"{o['obis']} {o['class']} (class {o['class_id']})", show_header=False, min_width=60)
                t.add_column("attribute")
                t.add_column("value", justify="right")
                for k, v in o["_text"].items():
                    t.add_row(k, v)
                con.print(t)
        _out(args, {"objects": [{k: v for k, v in o.items() if k != "_text"} for o in out]}, human)
        return 0

    return _session(args, body)


class _UsageError(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "value", None) is not None:
        try:
            args.parsed_value = parse_value(args.value)
        except ValueError as exc:
            parser.error(str(exc))
    if getattr(args, "via", None) is not None and getattr(args, "meter", None) is None:
        parser.error("--via needs --meter")
    if getattr(args, "via", None) and args.meter in args.via:
        parser.error(f"--via: the meter {args.meter} cannot be its own repeater")
    if getattr(args, "source", None) is not None and is_sim(args.port):
        parser.error("--source is for real ports; the simulated network has its own head-end at 1/1")

    def go() -> int:
        try:
            return int(args.func(args))
        except _UsageError as exc:
            parser.error(str(exc))

    return run_guarded(PROG, go)


if __name__ == "__main__":
    sys.exit(main())

