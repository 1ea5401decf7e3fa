"""Sans-I/O COSEM server: associations and LN services over a set of COSEM objects.

IEC 62056-5-3 / Green Book §9.3-9.4 (server side): AARQ/AARE with lowest security, LLS
and HLS-5 (GMAC, pass 3/4 via the current Association LN's reply_to_hls_authentication),
pre-established associations, suite 0 glo/ded ciphering, RLRQ/RLRE, GET/SET/ACTION normal
and with-list, block transfer in both directions, selective access (handed to the objects,
e.g. profile generic range/entry access).  One :class:`ServerSession` per client SAP, with
the server-side association state table :data:`SERVER_TRANSITIONS`.

:meth:`CosemServer.handle` takes the request APDU, the client SAP and ``now`` (POSIX
seconds; sans-I/O) and returns the response APDU.  :meth:`CosemServer.handler_for` binds a
client SAP and the injected clock into an :data:`~dlms14908.link.ApduHandler`.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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
    ReleaseResponseReason,
)
from .client import CURRENT_ASSOCIATION, encode_data_results
from .cosem import AttributeAccess, CosemAccessError, CosemObject, MethodAccess
from .errors import DecodeError, ProtocolError, ReplayError, SecurityError
from .link import ApduHandler
from .obis import Obis
from .xdlms import (
    ABSENT,
    ActionRequestNextPblock,
    ActionRequestNormal,
    ActionRequestWithFirstPblock,
    ActionRequestWithList,
    ActionRequestWithListAndFirstPblock,
    ActionRequestWithPblock,
    ActionResponseItem,
    ActionResponseNextPblock,
    ActionResponseNormal,
    ActionResponseWithList,
    ActionResponseWithPblock,
    ActionResult,
    Apdu,
    AttributeDescriptor,
    CipheredApdu,
    ConfirmedServiceError,
    ConfirmedServiceErrorChoice,
    Conformance,
    DataAccessResult,
    ExceptionResponse,
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDatablock,
    GetResponseWithList,
    InitiateRequest,
    InitiateResponse,
    MethodDescriptor,
    ServiceErrorCode,
    ServiceErrorType,
    SetRequestNormal,
    SetRequestWithDatablock,
    SetRequestWithFirstDatablock,
    SetRequestWithList,
    SetRequestWithListAndFirstDatablock,
    SetResponseDatablock,
    SetResponseLastDatablock,
    SetResponseLastDatablockWithList,
    SetResponseNormal,
    SetResponseWithList,
    StateError,
    decode_apdu,
    split_blocks,
)
from .xdlms.blocks import BlockSequenceError, DataBlockCollector
from .xdlms.ciphering import (
    CipheringContext,
    CipheringKind,
    SecurityKeys,
    is_ciphered_tag,
    verify_hls_gmac,
    verify_lls_password,
)

__all__ = [
    "FULL_ACCESS",
    "SERVER_CONFORMANCE",
    "SERVER_TRANSITIONS",
    "AccessPolicy",
    "AssociationConfig",
    "CosemServer",
    "ServerInput",
    "ServerSession",
    "ServerState",
    "read_only",
]

#: what the server supports
SERVER_CONFORMANCE = (
    Conformance.GET | Conformance.SET | Conformance.ACTION | Conformance.SELECTIVE_ACCESS
    | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ | Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE
    | Conformance.BLOCK_TRANSFER_WITH_ACTION | Conformance.MULTIPLE_REFERENCES
    | Conformance.PRIORITY_MGMT_SUPPORTED
)

_OVERHEAD = 24 + 21  # GET/ACTION block header room + suite-0 ciphering

# access policy: object -> (attribute rights, method rights), or None = not visible
Rights = tuple[dict[int, AttributeAccess], dict[int, MethodAccess]]
AccessPolicy = Callable[[CosemObject], "Rights | None"]


def FULL_ACCESS(obj: CosemObject) -> Rights:
    """The object's own rights (management client)."""
    return obj.attribute_access, obj.method_access


def read_only(visible: Iterable[Obis | str] | None = None) -> AccessPolicy:
    """A policy that shows ``visible`` objects (all when None), readable attributes only,
    no methods (the public client's view)."""
    vis = None if visible is None else frozenset(Obis.coerce(v) for v in visible)

    def policy(obj: CosemObject) -> Rights | None:
        if vis is not None and obj.logical_name not in vis:
            return None
        attrs = {i: (AttributeAccess.READ_ONLY if a.readable else AttributeAccess.NO_ACCESS)
                 for i, a in obj.attribute_access.items()}
        return attrs, dict.fromkeys(obj.method_access, MethodAccess.NO_ACCESS)

    return policy


@dataclass
class AssociationConfig:
    """What the server accepts from one client SAP."""

    client_sap: int
    mechanisms: tuple[MechanismName, ...] = (MechanismName.LOWEST,)
    secret: bytes | None = field(default=None, repr=False)
    keys: SecurityKeys | None = None
    require_ciphering: bool = False
    access: AccessPolicy = FULL_ACCESS
    conformance: Conformance = SERVER_CONFORMANCE
    pre_established: bool = False
    #: the client's system title, needed for ciphering in a pre-established association
    client_system_title: bytes | None = None


