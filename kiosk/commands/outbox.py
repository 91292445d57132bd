"""``kiosk outbox status --json`` (counts per state, oldest pending age), ``kiosk outbox list
[--state quarantined]`` and ``kiosk outbox retry ID`` (release a quarantined message).

These read the outbox table of the state database in the configured state directory; they never
open a payload, so they need no key. Output is JSON (one object per command)."""

from __future__ import annotations

import argparse
import sqlite3

from kiosk.commands._common import print_error, print_json
from kiosk.config import ConfigError, load_config
from kiosk.storage import StorageError, open_state_db
from offline.errors import OutboxError
from offline.outbox import OUTBOX_COMPONENT, OUTBOX_SCHEMA, MessageState, Outbox


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("outbox", help="the offline queue: status, quarantined messages, retry")
    inner = parser.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)
    status = inner.add_parser("status", help="counts per state and the age of the oldest pending message")
    status.add_argument("--json", action="store_true", help="JSON (the default output is JSON too)")
    status.set_defaults(func=run_status)
    listing = inner.add_parser("list", help="messages (never their payloads), oldest first")
    listing.add_argument("--state", choices=[s.value for s in MessageState], default=None)
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(func=run_list)
    retry = inner.add_parser("retry", help="release a quarantined message for another try")
    retry.add_argument("id", help="the message id (from `kiosk outbox list`)")
    retry.set_defaults(func=run_retry)


def _open(args: argparse.Namespace) -> Outbox | int:
    """The outbox of the configured state directory, or the exit code of a printed error."""
    try:
        config = load_config(args.profile)
        conn = open_state_db(config.resolve(config.kiosk.state_dir), {OUTBOX_COMPONENT: OUTBOX_SCHEMA})
    except ConfigError as exc:
        return print_error("config.invalid", str(exc))
    except (StorageError, sqlite3.Error, OSError) as exc:
        return print_error("outbox.state_db_unavailable", f"{type(exc).__name__}: {exc}")
    return Outbox(conn)


def run_status(args: argparse.Namespace) -> int:
    outbox = _open(args)
    if isinstance(outbox, int):
        return outbox
    print_json(outbox.status().as_dict())
    return 0


def run_list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        return print_error("outbox.bad_limit", "--limit must be ≥ 1")
    outbox = _open(args)
    if isinstance(outbox, int):
        return outbox
    state = MessageState(args.state) if args.state else None
    print_json({"messages": [m.as_dict() for m in outbox.messages(state, args.limit)]})
    return 0


def run_retry(args: argparse.Namespace) -> int:
    try:
        message_id = int(args.id)
    except ValueError:
        return print_error("outbox.bad_id", f"message id must be a number, not {args.id!r}")
    outbox = _open(args)
    if isinstance(outbox, int):
        return outbox
    try:
        message = outbox.retry(message_id)
    except OutboxError as exc:
        return print_error(exc.code, str(exc.args[0]) if exc.args else exc.code)
    print_json({"retried": message.as_dict()})
    return 0
