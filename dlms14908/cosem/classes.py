"""COSEM interface classes as data (IEC 62056-6-2 §4 / Blue Book §4; IEC 62056-8-8 Annex B).

Each :class:`InterfaceClass` lists its attributes (index, name, type spec,
static/dynamic, default access) and methods (index, name, parameter spec).
The tables cover classes 1, 3, 4, 5, 7, 8, 9, 11, 12, 15, 17, 18, 20, 21, 22,
26, 40, 64, 70, 71 and the ISO/IEC 14908 classes 130–133 (version 0, from
``shared/reference/osgp-62056-8-8.md`` §4.2).  ``access`` is the default
right a typical association grants; the association's access_rights_list is
what a server enforces.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field

from dlms14908.axdr import DataType
from dlms14908.errors import LocalProtocolError

from .types import (
    CAPTURE_OBJECT,
    SCALER_UNIT,
    AnyData,
    ArrayOf,
    DateSpec,
    DateTimeSpec,
    Leaf,
    ObisSpec,
    Spec,
    Struct,
    TimeSpec,
)

__all__ = [
    "CLASSES",
    "AssociationStatus",
    "AttributeAccess",
    "AttributeAccessMode",
    "AttributeDef",
    "ClockBase",
    "ControlMode",
    "ControlState",
    "ImageTransferStatus",
    "InterfaceClass",
    "MessageType",
    "MethodAccess",
    "MethodAccessMode",
    "MethodDef",
    "ScriptService",
    "SecurityPolicy",
    "SecuritySuite",
    "SingleActionType",
    "SortMethod",
    "TransportService",
    "UnknownClass",
    "class_ids",
    "get_class",
]


class AttributeAccess(enum.IntEnum):
    """attribute access_mode (Association LN object_list, version 0/1 values)."""

    NO_ACCESS = 0
    READ_ONLY = 1
    WRITE_ONLY = 2
    READ_WRITE = 3
    AUTHENTICATED_READ_ONLY = 4
    AUTHENTICATED_WRITE_ONLY = 5
    AUTHENTICATED_READ_WRITE = 6

    @property
    def readable(self) -> bool:
        return self in (1, 3, 4, 6)

    @property
    def writable(self) -> bool:
        return self in (2, 3, 5, 6)


class MethodAccess(enum.IntEnum):
    """method access_mode."""

    NO_ACCESS = 0
    ACCESS = 1
    AUTHENTICATED_ACCESS = 2


AttributeAccessMode = AttributeAccess
MethodAccessMode = MethodAccess


class UnknownClass(LocalProtocolError, KeyError):
    """No table for this (class_id, version)."""


# -- enumerations appearing in attribute types ------------------------------------


class SortMethod(enum.IntEnum):
    FIFO = 1
    LIFO = 2
    LARGEST = 3
    SMALLEST = 4
    NEAREST_TO_ZERO = 5
    FARTHEST_FROM_ZERO = 6


class ClockBase(enum.IntEnum):
    NOT_DEFINED = 0
    INTERNAL_CRYSTAL = 1
    MAINS_50HZ = 2
    MAINS_60HZ = 3
    GPS = 4
    RADIO_CONTROLLED = 5


class AssociationStatus(enum.IntEnum):
    NON_ASSOCIATED = 0
    ASSOCIATION_PENDING = 1
    ASSOCIATED = 2


class ControlState(enum.IntEnum):
    DISCONNECTED = 0
    CONNECTED = 1
    READY_FOR_RECONNECTION = 2


class ControlMode(enum.IntEnum):
    MODE_0 = 0
    MODE_1 = 1
    MODE_2 = 2
    MODE_3 = 3
    MODE_4 = 4
    MODE_5 = 5
    MODE_6 = 6


class ImageTransferStatus(enum.IntEnum):
    NOT_INITIATED = 0
    INITIATED = 1
    VERIFICATION_INITIATED = 2
    VERIFICATION_SUCCESSFUL = 3
    VERIFICATION_FAILED = 4
    ACTIVATION_INITIATED = 5
    ACTIVATION_SUCCESSFUL = 6
    ACTIVATION_FAILED = 7


class SecurityPolicy(enum.IntEnum):
    """Security setup version 0 security_policy."""

    NOTHING = 0
    ALL_AUTHENTICATED = 1
    ALL_ENCRYPTED = 2
    ALL_AUTHENTICATED_AND_ENCRYPTED = 3


class SecuritySuite(enum.IntEnum):
    AES_GCM_128 = 0
    ECDH_ECDSA_AES_GCM_128_SHA_256 = 1
    ECDH_ECDSA_AES_GCM_256_SHA_384 = 2


class ScriptService(enum.IntEnum):
    WRITE_ATTRIBUTE = 1
    EXECUTE_METHOD = 2


class SingleActionType(enum.IntEnum):
    SIZE_1_SAME_TIME = 1
    SIZE_N_SAME_TIME = 2
    SIZE_N_SAME_TIME_WILDCARD_DATE = 3
    SIZE_N_DIFFERENT_TIME = 4
    SIZE_N_DIFFERENT_TIME_WILDCARD_DATE = 5


class TransportService(enum.IntEnum):
    TCP = 0
    UDP = 1
    FTP = 2
    SMTP = 3
    SMS = 4
    HDLC = 5
    MBUS = 6
    ZIGBEE = 7


class MessageType(enum.IntEnum):
    AXDR_APDU = 0
    XML_APDU = 1


# -- definitions -------------------------------------------------------------------


@dataclass(frozen=True)
class AttributeDef:
    """One attribute: ``index`` (1 = logical_name), ``name``, A-XDR ``type``, static or dynamic."""

    index: int
    name: str
    type: Spec
    static: bool = True
    access: AttributeAccess = AttributeAccess.READ_ONLY

    @property
    def short_name_offset(self) -> int:
        """Offset from the object's base_name under SN referencing (0x08 per attribute)."""
        return 8 * (self.index - 1)