class ServerState(enum.Enum):
    IDLE = "idle"
    AWAITING_HLS = "awaiting-hls-pass-3"
    ASSOCIATED = "associated"


class ServerInput(enum.Enum):
    AARQ_ACCEPTED = "aarq-accepted"
    AARQ_ACCEPTED_HLS = "aarq-accepted-hls-pending"
    AARQ_REJECTED = "aarq-rejected"
    HLS_VERIFIED = "hls-verified"
    HLS_FAILED = "hls-failed"
    RLRQ = "rlrq"


_S, _I = ServerState, ServerInput
#: server side of COSEM-OPEN / COSEM-RELEASE
SERVER_TRANSITIONS: dict[ServerState, dict[ServerInput, ServerState]] = {
    _S.IDLE: {_I.AARQ_ACCEPTED: _S.ASSOCIATED, _I.AARQ_ACCEPTED_HLS: _S.AWAITING_HLS,
              _I.AARQ_REJECTED: _S.IDLE, _I.RLRQ: _S.IDLE},
    _S.AWAITING_HLS: {_I.HLS_VERIFIED: _S.ASSOCIATED, _I.HLS_FAILED: _S.IDLE,
                      _I.AARQ_ACCEPTED: _S.ASSOCIATED, _I.AARQ_ACCEPTED_HLS: _S.AWAITING_HLS,
                      _I.AARQ_REJECTED: _S.IDLE, _I.RLRQ: _S.IDLE},
    _S.ASSOCIATED: {_I.AARQ_ACCEPTED: _S.ASSOCIATED, _I.AARQ_ACCEPTED_HLS: _S.AWAITING_HLS,
                    _I.AARQ_REJECTED: _S.IDLE, _I.RLRQ: _S.IDLE},
}
del _S, _I


class ServerSession:
    """Server-side state of the association with one client SAP."""

    __slots__ = (
        "action_blocks",
        "action_iid",
        "action_out",
        "cipher",
        "ciphered",
        "client_max_pdu",
        "client_system_title",
        "config",
        "conformance",
        "ctos",
        "get_blocks",
        "get_iid",
        "kind",
        "rights",
        "set_blocks",
        "state",
        "stoc",
    )

    def __init__(self, config: AssociationConfig) -> None:
        self.config = config
        self.state = ServerState.ASSOCIATED if config.pre_established else ServerState.IDLE
        self.cipher: CipheringContext | None = None
        self.ciphered = False
        self.kind = CipheringKind.GLOBAL
        self.conformance = config.conformance
        self.client_max_pdu = 1024
        self.stoc: bytes | None = None
        self.ctos: bytes | None = None
        self.client_system_title: bytes | None = None
        self.get_blocks: list[tuple[bool, int, bytes]] = []
        self.get_iid = 0
        self.set_blocks: tuple[Any, DataBlockCollector, int] | None = None
        self.action_blocks: tuple[Any, DataBlockCollector, int] | None = None
        self.action_out: list[tuple[bool, int, bytes]] = []
        self.action_iid = 0
        #: access rights per object (the policy's answer, cached; keyed by the object itself,
        #: whose hash is its identity: a replaced object is asked afresh)
        self.rights: dict[CosemObject, Rights | None] = {}

    def fire(self, inp: ServerInput) -> None:
        new = SERVER_TRANSITIONS[self.state].get(inp)
        if new is None:  # pragma: no cover - every row covers every reachable input
            raise ProtocolError(f"{inp.value} not allowed in state {self.state.value}")
        self.state = new

    def clear_transfers(self) -> None:
        self.get_blocks = []
        self.set_blocks = None
        self.action_blocks = None
        self.action_out = []


class _Reject(Exception):
    def __init__(self, result: AssociationResult, diag: AcseServiceUserDiagnostic) -> None:
        self.result = result
        self.diag = diag


