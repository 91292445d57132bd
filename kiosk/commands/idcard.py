"""``kiosk idcard decode FILE`` and ``kiosk idcard read``: the ID card reader from the command line.

Both print one JSON object describing the card (ID number masked unless ``--reveal``), or
``{"error": {"code", "message"}}``: exit 2 for a bad input (unreadable file, invalid frame, bad
configuration), exit 1 when the reader could not read a card.
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path
from typing import Any

from kiosk.commands._common import print_error, print_json
from kiosk.devices.idreader import CardType, IdentityCard, IdReaderError, NoCardError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("idcard", help="decode or read an ID card (身份证)")
    inner = parser.add_subparsers(dest="idcard_command", metavar="ACTION", required=True)
    decode = inner.add_parser(
        "decode", help="decode FILE: the raw bytes of a read reply frame (30 01 / 30 10)"
    )
    decode.add_argument("file")
    decode.add_argument("--reveal", action="store_true", help="print the full ID number")
    decode.add_argument(
        "--today", type=_iso_date, help="judge validity on this day (default: today, Asia/Shanghai)"
    )
    decode.set_defaults(func=run_decode)
    read = inner.add_parser("read", help="read the card on the configured reader (or --port)")
    read.add_argument("--port", help="serial port of the reader (default: configuration)")
    read.add_argument("--reveal", action="store_true", help="print the full ID number")
    read.add_argument("--wait", type=float, default=10.0, help="seconds to wait for a card (default 10)")
    read.add_argument("--card", help="simulated reader only: key of the card to place (demo-people.json)")
    read.set_defaults(func=run_read)


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date: {text!r}") from exc


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def identity_json(card: IdentityCard, *, reveal: bool = False) -> dict[str, Any]:
    """The CLI's JSON contract for one card (issue 4)."""
    foreign = card.card_type in (CardType.FOREIGN_PERMANENT_2017, CardType.FOREIGN_PERMANENT_2023)
    return {
        "card_type": card.card_type.value,
        "name": card.name,
        "name_en": card.name_en if foreign else None,
        "sex": card.sex.value if card.sex is not None else None,
        "ethnicity": card.ethnicity if card.card_type is CardType.RESIDENT else None,
        "birth_date": _iso(card.birth_date),
        "address": card.address or None,
        "id_number": card.id_number if reveal else card.masked_id_number,
        "issuer": card.issuer or None,
        "valid_from": _iso(card.valid_from),
        "valid_until": _iso(card.valid_until),
        "nationality": card.nationality if foreign else None,
        "id_number_valid": card.id_number_valid,
        "photo_bytes": len(card.photo),
        "fingerprint_bytes": len(card.fingerprint),
        "long_term": card.long_term,
        "validity": card.validity.value,
        "sex_code": card.sex_code,
        "ethnicity_code": card.ethnicity_code,
        "flags": list(card.flags),
    }


def run_decode(args: argparse.Namespace) -> int:
    from hardware.idreader.protocol import decode_read_frame

    try:
        with open(args.file, "rb") as f:
            frame = f.read(1 << 16)
    except OSError as exc:
        return print_error("idcard.file_unreadable", f"cannot read {args.file}: {exc.strerror or exc}")
    try:
        card = decode_read_frame(frame, today=args.today)
    except IdReaderError as exc:
        return print_error(exc.code, str(exc))
    print_json(identity_json(card, reveal=args.reveal))
    return 0


def run_read(args: argparse.Namespace) -> int:
    from hardware.idreader.reader import IdCardReader
    from hardware.idreader.simulator import IdReaderSimulator
    from kiosk.config import ConfigError, load_config

    try:
        config = load_config(args.profile)
    except ConfigError as exc:
        return print_error("config.invalid", str(exc))
    section = config.idreader
    simulator = None
    port = args.port or section.port
    try:
        if args.port is None and section.simulate:
            simulator = IdReaderSimulator(
                config.resolve(Path(section.sim_people_file)),
                baud=section.baud,
                card_delay_s=section.sim_card_delay_s,
            ).start()
            key = args.card or section.sim_initial_card or next(iter(simulator.deck))
            try:
                simulator.place(key)
            except KeyError as exc:
                return print_error("idcard.unknown_card", str(exc.args[0]))
            port = simulator.path
        elif args.card:
            return print_error(
                "idcard.bad_option", "--card needs the simulated reader (idreader.simulate = true)"
            )
        reader = IdCardReader(
            port,
            section.baud,
            find_timeout_s=section.find_timeout_s,
            select_timeout_s=section.select_timeout_s,
            read_timeout_s=section.read_timeout_s,
            retries=section.retries,
            with_fingerprint=section.read_fingerprint,
        )
        try:
            card = _wait_for_card(reader, args.wait, section.poll_interval_s)
        except IdReaderError as exc:
            return print_error(exc.code, str(exc), exit_code=1)
        finally:
            reader.close()
    finally:
        if simulator is not None:
            simulator.stop()
    print_json(identity_json(card, reveal=args.reveal))
    return 0


def _wait_for_card(reader: Any, wait_s: float, poll_s: float) -> IdentityCard:
    deadline = time.monotonic() + max(wait_s, 0.0)
    reader.open()
    while True:
        try:
            return reader.read_identity()
        except NoCardError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(poll_s)
