"""``dlms-analyze apdu HEX [--keys FILE] [--json]``: decode one xDLMS / ACSE APDU.

The APDU is decoded with :func:`dlms14908.xdlms.decode_apdu` (IEC 62056-5-3
xDLMS and ACSE).  Ciphered APDUs (glo-, ded-, general-glo-, general-ded-
ciphering, also inside AARQ/AARE/RLRQ/RLRE user-information) show their
security header; with ``--keys`` they are verified and decrypted with DLMS
security suite 0 (:mod:`dlms14908.xdlms.ciphering`) and the inner APDU is
decoded too.  Keys come only from a TOML key file (:mod:`dlms14908.keyfile`)
and are never printed; a dedicated key carried inside a decrypted
InitiateRequest is redacted as well.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import importlib
import json
import re
import sys
from typing import TYPE_CHECKING, Any

from ..errors import DecodeError, LocalProtocolError

if TYPE_CHECKING:
    from ..keyfile import DlmsKeyTable
    from ..xdlms import ciphering as sec
else:
    # ``dlms-analyze`` registers every sub-command at start-up; the ciphering and
    # key-file modules load only when this sub-command runs.
    class _LazyModule:
        def __init__(self, name: str) -> None:
            self._name = name

        def __getattr__(self, attr: str) -> Any:
            module = importlib.import_module(self._name)
            globals()["sec"] = module  # later look-ups hit the module directly
            return getattr(module, attr)

    sec = _LazyModule("dlms14908.xdlms.ciphering")


def load_keyfile(path: str) -> Any:
    from ..keyfile import load_keyfile as load

    return load(path)

__all__ = ["analyze", "parse_hex", "register", "run"]

#: plain APDU tags sent by the client (the rest come from the server)
_CLIENT_TAGS = frozenset({0x01, 0x05, 0x06, 0x16, 0x60, 0x62, 0xC0, 0xC1, 0xC3, 0xD9})
_REDACTED = "<redacted secret>"
_LLS_MECHANISM = 1  # mechanism-name ...2.1 (low-level security)
_KEY_FIELDS = re.compile(r"(^|_)(dedicated_key|key|ek|ak|bk|dk)$")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "apdu",
        help="decode one xDLMS/ACSE APDU given in hex (decrypting it with --keys)",
        description=(
            "Decode one xDLMS or ACSE APDU.  Ciphered APDUs are verified and decrypted "
            "when --keys names a TOML key file with a [dlms] table (ek, ak, optional bk, dk, "
            "system_title).  Keys are never taken on the command line."
        ),
    )
    p.add_argument("hex", nargs="+", metavar="HEX", help="the APDU in hex; spaces allowed")
    p.add_argument("--keys", metavar="FILE", help="TOML key file ([dlms] table)")
    p.add_argument(
        "--system-title",
        metavar="HEX",
        help="sender system title for glo-/ded-ciphered APDUs (overrides the key file)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a tree")
    p.set_defaults(func=run)


def parse_hex(text: str | list[str], *, field: str = "hex") -> bytes:
    """Hex digits with optional spaces, ``:``/``-``/``_`` separators and ``0x`` prefix."""
    joined = " ".join(text) if isinstance(text, list) else text
    cleaned = re.sub(r"0[xX](?=[0-9a-fA-F])", "", joined)
    cleaned = re.sub(r"[\s:_\-,]", "", cleaned)
    if not cleaned:
        raise DecodeError("no hex digits given", field=field)
    bad = re.search(r"[^0-9a-fA-F]", cleaned)
    if bad:
        raise DecodeError(f"not a hex digit: {bad.group()!r}", field=field, offset=bad.start())
    if len(cleaned) % 2:
        raise DecodeError(f"odd number of hex digits ({len(cleaned)})", field=field)
    return bytes.fromhex(cleaned)


# --- generic JSON-able view of decoded APDUs ----------------------------------------------


def _xdlms() -> tuple[Any, Any]:
    from .. import xdlms

    decode = getattr(xdlms, "decode_apdu", None)
    to_json = getattr(xdlms, "apdu_to_jsonable", None)
    if decode is None:
        raise DecodeError("the xDLMS APDU decoder is not available in this build", field="apdu")
    return decode, to_json


def _plain_jsonable(obj: Any) -> Any:
    """Fallback JSON view: dataclasses, enums, bytes as hex, A-XDR values via axdr."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, enum.Enum):
        return {
            "value": int(obj.value) if isinstance(obj.value, int) else obj.value,
            "name": obj.name,
        }
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).hex().upper()
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        name = getattr(obj, "NAME", None)
        if isinstance(name, str):
            out["apdu"] = name
        for f in dataclasses.fields(obj):
            out[f.name] = _plain_jsonable(getattr(obj, f.name))
        return out
    if isinstance(obj, (list, tuple)):
        return [_plain_jsonable(v) for v in obj]
    return repr(obj)