@dataclass(frozen=True)
class MethodDef:
    """One method: ``index``, ``name``, parameter spec (None = no parameter / null-data)."""

    index: int
    name: str
    parameter: Spec | None = None
    returns: Spec | None = None
    optional: bool = True
    access: MethodAccess = MethodAccess.ACCESS


@dataclass(frozen=True)
class InterfaceClass:
    """An interface class (class_id, version) with its attribute and method tables."""

    class_id: int
    version: int
    name: str
    attributes: tuple[AttributeDef, ...]
    methods: tuple[MethodDef, ...] = ()
    _by_name: dict[str, AttributeDef] = field(default_factory=dict, repr=False, compare=False)
    #: ``read_<name>`` per attribute (index - 1): the reader method names objects look up
    _readers: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for i, a in enumerate(self.attributes, 1):
            assert a.index == i, (self.name, a)
        for i, m in enumerate(self.methods, 1):
            assert m.index == i, (self.name, m)
        self._by_name.update({a.name: a for a in self.attributes})
        object.__setattr__(self, "_readers", tuple(f"read_{a.name}" for a in self.attributes))

    def attribute(self, key: int | str) -> AttributeDef:
        """The attribute by index or name; KeyError (UnknownClass) if absent."""
        if isinstance(key, str):
            a = self._by_name.get(key)
            if a is None:
                raise UnknownClass(f"{self.name} has no attribute {key!r}")
            return a
        if 1 <= key <= len(self.attributes):
            return self.attributes[key - 1]
        raise UnknownClass(f"{self.name} has no attribute {key}")

    def has_attribute(self, key: int | str) -> bool:
        return key in self._by_name if isinstance(key, str) else 1 <= key <= len(self.attributes)

    def method(self, key: int | str) -> MethodDef:
        for m in self.methods:
            if m.index == key or m.name == key:
                return m
        raise UnknownClass(f"{self.name} has no method {key!r}")

    def has_method(self, key: int | str) -> bool:
        return any(m.index == key or m.name == key for m in self.methods)

    def __iter__(self) -> Iterator[AttributeDef]:
        return iter(self.attributes)


# ---------------------------------------------------------------------------
# Short-hands
# ---------------------------------------------------------------------------

