"""``kiosk selftest [--json]``: builds the kiosk from configuration (every simulator with
``--profile demo``), runs the self-check once and prints whether it can serve a citizen, and
each device's state, code and message. Exit 0 when in service, 1 when not, 2 on a bad
configuration.

On a kiosk whose service is running, the devices are held by that process: stop it first, or
read the engineer menu's status page (``kiosk diagnostics export`` includes the last check)."""

from __future__ import annotations

import argparse
from typing import Any

from kiosk.commands._common import print_error, print_json
from kiosk.config import ConfigError, KioskConfig, load_config


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("selftest", help="check every device and service; exit 0 in service, 1 out of service")
    parser.add_argument("--json", action="store_true", help="one JSON object: in_service and devices")
    parser.add_argument("--lang", help="language of the messages (default: the kiosk's)")
    parser.set_defaults(func=run)


def build(config: KioskConfig) -> Any:
    """The kiosk as the composition root builds it (a seam for tests)."""
    from kiosk.app import build_kiosk

    return build_kiosk(config, console_log=False)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.profile)
    except ConfigError as exc:
        return print_error("config.invalid", str(exc))
    lang = args.lang or config.kiosk.language
    if lang not in config.kiosk.languages:
        return print_error("selftest.bad_language", f"--lang must be one of {', '.join(config.kiosk.languages)}")
    kiosk = build(config)
    try:
        report = kiosk.core.selfcheck.run()
        translator = kiosk.core.translator

        def text(key: str, **values: Any) -> str:
            try:
                return translator.text(key, lang, **values)
            except (KeyError, IndexError, ValueError):
                return translator.text(key, lang)

        devices = [
            {
                "name": c.name, "state": c.state.value, "xfs_state": c.xfs_state, "code": c.code,
                "message": text(c.message_key, **dict(c.values)), "fix": text(c.fix_key), "blocking": c.blocking,
                "detail": c.detail,
            }
            for c in report.checks
        ]
    finally:
        kiosk.close()
    if args.json:
        print_json({"in_service": report.in_service, "checked_at": report.at.isoformat(), "devices": devices})
    else:
        print("IN SERVICE" if report.in_service else "OUT OF SERVICE")
        for d in devices:
            mark = "FAULT" if d["blocking"] else ("ok   " if d["state"] in ("ready", "busy") else "note ")
            line = f"{mark} {d['name']:12s} {d['xfs_state']:14s} {d['code']:32s} {d['message']}"
            if d["blocking"]:
                line += f"  → {d['fix']}"
            print(line)
    return 0 if report.in_service else 1
