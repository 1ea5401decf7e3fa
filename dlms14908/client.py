"""Sans-I/O DLMS/COSEM client: associations and LN services (IEC 62056-5-3 / Green Book §9.3-9.4).

:class:`ClientConnection` holds one association with one server (state table below, style
guide §b6), the negotiated xDLMS context and, when keys are configured, a suite 0
:class:`~dlms14908.xdlms.ciphering.CipheringContext`.  Every service call returns an
:class:`Exchange`: take :attr:`Exchange.request`, send it, feed the answer to
:meth:`Exchange.receive`, which returns the next APDU to send (block transfer, HLS pass 3)
or ``None`` once :attr:`Exchange.result` is set.  No I/O, no clock.

Server answers that are errors raise a :class:`~dlms14908.errors.ServiceError` subclass:
:class:`DataAccessError`, :class:`ActionError`, :class:`ExceptionResponseError`,
:class:`ConfirmedServiceFailure`, :class:`AssociationRejected` (and
:class:`AuthenticationRejected`, also an :class:`~dlms14908.errors.AuthenticationFailed`).
"""

from __future__ import annotations

import enum
import os
import struct
import weakref
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from . import axdr
from .acse import (
    AARE,
    AARQ,
    RLRE,
    RLRQ,
    AcseServiceUserDiagnostic,
    ApplicationContextName,
    AssociationResult,
    MechanismName,
    ReleaseRequestReason,
)
from .errors import (
    AuthenticationFailed,
    DecodeError,
    LocalProtocolError,
    RemoteProtocolError,
    SecurityError,
    ServiceError,
)
from .obis import Obis
from .profile import SAP_MANAGEMENT, SAP_MANAGEMENT_CLIENT, SAP_PUBLIC_CLIENT
from .xdlms import (
    ABSENT,
    ActionRequestNextPblock,
    ActionRequestNormal,
    ActionRequestWithList,
    ActionResponseItem,
    ActionResponseNextPblock,
    ActionResponseNormal,
    ActionResponseWithList,
    ActionResponseWithPblock,
    ActionResult,
    Apdu,
    AttributeDescriptor,
    AttributeDescriptorWithSelection,
    CipheredApdu,
    ConfirmedServiceError,
    Conformance,
    DataAccessResult,
    ExceptionResponse,
    GetBlockCollector,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDatablock,
    GetResponseWithList,
    InitiateRequest,
    InitiateResponse,
    MethodDescriptor,
    SetRequestNormal,
    SetRequestWithDatablock,
    SetRequestWithList,
    SetRequestWithListAndFirstDatablock,
    SetResponseDatablock,
    SetResponseLastDatablock,
    SetResponseLastDatablockWithList,
    SetResponseNormal,
    SetResponseWithList,
    action_request_blocks,
    decode_apdu,
    set_request_blocks,
    split_blocks,
)
from .xdlms.blocks import BlockSequenceError, DataBlockCollector
from .xdlms.ciphering import (
    CipheringContext,
    CipheringKind,
    SecurityKeys,
    is_ciphered_tag,
    verify_hls_gmac,
)
from .xdlms.types import AccessSelector

__all__ = [
    "ASSOCIATION_TRANSITIONS",
    "CURRENT_ASSOCIATION",
    "DEFAULT_CONFORMANCE",
    "ActionError",
    "AssocInput",
    "AssocState",
    "AssociationRejected",
    "AttributeRef",
    "AuthenticationRejected",
    "ClientConnection",
    "ClientSettings",
    "ConfirmedServiceFailure",
    "DataAccessError",
    "ExceptionResponseError",
    "Exchange",
    "MethodRef",
    "decode_data_results",
    "encode_data_results",
    "guess_class_id",
]

#: logical name of the "current association" Association LN object (class 15)
CURRENT_ASSOCIATION = Obis(0, 0, 40, 0, 0, 255)

#: what the client proposes: LN services incl. block transfer, selective access, with-list
DEFAULT_CONFORMANCE = (
    Conformance.GET | Conformance.SET | Conformance.ACTION | Conformance.SELECTIVE_ACCESS
    | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ | Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE
    | Conformance.BLOCK_TRANSFER_WITH_ACTION | Conformance.MULTIPLE_REFERENCES
    | Conformance.PRIORITY_MGMT_SUPPORTED
)

#: bytes an APDU grows by when suite-0 ciphered (tag, length, SC, IC, tag) plus headroom
CIPHERING_OVERHEAD = 1 + 3 + 1 + 4 + 12
BLOCK_HEADER_ROOM = 24
#: a block transfer longer than this is refused (a peer cannot keep an exchange alive forever)
MAX_BLOCKS = 65536
#: plain APDUs a server may send inside a ciphered association: AARE, RLRE, EXCEPTION-Response,
#: ConfirmedServiceError
_PLAIN_ALLOWED = frozenset((0x61, 0x63, 0xD8, 0x0E))
#: every ciphered APDU tag (is_ciphered_tag as a set)
_CIPHERED_TAGS = frozenset(t for t in range(256) if is_ciphered_tag(t))


# --------------------------------------------------------------------------- errors


class DataAccessError(ServiceError):
    """A GET/SET answered with a Data-Access-Result other than success."""

    def __init__(self, result: DataAccessResult, what: str = "") -> None:
        name = getattr(result, "name", str(int(result))).lower().replace("_", "-")
        super().__init__(f"{what + ': ' if what else ''}{name}", hint=result)
        self.result = result


class ActionError(ServiceError):
    """An ACTION answered with an Action-Result other than success."""

    def __init__(self, result: ActionResult, what: str = "") -> None:
        name = getattr(result, "name", str(int(result))).lower().replace("_", "-")
        super().__init__(f"{what + ': ' if what else ''}{name}", hint=result)
        self.result = result


