"""``kiosk backend-sim``: the back-end simulator in the foreground (卡管系统模拟器).

``kiosk backend-sim --port 8765 --state var/backend-sim [--people config/demo-people.json]``
prints one JSON line ``{"url", "kiosk_id", "kiosk_key_file", "state_dir"}`` and serves until
SIGTERM or Ctrl-C. The key file is a demo kiosk signing key the simulator trusts.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from typing import Any

from kiosk.commands._common import print_error, print_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backend-sim",
        help="run the card-management/bank back-end simulator on 127.0.0.1 (foreground)",
        description="Back-end simulator (卡管系统模拟器): the HTTP contract of docs/api/openapi.yaml "
        "with the business rules, state in SQLite under --state.",
    )
    parser.add_argument("--port", type=int, default=None, help="TCP port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--state", type=Path, default=None, help="state directory (SQLite, keys)")
    parser.add_argument(
        "--people", type=Path, default=None, help="seed file (default: config/demo-people.json)"
    )
    parser.add_argument("--kiosk-id", default=None, help="kiosk id to trust (default: [kiosk] kiosk_id)")
    parser.set_defaults(func=run_simulator)


def run_simulator(args: argparse.Namespace) -> int:
    from kiosk.backend.wiring import build_simulator
    from kiosk.config import ConfigError, load_config

    if args.port is not None and not 0 <= args.port <= 65535:
        return print_error("backend.bad_port", f"port must be 0..65535, not {args.port}")
    if args.people is not None and not args.people.is_file():
        return print_error("backend.people_file_missing", f"no such people file: {args.people}")
    try:
        config = load_config(getattr(args, "profile", None))
    except ConfigError as exc:
        return print_error("config.invalid", str(exc))
    try:
        simulator = build_simulator(config, state_dir=args.state, port=args.port, people_file=args.people)
        simulator.start()
    except (OSError, ValueError, KeyError) as exc:
        return print_error("backend.sim_start_failed", f"{type(exc).__name__}: {exc}")
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        kiosk_id = args.kiosk_id or config.kiosk.kiosk_id
        key_file = simulator.demo_kiosk_key(kiosk_id)
        print_json(
            {
                "url": simulator.base_url,
                "kiosk_id": kiosk_id,
                "kiosk_key_file": str(key_file),
                "state_dir": str(simulator.state_dir),
            }
        )
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        simulator.close()
    return 0
