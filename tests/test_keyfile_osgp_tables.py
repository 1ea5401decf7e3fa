"""One key file serves dlms-cli and dlms-analyze: the [osgp] table of either is accepted by both."""

from __future__ import annotations

import pytest

from dlms14908.aio_link import OsgpKeys
from dlms14908.cli.common import KeyFileError

PSK = "000102030405060708090a0b0c0d0e0f"


def test_live_link_accepts_the_analyzers_session_table() -> None:
    keys = OsgpKeys.from_table(
        {"psk": PSK, "sessions": {"045e00000107": {"key_id": 1, "key": "11" * 16}}}
    )
    assert keys is not None
    assert PSK not in repr(keys)


def test_live_link_still_rejects_typos() -> None:
    with pytest.raises(KeyFileError, match="unknown field") as e:
        OsgpKeys.from_table({"psk": PSK, "pks": PSK})
    assert PSK not in str(e.value)