class ExceptionResponseError(ServiceError):
    """The server answered with an EXCEPTION-Response."""

    def __init__(self, apdu: ExceptionResponse) -> None:
        se = getattr(apdu.state_error, "name", str(apdu.state_error)).lower()
        sv = getattr(apdu.service_error, "name", str(apdu.service_error)).lower()
        super().__init__(f"exception-response: state-error {se}, service-error {sv}", hint=apdu)
        self.state_error = apdu.state_error
        self.service_error = apdu.service_error


class ConfirmedServiceFailure(ServiceError):
    """The server answered with a ConfirmedServiceError (e.g. in the AARE)."""

    def __init__(self, apdu: ConfirmedServiceError) -> None:
        super().__init__(f"confirmed-service-error: {apdu.error_type.name.lower()} "
                         f"{apdu.value_name}", hint=apdu)
        self.apdu = apdu


class AssociationRejected(ServiceError):
    """The AARE rejected the association (``result``, ``diagnostic``)."""

    def __init__(self, result: AssociationResult, diagnostic: Any) -> None:
        d = getattr(diagnostic, "name", str(diagnostic)).lower().replace("_", "-")
        super().__init__(f"association rejected: {d}", hint=diagnostic)
        self.result = result
        self.diagnostic = diagnostic


class AuthenticationRejected(AssociationRejected, AuthenticationFailed):
    """The association was rejected because authentication failed (wrong LLS password, HLS)."""


# --------------------------------------------------------------------------- state table


class AssocState(enum.Enum):
    IDLE = "idle"
    AWAITING_AARE = "awaiting-aare"
    AWAITING_HLS = "awaiting-hls-pass-4"
    ASSOCIATED = "associated"
    RELEASING = "releasing"
    ERROR = "error"


class AssocInput(enum.Enum):
    SEND_AARQ = "send-aarq"
    AARE_ACCEPTED = "aare-accepted"
    AARE_NEEDS_HLS = "aare-accepted-hls-pending"
    AARE_REJECTED = "aare-rejected"
    HLS_VERIFIED = "hls-verified"
    SEND_RLRQ = "send-rlrq"
    RLRE_RECEIVED = "rlre-received"
    FAILURE = "failure"
    RESET = "reset"


_S, _I = AssocState, AssocInput
#: COSEM-OPEN / COSEM-RELEASE on the client side; ERROR is left only by RESET
ASSOCIATION_TRANSITIONS: dict[AssocState, dict[AssocInput, AssocState]] = {
    _S.IDLE: {_I.SEND_AARQ: _S.AWAITING_AARE, _I.RESET: _S.IDLE},
    _S.AWAITING_AARE: {_I.AARE_ACCEPTED: _S.ASSOCIATED, _I.AARE_NEEDS_HLS: _S.AWAITING_HLS,
                       _I.AARE_REJECTED: _S.IDLE, _I.FAILURE: _S.ERROR, _I.RESET: _S.IDLE},
    _S.AWAITING_HLS: {_I.HLS_VERIFIED: _S.ASSOCIATED, _I.FAILURE: _S.ERROR, _I.RESET: _S.IDLE},
    _S.ASSOCIATED: {_I.SEND_RLRQ: _S.RELEASING, _I.SEND_AARQ: _S.AWAITING_AARE, _I.FAILURE: _S.ERROR,
                    _I.RESET: _S.IDLE},
    _S.RELEASING: {_I.RLRE_RECEIVED: _S.IDLE, _I.FAILURE: _S.ERROR, _I.RESET: _S.IDLE},
    _S.ERROR: {_I.RESET: _S.IDLE},
}
del _S, _I


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True, weakref_slot=True)
class ClientSettings:
    """How to associate: client SAP, authentication, ciphering, PDU size.

    ``mechanism`` LOWEST (no security), LOW (LLS, ``password``) or HIGH_GMAC (HLS-5,
    needs ``keys`` and ``system_title``).  ``ciphering`` "glo"/"ded" protects every
    xDLMS APDU with suite 0 (needs ``keys`` and ``system_title``; "ded" also a
    ``dedicated_key`` sent in the ciphered InitiateRequest)."""

    client_sap: int = SAP_PUBLIC_CLIENT
    server_sap: int = SAP_MANAGEMENT
    mechanism: MechanismName = MechanismName.LOWEST
    password: bytes | None = field(default=None, repr=False)
    keys: SecurityKeys | None = None
    system_title: bytes | None = None
    server_system_title: bytes | None = None
    ciphering: CipheringKind | None = None
    security_control: int = 0x30
    dedicated_key: bytes | None = field(default=None, repr=False)
    invocation_counter: int = 0
    max_receive_pdu_size: int = 1024
    conformance: Conformance = DEFAULT_CONFORMANCE
    pre_established: bool = False
    high_priority: bool = True

    @classmethod
    def public(cls, **kw: Any) -> ClientSettings:
        """The public client (SAP 0x10, lowest security)."""
        return cls(client_sap=SAP_PUBLIC_CLIENT, **kw)

    @classmethod
    def management_lls(cls, password: bytes, **kw: Any) -> ClientSettings:
        """The management client with LLS (password authentication)."""
        return cls(client_sap=SAP_MANAGEMENT_CLIENT, mechanism=MechanismName.LOW,
                   password=password, **kw)

    @classmethod
    def management_hls(cls, keys: SecurityKeys, system_title: bytes, *,
                       ciphering: CipheringKind | str | None = CipheringKind.GLOBAL,
                       **kw: Any) -> ClientSettings:
        """The management client with HLS-5 (GMAC) and, by default, glo-ciphered APDUs."""
        return cls(client_sap=SAP_MANAGEMENT_CLIENT, mechanism=MechanismName.HIGH_GMAC,
                   keys=keys, system_title=system_title,
                   ciphering=None if ciphering is None else CipheringKind(ciphering), **kw)


