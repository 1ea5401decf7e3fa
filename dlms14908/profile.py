"""The profile module: every design-choice byte of dlms14908 lives here.

IEC 62056-8-8 is paywalled.  Public sources give LonTalk, the LTEP proxy
(Annex E), the COSEM classes 130-133 and the crypto primitives exactly, but
nothing about the adaptation-layer header (§5.4) or the Annex D (OSGP-AES-128-PSK)
message layouts.  Those layouts are ours, provisional, and documented with
their provenance in ``docs/wire-format.md``; switching to the real layouts is a
change to this module only.  Other modules import their constants from here
and never spell a design-choice byte themselves.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------
# §3 Adaptation layer (docs/wire-format.md §3) [D]
# ---------------------------------------------------------------------------

# Each adaptation PDU travels as the data of one LonTalk application message
# whose message code is AL_MSG_CODE (reference §1.3, placeholder value).
AL_MSG_CODE = 0x30
"""LonTalk application-message code (0x00-0x3F range) carrying adaptation PDUs.
A placeholder; not 0x3D, which LonMark ISI (self-installation) messages use."""

# Control field, byte 0 of every adaptation PDU: P S F L TYPE(4)
AL_CTRL_PROTECTED = 0x80
"""P: the payload is an OSGP-AES-128-PSK secured container (§4.3)."""
AL_CTRL_SEGMENTED = 0x40
"""S: a segment counter byte follows the SAPs."""
AL_CTRL_FIRST = 0x20
"""F: first segment (the counter restarts at 0)."""
AL_CTRL_LAST = 0x10
"""L: last segment."""
AL_CTRL_TYPE_MASK = 0x0F
AL_TYPE_XDLMS = 0
"""TYPE 0: xDLMS APDU (or a segment of one)."""
AL_TYPE_SECURITY = 1
"""TYPE 1: secure-channel management (§4.2 opcodes)."""
AL_TYPE_ERROR = 2
"""TYPE 2: error messages (§4.2 AuthenticationFailure / SequenceError)."""
AL_TYPE_ATM = 3
"""TYPE 3: Annex F ATM / LNAP registration."""
AL_TYPES_KNOWN = (AL_TYPE_XDLMS, AL_TYPE_SECURITY, AL_TYPE_ERROR, AL_TYPE_ATM)

AL_HEADER_LEN = 3
"""ctrl(1) || dst SAP(1) || src SAP(1); + 1 segment counter byte when S = 1."""
AL_SEGMENT_COUNTER_LEN = 1

# SAPs (1 byte each, the 62056-4-7 wPort values without their length) [C generic DLMS]
SAP_MANAGEMENT = 0x01
"""Management logical device (server)."""
SAP_PUBLIC_CLIENT = 0x10
"""Public client (lowest security, pre-established)."""
SAP_MANAGEMENT_CLIENT = 0x01
"""Management client (our default for LLS/HLS associations) [D]."""

AL_LON_MAX_APDU = 255
"""Largest LonTalk APDU (message code + data) one frame may carry: lon-stack-dx
``MAX_DATA_SIZE`` (reference ``osgp-62056-8-8.md`` §1.2) [C].  Every adaptation frame,
proxy wrapping included, stays within it."""
AL_MAX_SEGMENT_DEFAULT = 200
"""Default payload bytes per request segment (head-end -> meter): code 1 + header 4 (with
counter) + secured-container overhead 13 (KeyID 1 + SeqNo 4 + tag 8) + 200 = 218 bytes,
leaving 37 bytes of ``AL_LON_MAX_APDU`` for the Annex E proxy header (0x4D, ProxyHeader,
hops, ProxyTxCtrl, SICB, target address) when the request goes through repeaters."""
AL_MAX_RESPONSE_SEGMENT_DEFAULT = 236
"""Default payload bytes per response segment (meter -> head-end).  A response comes back
through a repeater chain behind only the 1-byte success completion code (0x4D), so
0x4D 1 + code 1 + header 4 + secured-container overhead 13 + 236 = 255 = ``AL_LON_MAX_APDU``."""
AL_MAX_APDU = 65535
"""Upper bound of a reassembled APDU; larger is refused (bounded memory)."""
AL_MAX_REASSEMBLIES = 64
"""Concurrent reassemblies kept per endpoint; the oldest is dropped beyond it."""
AL_SEGMENT_GAP_TIMEOUT = 60.0
"""Seconds a reassembly may wait for its next segment before it is abandoned
(the class 131 inactivity_timeout, when configured, bounds it too)."""

# ---------------------------------------------------------------------------
# §4 OSGP-AES-128-PSK messages, Annex D (docs/wire-format.md §4) [D]
# ---------------------------------------------------------------------------

# --- §4.1 key hierarchy (RFC 5433 GPSK ciphersuite-1 schedule, reference §2.4) [D]
OSGP_PSK_LEN = 16
"""Pre-shared per-LNAP key ("base key"), AES-128."""
OSGP_ID_LEN = 6
"""ID_C / ID_S: LNAP Neuron ID and NNAP ID, 6 bytes each."""
OSGP_RAND_LEN = 16
"""RAND_C / RAND_S from OSGP_CSPRNG."""
OSGP_KEK_LABEL = b"OSGP-KEK"
"""K_kek = OSGP_KDF(PSK, OSGP_KEK_LABEL || 0x00 || NeuronID, 16)."""
OSGP_KEK_SEPARATOR = b"\x00"
OSGP_CSUITE_SEL = bytes.fromhex("000000000100")
"""CSuite_Sel: 4-byte vendor (0 = IETF) + 2-byte specifier; 0x0100 is our private value."""
OSGP_MK_LEN = 16
OSGP_MK_PSK_LEN_FIELD = 2
"""MK = GKDF-16(PSK, uint16_be(len(PSK)) || PSK || CSuite_Sel || inputString)."""
OSGP_SCHEDULE_LEN = 160
"""GKDF-160(MK, inputString): MSK[0:64] EMSK[64:128] SK[128:144] PK[144:160]."""
OSGP_SK_OFFSET = 128
OSGP_PK_OFFSET = 144
OSGP_KEY_LEN = 16
OSGP_HANDSHAKE_MAC_LEN = 16
"""MAC_SK in the handshake: full 16-byte AES-CMAC (the handshake is rare; no truncation)."""

# --- §4.2 secure-channel management opcodes (first byte of a TYPE=1/2 body, reference §2.5/2.7/2.8) [D]
OSGP_OP_CHALLENGE_REQUEST = 0x01
OSGP_OP_CHALLENGE_RESPONSE = 0x02
OSGP_OP_COMMISSION_REQUEST = 0x03
OSGP_OP_COMMISSION_RESPONSE = 0x04
OSGP_OP_UPDATE_DOMAIN_KEYS = 0x05
OSGP_OP_UPDATE_DOMAIN_KEYS_RESPONSE = 0x06
OSGP_OP_AUTHENTICATION_FAILURE = 0x7E
OSGP_OP_SEQUENCE_ERROR = 0x7F

OSGP_STATUS_SUCCESS = 0x00
OSGP_STATUS_REJECTED = 0x01
"""CommissionResponse / UpdateDomainKeysResponse status: anything but 0 is a refusal."""
OSGP_STATUS_UNSUPPORTED = 0x02

OSGP_COMMISSION_PD_LEN = 5
"""Plaintext of the CommissionRequest protected-data block: initial SeqNo(4) || KeyID(1)."""

OSGP_UDK_FLAG_BROADCAST = 0x01
"""UpdateDomainKeys flags bit 0: the wrapped key is the domain broadcast key K_bc."""
OSGP_UDK_FLAG_OMA = 0x02
"""UpdateDomainKeys flags bit 1: the wrapped key carries the 12-byte LonTalk OMA key (+4 zero bytes)."""
OSGP_UDK_FLAGS_KNOWN = OSGP_UDK_FLAG_BROADCAST | OSGP_UDK_FLAG_OMA
OSGP_WRAPPED_KEY_LEN = 24
"""RFC 3394 AES key wrap of a 16-byte key under K_kek."""
OSGP_OMA_KEY_LEN = 12

# --- §4.3 protected PDU (reference §2.6) [D]
OSGP_KEY_ID_LEN = 1
OSGP_SEQ_LEN = 4
OSGP_TAG_LEN = 8
"""CCM tag length M of protected PDUs (and of the CommissionRequest PD block)."""
OSGP_NONCE_LEN = 13
"""CCM nonce = source ID(6) || SeqNo(4) || KeyID(1) || ctrl(1) || domain(1); L = 2."""
OSGP_NONCE_DOMAIN_DATA = 0x00
"""Last nonce byte for protected PDUs."""
OSGP_NONCE_DOMAIN_COMMISSION = 0x01
"""Last nonce byte for the CommissionRequest PD block (SeqNo = 0, KeyID = 0, ctrl = 0, source = ID_S)."""
OSGP_SEQ_MAX = 0xFFFFFFFF
"""Last usable 32-bit sequence number; a sender must re-key before it (never wraps)."""
OSGP_SEQ_FIRST = 1
"""First sequence number under a fresh key (0 is never sent)."""
OSGP_REPLAY_WINDOW_UNICAST = 32
"""Receive window (RFC 4303 style sliding bitmap) for unicast; 1 = strictly increasing only."""
OSGP_REPLAY_WINDOW_BROADCAST = 32
"""Receive window for broadcast (repeaters reorder)."""
OSGP_KEY_ID_MAX = 0xFF