class CosemServer:
    """A COSEM logical device: objects, association configurations, sessions."""

    def __init__(self, objects: Iterable[CosemObject], associations: Iterable[AssociationConfig], *,
                 system_title: bytes, clock: Callable[[], float],
                 max_receive_pdu_size: int = 1024,
                 random: Callable[[int], bytes] = os.urandom) -> None:
        self.objects: dict[Obis, CosemObject] = {}
        for o in objects:
            self.add(o)
        self.configs = {c.client_sap: c for c in associations}
        self.system_title = bytes(system_title)
        self.clock = clock
        self.max_receive_pdu_size = max_receive_pdu_size
        self.sessions: dict[int, ServerSession] = {}
        self._random = random
        #: logical names of GET requests seen, by their 6 octets (bounded; interned Obis keys
        #: make the object and rights lookups identity hits)
        self._obis_cache: dict[bytes, Obis] = {}
        self._handlers: dict[int, ApduHandler] = {}

    def add(self, obj: CosemObject) -> None:
        """Add (or replace) an object."""
        self.objects[obj.logical_name] = obj

    def session(self, client_sap: int) -> ServerSession | None:
        """The session of ``client_sap`` (created on first use), None for unknown SAPs."""
        s = self.sessions.get(client_sap)
        if s is None:
            cfg = self.configs.get(client_sap)
            if cfg is None:
                return None
            s = self.sessions[client_sap] = ServerSession(cfg)
            if cfg.pre_established and cfg.keys is not None and cfg.client_system_title is not None:
                s.cipher = CipheringContext(cfg.keys, own_system_title=self.system_title,
                                            peer_system_title=cfg.client_system_title)
                s.client_system_title = cfg.client_system_title
                s.ciphered = cfg.require_ciphering
        return s

    def handler_for(self, client_sap: int) -> ApduHandler:
        """An ApduHandler for one client SAP, timestamped with the server's clock (one per SAP:
        routing layers may ask for it with every APDU)."""
        handler = self._handlers.get(client_sap)
        if handler is None:
            def handler(apdu: bytes) -> bytes | None:
                return self._handle(apdu, client_sap, self.clock())

            self._handlers[client_sap] = handler
        return handler

    # ------------------------------------------------------------------ entry point
    def handle(self, data: bytes, *, client_sap: int, now: float | None = None) -> bytes | None:
        """One request APDU in, the response APDU out (None when nothing is to be sent)."""
        return self._handle(data, client_sap, self.clock() if now is None else now)

    def _handle(self, data: bytes, client_sap: int, now: float) -> bytes | None:
        sess = self.sessions.get(client_sap)
        if sess is None:
            sess = self.session(client_sap)
            if sess is None:
                return None  # no such client: the adaptation layer drops it
        was_ciphered = False
        cipher = sess.cipher
        try:
            if data and data[0] in _CIPHERED_TAGS:
                if cipher is None or sess.state is _IDLE:
                    return _exc(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.DECIPHERING_ERROR)
                try:
                    hdr_kind = _DEDICATED if data[0] in _DED_TAGS else _GLOBAL
                    data = cipher.unprotect(data)
                except ReplayError:
                    return ExceptionResponse(StateError.SERVICE_NOT_ALLOWED,
                                             ServiceErrorCode.INVOCATION_COUNTER_ERROR,
                                             cipher.receive.last_seen or 0).to_bytes()
                except (SecurityError, DecodeError):
                    return _exc(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.DECIPHERING_ERROR)
                was_ciphered = True
                sess.kind = hdr_kind
            if (len(data) == 13 and data[0] == 0xC0 and data[1] == 1 and data[12] == 0
                    and data[2] & 0x40 and type(data) is bytes
                    and sess.state is _ASSOCIATED and (was_ciphered or not sess.ciphered)):
                # hot path: a confirmed GET-Request-Normal without selective access (any 13
                # bytes of this shape decode; the general path gives the same answer)
                apdu = None
            else:
                apdu = decode_apdu(data)
        except DecodeError:
            return _exc(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.OTHER_REASON)
        if apdu is None:
            # GET-Request-Normal (13 bytes, no selective access) to the plain response bytes,
            # the same answer as _get_normal; _get_attribute(sess, class_id, obis, attribute,
            # None, now) is inlined for readable attributes of objects other than class 15
            if sess.get_blocks:
                sess.get_blocks = []
            iid = data[2]
            raw = data[5:11]
            cache = self._obis_cache
            obis = cache.get(raw)
            if obis is None:
                if len(cache) >= 4096:
                    cache.clear()
                obis = Obis(*raw)
                obj = self.objects.get(obis)
                if obj is not None and obj.logical_name == obis:
                    obis = obj.logical_name  # the table's own key: later lookups hit by identity
                cache[raw] = obis
            obj = self.objects.get(obis)
            v: Any = _OBJECT_UNDEFINED
            if obj is not None:
                rights = sess.rights.get(obj, _UNKNOWN)
                if rights is _UNKNOWN:
                    rights = sess.rights[obj] = sess.config.access(obj)
                if rights is not None:
                    class_id = (data[3] << 8) | data[4]
                    attribute = data[11]
                    if (obj.interface.class_id != class_id or class_id == 15
                            or rights[0].get(attribute, 0) not in _READABLE):
                        v = self._get_attribute(sess, class_id, obis, attribute, None, now)
                    else:
                        try:
                            v = obj.get(attribute, now=now)
                        except CosemAccessError as exc:
                            v = DataAccessResult(int(exc.result))
                        except ProtocolError:
                            v = DataAccessResult.OTHER_REASON
            if isinstance(v, DataAccessResult):
                out = bytes((0xC4, 1, iid, 1, v))
            else:
                try:
                    body = _axdr_encode(v)
                except Exception:  # noqa: BLE001 - the general encoder raises the named error
                    out = self._get_reply(sess, iid, v).to_bytes()
                else:
                    if len(body) + (25 if sess.ciphered else 4) <= sess.client_max_pdu:
                        out = _GET_RESPONSE_DATA[iid] + body
                    else:
                        out = self._start_get_blocks(sess, iid, body).to_bytes()
            if was_ciphered and sess.cipher is not None:
                if sess.kind is _GLOBAL:
                    return sess.cipher.protect(out)  # the default kind, without keywords
                return sess.cipher.protect(out, kind=sess.kind)
            return out
        if isinstance(apdu, AARQ):
            return self._aarq(sess, apdu).to_bytes()
        if isinstance(apdu, RLRQ):
            return self._rlrq(sess, apdu)
        if sess.state is ServerState.IDLE:
            return _exc(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.OPERATION_NOT_POSSIBLE)
        if sess.ciphered and not was_ciphered:
            return _exc(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.DECIPHERING_ERROR)
        if sess.state is ServerState.AWAITING_HLS:
            resp = self._hls_pass3(sess, apdu)
        else:
            handler = _DISPATCH.get(type(apdu))
            if handler is None:
                return _exc(StateError.SERVICE_UNKNOWN, ServiceErrorCode.SERVICE_NOT_SUPPORTED)
            resp = handler(self, sess, apdu, now)
            if not getattr(apdu, "invoke_id_and_priority", 0x40) & 0x40:
                return None  # unconfirmed service: acted upon, never answered
        out = resp.to_bytes()
        if was_ciphered and sess.cipher is not None:
            return sess.cipher.protect(out, kind=sess.kind)
        return out

    # ------------------------------------------------------------------ ACSE
    def _aarq(self, sess: ServerSession, aarq: AARQ) -> AARE:
        cfg = sess.config
        ctx = aarq.application_context_name
        sess.clear_transfers()
        sess.ciphered = False
        try:
            if ctx not in (ApplicationContextName.LOGICAL_NAME,
                           ApplicationContextName.LOGICAL_NAME_WITH_CIPHERING):
                raise _Reject(AssociationResult.REJECTED_PERMANENT,
                              AcseServiceUserDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED)
            ciphered = ctx == ApplicationContextName.LOGICAL_NAME_WITH_CIPHERING
            if (ciphered and cfg.keys is None) or (cfg.require_ciphering and not ciphered):
                raise _Reject(AssociationResult.REJECTED_PERMANENT,
                              AcseServiceUserDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED)
            mech = aarq.mechanism_name if aarq.mechanism_name is not None else MechanismName.LOWEST
            if mech not in cfg.mechanisms:
                raise _Reject(AssociationResult.REJECTED_PERMANENT,
                              AcseServiceUserDiagnostic.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED
                              if mech != MechanismName.LOWEST else
                              AcseServiceUserDiagnostic.AUTHENTICATION_MECHANISM_NAME_REQUIRED)
            if mech == MechanismName.LOW:
                try:
                    verify_lls_password(cfg.secret or b"", aarq.calling_authentication_value or b"")
                except SecurityError:
                    raise _Reject(AssociationResult.REJECTED_PERMANENT,
                                  AcseServiceUserDiagnostic.AUTHENTICATION_FAILURE) from None
            if ciphered or mech == MechanismName.HIGH_GMAC:
                if cfg.keys is None or aarq.calling_ap_title is None or len(aarq.calling_ap_title) != 8:
                    raise _Reject(AssociationResult.REJECTED_PERMANENT,
                                  AcseServiceUserDiagnostic.CALLING_AP_TITLE_NOT_RECOGNIZED)
                if sess.cipher is None:
                    sess.cipher = CipheringContext(cfg.keys, own_system_title=self.system_title,
                                                   peer_system_title=aarq.calling_ap_title)
                elif sess.cipher.peer_system_title != aarq.calling_ap_title:
                    sess.cipher.peer_system_title = aarq.calling_ap_title
                    sess.cipher.receive.last_seen = None
                sess.cipher.keys = cfg.keys
                sess.client_system_title = aarq.calling_ap_title
            info = aarq.user_information
            if isinstance(info, CipheredApdu):
                if not ciphered or sess.cipher is None:
                    raise _Reject(AssociationResult.REJECTED_PERMANENT,
                                  AcseServiceUserDiagnostic.NO_REASON_GIVEN)
                try:
                    info = decode_apdu(sess.cipher.unprotect(info.to_bytes()))
                except (SecurityError, DecodeError):
                    raise _Reject(AssociationResult.REJECTED_PERMANENT,
                                  AcseServiceUserDiagnostic.AUTHENTICATION_FAILURE) from None
            elif ciphered:
                raise _Reject(AssociationResult.REJECTED_PERMANENT,
                              AcseServiceUserDiagnostic.NO_REASON_GIVEN)
            if not isinstance(info, InitiateRequest):
                raise _Reject(AssociationResult.REJECTED_PERMANENT,
                              AcseServiceUserDiagnostic.NO_REASON_GIVEN)
        except _Reject as r:
            sess.fire(ServerInput.AARQ_REJECTED)
            return AARE(application_context_name=ctx, result=r.result, diagnostic=r.diag)
        err = None
        if info.proposed_dlms_version_number < 6:
            err = 1  # dlms-version-too-low
        elif info.client_max_receive_pdu_size and info.client_max_receive_pdu_size < 12:
            err = 3  # pdu-size-too-short
        elif not int(info.proposed_conformance) & int(cfg.conformance):
            err = 2  # incompatible-conformance
        if err is not None:
            sess.fire(ServerInput.AARQ_REJECTED)
            return AARE(application_context_name=ctx, result=AssociationResult.REJECTED_PERMANENT,
                        diagnostic=AcseServiceUserDiagnostic.NO_REASON_GIVEN,
                        user_information=ConfirmedServiceError(
                            ConfirmedServiceErrorChoice.INITIATE_ERROR, ServiceErrorType.INITIATE, err))
        if ciphered and sess.cipher is not None:
            keys = cfg.keys
            assert keys is not None
            sess.cipher.keys = keys.with_dedicated_key(info.dedicated_key) if info.dedicated_key else keys
        sess.conformance = Conformance(int(info.proposed_conformance) & int(cfg.conformance))
        sess.client_max_pdu = info.client_max_receive_pdu_size or 0xFFFF
        resp_info: Apdu = InitiateResponse(sess.conformance, self.max_receive_pdu_size, 6)
        if ciphered:
            assert sess.cipher is not None
            resp_info = decode_apdu(sess.cipher.protect(resp_info.to_bytes(), kind=CipheringKind.GLOBAL))
        hls = mech == MechanismName.HIGH_GMAC
        if hls:
            sess.ctos = aarq.calling_authentication_value or b""
            sess.stoc = self._random(16)
            sess.fire(ServerInput.AARQ_ACCEPTED_HLS)
        else:
            sess.fire(ServerInput.AARQ_ACCEPTED)
        sess.ciphered = ciphered
        return AARE(
            application_context_name=ctx, result=AssociationResult.ACCEPTED,
            diagnostic=(AcseServiceUserDiagnostic.AUTHENTICATION_REQUIRED if hls
                        else AcseServiceUserDiagnostic.NULL),
            user_information=resp_info,
            responder_acse_requirements=hls,
            mechanism_name=mech if hls else None,
            responding_authentication_value=sess.stoc if hls else None,
            responding_ap_title=self.system_title if (ciphered or hls) else None,
        )

    def _rlrq(self, sess: ServerSession, rlrq: RLRQ) -> bytes:
        sess.clear_transfers()
        if not sess.config.pre_established:
            sess.fire(ServerInput.RLRQ)
            sess.ciphered = False
        return RLRE(ReleaseResponseReason.NORMAL).to_bytes()

    def _hls_pass3(self, sess: ServerSession, apdu: Apdu) -> Apdu:
        ok = (isinstance(apdu, ActionRequestNormal) and apdu.method.class_id == 15
              and apdu.method.instance_id in (CURRENT_ASSOCIATION,) and apdu.method.method_id == 1
              and isinstance(apdu.parameters, bytes))
        if not ok:
            return ExceptionResponse(StateError.SERVICE_NOT_ALLOWED,
                                     ServiceErrorCode.OPERATION_NOT_POSSIBLE)
        assert isinstance(apdu, ActionRequestNormal) and sess.cipher is not None
        assert sess.stoc is not None and sess.ctos is not None
        try:
            # StoC is fresh; the IC in f(StoC) precedes the one of the APDU carrying it
            assert sess.cipher.peer_system_title is not None
            verify_hls_gmac(sess.cipher.keys, sess.cipher.peer_system_title, sess.stoc,
                            bytes(apdu.parameters), stats=sess.cipher.stats)
        except (SecurityError, DecodeError):
            sess.fire(ServerInput.HLS_FAILED)
            sess.ciphered = False
            return ActionResponseNormal(apdu.invoke_id_and_priority, ActionResult.OTHER_REASON)
        sess.fire(ServerInput.HLS_VERIFIED)
        reply = sess.cipher.hls_response(sess.ctos)
        return self._action_reply(sess, apdu.invoke_id_and_priority,
                                  ActionResponseItem(ActionResult.SUCCESS, axdr.OctetString(reply)))

    # ------------------------------------------------------------------ object access
    def _lookup(self, sess: ServerSession, class_id: int, obis: Obis
                ) -> tuple[CosemObject, Rights] | DataAccessResult:
        obj = self.objects.get(obis)
        if obj is None:
            return DataAccessResult.OBJECT_UNDEFINED
        rights = sess.rights.get(obj, _UNKNOWN)
        if rights is _UNKNOWN:
            rights = sess.rights[obj] = sess.config.access(obj)
        if rights is None:
            return DataAccessResult.OBJECT_UNDEFINED
        if obj.interface.class_id != class_id:
            return DataAccessResult.OBJECT_CLASS_INCONSISTENT
        return obj, rights

    def _get_value(self, sess: ServerSession, desc: AttributeDescriptor, sel: Any,
                   now: float) -> Any:
        return self._get_attribute(sess, desc.class_id, desc.instance_id, desc.attribute_id, sel, now)

    def _get_attribute(self, sess: ServerSession, class_id: int, obis: Obis, attribute: int,
                       sel: Any, now: float) -> Any:
        obj = self.objects.get(obis)
        if obj is None:
            return _OBJECT_UNDEFINED
        rights = sess.rights.get(obj, _UNKNOWN)
        if rights is _UNKNOWN:
            rights = sess.rights[obj] = sess.config.access(obj)
        if rights is None:
            return _OBJECT_UNDEFINED
        interface = obj.interface
        if interface.class_id != class_id:
            return DataAccessResult.OBJECT_CLASS_INCONSISTENT
        if rights[0].get(attribute, 0) not in _READABLE:  # AttributeAccess.readable
            if not interface.has_attribute(attribute):
                return _OBJECT_UNDEFINED
            return DataAccessResult.READ_WRITE_DENIED
        if class_id == 15 and obj.logical_name == CURRENT_ASSOCIATION:
            special = self._association_attribute(sess, attribute)
            if special is not None:
                return special
        try:
            return obj.get(attribute, selection=sel, now=now)
        except CosemAccessError as exc:
            return DataAccessResult(int(exc.result))
        except ProtocolError:
            return DataAccessResult.OTHER_REASON

    def _association_attribute(self, sess: ServerSession, attr: int) -> Any:
        if attr == 2:
            out = []
            for o in self.objects.values():
                rights = sess.config.access(o)
                if rights is None:
                    continue
                a, m = rights
                out.append(axdr.Structure([
                    axdr.LongUnsigned(o.interface.class_id), axdr.Unsigned(o.interface.version),
                    axdr.OctetString(bytes(o.logical_name)),
                    axdr.Structure([
                        axdr.Array(axdr.Structure([axdr.Integer(i), axdr.Enum(int(v)), None])
                                   for i, v in sorted(a.items())),
                        axdr.Array(axdr.Structure([axdr.Integer(i), axdr.Enum(int(v))])
                                   for i, v in sorted(m.items())),
                    ]),
                ]))
            return axdr.Array(out)
        if attr == 3:
            return axdr.Structure([axdr.Integer(sess.config.client_sap), axdr.LongUnsigned(1)])
        if attr == 8:
            return axdr.Enum({ServerState.IDLE: 0, ServerState.AWAITING_HLS: 1,
                              ServerState.ASSOCIATED: 2}[sess.state])
        return None

    def _set_value(self, sess: ServerSession, desc: AttributeDescriptor, sel: Any, value: Any,
                   now: float) -> DataAccessResult:
        found = self._lookup(sess, desc.class_id, desc.instance_id)
        if isinstance(found, DataAccessResult):
            return found
        obj, (attrs, _) = found
        if not attrs.get(desc.attribute_id, AttributeAccess.NO_ACCESS).writable:
            return DataAccessResult.READ_WRITE_DENIED
        try:
            obj.set(desc.attribute_id, value, selection=sel, now=now)
        except CosemAccessError as exc:
            return DataAccessResult(int(exc.result))
        except ProtocolError:
            return DataAccessResult.TYPE_UNMATCHED
        return DataAccessResult.SUCCESS

    def _invoke(self, sess: ServerSession, desc: MethodDescriptor, param: Any,
                now: float) -> ActionResponseItem:
        found = self._lookup(sess, desc.class_id, desc.instance_id)
        if isinstance(found, DataAccessResult):
            return ActionResponseItem(ActionResult(int(found)))
        obj, (_, methods) = found
        if methods.get(desc.method_id, MethodAccess.NO_ACCESS) == MethodAccess.NO_ACCESS:
            if not obj.interface.has_method(desc.method_id):
                return ActionResponseItem(ActionResult.OBJECT_UNDEFINED)
            return ActionResponseItem(ActionResult.READ_WRITE_DENIED)
        try:
            ret = obj.action(desc.method_id, None if param is ABSENT else param, now=now)
        except CosemAccessError as exc:
            return ActionResponseItem(ActionResult(int(exc.result)))
        except ProtocolError:
            return ActionResponseItem(ActionResult.OTHER_REASON)
        return ActionResponseItem(ActionResult.SUCCESS, ABSENT if ret is None else ret)

    def _block_size(self, sess: ServerSession) -> int:
        return max(16, sess.client_max_pdu - _OVERHEAD)

    def _fits(self, sess: ServerSession, n: int) -> bool:
        return n + (21 if sess.ciphered else 0) <= sess.client_max_pdu

    # ------------------------------------------------------------------ GET
    def _get_normal(self, sess: ServerSession, req: GetRequestNormal, now: float) -> Apdu:
        sess.get_blocks = []
        v = self._get_value(sess, req.attribute, req.access_selection, now)
        return self._get_reply(sess, req.invoke_id_and_priority, v)

    def _get_reply(self, sess: ServerSession, iid: int, v: Any) -> Apdu:
        resp = GetResponseNormal(iid, v)
        if isinstance(v, DataAccessResult):
            return resp
        raw = resp.to_bytes()
        if self._fits(sess, len(raw)):
            return resp
        return self._start_get_blocks(sess, iid, raw[4:])

    def _start_get_blocks(self, sess: ServerSession, iid: int, raw: bytes) -> Apdu:
        if not sess.conformance & Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ:
            return GetResponseNormal(iid, DataAccessResult.OTHER_REASON)
        blocks = split_blocks(raw, self._block_size(sess))
        last, num, chunk = blocks[0]
        sess.get_blocks = blocks[1:]
        sess.get_iid = iid
        return GetResponseWithDatablock(iid, last, num, chunk)

    def _get_next(self, sess: ServerSession, req: GetRequestNext, now: float) -> Apdu:
        iid = req.invoke_id_and_priority
        if not sess.get_blocks:
            return GetResponseWithDatablock(iid, True, req.block_number, b"",
                                            DataAccessResult.NO_LONG_GET_IN_PROGRESS)
        last, num, chunk = sess.get_blocks[0]
        if req.block_number != num - 1:
            sess.get_blocks = []
            return GetResponseWithDatablock(iid, True, req.block_number, b"",
                                            DataAccessResult.DATA_BLOCK_NUMBER_INVALID)
        del sess.get_blocks[0]
        return GetResponseWithDatablock(iid, last, num, chunk)

    def _get_list(self, sess: ServerSession, req: GetRequestWithList, now: float) -> Apdu:
        sess.get_blocks = []
        results = tuple(self._get_value(sess, a.attribute, a.access_selection, now)
                        for a in req.attributes)
        resp = GetResponseWithList(req.invoke_id_and_priority, results)
        raw = resp.to_bytes()
        if self._fits(sess, len(raw)):
            return resp
        return self._start_get_blocks(sess, req.invoke_id_and_priority, encode_data_results(results))

    # ------------------------------------------------------------------ SET
    def _set_normal(self, sess: ServerSession, req: SetRequestNormal, now: float) -> Apdu:
        sess.set_blocks = None
        return SetResponseNormal(req.invoke_id_and_priority,
                                 self._set_value(sess, req.attribute, req.access_selection,
                                                 req.value, now))

    def _set_list(self, sess: ServerSession, req: SetRequestWithList, now: float) -> Apdu:
        if len(req.values) != len(req.attributes):
            return _exc_apdu(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.OTHER_REASON)
        return SetResponseWithList(req.invoke_id_and_priority, tuple(
            self._set_value(sess, a.attribute, a.access_selection, v, now)
            for a, v in zip(req.attributes, req.values)))

    def _set_first(self, sess: ServerSession,
                   req: SetRequestWithFirstDatablock | SetRequestWithListAndFirstDatablock,
                   now: float) -> Apdu:
        coll = DataBlockCollector(max_bytes=1 << 20)
        target = req.attribute if isinstance(req, SetRequestWithFirstDatablock) else req.attributes
        sel = req.access_selection if isinstance(req, SetRequestWithFirstDatablock) else None
        sess.set_blocks = ((target, sel), coll, req.invoke_id_and_priority)
        return self._set_block(sess, req.invoke_id_and_priority, req.last_block, req.block_number,
                               req.raw_data, now)

    def _set_next(self, sess: ServerSession, req: SetRequestWithDatablock, now: float) -> Apdu:
        return self._set_block(sess, req.invoke_id_and_priority, req.last_block, req.block_number,
                               req.raw_data, now)

    def _set_block(self, sess: ServerSession, iid: int, last: bool, num: int, raw: bytes,
                   now: float) -> Apdu:
        if sess.set_blocks is None:
            return SetResponseNormal(iid, DataAccessResult.NO_LONG_SET_IN_PROGRESS)
        (target, sel), coll, _ = sess.set_blocks
        try:
            done = coll.add(last, num, raw)
        except BlockSequenceError:
            sess.set_blocks = None
            return SetResponseNormal(iid, DataAccessResult.DATA_BLOCK_NUMBER_INVALID)
        if not done:
            return SetResponseDatablock(iid, num)
        sess.set_blocks = None
        try:
            if isinstance(target, AttributeDescriptor):
                value = axdr.decode_all(coll.data)
            else:
                n, pos = axdr.decode_length(coll.data, 0)
                values = []
                for _ in range(n):
                    v, pos = axdr.decode(coll.data, pos)
                    values.append(v)
                if pos != len(coll.data) or len(values) != len(target):
                    raise DecodeError("value list does not match", field="values")
        except DecodeError:
            return SetResponseLastDatablock(iid, DataAccessResult.TYPE_UNMATCHED, num)
        if isinstance(target, AttributeDescriptor):
            return SetResponseLastDatablock(iid, self._set_value(sess, target, sel, value, now), num)
        return SetResponseLastDatablockWithList(iid, tuple(
            self._set_value(sess, a.attribute, a.access_selection, v, now)
            for a, v in zip(target, values)), num)

    # ------------------------------------------------------------------ ACTION
    def _action_reply(self, sess: ServerSession, iid: int, item: ActionResponseItem) -> Apdu:
        resp = ActionResponseNormal(iid, item.result, item.return_parameters)
        raw = resp.to_bytes()
        if self._fits(sess, len(raw)):
            return resp
        blocks = split_blocks(item.to_bytes(), self._block_size(sess))
        last, num, chunk = blocks[0]
        sess.action_out = blocks[1:]
        sess.action_iid = iid
        return ActionResponseWithPblock(iid, last, num, chunk)

    def _action_normal(self, sess: ServerSession, req: ActionRequestNormal, now: float) -> Apdu:
        sess.action_out = []
        if req.method.class_id == 15 and req.method.instance_id == CURRENT_ASSOCIATION \
                and req.method.method_id == 1:
            return ActionResponseNormal(req.invoke_id_and_priority, ActionResult.READ_WRITE_DENIED)
        return self._action_reply(sess, req.invoke_id_and_priority,
                                  self._invoke(sess, req.method, req.parameters, now))

    def _action_next(self, sess: ServerSession, req: ActionRequestNextPblock, now: float) -> Apdu:
        iid = req.invoke_id_and_priority
        if not sess.action_out or req.block_number != sess.action_out[0][1] - 1:
            sess.action_out = []
            return ActionResponseNormal(iid, ActionResult.NO_LONG_ACTION_IN_PROGRESS)
        last, num, chunk = sess.action_out.pop(0)
        return ActionResponseWithPblock(iid, last, num, chunk)

    def _action_list(self, sess: ServerSession, req: ActionRequestWithList, now: float) -> Apdu:
        if len(req.parameters) != len(req.methods):
            return _exc_apdu(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.OTHER_REASON)
        return ActionResponseWithList(req.invoke_id_and_priority, tuple(
            self._invoke(sess, m, p, now) for m, p in zip(req.methods, req.parameters)))

    def _action_first(self, sess: ServerSession,
                      req: ActionRequestWithFirstPblock | ActionRequestWithListAndFirstPblock,
                      now: float) -> Apdu:
        target = req.method if isinstance(req, ActionRequestWithFirstPblock) else req.methods
        sess.action_blocks = (target, DataBlockCollector(max_bytes=1 << 20), req.invoke_id_and_priority)
        return self._action_block(sess, req.invoke_id_and_priority, req.last_block,
                                  req.block_number, req.raw_data, now)

    def _action_pblock(self, sess: ServerSession, req: ActionRequestWithPblock, now: float) -> Apdu:
        return self._action_block(sess, req.invoke_id_and_priority, req.last_block,
                                  req.block_number, req.raw_data, now)

    def _action_block(self, sess: ServerSession, iid: int, last: bool, num: int, raw: bytes,
                      now: float) -> Apdu:
        if sess.action_blocks is None:
            return ActionResponseNormal(iid, ActionResult.NO_LONG_ACTION_IN_PROGRESS)
        target, coll, _ = sess.action_blocks
        try:
            done = coll.add(last, num, raw)
        except BlockSequenceError:
            sess.action_blocks = None
            return ActionResponseNormal(iid, ActionResult.LONG_ACTION_ABORTED)
        if not done:
            return ActionResponseNextPblock(iid, num)
        sess.action_blocks = None
        try:
            if isinstance(target, MethodDescriptor):
                return self._action_reply(sess, iid, self._invoke(
                    sess, target, axdr.decode_all(coll.data), now))
            n, pos = axdr.decode_length(coll.data, 0)
            params = []
            for _ in range(n):
                v, pos = axdr.decode(coll.data, pos)
                params.append(v)
            if pos != len(coll.data) or len(params) != len(target):
                raise DecodeError("parameter list does not match", field="parameters")
        except DecodeError:
            return ActionResponseNormal(iid, ActionResult.TYPE_UNMATCHED)
        return ActionResponseWithList(iid, tuple(
            self._invoke(sess, m, p, now) for m, p in zip(target, params)))