def _jsonable(apdu: Any, to_json: Any) -> Any:
    if to_json is not None:
        try:
            return to_json(apdu)
        except (TypeError, ValueError, AttributeError, KeyError):
            pass
    return _plain_jsonable(apdu)


def _secret_fields(apdu: Any) -> frozenset[str]:
    """Fields of this APDU object that hold secrets beyond keys: the LLS password."""
    mech = getattr(apdu, "mechanism_name", None)
    if isinstance(mech, int) and int(mech) == _LLS_MECHANISM:
        return frozenset({"calling_authentication_value", "responding_authentication_value"})
    return frozenset()


#: (class_id, attribute_id) whose SET value is a secret: Association LN ``secret`` (LLS
#: password or HLS secret, IEC 62056-6-2 §4.4.3)
_SECRET_ATTRIBUTES = frozenset({(15, 7)})
#: (class_id, method_id) whose parameter is a secret: Association LN change_HLS_secret,
#: Association SN change_LLS_secret / change_HLS_secret (IEC 62056-6-2 §4.4.3, §4.4.4)
_SECRET_METHODS = frozenset({(15, 2), (12, 5), (12, 6)})


def _is_secret_target(desc: Any) -> bool:
    desc = getattr(desc, "attribute", desc)  # AttributeDescriptorWithSelection
    cid = getattr(desc, "class_id", None)
    if not isinstance(cid, int):
        return False
    aid = getattr(desc, "attribute_id", None)
    if isinstance(aid, int):
        return (int(cid), int(aid)) in _SECRET_ATTRIBUTES
    mid = getattr(desc, "method_id", None)
    return isinstance(mid, int) and (int(cid), int(mid)) in _SECRET_METHODS


def _redact_secret_values(apdu: Any, tree: Any) -> bool:
    """Hide the value of a SET/ACTION that writes an association secret (LLS password,
    HLS secret) in ``tree``, the JSON view of ``apdu``; report whether one was hidden."""
    if not isinstance(tree, dict):
        return False
    hidden = False
    one = getattr(apdu, "attribute", None) or getattr(apdu, "method", None)
    if one is not None and _is_secret_target(one):
        for k in ("value", "parameters", "raw_data"):
            if tree.get(k) not in (None, "", [], {}):
                tree[k] = _REDACTED
                hidden = True
    many = getattr(apdu, "attributes", None) or getattr(apdu, "methods", None)
    if isinstance(many, (list, tuple)):
        secret = [i for i, d in enumerate(many) if _is_secret_target(d)]
        if secret:
            values = tree.get("values", tree.get("parameters"))
            if isinstance(values, list):
                for i in secret:
                    if i < len(values) and values[i] not in (None, "", [], {}):
                        values[i] = _REDACTED
                        hidden = True
            if tree.get("raw_data") not in (None, "", [], {}):
                tree["raw_data"] = _REDACTED
                hidden = True
    return hidden


def _view(apdu: Any, to_json: Any) -> tuple[Any, bool]:
    """The redacted JSON view of ``apdu`` and whether anything secret was hidden."""
    tree, found = _redact(_jsonable(apdu, to_json), _secret_fields(apdu))
    return tree, _redact_secret_values(apdu, tree) or found


def _redact(tree: Any, extra: frozenset[str] = frozenset()) -> tuple[Any, bool]:
    """Replace key material (and ``extra`` fields) inside a decoded APDU; report whether
    any was found."""
    found = False

    def walk(node: Any) -> Any:
        nonlocal found
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                secret = isinstance(k, str) and (_KEY_FIELDS.search(k) or k in extra)
                if secret and v not in (None, "", [], {}):
                    out[k] = _REDACTED
                    found = True
                else:
                    out[k] = walk(v)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(tree), found


# --- the analysis -------------------------------------------------------------------------


def _sc_view(sc: int) -> dict[str, Any]:
    return {
        "value": f"0x{sc:02X}",
        "suite": sc & sec.SC_SUITE_MASK,
        "authenticated": bool(sc & sec.SC_AUTHENTICATION),
        "encrypted": bool(sc & sec.SC_ENCRYPTION),
        "broadcast_key": bool(sc & sec.SC_BROADCAST),
        "compressed": bool(sc & sec.SC_COMPRESSION),
    }


