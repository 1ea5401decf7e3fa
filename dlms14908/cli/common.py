"""What every command-line tool shares: exit codes and the one-line error report."""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import IntEnum

from ..errors import (
    AuthenticationFailed,
    CrcError,
    DecodeError,
    DlmsTimeout,
    ProtocolError,
    ProxyError,
    SecurityError,
    TransactionFailed,
)


class Exit(IntEnum):
    OK = 0
    FINDINGS = 1  # ran fine, but the input has problems (bad CRC, failed tag, ...)
    USAGE = 2  # argparse's own code for bad arguments
    DECODE = 3  # input could not be decoded
    KEYFILE = 4  # key file missing, unreadable or malformed
    PORT = 5  # port cannot be opened / peer unreachable
    TIMEOUT = 6  # no answer in time, or the LonTalk transaction failed (meter unreachable)
    PROXY = 7  # a repeater chain failed
    SECURITY = 8  # authentication / decryption failed
    PROTOCOL = 9  # any other protocol error
    INTERNAL = 70


class KeyFileError(ProtocolError):
    """The key file cannot be used.  The message never quotes key material."""


class PortError(ProtocolError):
    """A port URL cannot be opened."""


def exit_code_for(exc: BaseException) -> Exit:
    if isinstance(exc, KeyFileError):
        return Exit.KEYFILE
    if isinstance(exc, PortError):
        return Exit.PORT
    if isinstance(exc, CrcError):
        return Exit.FINDINGS
    if isinstance(exc, DecodeError):
        return Exit.DECODE
    if isinstance(exc, (DlmsTimeout, TimeoutError, TransactionFailed)):
        return Exit.TIMEOUT
    if isinstance(exc, ProxyError):
        return Exit.PROXY
    if isinstance(exc, (AuthenticationFailed, SecurityError)):
        return Exit.SECURITY
    if isinstance(exc, ProtocolError):
        return Exit.PROTOCOL
    if isinstance(exc, OSError):
        return Exit.PORT
    return Exit.INTERNAL


def run_guarded(prog: str, func: Callable[[], int]) -> int:
    """Run ``func``; turn any exception into one clear line on stderr and an exit code."""
    try:
        return func()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - the CLI boundary: one line, never a traceback
        code = exit_code_for(exc)
        kind = "internal error" if code is Exit.INTERNAL else "error"
        msg = str(exc) or type(exc).__name__
        print(f"{prog}: {kind}: {msg}", file=sys.stderr)
        return int(code)
