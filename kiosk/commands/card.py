"""``kiosk card info [--reader NAME] [--psam-reader NAME] [--simulate]``: the card in the chip station
as JSON (atr, algorithm, spec_version, card_number, card_identification_code, ssn (masked), name,
issue_date, expiry_date, pan (masked), pin_tries_left). Errors: ``{"error": {...}}``, exit 2.

``--simulate`` (or ``[smartcard] simulate = true``) starts pcscd if none runs, the virtual PSAM and
an already personalized virtual card on vsmartcard-vpcd, reads it, and stops them again.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
from typing import Any

from kiosk.commands._common import print_error, print_json
from kiosk.config import ConfigError, load_config


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("card", help="social security card chip in the chip station (PC/SC)")
    inner = parser.add_subparsers(dest="card_command", metavar="ACTION", required=True)
    info = inner.add_parser("info", help="read the card in the chip station (JSON)")
    info.add_argument(
        "--reader", default="", help="PC/SC reader of the chip station (default: config, else first)"
    )
    info.add_argument(
        "--psam-reader", default="", help="PC/SC reader of the PSAM (3.0 cards need it for EF06)"
    )
    info.add_argument(
        "--simulate", action="store_true", help="use pcscd + vpcd with a virtual card (development)"
    )
    info.set_defaults(func=run_info)
    readers = inner.add_parser("readers", help="list the PC/SC readers pcscd sees (JSON)")
    readers.set_defaults(func=run_readers)


def mask_ssn(ssn: str) -> str:
    """Only the last 4 characters of an ID number are ever shown."""
    return "*" * max(0, len(ssn) - 4) + ssn[-4:] if ssn else ""


def mask_pan(pan: str) -> str:
    return pan[:6] + "*" * max(0, len(pan) - 10) + pan[-4:] if len(pan) > 10 else "*" * len(pan)


def card_info_json(info: Any) -> dict[str, Any]:
    return {
        "atr": info.atr,
        "algorithm": info.algorithm.value,
        "spec_version": info.spec_version,
        "card_number": info.card_number,
        "card_identification_code": info.card_identification_code,
        "ssn": mask_ssn(info.ssn),
        "name": info.name,
        "issue_date": info.issue_date.isoformat() if info.issue_date else None,
        "expiry_date": info.expiry_date.isoformat() if info.expiry_date else None,
        "pan": mask_pan(info.pan),
        "pin_tries_left": info.pin_tries_left,
    }


def run_readers(args: argparse.Namespace) -> int:
    from hardware.smartcard.apdu import list_readers

    print_json({"readers": list_readers()})
    return 0


def run_info(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.profile)
    except ConfigError as exc:
        return print_error("config.invalid", str(exc))
    from hardware.smartcard.keys import PsamKeyBackend
    from hardware.smartcard.sscard import ChipStation, find_card_reader
    from kiosk.devices.smartcard import SmartCardError

    section = config.smartcard
    try:
        with contextlib.ExitStack() as stack:
            reader, psam_reader = (
                args.reader or section.encoder_reader,
                args.psam_reader or section.psam_reader,
            )
            if args.simulate or section.simulate:
                reader, psam_reader = _start_simulation(stack, config, start_pcscd=section.sim_start_pcscd)
            reader = find_card_reader(reader)
            backend = (
                PsamKeyBackend(
                    psam_reader, key_level=section.psam_key_level, auto_level=section.psam_auto_level
                )
                if psam_reader
                else _NoKeyBackend()
            )
            if isinstance(backend, PsamKeyBackend):
                stack.callback(backend.close)
            station = ChipStation(reader, backend, card_wait_s=max(section.card_wait_s, 2.0))
            info = station.read_card_basic()
    except SmartCardError as exc:
        return print_error(exc.code, str(exc))
    print_json(card_info_json(info))
    return 0


class _NoKeyBackend:
    """Key back end of a command without PSAM: 2.0 cards still read; 3.0 cards need RKSSSE."""

    from kiosk.devices.smartcard import KeyBackendKind as _Kind

    kind = _Kind.PSAM

    def _refuse(self, *args: object) -> bytes:
        from kiosk.devices.smartcard import KeyBackendError

        raise KeyBackendError(
            "this card protects EF06: give --psam-reader (or [smartcard] psam_reader)",
            code="smartcard.key_backend_unavailable",
        )

    auth_data = mac = encrypt = _refuse

    def status(self):  # type: ignore[no-untyped-def]
        from kiosk.devices import DeviceStatus

        return DeviceStatus.ready("keys")


def _start_simulation(stack: contextlib.ExitStack, config: Any, *, start_pcscd: bool) -> tuple[str, str]:
    from hardware.smartcard.apdu import wait_for_card
    from hardware.smartcard.crypto import Algorithm
    from hardware.smartcard.pcscd import PcscDaemon
    from hardware.smartcard.virtual import SmartCardSimulator, personalized_card

    if start_pcscd:
        daemon = PcscDaemon().start()
        stack.callback(daemon.stop)
    region = config.region.region_code
    city = region if region.isdigit() and len(region) == 6 and region != "000000" else "110100"
    sim = SmartCardSimulator().start(
        personalized_card(
            secrets.randbits(48), city_code=city, algorithm=Algorithm(config.smartcard.sim_algorithm)
        )
    )
    stack.callback(sim.stop)
    wait_for_card(sim.psam_reader, 5.0, atr=sim.psam.atr)
    return sim.card_reader, sim.psam_reader
