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
    "AARE",
    "AARQ",
    "ABSENT",
    "CIPHERED_TAGS",
    "RLRE",
    "RLRQ",
    "VAA_NAME_LN",
    "VAA_NAME_SN",
    "Absent",
    "AccessSelection",
    "AcseServiceProviderDiagnostic",
    "AcseServiceUserDiagnostic",
    "ActionRequestNextPblock",
    "ActionRequestNormal",
    "ActionRequestWithFirstPblock",
    "ActionRequestWithList",
    "ActionRequestWithListAndFirstPblock",
    "ActionRequestWithPblock",
    "ActionResponseItem",
    "ActionResponseNextPblock",
    "ActionResponseNormal",
    "ActionResponseWithList",
    "ActionResponseWithPblock",
    "ActionResult",
    "Apdu",
    "ApplicationContextName",
    "AssociationResult",
    "AttributeDescriptor",
    "AttributeDescriptorWithSelection",
    "BlockNumber",
    "BlockNumberAccess",
    "BlockSequenceError",
    "CaptureObjectDefinition",
    "CipheredApdu",
    "ConfirmedServiceError",
    "ConfirmedServiceErrorChoice",
    "Conformance",
    "DataAccessResult",
    "DataBlockCollector",
    "DataBlockResult",
    "DataNotification",
    "EntryDescriptor",
    "EventNotificationRequest",
    "ExceptionResponse",
    "GetBlockCollector",
    "GetRequestNext",
    "GetRequestNormal",
    "GetRequestWithList",
    "GetResponseNormal",
    "GetResponseWithDatablock",
    "GetResponseWithList",
    "InformationReportRequest",
    "InitiateRequest",
    "InitiateResponse",
    "InvokeIdAndPriority",
    "LongInvokeIdAndPriority",
    "MechanismName",
    "MethodDescriptor",
    "ParameterizedAccess",
    "RangeDescriptor",
    "ReadDataBlockAccess",
    "ReadRequest",
    "ReadResponse",
    "ReleaseRequestReason",
    "ReleaseResponseReason",
    "ServiceErrorCode",
    "ServiceErrorType",
    "SetRequestNormal",
    "SetRequestWithDatablock",
    "SetRequestWithFirstDatablock",
    "SetRequestWithList",
    "SetRequestWithListAndFirstDatablock",
    "SetResponseDatablock",
    "SetResponseLastDatablock",
    "SetResponseLastDatablockWithList",
    "SetResponseNormal",
    "SetResponseWithList",
    "StateError",
    "UnconfirmedWriteRequest",
    "VariableName",
    "WriteDataBlockAccess",
    "WriteRequest",
    "WriteResponse",
    "action_request_blocks",
    "apdu_to_jsonable",
    "decode_apdu",
    "encode_apdu",
    "set_request_blocks",
    "split_blocks",
]


def __getattr__(name: str) -> Any:
    if name in _ACSE_NAMES:
        from .. import acse

        return getattr(acse, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


from .. import acse as _acse  # noqa: E402,F401  (registers the ACSE decoders)
