"""xDLMS application layer (IEC 62056-5-3 / DLMS UA 1000-2 Green Book §9).

``decode_apdu(buf) -> Apdu`` decodes any xDLMS, ciphered-container or ACSE APDU into a
frozen dataclass; ``encode_apdu(apdu) -> bytes`` is the inverse.  ACSE classes
(``AARQ``, ``AARE``, ``RLRQ``, ``RLRE`` and their enums) live in :mod:`dlms14908.acse`
and are re-exported here.  Deciphering is :mod:`dlms14908.xdlms.ciphering`.
"""

from __future__ import annotations

from typing import Any

from ._base import ABSENT, Absent, Apdu
from .apdu import decode_apdu, encode_apdu
from .blocks import (
    BlockSequenceError,
    DataBlockCollector,
    GetBlockCollector,
    action_request_blocks,
    set_request_blocks,
    split_blocks,
)
from .ciphered import CIPHERED_TAGS, CipheredApdu
from .initiate import (
    VAA_NAME_LN,
    VAA_NAME_SN,
    ConfirmedServiceError,
    ConfirmedServiceErrorChoice,
    Conformance,
    InitiateRequest,
    InitiateResponse,
    ServiceErrorType,
)
from .jsonable import apdu_to_jsonable
from .ln import (
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
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDatablock,
    GetResponseWithList,
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
)
from .notify import (
    DataNotification,
    EventNotificationRequest,
    ExceptionResponse,
    LongInvokeIdAndPriority,
)
from .sn import (
    BlockNumber,
    BlockNumberAccess,
    DataBlockResult,
    InformationReportRequest,
    ParameterizedAccess,
    ReadDataBlockAccess,
    ReadRequest,
    ReadResponse,
    UnconfirmedWriteRequest,
    VariableName,
    WriteDataBlockAccess,
    WriteRequest,
    WriteResponse,
)
from .types import (
    AccessSelection,
    ActionResult,
    AttributeDescriptor,
    AttributeDescriptorWithSelection,
    CaptureObjectDefinition,
    DataAccessResult,
    EntryDescriptor,
    InvokeIdAndPriority,
    MethodDescriptor,
    RangeDescriptor,
    ServiceErrorCode,
    StateError,
)

_ACSE_NAMES = (
    "AARQ", "AARE", "RLRQ", "RLRE", "ApplicationContextName", "MechanismName",
    "AssociationResult", "AcseServiceUserDiagnostic", "AcseServiceProviderDiagnostic",
    "ReleaseRequestReason", "ReleaseResponseReason",
)

__all__ = [
    # codec
    "decode_apdu", "encode_apdu", "apdu_to_jsonable", "Apdu", "ABSENT", "Absent",
    # ACSE (lazy re-export of dlms14908.acse)
    *_ACSE_NAMES,
    # initiate
    "InitiateRequest", "InitiateResponse", "ConfirmedServiceError", "ConfirmedServiceErrorChoice",
    "ServiceErrorType", "Conformance", "VAA_NAME_LN", "VAA_NAME_SN",
    # common types
    "DataAccessResult", "ActionResult", "StateError", "ServiceErrorCode", "AttributeDescriptor",
    "MethodDescriptor", "AttributeDescriptorWithSelection", "AccessSelection",
    "CaptureObjectDefinition", "RangeDescriptor", "EntryDescriptor", "InvokeIdAndPriority",
    # LN services
    "GetRequestNormal", "GetRequestNext", "GetRequestWithList",
    "GetResponseNormal", "GetResponseWithDatablock", "GetResponseWithList",
    "SetRequestNormal", "SetRequestWithFirstDatablock", "SetRequestWithDatablock",
    "SetRequestWithList", "SetRequestWithListAndFirstDatablock",
    "SetResponseNormal", "SetResponseDatablock", "SetResponseLastDatablock",
    "SetResponseLastDatablockWithList", "SetResponseWithList",
    "ActionRequestNormal", "ActionRequestNextPblock", "ActionRequestWithList",
    "ActionRequestWithFirstPblock", "ActionRequestWithListAndFirstPblock",
    "ActionRequestWithPblock", "ActionResponseNormal", "ActionResponseWithPblock",
    "ActionResponseWithList", "ActionResponseNextPblock", "ActionResponseItem",
    # notifications
    "DataNotification", "EventNotificationRequest", "ExceptionResponse",
    "LongInvokeIdAndPriority",
    # SN services
    "ReadRequest", "ReadResponse", "WriteRequest", "WriteResponse", "UnconfirmedWriteRequest",
    "InformationReportRequest", "VariableName", "ParameterizedAccess", "BlockNumberAccess",
    "ReadDataBlockAccess", "WriteDataBlockAccess", "DataBlockResult", "BlockNumber",
    # ciphered containers
    "CipheredApdu", "CIPHERED_TAGS",
    # block transfer (sans-I/O)
    "GetBlockCollector", "DataBlockCollector", "BlockSequenceError", "split_blocks",
    "set_request_blocks", "action_request_blocks",
]


def __getattr__(name: str) -> Any:
    if name in _ACSE_NAMES:
        from .. import acse

        return getattr(acse, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


from .. import acse as _acse  # noqa: E402,F401  (registers the ACSE decoders)