def _find_ciphered(obj: Any, path: str, out: list[tuple[str, Any]]) -> None:
    """Collect ciphered APDU objects nested in a decoded APDU (e.g. AARQ user-information)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if _is_ciphered_obj(obj):
            out.append((path, obj))
            return
        for f in dataclasses.fields(obj):
            _find_ciphered(getattr(obj, f.name), f"{path}.{f.name}" if path else f.name, out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _find_ciphered(v, f"{path}[{i}]", out)
    elif isinstance(obj, (bytes, bytearray)) and len(obj) > 6 and sec.is_ciphered_tag(obj[0]):
        # user-information kept as raw bytes: try it as a ciphered APDU
        try:
            sec.parse_protected(obj)
        except DecodeError:
            return
        out.append((path, bytes(obj)))


def _is_ciphered_obj(obj: Any) -> bool:
    tag = getattr(obj, "tag", None)
    return (
        isinstance(tag, int)
        and sec.is_ciphered_tag(tag)
        and hasattr(obj, "security_control")
        and hasattr(obj, "invocation_counter")
    )


def _ap_title(outer: Any) -> tuple[bytes | None, bool | None]:
    """(AP title, sent by client?) of an ACSE APDU, when it has one."""
    for name, from_client in (("calling_ap_title", True), ("responding_ap_title", False)):
        v = getattr(outer, name, None)
        if isinstance(v, (bytes, bytearray)) and len(v) == sec.SYSTEM_TITLE_LENGTH:
            return bytes(v), from_client
    tag = getattr(outer, "TAG", None)
    if isinstance(tag, int) and tag in (0x60, 0x62):
        return None, True
    if isinstance(tag, int) and tag in (0x61, 0x63):
        return None, False
    return None, None


def _section(
    raw: bytes,
    *,
    dlms: DlmsKeyTable | None,
    system_title: bytes | None,
    acse_title: bytes | None,
    decode: Any,
    to_json: Any,
) -> dict[str, Any]:
    h = sec.parse_protected(raw)
    info: dict[str, Any] = {
        "form": f"{h.kind.value}-ciphering",
        "tag": f"0x{h.tag:02X}",
        "protects": f"0x{h.service_tag:02X}" if h.service_tag is not None else "any APDU",
        "security_control": _sc_view(h.security_control),
        "invocation_counter": h.invocation_counter,
    }
    if h.system_title is not None:
        info["system_title"] = h.system_title.hex().upper()
    info["body_length"] = len(h.body)
    if h.auth_tag is not None:
        info["authentication_tag"] = h.auth_tag.hex().upper()
    if h.kind.general:
        sender = h.system_title
    else:
        from_client = (h.service_tag in _CLIENT_TAGS) if h.service_tag is not None else None
        sender = system_title or acse_title
        if sender is None and dlms is not None:
            sender = dlms.sender_system_title(from_client=from_client)
    result: dict[str, Any] = {"security": info}
    if dlms is None:
        if not h.encrypted:
            # authentication only: the APDU is in clear; decode it, unverified
            inner = decode(h.body)
            view = _view(inner, to_json)[0]
            result["inner"] = {"verified": False, "apdu": view}
            result["note"] = "authentication-only APDU shown unverified (no --keys)"
        else:
            result["note"] = "encrypted; give --keys to decrypt"
        return result
    if sender is None:
        raise LocalProtocolError(
            f"{h.kind.value}-ciphering needs the sender's system title: "
            "set system_title in the key file or pass --system-title"
        )
    info["sender_system_title"] = sender.hex().upper()
    plain = sec.unprotect(
        raw, dlms.keys, system_title=None if h.kind.general else sender, require=0
    )
    inner = decode(plain)
    tree, had_key = _view(inner, to_json)
    result["inner"] = {
        "verified": h.authenticated,
        "plaintext": "<withheld: contains a key or secret>" if had_key else plain.hex().upper(),
        "apdu": tree,
    }
    nested = _nested(inner, dlms=dlms, system_title=system_title, decode=decode, to_json=to_json)
    if nested:
        result["inner"]["ciphered"] = nested
    return result


def _nested(
    apdu: Any, *, dlms: DlmsKeyTable | None, system_title: bytes | None, decode: Any, to_json: Any
) -> list[dict[str, Any]]:
    found: list[tuple[str, Any]] = []
    if dataclasses.is_dataclass(apdu) and not isinstance(apdu, type) and not _is_ciphered_obj(apdu):
        for f in dataclasses.fields(apdu):
            _find_ciphered(getattr(apdu, f.name), f.name, found)
    title, _from_client = _ap_title(apdu)
    out = []
    for path, obj in found:
        raw = obj if isinstance(obj, bytes) else obj.to_bytes()
        sec_view = _section(
            raw,
            dlms=dlms,
            system_title=system_title,
            acse_title=title,
            decode=decode,
            to_json=to_json,
        )
        out.append({"path": path, **sec_view})
    return out


def analyze(
    data: bytes, *, dlms: DlmsKeyTable | None = None, system_title: bytes | None = None
) -> dict[str, Any]:
    """The JSON-able report printed by ``dlms-analyze apdu``."""
    decode, to_json = _xdlms()
    apdu = decode(data)
    report: dict[str, Any] = {
        "length": len(data),
        "apdu": _view(apdu, to_json)[0],
    }
    if _is_ciphered_obj(apdu):
        report.update(
            _section(
                data,
                dlms=dlms,
                system_title=system_title,
                acse_title=None,
                decode=decode,
                to_json=to_json,
            )
        )
    else:
        nested = _nested(apdu, dlms=dlms, system_title=system_title, decode=decode, to_json=to_json)
        if nested:
            report["ciphered"] = nested
    return report


# --- output -------------------------------------------------------------------------------


def _apdu_label(node: dict[str, Any]) -> str | None:
    for k in ("apdu", "name", "type"):
        v = node.get(k)
        if isinstance(v, str):
            return v
    return None


def _scalar(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    return str(v)


def _label(markup: str) -> Any:
    from rich.text import Text

    return Text.from_markup(markup, overflow="fold")


def _add(tree: Any, key: str, value: Any) -> None:
    from rich.markup import escape

    k = escape(key)
    if value is None:
        return  # absent optional fields: in --json only
    if isinstance(value, dict):
        keys = set(value)
        if (
            "type" in keys
            and keys <= {"type", "value", "text"}
            and not isinstance(value.get("value"), (dict, list))
        ):  # A-XDR Data leaf
            shown = value.get("text", value.get("value"))
            tree.add(
                _label(
                    f"[bold]{k}[/]: {escape(_scalar(shown))} [dim]({escape(str(value['type']))})[/]"
                )
            )
            return
        if keys == {"value", "name"}:  # enumerated value
            tree.add(
                _label(f"[bold]{k}[/]: {escape(str(value['name']))} [dim]({value['value']})[/]")
            )
            return
        label = _apdu_label(value)
        branch = tree.add(
            _label(f"[bold]{k}[/]" + (f": [cyan]{escape(label)}[/]" if label else ""))
        )
        for kk, v in value.items():
            if label is not None and v == label and kk in ("apdu", "name", "type"):
                continue
            _add(branch, str(kk), v)
    elif isinstance(value, list):
        branch = tree.add(_label(f"[bold]{k}[/] [dim]({len(value)} item(s))[/]"))
        for i, v in enumerate(value):
            _add(branch, f"[{i}]", v)
    else:
        tree.add(_label(f"[bold]{k}[/]: {escape(_scalar(value))}"))


def render_tree(report: dict[str, Any]) -> Any:
    """A :class:`rich.tree.Tree` of the report."""
    from rich.markup import escape
    from rich.tree import Tree

    apdu = report.get("apdu", {})
    label = _apdu_label(apdu) if isinstance(apdu, dict) else None
    root = Tree(
        _label(f"[bold cyan]{escape(label or 'APDU')}[/] [dim]({report.get('length')} bytes)[/]")
    )
    for k, v in report.items():
        if k == "length" or (k == "apdu" and "security" in report):
            continue  # a ciphered APDU is shown by its security section
        _add(root, k, v)
    return root


def run(args: argparse.Namespace) -> int:
    data = parse_hex(args.hex)
    title = parse_hex(args.system_title, field="--system-title") if args.system_title else None
    if title is not None and len(title) != sec.SYSTEM_TITLE_LENGTH:
        raise DecodeError(f"must be {sec.SYSTEM_TITLE_LENGTH} bytes", field="--system-title")
    dlms = load_keyfile(args.keys).require_dlms() if args.keys else None
    report = analyze(data, dlms=dlms, system_title=title)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        from rich.console import Console

        # on a terminal long hex folds; into a pipe or file every field stays on one line
        width = None if sys.stdout.isatty() else 1_000_000
        Console(file=sys.stdout, highlight=False, width=width).print(render_tree(report))
    return 0
