"""``dlms-analyze``: decode APDUs, frames and captures.

Each sub-command lives in its own module exposing ``register(subparsers)``;
the parser it adds sets ``func`` to a callable ``(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..cli.common import run_guarded

#: modules under dlms14908.analyzer that provide sub-commands
SUBCOMMAND_MODULES = ("apdu_cmd", "frame_cmd", "capture_cmd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlms-analyze",
        description="Decode DLMS/COSEM over ISO/IEC 14908 traffic: APDUs, LonTalk frames, captures.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            mod = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__package__}.{name}":
                continue  # sub-command not built yet
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_guarded("dlms-analyze", lambda: int(args.func(args)))


if __name__ == "__main__":
    sys.exit(main())