_ASSOCIATED = ServerState.ASSOCIATED
_IDLE = ServerState.IDLE
_DEDICATED, _GLOBAL = CipheringKind.DEDICATED, CipheringKind.GLOBAL
_OBJECT_UNDEFINED = DataAccessResult.OBJECT_UNDEFINED
#: not yet in a session's rights cache
_UNKNOWN: Any = object()
#: AttributeAccess values that allow reading (AttributeAccess.readable)
_READABLE = (1, 3, 4, 6)
_CIPHERED_TAGS = frozenset(t for t in range(256) if is_ciphered_tag(t))
_axdr_encode = axdr.encode
#: GET-Response-Normal header with the Data choice, per invoke-id-and-priority
_GET_RESPONSE_DATA = tuple(bytes((0xC4, 1, iid, 0)) for iid in range(256))

_DED_TAGS = frozenset((0x41, 0x45, 0x46, 0x48, 0x4C, 0x4D, 0x4E, 0x56, 0x58, 0xD0, 0xD1, 0xD2,
                       0xD3, 0xD4, 0xD5, 0xD7))


def _exc_apdu(state: StateError, service: ServiceErrorCode) -> ExceptionResponse:
    return ExceptionResponse(state, service)


def _exc(state: StateError, service: ServiceErrorCode) -> bytes:
    return ExceptionResponse(state, service).to_bytes()


_DISPATCH: dict[type, Callable[[CosemServer, ServerSession, Any, float], Apdu]] = {
    GetRequestNormal: CosemServer._get_normal,
    GetRequestNext: CosemServer._get_next,
    GetRequestWithList: CosemServer._get_list,
    SetRequestNormal: CosemServer._set_normal,
    SetRequestWithList: CosemServer._set_list,
    SetRequestWithFirstDatablock: CosemServer._set_first,
    SetRequestWithListAndFirstDatablock: CosemServer._set_first,
    SetRequestWithDatablock: CosemServer._set_next,
    ActionRequestNormal: CosemServer._action_normal,
    ActionRequestNextPblock: CosemServer._action_next,
    ActionRequestWithList: CosemServer._action_list,
    ActionRequestWithFirstPblock: CosemServer._action_first,
    ActionRequestWithListAndFirstPblock: CosemServer._action_first,
    ActionRequestWithPblock: CosemServer._action_pblock,
}
