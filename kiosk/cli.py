"""The ``kiosk`` command (``kiosk --help``).

Each group of subcommands lives in its own module under ``kiosk/commands/`` and exposes
``register(subparsers)``; the module adds its parser(s) and sets ``func`` to a callable
``(args) -> int`` (the exit code). Commands print JSON where their contract says so and never a
traceback for a bad input: they print an ``{"error": {...}}`` object and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

# Modules under kiosk/commands/, in the order their commands appear in --help. A module that
# does not exist yet is skipped (it belongs to a device or business not built yet); a module
# that exists but fails to import is an error, not skipped.
COMMAND_MODULES = (
    "run",
    "demo",
    "doctor",
    "config",
    "staff",
    "selftest",
    "idcard",
    "card",
    "cardface",
    "receipt",
    "ledger",
    "face",
    "pinpad",
    "backend",
    "outbox",
    "diagnostics",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiosk",
        description="Social security card self-service kiosk (社保卡自助即时制卡一体机).",
    )
    parser.add_argument("--profile", help="configuration profile in config/ (e.g. demo)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module_name = f"kiosk.commands.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
