"""``kiosk config check [FILE]`` and ``kiosk config defaults``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kiosk.commands._common import print_error
from kiosk.config import ConfigError, check_file, defaults_toml, load_config


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("config", help="check configuration files")
    inner = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = inner.add_parser("check", help="validate FILE, or every layer the kiosk would load")
    check.add_argument("file", nargs="?", type=Path)
    check.set_defaults(func=run_check)
    defaults = inner.add_parser("defaults", help="print the default configuration (config/default.toml)")
    defaults.set_defaults(func=lambda args: sys.stdout.write(defaults_toml()) and 0)


def run_check(args: argparse.Namespace) -> int:
    try:
        if args.file is not None:
            check_file(args.file)
            where = str(args.file)
        else:
            load_config(args.profile)
            where = "default.toml" + (f" + {args.profile}.toml" if args.profile else "") + " + site file + KIOSK_* environment"
    except ConfigError as exc:
        return print_error("config.invalid", str(exc))
    print(f"ok: {where}")
    return 0