RO, RW, WO = AttributeAccess.READ_ONLY, AttributeAccess.READ_WRITE, AttributeAccess.WRITE_ONLY
OCTETS = Leaf(DataType.OCTET_STRING)
LN = ObisSpec()
DT = DateTimeSpec()
ANY = AnyData()
BOOL = Leaf(DataType.BOOLEAN)
I8 = Leaf(DataType.INTEGER)
I16 = Leaf(DataType.LONG)
U8 = Leaf(DataType.UNSIGNED)
U16 = Leaf(DataType.LONG_UNSIGNED)
U32 = Leaf(DataType.DOUBLE_LONG_UNSIGNED)
ENUM = Leaf(DataType.ENUM)
VIS = Leaf(DataType.VISIBLE_STRING)
BITS = Leaf(DataType.BIT_STRING)
DATA_ZERO = I8  # "data ::= integer(0)" method parameter


def _e(enum_cls: type[enum.IntEnum]) -> Leaf:
    return Leaf(DataType.ENUM, enum=enum_cls)


def A(
    index: int, name: str, type_: Spec, static: bool = True, access: AttributeAccess = RO
) -> AttributeDef:
    return AttributeDef(index, name, type_, static, access)


def M(
    index: int,
    name: str,
    param: Spec | None = None,
    returns: Spec | None = None,
    optional: bool = True,
) -> MethodDef:
    return MethodDef(index, name, param, returns, optional)


def _ln() -> AttributeDef:
    return A(1, "logical_name", LN)


# shared structures
SCRIPT_REF = Struct("ActionItem", [("script_logical_name", LN), ("script_selector", U16)])
VALUE_DEFINITION = Struct(
    "ValueDefinition", [("class_id", U16), ("logical_name", LN), ("attribute_index", I8)]
)
ACTION_SET = Struct("ActionSet", [("action_up", SCRIPT_REF), ("action_down", SCRIPT_REF)])
ACTION_SPEC = Struct(
    "ActionSpecification",
    [
        ("service_id", _e(ScriptService)),
        ("class_id", U16),
        ("logical_name", LN),
        ("index", I8),
        ("parameter", ANY),
    ],
)
SCRIPT = Struct("Script", [("script_identifier", U16), ("actions", ArrayOf(ACTION_SPEC))])
SPECIAL_DAY = Struct(
    "SpecialDayEntry", [("index", U16), ("specialday_date", DateSpec()), ("day_id", U8)]
)
SEASON = Struct(
    "SeasonProfile", [("season_profile_name", OCTETS), ("season_start", DT), ("week_name", OCTETS)]
)
WEEK = Struct(
    "WeekProfile",
    [("week_profile_name", OCTETS)]
    + [
        (d, U8)
        for d in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    ],
)
DAY_ACTION = Struct(
    "DayProfileAction",
    [("start_time", TimeSpec()), ("script_logical_name", LN), ("script_selector", U16)],
)
DAY = Struct("DayProfile", [("day_id", U8), ("day_schedule", ArrayOf(DAY_ACTION))])
ACCESS_SELECTORS = ANY  # CHOICE { null-data, array of integer }
ATTRIBUTE_ACCESS_ITEM = Struct(
    "AttributeAccessItem",
    [
        ("attribute_id", I8),
        ("access_mode", _e(AttributeAccess)),
        ("access_selectors", ACCESS_SELECTORS),
    ],
)
METHOD_ACCESS_ITEM = Struct(
    "MethodAccessItem", [("method_id", I8), ("access_mode", _e(MethodAccess))]
)
ACCESS_RIGHTS = Struct(
    "AccessRights",
    [
        ("attribute_access", ArrayOf(ATTRIBUTE_ACCESS_ITEM)),
        ("method_access", ArrayOf(METHOD_ACCESS_ITEM)),
    ],
)
OBJECT_LIST_ELEMENT = Struct(
    "ObjectListElement",
    [("class_id", U16), ("version", U8), ("logical_name", LN), ("access_rights", ACCESS_RIGHTS)],
)
SN_OBJECT_LIST_ELEMENT = Struct(
    "SnObjectListElement",
    [("base_name", I16), ("class_id", U16), ("version", U8), ("logical_name", LN)],
)
SN_ACCESS_RIGHTS_ELEMENT = Struct(
    "SnAccessRightsElement",
    [
        ("base_name", I16),
        ("attribute_access", ArrayOf(ATTRIBUTE_ACCESS_ITEM)),
        ("method_access", ArrayOf(METHOD_ACCESS_ITEM)),
    ],
)
ASSOCIATED_PARTNERS = Struct("AssociatedPartners", [("client_sap", I8), ("server_sap", U16)])
XDLMS_CONTEXT = Struct(
    "XdlmsContextInfo",
    [
        ("conformance", BITS),
        ("max_receive_pdu_size", U16),
        ("max_send_pdu_size", U16),
        ("dlms_version_number", U8),
        ("quality_of_service", I8),
        ("cyphering_info", OCTETS),
    ],
)
USER = Struct("UserEntry", [("user_id", U8), ("user_name", VIS)])
SAP_ENTRY = Struct("SapAssignment", [("sap", U16), ("logical_device_name", OCTETS)])
IMAGE_TO_ACTIVATE = Struct(
    "ImageToActivate",
    [("size", U32), ("identification", OCTETS), ("signature", OCTETS)],
)
EXECUTION_TIME = Struct("ExecutionTime", [("time", TimeSpec()), ("date", DateSpec())])
PUSH_OBJECT = CAPTURE_OBJECT
SEND_DESTINATION = Struct(
    "SendDestinationAndMethod",
    [
        ("transport_service", _e(TransportService)),
        ("destination", OCTETS),
        ("message", _e(MessageType)),
    ],
)
WINDOW = Struct("CommunicationWindow", [("start", DT), ("end", DT)])
EMERGENCY_PROFILE = Struct(
    "EmergencyProfile", [("id", U16), ("activation_time", DT), ("duration", U32)]
)
LIMITER_ACTIONS = Struct(
    "LimiterActions",
    [("action_over_threshold", SCRIPT_REF), ("action_under_threshold", SCRIPT_REF)],
)
KEY_DATA = Struct("KeyData", [("key_id", ENUM), ("key_wrapped", OCTETS)])
KEY_AGREEMENT_DATA = Struct(
    "KeyAgreementData", [("key_id", ENUM), ("key_ciphered_data", OCTETS)]
)
CERTIFICATE_INFO = Struct(
    "CertificateInfo",
    [
        ("certificate_entity", ENUM),
        ("certificate_type", ENUM),
        ("serial_number", OCTETS),
        ("issuer", OCTETS),
        ("subject", OCTETS),
        ("subject_alt_name", OCTETS),
    ],
)
PRESET_ADJUSTING_TIME = Struct(
    "PresetAdjustingTime",
    [("preset_time", DT), ("validity_interval_start", DT), ("validity_interval_end", DT)],
)
IMAGE_INITIATE = Struct(
    "ImageTransferInitiate", [("image_identifier", OCTETS), ("image_size", U32)]
)
IMAGE_BLOCK = Struct("ImageBlock", [("image_block_number", U32), ("image_block_value", OCTETS)])