@dataclass(frozen=True, slots=True)
class AttributeRef:
    """One attribute for the with-list services: class, OBIS, attribute (+ selection)."""

    class_id: int
    obis: Obis
    attribute: int = 2
    selection: AccessSelector | None = None

    def descriptor(self) -> AttributeDescriptor:
        return AttributeDescriptor(self.class_id, self.obis, self.attribute)


@dataclass(frozen=True, slots=True)
class MethodRef:
    """One method for ACTION-with-list: class, OBIS, method."""

    class_id: int
    obis: Obis
    method: int


# --------------------------------------------------------------------------- helpers


def encode_data_results(results: Sequence[Any]) -> bytes:
    """SEQUENCE OF Get-Data-Result (the raw data of a with-list GET in blocks)."""
    out = bytearray(axdr.encode_length(len(results)))
    for r in results:
        if isinstance(r, DataAccessResult):
            out += bytes((1, int(r)))
        else:
            out.append(0)
            out += axdr.encode(r)
    return bytes(out)


def decode_data_results(raw: bytes) -> list[Any]:
    """Inverse of :func:`encode_data_results` (DecodeError on malformed input)."""
    n, pos = axdr.decode_length(raw, 0)
    if n > len(raw):
        raise DecodeError("result count exceeds the data", field="get_data_result_list")
    out: list[Any] = []
    for i in range(n):
        if pos >= len(raw):
            raise DecodeError("truncated", field=f"get_data_result_list[{i}]", offset=pos)
        c = raw[pos]
        if c == 0:
            v, pos = axdr.decode(raw, pos + 1)
            out.append(v)
        elif c == 1 and pos + 1 < len(raw):
            out.append(DataAccessResult(raw[pos + 1]))
            pos += 2
        else:
            raise DecodeError("bad Get-Data-Result choice", field=f"get_data_result_list[{i}]",
                              offset=pos)
    if pos != len(raw):
        raise DecodeError("trailing bytes", field="get_data_result_list", offset=pos)
    return out


def _data_sequence(values: Sequence[Any]) -> bytes:
    return axdr.encode_length(len(values)) + b"".join(axdr.encode(v) for v in values)


_Gen = Generator[Apdu, Apdu, Any]


class Exchange:
    """One confirmed service in progress: ``request`` bytes to send, ``receive(answer)``
    returns the next APDU bytes or ``None`` when finished (then ``result`` is set)."""

    __slots__ = ("_conn", "_gen", "_get", "done", "request", "result")

    def __init__(self, conn: ClientConnection, gen: _Gen) -> None:
        self._conn = conn
        self._gen: _Gen | None = gen
        self._get: tuple[int, int, Obis, int, Any] | None = None
        self.result: Any = None
        self.done = False
        try:
            first = gen.send(None)  # type: ignore[arg-type]
            self.request: bytes = conn._wrap(first)
        except BaseException:
            conn._busy = False
            raise

    def receive(self, data: bytes) -> bytes | None:
        """Feed the server's answer; returns the next APDU to send or None when done."""
        if self.done:
            raise LocalProtocolError("exchange already finished")
        conn = self._conn
        gen = self._gen
        try:
            if gen is None:  # a GET sent by the hot path: its first answer
                assert self._get is not None
                cipher = conn._cipher
                if (data and data[0] in _CIPHERED_TAGS and cipher is not None
                        and cipher.peer_system_title is not None):
                    plain = cipher.unprotect(data)  # _unwrap_bytes(data), inlined
                else:
                    plain = conn._unwrap_bytes(data)
                iid, class_id, obis, attribute, on_block = self._get
                # GET-Response-Normal with Data and our invoke-id: decode the value in place
                if (type(plain) is bytes and len(plain) > 4 and plain[0] == 0xC4 and plain[1] == 1
                        and plain[3] == 0 and not (plain[2] ^ iid) & 0x0F):
                    try:
                        value, pos = _axdr_decode(plain, 4)
                    except Exception:  # noqa: BLE001 - the general decoder below names the fault
                        pos = -1
                    if pos == len(plain):
                        self.result = value
                        self.done = True
                        conn._busy = False
                        return None
                apdu = decode_apdu(plain)
                gen = self._gen = conn._get_answer(AttributeDescriptor(class_id, obis, attribute),
                                                   iid, apdu, on_block)
                nxt = gen.send(None)  # type: ignore[arg-type]
            else:
                nxt = gen.send(conn._unwrap(data))
            out = conn._wrap(nxt)
        except StopIteration as stop:
            self.result = stop.value
            self.done = True
            conn._busy = False
            return None
        except BaseException:
            self.done = True
            conn._busy = False
            if gen is not None:
                gen.close()
            raise
        self.request = out
        return out

    def abort(self) -> None:
        """Give up (timeout, link failure): the connection is free again."""
        if not self.done:
            self.done = True
            if self._gen is not None:
                self._gen.close()
            self._conn._busy = False


#: ClientSettings without keys shared by the connections made with equal settings (weakly held:
#: an entry lives as long as a connection uses it)
_SHARED_SETTINGS: weakref.WeakValueDictionary[ClientSettings, ClientSettings] = \
    weakref.WeakValueDictionary()


def _shared_settings(s: ClientSettings) -> ClientSettings:
    bare = replace(s, keys=None)
    try:
        shared = _SHARED_SETTINGS.get(bare)
    except TypeError:  # an unhashable field value (e.g. a bytearray system title): keep it as given
        return s
    if shared is None:
        _SHARED_SETTINGS[bare] = shared = bare
    return shared


#: the usual negotiated PDU sizes, one int object each (a decoded 1024 is a new object per meter)
_PDU_SIZES = {n: n for n in (64, 128, 256, 512, 1024, 1200, 2048, 4096, 8192, 0xFFFF)}

