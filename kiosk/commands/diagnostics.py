"""``kiosk diagnostics export OUT.tar.gz [--selftest] [--lines N]``: the redacted diagnostics
bundle (versions, configuration without secrets, device states, the last log lines, outbox
counts, the last visits) for a support ticket. It reads the state directory and the log; device
states are the last self-check the running kiosk saved, or a fresh one with ``--selftest``
(which builds the kiosk, so the kiosk service must not be running)."""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path
from typing import Any

from kiosk.commands._common import print_error, print_json
from kiosk.config import ConfigError, KioskConfig, load_config
from kiosk.diagnostics import DEFAULT_LOG_LINES, DiagnosticsError, build_bundle, recent_visits
from kiosk.journal import JOURNAL_SCHEMA, Journal
from kiosk.storage import StorageError, open_state_db
from offline.outbox import OUTBOX_COMPONENT, OUTBOX_SCHEMA, Outbox


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("diagnostics", help="export the redacted diagnostics bundle")
    inner = parser.add_subparsers(dest="diagnostics_command", metavar="ACTION", required=True)
    export = inner.add_parser("export", help="write the bundle (.tar.gz) to a file or a USB stick")
    export.add_argument("out", type=Path, help="the bundle to write, e.g. /media/usb/diag.tar.gz")
    export.add_argument("--selftest", action="store_true", help="run a fresh self-check (builds the kiosk)")
    export.add_argument("--lines", type=int, default=DEFAULT_LOG_LINES, help="last log lines to include")
    export.set_defaults(func=run_export)


def _saved_report(config: KioskConfig) -> dict[str, Any] | None:
    path = config.resolve(config.kiosk.state_dir) / "selfcheck.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")), source=str(path.name))
    except (OSError, ValueError):
        return None


def _fresh_report(config: KioskConfig) -> dict[str, Any]:
    from kiosk.app import build_kiosk

    kiosk = build_kiosk(config, console_log=False)
    try:
        return kiosk.core.selfcheck.run().as_dict()
    finally:
        kiosk.close()


def run_export(args: argparse.Namespace) -> int:
    if args.lines < 0:
        return print_error("diagnostics.bad_lines", "--lines must be ≥ 0")
    try:
        config = load_config(args.profile)
    except ConfigError as exc:
        return print_error("config.invalid", str(exc))
    devices = _fresh_report(config) if args.selftest else _saved_report(config)
    outbox = visits = None
    try:
        conn = open_state_db(
            config.resolve(config.kiosk.state_dir), {"journal": JOURNAL_SCHEMA, OUTBOX_COMPONENT: OUTBOX_SCHEMA}
        )
    except (StorageError, sqlite3.Error, OSError) as exc:
        outbox = {"error": f"state database unavailable: {type(exc).__name__}"}
    else:
        try:
            outbox = Outbox(conn).status().as_dict()
            visits = recent_visits(Journal(conn))
        finally:
            conn.close()
    try:
        bundle = build_bundle(args.out, config, devices=devices, outbox=outbox, visits=visits, log_lines=args.lines)
    except DiagnosticsError as exc:
        return print_error(exc.code, str(exc))
    except OSError as exc:
        return print_error("diagnostics.unwritable", f"{args.out}: {exc.strerror}")
    print_json({"path": str(bundle.path), "files": list(bundle.files), "size": bundle.size})
    return 0