def _calendar(offset: int, suffix: str) -> list[AttributeDef]:
    return [
        A(offset, f"calendar_name_{suffix}", OCTETS, True, RW if suffix == "passive" else RO),
        A(
            offset + 1,
            f"season_profile_{suffix}",
            ArrayOf(SEASON),
            True,
            RW if suffix == "passive" else RO,
        ),
        A(
            offset + 2,
            f"week_profile_table_{suffix}",
            ArrayOf(WEEK),
            True,
            RW if suffix == "passive" else RO,
        ),
        A(
            offset + 3,
            f"day_profile_table_{suffix}",
            ArrayOf(DAY),
            True,
            RW if suffix == "passive" else RO,
        ),
    ]


_DEFS: list[InterfaceClass] = [
    InterfaceClass(1, 0, "Data", (_ln(), A(2, "value", ANY, False, RW))),
    InterfaceClass(
        3,
        0,
        "Register",
        (_ln(), A(2, "value", ANY, False, RW), A(3, "scaler_unit", SCALER_UNIT)),
        (M(1, "reset", DATA_ZERO),),
    ),
    InterfaceClass(
        4,
        0,
        "Extended register",
        (
            _ln(),
            A(2, "value", ANY, False, RW),
            A(3, "scaler_unit", SCALER_UNIT),
            A(4, "status", ANY, False),
            A(5, "capture_time", DT, False),
        ),
        (M(1, "reset", DATA_ZERO),),
    ),
    InterfaceClass(
        5,
        0,
        "Demand register",
        (
            _ln(),
            A(2, "current_average_value", ANY, False),
            A(3, "last_average_value", ANY, False),
            A(4, "scaler_unit", SCALER_UNIT),
            A(5, "status", ANY, False),
            A(6, "capture_time", DT, False),
            A(7, "start_time_current", DT, False),
            A(8, "period", U32, True, RW),
            A(9, "number_of_periods", U16, True, RW),
        ),
        (M(1, "reset", DATA_ZERO), M(2, "next_period", DATA_ZERO)),
    ),
    InterfaceClass(
        7,
        1,
        "Profile generic",
        (
            _ln(),
            A(2, "buffer", ArrayOf(ANY), False),
            A(3, "capture_objects", ArrayOf(CAPTURE_OBJECT), True, RW),
            A(4, "capture_period", U32, True, RW),
            A(5, "sort_method", _e(SortMethod), True, RW),
            A(6, "sort_object", CAPTURE_OBJECT, True, RW),
            A(7, "entries_in_use", U32, False),
            A(8, "profile_entries", U32, True, RW),
        ),
        (M(1, "reset", DATA_ZERO), M(2, "capture", DATA_ZERO)),
    ),
    InterfaceClass(
        8,
        0,
        "Clock",
        (
            _ln(),
            A(2, "time", DT, False, RW),
            A(3, "time_zone", I16, True, RW),
            A(4, "status", U8, False),
            A(5, "daylight_savings_begin", DT, True, RW),
            A(6, "daylight_savings_end", DT, True, RW),
            A(7, "daylight_savings_deviation", I8, True, RW),
            A(8, "daylight_savings_enabled", BOOL, True, RW),
            A(9, "clock_base", _e(ClockBase)),
        ),
        (
            M(1, "adjust_to_quarter", DATA_ZERO),
            M(2, "adjust_to_measuring_period", DATA_ZERO),
            M(3, "adjust_to_minute", DATA_ZERO),
            M(4, "adjust_to_preset_time", DATA_ZERO),
            M(5, "preset_adjusting_time", PRESET_ADJUSTING_TIME),
            M(6, "shift_time", I16),
        ),
    ),
    InterfaceClass(
        9,
        0,
        "Script table",
        (_ln(), A(2, "scripts", ArrayOf(SCRIPT), True, RW)),
        (M(1, "execute", U16, optional=False),),
    ),
    InterfaceClass(
        11,
        0,
        "Special days table",
        (_ln(), A(2, "entries", ArrayOf(SPECIAL_DAY), True, RW)),
        (M(1, "insert", SPECIAL_DAY), M(2, "delete", U16)),
    ),
    InterfaceClass(
        12,
        2,
        "Association SN",
        (
            _ln(),
            A(2, "object_list", ArrayOf(SN_OBJECT_LIST_ELEMENT)),
            A(3, "access_rights_list", ArrayOf(SN_ACCESS_RIGHTS_ELEMENT)),
            A(4, "security_setup_reference", LN, True, RW),
        ),
        # [I] method order after gurux (8 = reply_to_HLS_authentication); 1, 2 and 7 reserved
        (
            M(1, "reserved_1", ANY),
            M(2, "reserved_2", ANY),
            M(3, "read_by_logicalname", ANY),
            M(4, "get_attributes_and_services", ANY),
            M(5, "change_lls_secret", OCTETS),
            M(6, "change_hls_secret", OCTETS),
            M(7, "reserved_7", ANY),
            M(8, "reply_to_hls_authentication", OCTETS, OCTETS),
        ),
    ),
    InterfaceClass(
        15,
        2,
        "Association LN",
        (
            _ln(),
            A(2, "object_list", ArrayOf(OBJECT_LIST_ELEMENT)),
            A(3, "associated_partners_id", ASSOCIATED_PARTNERS),
            # 4 and 6: OID as octet-string since version 1, a structure in version 0: accept either
            A(4, "application_context_name", ANY),
            A(5, "xdlms_context_info", XDLMS_CONTEXT),
            A(6, "authentication_mechanism_name", ANY),
            A(7, "secret", OCTETS, True, WO),
            A(8, "association_status", _e(AssociationStatus), False),
            A(9, "security_setup_reference", LN),
            A(10, "user_list", ArrayOf(USER)),
            A(11, "current_user", USER, False),
        ),
        (
            M(1, "reply_to_hls_authentication", OCTETS, OCTETS),
            M(2, "change_hls_secret", OCTETS),
            M(3, "add_object", OBJECT_LIST_ELEMENT),
            M(4, "remove_object", OBJECT_LIST_ELEMENT),
            M(5, "add_user", USER),
            M(6, "remove_user", USER),
        ),
    ),
    InterfaceClass(
        17,
        0,
        "SAP assignment",
        (_ln(), A(2, "sap_assignment_list", ArrayOf(SAP_ENTRY), True, RW)),
        (M(1, "connect_logical_device", SAP_ENTRY),),
    ),
    InterfaceClass(
        18,
        0,
        "Image transfer",
        (
            _ln(),
            A(2, "image_block_size", U32),
            A(3, "image_transferred_blocks_status", BITS, False),
            A(4, "image_first_not_transferred_block_number", U32, False),
            A(5, "image_transfer_enabled", BOOL, True, RW),
            A(6, "image_transfer_status", _e(ImageTransferStatus), False),
            A(7, "image_to_activate_info", ArrayOf(IMAGE_TO_ACTIVATE), False),
        ),
        (
            M(1, "image_transfer_initiate", IMAGE_INITIATE, optional=False),
            M(2, "image_block_transfer", IMAGE_BLOCK, optional=False),
            M(3, "image_verify", DATA_ZERO, optional=False),
            M(4, "image_activate", DATA_ZERO, optional=False),
        ),
    ),
    InterfaceClass(
        20,
        0,
        "Activity calendar",
        (
            _ln(),
            *_calendar(2, "active"),
            *_calendar(6, "passive"),
            A(10, "activate_passive_calendar_time", DT, True, RW),
        ),
        (M(1, "activate_passive_calendar", DATA_ZERO),),
    ),
    InterfaceClass(
        21,
        0,
        "Register monitor",
        (
            _ln(),
            A(2, "thresholds", ArrayOf(ANY), True, RW),
            A(3, "monitored_value", VALUE_DEFINITION, True, RW),
            A(4, "actions", ArrayOf(ACTION_SET), True, RW),
        ),
    ),
    InterfaceClass(
        22,
        0,
        "Single action schedule",
        (
            _ln(),
            A(2, "executed_script", SCRIPT_REF, True, RW),
            A(3, "type", _e(SingleActionType), True, RW),
            A(4, "execution_time", ArrayOf(EXECUTION_TIME), True, RW),
        ),
    ),
    InterfaceClass(
        26,
        0,
        "Utility tables",
        (
            _ln(),
            A(2, "table_id", U16),
            A(3, "length", U32, False),
            A(4, "buffer", OCTETS, False, RW),
        ),
    ),
    InterfaceClass(
        40,
        0,
        "Push setup",
        (
            _ln(),
            A(2, "push_object_list", ArrayOf(PUSH_OBJECT), True, RW),
            A(3, "send_destination_and_method", SEND_DESTINATION, True, RW),
            A(4, "communication_window", ArrayOf(WINDOW), True, RW),
            A(5, "randomisation_start_interval", U16, True, RW),
            A(6, "number_of_retries", U8, True, RW),
            A(7, "repetition_delay", U16, True, RW),
        ),
        (M(1, "push", DATA_ZERO, optional=False),),
    ),
    InterfaceClass(
        64,
        0,
        "Security setup",
        (
            _ln(),
            A(2, "security_policy", _e(SecurityPolicy), True, RW),
            A(3, "security_suite", _e(SecuritySuite)),
            A(4, "client_system_title", OCTETS, False),
            A(5, "server_system_title", OCTETS),
        ),
        (
            M(1, "security_activate", _e(SecurityPolicy)),
            M(2, "global_key_transfer", ArrayOf(KEY_DATA)),
        ),
    ),
    InterfaceClass(
        64,
        1,
        "Security setup",
        (
            _ln(),
            A(2, "security_policy", ENUM, True, RW),
            A(3, "security_suite", _e(SecuritySuite)),
            A(4, "client_system_title", OCTETS, False),
            A(5, "server_system_title", OCTETS),
            A(6, "certificates", ArrayOf(CERTIFICATE_INFO), False),
        ),
        (
            M(1, "security_activate", ENUM),
            M(2, "key_transfer", ArrayOf(KEY_DATA)),
            M(3, "key_agreement", ArrayOf(KEY_AGREEMENT_DATA), ArrayOf(ANY)),
            M(4, "generate_key_pair", ENUM),
            M(5, "generate_certificate_request", ENUM, OCTETS),
            M(6, "import_certificate", OCTETS),
            M(7, "export_certificate", ANY, OCTETS),
            M(8, "remove_certificate", ANY),
        ),
    ),
    InterfaceClass(
        70,
        0,
        "Disconnect control",
        (
            _ln(),
            A(2, "output_state", BOOL, False),
            A(3, "control_state", _e(ControlState), False),
            A(4, "control_mode", _e(ControlMode), True, RW),
        ),
        (M(1, "remote_disconnect", DATA_ZERO), M(2, "remote_reconnect", DATA_ZERO)),
    ),
    InterfaceClass(
        71,
        0,
        "Limiter",
        (
            _ln(),
            A(2, "monitored_value", VALUE_DEFINITION, True, RW),
            A(3, "threshold_active", ANY, False, RW),
            A(4, "threshold_normal", ANY, True, RW),
            A(5, "threshold_emergency", ANY, True, RW),
            A(6, "min_over_threshold_duration", U32, True, RW),
            A(7, "min_under_threshold_duration", U32, True, RW),
            A(8, "emergency_profile", EMERGENCY_PROFILE, True, RW),
            A(9, "emergency_profile_group_id_list", ArrayOf(U16), True, RW),
            A(10, "emergency_profile_active", BOOL, False),
            A(11, "actions", LIMITER_ACTIONS, True, RW),
        ),
    ),
    # IEC 62056-8-8 Annex B, version 0 (reference osgp-62056-8-8.md §4.2); no methods in version 0
    InterfaceClass(
        130,
        0,
        "ISO/IEC 14908 identification",
        (
            _ln(),
            A(2, "node_id", U8, False),
            A(3, "subnet_id", U8, False),
            A(4, "domain_id", OCTETS, False),
            A(5, "program_id", OCTETS),
            A(6, "unique_node_id", OCTETS),
        ),
    ),
    InterfaceClass(
        131,
        0,
        "ISO/IEC 14908 protocol setup",
        (_ln(), A(2, "inactivity_timeout", U16, True, RW)),
    ),
    InterfaceClass(
        132,
        0,
        "ISO/IEC 14908 protocol status",
        (
            _ln(),
            A(2, "transmission_errors", U16, False),
            A(3, "transmit_tx_failure", U16, False),
            A(4, "transmit_tx_retries", U16, False),
            A(5, "receive_tx_full", U16, False),
            A(6, "lost_messages", U16, False),
            A(7, "missed_messages", U16, False),
            A(8, "layer2_received", U16, False),
            A(9, "layer3_received", U16, False),
            A(10, "messages_received", U32, False),
            A(11, "messages_validated", U32, False),
        ),
    ),
    InterfaceClass(
        133,
        0,
        "ISO/IEC 14908 diagnostic",
        (
            _ln(),
            A(2, "plc_signal_quality_status", ENUM, False),
            A(3, "com_module_state", ENUM, False),
            A(4, "received_message_status", U8, False),
            A(5, "no_receive_buffer", U16, False),
            A(6, "transmit_no_data", U16, False),
            A(7, "backlog_overflows", U16, False),
            A(8, "late_ack", U16, False),
            A(9, "frequency_invalid", U16, False),
        ),
    ),
]

#: (class_id, version) -> InterfaceClass
CLASSES: dict[tuple[int, int], InterfaceClass] = {(c.class_id, c.version): c for c in _DEFS}
_LATEST: dict[int, InterfaceClass] = {}
for _c in _DEFS:
    if _c.class_id not in _LATEST or _LATEST[_c.class_id].version < _c.version:
        _LATEST[_c.class_id] = _c


def get_class(class_id: int, version: int | None = None) -> InterfaceClass:
    """The table for ``(class_id, version)``; with ``version`` None, or a version
    that is not modelled, the highest modelled version of the class.  Raises
    :class:`UnknownClass` for a class_id that is not modelled."""
    if version is not None:
        ic = CLASSES.get((class_id, version))
        if ic is not None:
            return ic
    ic = _LATEST.get(class_id)
    if ic is None:
        raise UnknownClass(f"interface class {class_id} is not modelled")
    return ic


def class_ids() -> list[int]:
    """Every modelled class_id, ascending."""
    return sorted(_LATEST)