_new_exchange = object.__new__
_axdr_decode = axdr.decode
#: GET-Request-Normal without selective access: tag, choice, invoke-id, class, OBIS, attribute, 0
_GET_NORMAL = struct.Struct(">BBBHBBBBBBBB")
_ASSOCIATED = AssocState.ASSOCIATED
_GLOBAL = CipheringKind.GLOBAL


# --------------------------------------------------------------------------- the connection


class ClientConnection:
    """One client-side association (sans-I/O).  Per-meter state is kept small (``__slots__``)."""

    __slots__ = (
        "_busy",
        "_cipher",
        "_ciphered",
        "_iid",
        "_kind",
        "_random",
        "_settings",
        "_state",
        "negotiated_conformance",
        "server_max_pdu",
        "server_system_title",
        "transitions",
    )

    def __init__(self, settings: ClientSettings | None = None, *,
                 random: Callable[[int], bytes] = os.urandom) -> None:
        s = settings if settings is not None else ClientSettings()
        needs_keys = s.ciphering is not None or s.mechanism == MechanismName.HIGH_GMAC
        if needs_keys and (s.keys is None or s.system_title is None):
            raise LocalProtocolError("ciphering and HLS-5 need keys and a client system title")
        if s.mechanism == MechanismName.LOW and not s.password:
            raise LocalProtocolError("LLS needs a password")
        if s.mechanism not in (MechanismName.LOWEST, MechanismName.LOW, MechanismName.HIGH_GMAC):
            raise LocalProtocolError(f"authentication mechanism {s.mechanism!r} not supported")
        kind = None if s.ciphering is None else CipheringKind(s.ciphering)
        if kind is not None and kind.general:
            raise LocalProtocolError("use glo or ded ciphering")
        if kind is CipheringKind.DEDICATED and s.dedicated_key is None:
            raise LocalProtocolError("ded ciphering needs a dedicated key")
        self._settings = s
        self._kind = kind
        self._cipher: CipheringContext | None = None
        if s.keys is not None and s.system_title is not None:
            keys = s.keys if s.dedicated_key is None else s.keys.with_dedicated_key(s.dedicated_key)
            self._cipher = CipheringContext(
                keys, own_system_title=s.system_title, peer_system_title=s.server_system_title,
                invocation_counter=s.invocation_counter, security_control=s.security_control)
            if keys is s.keys:
                # the keys live in the ciphering context; what else the settings say is usually
                # the same for every meter of a head-end: keep one shared copy without keys
                self._settings = _shared_settings(s)
        self._ciphered = False
        self._iid = 0
        self._busy = False
        self._random = random
        self.negotiated_conformance: Conformance = s.conformance
        self.server_max_pdu = 0xFFFF
        self.server_system_title: bytes | None = s.server_system_title
        self.transitions: list[tuple[AssocState, AssocInput, AssocState]] | None = None
        self._state = AssocState.IDLE
        if s.pre_established:
            self._state = AssocState.ASSOCIATED
            self._ciphered = kind is not None

    # -- state --------------------------------------------------------------------------
    @property
    def settings(self) -> ClientSettings:
        """The settings this connection was made with (equal to those given)."""
        s = self._settings
        if s.keys is None and self._cipher is not None:
            return replace(s, keys=self._cipher.keys)
        return s

    @property
    def state(self) -> AssocState:
        return self._state

    @property
    def cipher(self) -> CipheringContext | None:
        """The suite 0 context (None without keys)."""
        return self._cipher

    def _fire(self, inp: AssocInput) -> None:
        row = ASSOCIATION_TRANSITIONS[self._state]
        new = row.get(inp)
        if new is None:
            raise LocalProtocolError(f"{inp.value} not allowed in state {self._state.value}")
        if self.transitions is not None:
            self.transitions.append((self._state, inp, new))
        self._state = new

    def reset(self) -> None:
        """Forget the association (e.g. after a link failure); ciphering counters are kept."""
        self._fire(AssocInput.RESET)
        self._busy = False
        self._ciphered = False

    def _begin(self, gen: _Gen, *, need_association: bool = True) -> Exchange:
        if self._busy:
            raise LocalProtocolError("another exchange is in progress on this association")
        if need_association and self._state is not AssocState.ASSOCIATED:
            raise LocalProtocolError(f"not associated (state {self._state.value})")
        self._busy = True
        return Exchange(self, gen)

    def _next_iid(self) -> int:
        self._iid = (self._iid + 1) & 0x0F
        return self._iid | 0x40 | (0x80 if self._settings.high_priority else 0)

    # -- ciphering --------------------------------------------------------------------------
    def _wrap(self, apdu: Apdu) -> bytes:
        plain = apdu.to_bytes()
        if self._ciphered and apdu.TAG not in (0x60, 0x62):
            assert self._cipher is not None and self._kind is not None
            return self._cipher.protect(plain, kind=self._kind)
        return plain

    def _unwrap(self, data: bytes) -> Apdu:
        return decode_apdu(self._unwrap_bytes(data))

    def _unwrap_bytes(self, data: bytes) -> bytes:
        """The plain APDU bytes of an answer: deciphered, or checked to be allowed in clear."""
        if not data:
            raise DecodeError("empty APDU", field="apdu")
        if data[0] in _CIPHERED_TAGS:
            cipher = self._cipher
            if cipher is None:
                raise SecurityError("ciphered APDU received but no keys are configured")
            if cipher.peer_system_title is None:
                raise SecurityError("ciphered APDU received before the server's system title is known")
            return cipher.unprotect(data)
        if self._ciphered and data[0] not in _PLAIN_ALLOWED:
            apdu = decode_apdu(data)
            raise SecurityError(f"unciphered {apdu.NAME} in a ciphered association")
        return data

    # -- COSEM-OPEN -------------------------------------------------------------------------
    def connect(self) -> Exchange:
        """COSEM-OPEN: AARQ → AARE (→ HLS-5 pass 3/4).  Result: the InitiateResponse."""
        if self._state is AssocState.ASSOCIATED and self._settings.pre_established:
            raise LocalProtocolError("pre-established association: no COSEM-OPEN needed")
        return self._begin(self._connect_gen(), need_association=False)

    def _connect_gen(self) -> _Gen:
        s = self._settings
        self._fire(AssocInput.SEND_AARQ)
        self._ciphered = False
        initiate = InitiateRequest(s.conformance, s.max_receive_pdu_size, 6,
                                   s.dedicated_key if self._kind is CipheringKind.DEDICATED else None)
        user_info: Apdu = initiate
        if self._kind is not None:
            assert self._cipher is not None
            user_info = decode_apdu(self._cipher.protect(initiate.to_bytes(), kind=CipheringKind.GLOBAL))
        challenge: bytes | None = None
        auth: bytes | None = None
        if s.mechanism == MechanismName.LOW:
            auth = s.password
        elif s.mechanism == MechanismName.HIGH_GMAC:
            challenge = self._random(16)
            auth = challenge
        aarq = AARQ(
            application_context_name=(ApplicationContextName.LOGICAL_NAME_WITH_CIPHERING
                                      if self._kind is not None else ApplicationContextName.LOGICAL_NAME),
            user_information=user_info,
            sender_acse_requirements=auth is not None,
            mechanism_name=None if s.mechanism == MechanismName.LOWEST else s.mechanism,
            calling_authentication_value=auth,
            calling_ap_title=s.system_title if self._cipher is not None else None,
        )
        try:
            resp = yield aarq
            if isinstance(resp, ExceptionResponse):
                raise ExceptionResponseError(resp)
            if not isinstance(resp, AARE):
                raise RemoteProtocolError(f"expected an AARE, got {resp.NAME}")
            info = resp.user_information
            if resp.result != AssociationResult.ACCEPTED:
                self._fire(AssocInput.AARE_REJECTED)
                if isinstance(info, ConfirmedServiceError):
                    raise ConfirmedServiceFailure(info)
                cls = (AuthenticationRejected if resp.diagnostic in (
                    AcseServiceUserDiagnostic.AUTHENTICATION_FAILURE,
                    AcseServiceUserDiagnostic.AUTHENTICATION_REQUIRED) and isinstance(
                    resp.diagnostic, AcseServiceUserDiagnostic) else AssociationRejected)
                raise cls(resp.result, resp.diagnostic)
            if resp.responding_ap_title is not None and self._cipher is not None:
                if (s.server_system_title is not None
                        and resp.responding_ap_title != s.server_system_title):
                    raise SecurityError("the server's system title differs from the expected one")
                self.server_system_title = resp.responding_ap_title
                self._cipher.peer_system_title = resp.responding_ap_title
            if isinstance(info, CipheredApdu):
                if self._cipher is None or self._cipher.peer_system_title is None:
                    raise SecurityError("ciphered InitiateResponse without keys or server system title")
                info = decode_apdu(self._cipher.unprotect(info.to_bytes()))
            if isinstance(info, ConfirmedServiceError):
                raise ConfirmedServiceFailure(info)
            if not isinstance(info, InitiateResponse):
                raise RemoteProtocolError("AARE carries no InitiateResponse")
            if self._kind is not None and resp.application_context_name != \
                    ApplicationContextName.LOGICAL_NAME_WITH_CIPHERING:
                raise SecurityError("the server did not accept the ciphered application context")
            self.negotiated_conformance = Conformance(int(info.negotiated_conformance)
                                                      & int(s.conformance))
            size = info.server_max_receive_pdu_size or 0xFFFF
            self.server_max_pdu = _PDU_SIZES.get(size, size)
            self._ciphered = self._kind is not None
            if s.mechanism != MechanismName.HIGH_GMAC:
                self._fire(AssocInput.AARE_ACCEPTED)
                return info
            # HLS-5: pass 3 (our f(StoC)) and pass 4 (the server's f(CtoS))
            stoc = resp.responding_authentication_value
            if not stoc:
                raise RemoteProtocolError("HLS-5 AARE carries no server challenge")
            if self._cipher is None or self._cipher.peer_system_title is None:
                raise SecurityError("HLS-5 needs the server's system title")
            self._fire(AssocInput.AARE_NEEDS_HLS)
            reply = self._cipher.hls_response(stoc)
            iid = self._next_iid()
            ans = yield ActionRequestNormal(iid, MethodDescriptor(15, CURRENT_ASSOCIATION, 1),
                                            axdr.OctetString(reply))
            ans = yield from self._action_answer(iid, ans)
            if not isinstance(ans, ActionResponseNormal):
                raise RemoteProtocolError(f"expected an ACTION-Response, got {ans.NAME}")
            if ans.result != ActionResult.SUCCESS:
                raise AuthenticationRejected(AssociationResult.REJECTED_PERMANENT,
                                             AcseServiceUserDiagnostic.AUTHENTICATION_FAILURE)
            rp = ans.return_parameters
            if not isinstance(rp, (bytes, bytearray)):
                raise RemoteProtocolError("HLS-5 pass 4 carries no f(CtoS)")
            assert challenge is not None
            # the fresh challenge is the replay protection here; the IC inside f(CtoS) precedes
            # the one of the ciphered APDU carrying it, so it is not run through the IC check
            assert self._cipher.peer_system_title is not None
            verify_hls_gmac(self._cipher.keys, self._cipher.peer_system_title, challenge, bytes(rp),
                            stats=self._cipher.stats)
            self._fire(AssocInput.HLS_VERIFIED)
            return info
        except BaseException:
            if self._state in (AssocState.AWAITING_AARE, AssocState.AWAITING_HLS):
                self._fire(AssocInput.FAILURE)
            self._ciphered = False
            raise

    # -- COSEM-RELEASE ------------------------------------------------------------------------
    def release(self) -> Exchange:
        """COSEM-RELEASE: RLRQ → RLRE.  Result: the RLRE."""
        return self._begin(self._release_gen())

    def _release_gen(self) -> _Gen:
        self._fire(AssocInput.SEND_RLRQ)
        try:
            resp = yield RLRQ(ReleaseRequestReason.NORMAL)
            if isinstance(resp, ExceptionResponse):
                raise ExceptionResponseError(resp)
            if not isinstance(resp, RLRE):
                raise RemoteProtocolError(f"expected an RLRE, got {resp.NAME}")
        except BaseException:
            self._fire(AssocInput.FAILURE)
            raise
        self._fire(AssocInput.RLRE_RECEIVED)
        self._ciphered = False
        return resp

    # -- GET ----------------------------------------------------------------------------------
    @staticmethod
    def _check_iid(apdu: Apdu, iid: int) -> None:
        got = getattr(apdu, "invoke_id_and_priority", None)
        if got is not None and (got & 0x0F) != (iid & 0x0F):
            raise RemoteProtocolError(f"invoke-id {got & 0x0F} answers none of ours ({iid & 0x0F})")

    def _raise_common(self, apdu: Apdu) -> None:
        if isinstance(apdu, ExceptionResponse):
            raise ExceptionResponseError(apdu)
        if isinstance(apdu, ConfirmedServiceError):
            raise ConfirmedServiceFailure(apdu)

    def get(self, class_id: int, obis: Obis, attribute: int,
            selection: AccessSelector | None = None, *,
            on_block: Callable[[int, bytes], None] | None = None) -> Exchange:
        """GET one attribute; result: the Data value (DataAccessError on failure).
        ``on_block(bytes_so_far, first_block)`` reports the progress of a block transfer."""
        if (selection is None and type(class_id) is int and type(attribute) is int
                and type(obis) is Obis and 0 <= class_id <= 0xFFFF and 0 <= attribute <= 0xFF):
            # hot path: the GET-Request-Normal is packed in one go (the same bytes as
            # GetRequestNormal.to_bytes); the answer is read by Exchange.receive
            if self._busy:
                raise LocalProtocolError("another exchange is in progress on this association")
            if self._state is not _ASSOCIATED:
                raise LocalProtocolError(f"not associated (state {self._state.value})")
            self._iid = iid = (self._iid + 1) & 0x0F  # _next_iid
            iid |= 0xC0 if self._settings.high_priority else 0x40
            plain = _GET_NORMAL.pack(0xC0, 1, iid, class_id, obis.a, obis.b, obis.c, obis.d, obis.e,
                                     obis.f, attribute, 0)
            self._busy = True
            try:
                if self._ciphered:
                    assert self._cipher is not None and self._kind is not None
                    if self._kind is _GLOBAL:
                        plain = self._cipher.protect(plain)  # the default kind, without keywords
                    else:
                        plain = self._cipher.protect(plain, kind=self._kind)
            except BaseException:
                self._busy = False
                raise
            ex = _new_exchange(Exchange)
            ex._conn = self
            ex._gen = None
            ex._get = (iid, class_id, obis, attribute, on_block)
            ex.result = None
            ex.done = False
            ex.request = plain
            return ex
        return self._begin(self._get_gen(AttributeDescriptor(class_id, obis, attribute), selection,
                                         on_block))

    def _blocks(self, iid: int, first: GetResponseWithDatablock,
                on_block: Callable[[int, bytes], None] | None) -> _Gen:
        coll = GetBlockCollector(max_bytes=16 << 20)
        resp: Apdu = first
        received = 0
        first_chunk = first.raw_data
        while True:
            assert isinstance(resp, GetResponseWithDatablock)
            if resp.error is not None:
                raise DataAccessError(resp.error, f"block {resp.block_number}")
            if coll.receive(resp):
                return coll.data
            if coll.last_block_number >= MAX_BLOCKS:
                raise BlockSequenceError(f"more than {MAX_BLOCKS} blocks")
            received += len(resp.raw_data)
            if on_block is not None:
                on_block(received, first_chunk)
            resp = yield coll.next_request(iid)
            self._check_iid(resp, iid)
            self._raise_common(resp)
            if not isinstance(resp, GetResponseWithDatablock):
                raise RemoteProtocolError(f"expected a GET-Response-With-Datablock, got {resp.NAME}")

    def _get_gen(self, desc: AttributeDescriptor, sel: AccessSelector | None,
                 on_block: Callable[[int, bytes], None] | None = None) -> _Gen:
        iid = self._next_iid()
        resp = yield GetRequestNormal(iid, desc, sel)
        return (yield from self._get_answer(desc, iid, resp, on_block))

    def _get_answer(self, desc: AttributeDescriptor, iid: int, resp: Apdu,
                    on_block: Callable[[int, bytes], None] | None) -> _Gen:
        """The answer to a GET-Request-Normal (then the block transfer, if any)."""
        self._check_iid(resp, iid)
        self._raise_common(resp)
        what = f"{desc.instance_id} attribute {desc.attribute_id}"
        if isinstance(resp, GetResponseNormal):
            if isinstance(resp.result, DataAccessResult):
                raise DataAccessError(resp.result, what)
            return resp.result
        if isinstance(resp, GetResponseWithDatablock):
            raw = yield from self._blocks(iid, resp, on_block)
            return axdr.decode_all(raw)
        raise RemoteProtocolError(f"unexpected answer to GET: {resp.NAME}")

    def get_with_list(self, refs: Sequence[AttributeRef]) -> Exchange:
        """GET-with-list; result: a list of Data values or DataAccessResult per attribute."""
        if not refs:
            raise LocalProtocolError("empty attribute list")
        return self._begin(self._get_list_gen(refs))

    def _get_list_gen(self, refs: Sequence[AttributeRef]) -> _Gen:
        iid = self._next_iid()
        resp = yield GetRequestWithList(iid, tuple(
            AttributeDescriptorWithSelection(r.descriptor(), r.selection) for r in refs))
        self._check_iid(resp, iid)
        self._raise_common(resp)
        if isinstance(resp, GetResponseWithList):
            results = list(resp.results)
        elif isinstance(resp, GetResponseWithDatablock):
            raw = yield from self._blocks(iid, resp, None)
            results = decode_data_results(raw)
        elif isinstance(resp, GetResponseNormal) and isinstance(resp.result, DataAccessResult):
            raise DataAccessError(resp.result, "get-with-list")
        else:
            raise RemoteProtocolError(f"unexpected answer to GET-with-list: {resp.NAME}")
        if len(results) != len(refs):
            raise RemoteProtocolError(f"{len(results)} results for {len(refs)} attributes")
        return results

    # -- SET ----------------------------------------------------------------------------------
    def _block_size(self) -> int:
        return max(16, min(self.server_max_pdu, 0xFFFF) - BLOCK_HEADER_ROOM
                   - (CIPHERING_OVERHEAD if self._ciphered else 0))

    def _fits(self, n: int) -> bool:
        return n + (CIPHERING_OVERHEAD if self._ciphered else 0) <= self.server_max_pdu

    def set(self, class_id: int, obis: Obis, attribute: int, value: Any,
            selection: AccessSelector | None = None) -> Exchange:
        """SET one attribute (with datablocks when it exceeds the server's PDU size)."""
        return self._begin(self._set_gen(AttributeDescriptor(class_id, obis, attribute), value,
                                         selection))

    def _set_gen(self, desc: AttributeDescriptor, value: Any, sel: AccessSelector | None) -> _Gen:
        iid = self._next_iid()
        what = f"{desc.instance_id} attribute {desc.attribute_id}"
        req = SetRequestNormal(iid, desc, value, sel)
        if self._fits(len(req.to_bytes())):
            resp = yield req
            self._check_iid(resp, iid)
            self._raise_common(resp)
            if not isinstance(resp, SetResponseNormal):
                raise RemoteProtocolError(f"unexpected answer to SET: {resp.NAME}")
            if resp.result != DataAccessResult.SUCCESS:
                raise DataAccessError(resp.result, what)
            return None
        blocks = set_request_blocks(iid, desc, axdr.encode(value), self._block_size(), sel)
        result = yield from self._send_set_blocks(iid, blocks)
        if isinstance(result, tuple):
            raise RemoteProtocolError("with-list answer to a single SET")
        if result != DataAccessResult.SUCCESS:
            raise DataAccessError(result, what)
        return None

    def _send_set_blocks(self, iid: int, blocks: list[Apdu]) -> _Gen:
        for i, blk in enumerate(blocks):
            resp = yield blk
            self._check_iid(resp, iid)
            self._raise_common(resp)
            num = i + 1
            last = i == len(blocks) - 1
            if isinstance(resp, SetResponseDatablock) and not last:
                if resp.block_number != num:
                    raise RemoteProtocolError(f"server acknowledged block {resp.block_number}, sent {num}")
                continue
            if isinstance(resp, SetResponseLastDatablock):
                return resp.result
            if isinstance(resp, SetResponseLastDatablockWithList):
                return tuple(resp.results)
            if isinstance(resp, SetResponseNormal):  # server aborted the transfer
                return resp.result
            raise RemoteProtocolError(f"unexpected answer to SET block {num}: {resp.NAME}")
        raise RemoteProtocolError("SET with datablocks ended without a final answer")

    def set_with_list(self, items: Sequence[tuple[AttributeRef, Any]]) -> Exchange:
        """SET-with-list; result: a list of DataAccessResult."""
        if not items:
            raise LocalProtocolError("empty attribute list")
        return self._begin(self._set_list_gen(items))

    def _set_list_gen(self, items: Sequence[tuple[AttributeRef, Any]]) -> _Gen:
        iid = self._next_iid()
        attrs = tuple(AttributeDescriptorWithSelection(r.descriptor(), r.selection) for r, _ in items)
        values = tuple(v for _, v in items)
        req = SetRequestWithList(iid, attrs, values)
        if self._fits(len(req.to_bytes())):
            resp = yield req
            self._check_iid(resp, iid)
            self._raise_common(resp)
            if not isinstance(resp, SetResponseWithList):
                raise RemoteProtocolError(f"unexpected answer to SET-with-list: {resp.NAME}")
            return list(resp.results)
        blocks: list[Apdu] = []
        for last, num, chunk in split_blocks(_data_sequence(values), self._block_size()):
            if num == 1:
                blocks.append(SetRequestWithListAndFirstDatablock(iid, attrs, last, num, chunk))
            else:
                blocks.append(SetRequestWithDatablock(iid, last, num, chunk))
        result = yield from self._send_set_blocks(iid, blocks)
        if not isinstance(result, tuple):
            return [result] * len(items)
        return list(result)

    # -- ACTION --------------------------------------------------------------------------------
    def action(self, class_id: int, obis: Obis, method: int, parameter: Any = ABSENT) -> Exchange:
        """ACTION; result: the return Data or None (ActionError on failure)."""
        return self._begin(self._action_gen(MethodDescriptor(class_id, obis, method), parameter))

    def _action_gen(self, desc: MethodDescriptor, parameter: Any) -> _Gen:
        iid = self._next_iid()
        what = f"{desc.instance_id} method {desc.method_id}"
        req = ActionRequestNormal(iid, desc, parameter)
        if self._fits(len(req.to_bytes())):
            resp = yield req
        else:
            raw = axdr.encode(None if parameter is ABSENT else parameter)
            blocks = action_request_blocks(iid, desc, raw, self._block_size())
            resp = None
            for i, blk in enumerate(blocks):
                resp = yield blk
                self._check_iid(resp, iid)
                self._raise_common(resp)
                if i < len(blocks) - 1:
                    if not isinstance(resp, ActionResponseNextPblock) or resp.block_number != i + 1:
                        if isinstance(resp, ActionResponseNormal):
                            break  # the server aborted
                        raise RemoteProtocolError(f"unexpected answer to ACTION block {i + 1}")
        assert resp is not None
        resp = yield from self._action_answer(iid, resp)
        if not isinstance(resp, ActionResponseNormal):
            raise RemoteProtocolError(f"unexpected answer to ACTION: {resp.NAME}")
        if resp.result != ActionResult.SUCCESS:
            raise ActionError(resp.result, what)
        rp = resp.return_parameters
        if rp is ABSENT:
            return None
        if isinstance(rp, DataAccessResult):
            raise DataAccessError(rp, what)
        return rp

    # -- unconfirmed (e.g. broadcast over UNACKD_RPT) --------------------------------------
    def unconfirmed_set(self, class_id: int, obis: Obis, attribute: int, value: Any) -> bytes:
        """A SET-Request-Normal with the service-class bit cleared: the server acts and does
        not answer.  Returns the (ciphered when applicable) APDU to send with ``send``."""
        if self._state is not AssocState.ASSOCIATED:
            raise LocalProtocolError(f"not associated (state {self._state.value})")
        iid = self._next_iid() & ~0x40
        return self._wrap(SetRequestNormal(iid, AttributeDescriptor(class_id, obis, attribute), value))

    def unconfirmed_action(self, class_id: int, obis: Obis, method: int, parameter: Any = ABSENT) -> bytes:
        """An ACTION-Request-Normal with the service-class bit cleared (no answer)."""
        if self._state is not AssocState.ASSOCIATED:
            raise LocalProtocolError(f"not associated (state {self._state.value})")
        iid = self._next_iid() & ~0x40
        return self._wrap(ActionRequestNormal(iid, MethodDescriptor(class_id, obis, method), parameter))

    def _action_answer(self, iid: int, resp: Apdu) -> _Gen:
        """Check an ACTION answer; collect ACTION-Response-With-Pblock blocks into one."""
        self._check_iid(resp, iid)
        self._raise_common(resp)
        if isinstance(resp, ActionResponseWithPblock):
            coll = DataBlockCollector(max_bytes=16 << 20)
            while not coll.add(resp.last_block, resp.block_number, resp.raw_data):
                if coll.last_block_number >= MAX_BLOCKS:
                    raise BlockSequenceError(f"more than {MAX_BLOCKS} blocks")
                resp = yield ActionRequestNextPblock(iid, coll.last_block_number)
                self._check_iid(resp, iid)
                self._raise_common(resp)
                if not isinstance(resp, ActionResponseWithPblock):
                    raise RemoteProtocolError(f"expected ACTION-Response-With-Pblock, got {resp.NAME}")
            item = _decode_action_item(coll.data)
            return ActionResponseNormal(iid, item.result, item.return_parameters)
        return resp

    def action_with_list(self, items: Sequence[tuple[MethodRef, Any]]) -> Exchange:
        """ACTION-with-list; result: a list of ActionResponseItem."""
        if not items:
            raise LocalProtocolError("empty method list")
        return self._begin(self._action_list_gen(items))

    def _action_list_gen(self, items: Sequence[tuple[MethodRef, Any]]) -> _Gen:
        iid = self._next_iid()
        resp = yield ActionRequestWithList(
            iid, tuple(MethodDescriptor(m.class_id, m.obis, m.method) for m, _ in items),
            tuple(None if p is ABSENT else p for _, p in items))
        self._check_iid(resp, iid)
        self._raise_common(resp)
        if not isinstance(resp, ActionResponseWithList):
            raise RemoteProtocolError(f"unexpected answer to ACTION-with-list: {resp.NAME}")
        return list(resp.results)


