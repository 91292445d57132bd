"""``kiosk staff add ID --role staff|supervisor|engineer`` (password read from stdin or asked
without echo; never shown or logged)."""

from __future__ import annotations

import argparse
import getpass
import sys

from kiosk.commands._common import print_error
from kiosk.config import ConfigError, load_config
from kiosk.staff import Role, StaffAccounts


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("staff", help="staff and engineer accounts")
    inner = parser.add_subparsers(dest="staff_command", metavar="ACTION", required=True)
    add = inner.add_parser("add", help="create or reset an account (password from stdin or a prompt)")
    add.add_argument("staff_id")
    add.add_argument("--role", choices=[r.value for r in Role], required=True)
    add.set_defaults(func=run_add)


def run_add(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.profile)
    except ConfigError as exc:
        return print_error("config.invalid", str(exc))
    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    from kiosk.app import open_state

    conn = open_state(config)
    try:
        StaffAccounts(conn).add(args.staff_id, Role(args.role), password)
    except ValueError as exc:
        return print_error("staff.invalid_password", str(exc))
    finally:
        conn.close()
    print(f"ok: account {args.staff_id} ({args.role})")
    return 0
