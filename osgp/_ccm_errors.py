"""The one authentication-failure exception shared by the C and the fallback CCM paths."""

from __future__ import annotations

from dlms14908.errors import AuthenticationFailed

__all__ = ["InvalidTag"]


class InvalidTag(AuthenticationFailed):
    """A CCM tag or CMAC did not verify (SP 800-38C §6.2 / RFC 4493 §2.5).

    Carries no plaintext, key or tag bytes."""

    def __init__(self, message: str = "authentication tag did not verify") -> None:
        super().__init__(message)