def _decode_action_item(raw: bytes) -> ActionResponseItem:
    """Action-Response-With-Optional-Data carried in pblocks."""
    if len(raw) < 2:
        raise DecodeError("truncated", field="action_response_pblock")
    result = ActionResult(raw[0])
    if raw[1] == 0:
        if len(raw) != 2:
            raise DecodeError("trailing bytes", field="action_response_pblock", offset=2)
        return ActionResponseItem(result)
    if raw[1] != 1 or len(raw) < 3:
        raise DecodeError("bad OPTIONAL flag", field="action_response_pblock", offset=1)
    if raw[2] == 0:
        return ActionResponseItem(result, axdr.decode_all(raw[3:]))
    if raw[2] == 1 and len(raw) == 4:
        return ActionResponseItem(result, DataAccessResult(raw[3]))
    raise DecodeError("bad Get-Data-Result", field="action_response_pblock", offset=2)



def guess_class_id(obis: Obis) -> int | None:
    """The usual interface class of well-known OBIS codes (IEC 62056-6-1), or None.

    Used when the caller does not name a class; a wrong guess is answered by the server
    with object-class-inconsistent."""
    a, c, d, e = obis.a, obis.c, obis.d, obis.e
    if (a, c, d, e) == (0, 1, 0, 0):
        return 8
    if a == 0 and c == 40 and d == 0:
        return 15
    if a == 0 and c == 43 and d == 0:
        return 64
    if a == 0 and c == 44 and d == 0:
        return 18
    if a == 0 and (c, d) == (96, 3) and e == 10:
        return 70
    if a == 0 and c == 32 and d in (0, 1, 2, 3) and e == 0:
        return 130 + d
    if a == 0 and c == 65:
        return 26
    if c == 99 and d in (1, 2, 98, 99):
        return 7
    if a == 0 and (c, d) == (42, 0):
        return 1
    if a != 0 and 1 <= c <= 89 and d in (7, 8, 9, 29):
        return 3
    if a != 0 and 1 <= c <= 89 and d in (4, 5, 14, 15, 24, 25):
        return 5
    return None
