"""``kiosk ledger …``: the card stock ledger (空白卡台账) from the command line.

- ``kiosk ledger status --json``: cards per place, whether the books add up, the last count and
  open discrepancies.
- ``kiosk ledger report --period day|month|shift [--date YYYY-MM-DD] --json``: 日清月结 (shift: since
  the last shift closing, 交班).
- ``kiosk ledger restock (--range FIRST LAST | --cards N1,N2,…) --operator ID``.
- ``kiosk ledger count --hopper N --reject-bin N [--in-printer N] --operator ID``: a staff count;
  a mismatch is recorded as a discrepancy and exits 3.
"""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from kiosk.commands._common import print_error, print_json
from kiosk.config import ConfigError, load_config
from kiosk.ledger import (
    LEDGER_SCHEMA,
    LOCAL_TZ,
    CardLedger,
    CountSource,
    LedgerDiscrepancy,
    LedgerError,
    Place,
    StockCount,
    card_range,
)
from kiosk.storage import StorageError, open_state_db


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("ledger", help="card stock ledger (空白卡台账)")
    parser.add_argument("--state-dir", type=Path, help="state directory (default: [kiosk] state_dir)")
    inner = parser.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)

    status = inner.add_parser("status", help="cards per place and whether they balance")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=run_status)

    report = inner.add_parser("report", help="day or month report (日清月结)")
    report.add_argument("--period", required=True, help="day, month or shift")
    report.add_argument("--date", help="YYYY-MM-DD (default: today, local time)")
    report.add_argument("--json", action="store_true")
    report.set_defaults(func=run_report)

    restock = inner.add_parser("restock", help="register blank cards into the hopper")
    group = restock.add_mutually_exclusive_group(required=True)
    group.add_argument("--range", nargs=2, metavar=("FIRST", "LAST"))
    group.add_argument("--cards", help="comma-separated card numbers")
    restock.add_argument("--operator", required=True)
    restock.add_argument("--batch")
    restock.set_defaults(func=run_restock)

    count = inner.add_parser("count", help="record a staff count (盘点)")
    count.add_argument("--hopper", type=int, required=True)
    count.add_argument("--reject-bin", type=int, required=True)
    count.add_argument("--in-printer", type=int, default=0)
    count.add_argument("--operator", required=True)
    count.set_defaults(func=run_count)


def _open(args: argparse.Namespace) -> sqlite3.Connection:
    if args.state_dir is not None:
        state_dir = args.state_dir
    else:
        config = load_config(args.profile)
        state_dir = config.resolve(config.kiosk.state_dir)
    return open_state_db(state_dir, {"ledger": LEDGER_SCHEMA})


def _with_ledger(args: argparse.Namespace, action: Callable[[CardLedger], int]) -> int:
    try:
        conn = _open(args)
    except ConfigError as exc:
        return print_error("config.invalid", str(exc))
    except (StorageError, sqlite3.Error, OSError) as exc:
        return print_error("ledger.state_unavailable", str(exc))
    try:
        return action(CardLedger(conn))
    except LedgerDiscrepancy as exc:
        print_json(
            {"error": {"code": exc.code, "message": str(exc)}, "discrepancy": exc.discrepancy.as_dict()}
        )
        return 3
    except LedgerError as exc:
        return print_error(exc.code, str(exc))
    except ValueError as exc:
        return print_error("ledger.bad_input", str(exc))
    finally:
        conn.close()


def status_dict(ledger: CardLedger) -> dict[str, object]:
    balance = ledger.balance()
    last = ledger.last_count()
    open_discrepancies = ledger.open_discrepancies()
    last_count = None
    if last is not None:
        counted, at, agreed = last
        last_count = {**counted.as_dict(), "total": counted.total, "at": at.isoformat(), "agreed": agreed}
    return {
        "per_place": {place.value: balance.per_place[place] for place in Place},
        "registered": balance.registered,
        "held": balance.held,
        "expected": {**balance.expected.as_dict(), "total": balance.expected.total},
        "books_balanced": balance.held == balance.expected.total,
        "last_count": last_count,
        # Whether the last count agrees with the ledger as it stands now and nothing is open;
        # None until the kiosk has ever been counted.
        "balanced": None if last is None else (last[0] == balance.expected and not open_discrepancies),
        "open_discrepancies": [d.as_dict() for d in open_discrepancies],
    }


def run_status(args: argparse.Namespace) -> int:
    def action(ledger: CardLedger) -> int:
        status = status_dict(ledger)
        if args.json:
            print_json(status)
        else:
            per = status["per_place"]
            print("  ".join(f"{k}={v}" for k, v in per.items()))  # type: ignore[union-attr]
            print(f"balanced={status['balanced']} open_discrepancies={len(status['open_discrepancies'])}")  # type: ignore[arg-type]
        return 0

    return _with_ledger(args, action)


def run_report(args: argparse.Namespace) -> int:
    if args.period not in ("day", "month", "shift"):
        return print_error("ledger.bad_period", f"--period must be day, month or shift, not {args.period!r}")
    try:
        day = date.fromisoformat(args.date) if args.date else datetime.now(LOCAL_TZ).date()
    except ValueError:
        return print_error("ledger.bad_date", f"--date must be YYYY-MM-DD, not {args.date!r}")

    def action(ledger: CardLedger) -> int:
        report = ledger.period_report(args.period, day).as_dict()
        if args.json:
            print_json(report)
        else:
            print(
                " ".join(
                    f"{k}={report[k]}"
                    for k in (
                        "opening",
                        "restocked",
                        "issued",
                        "spoiled",
                        "handed_over",
                        "closing",
                        "counted",
                        "balanced",
                    )
                )
            )
        return 0

    return _with_ledger(args, action)


def run_restock(args: argparse.Namespace) -> int:
    def action(ledger: CardLedger) -> int:
        numbers = (
            card_range(*args.range) if args.range else [n.strip() for n in args.cards.split(",") if n.strip()]
        )
        registered = ledger.register_cards(numbers, operator=args.operator, batch=args.batch)
        print_json({"registered": len(registered), "first": registered[0], "last": registered[-1]})
        return 0

    return _with_ledger(args, action)


def run_count(args: argparse.Namespace) -> int:
    def action(ledger: CardLedger) -> int:
        observed = StockCount(hopper=args.hopper, reject_bin=args.reject_bin, in_printer=args.in_printer)
        result = ledger.count(observed, source=CountSource.STAFF, operator=args.operator)
        print_json({"balanced": result.balanced, "count_id": result.count_id, "counted": observed.as_dict()})
        return 0

    return _with_ledger(args, action)
