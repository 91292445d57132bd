"""Smart card over the real pcscd + vsmartcard-vpcd stack with the virtual card (simulator):
median APDU round trip (apdu_median_ms ≤ 1) and a full personalization with read-back
(personalization_s ≤ 0.5), per algorithm and key back end."""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date

DESCRIPTION = "APDU round trip via pcscd+vpcd (apdu_median_ms ≤ 1) and personalization with read-back (personalization_s ≤ 0.5)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--apdus", type=int, default=500)
    parser.add_argument("--cards", type=int, default=3, help="personalizations per algorithm/back end")
    parser.add_argument("--photo-bytes", type=int, default=4000)


def run(args: argparse.Namespace) -> dict:
    from hardware.smartcard.apdu import CardChannel, CommandApdu, wait_for_card
    from hardware.smartcard.crypto import Algorithm
    from hardware.smartcard.keys import HsmKeyBackend, PsamKeyBackend, SimulatedHsm
    from hardware.smartcard.layout import card_number_check_char
    from hardware.smartcard.pcscd import PcscDaemon
    from hardware.smartcard.sscard import ChipStation
    from hardware.smartcard.virtual import SmartCardSimulator, blank_card_for
    from kiosk.devices.smartcard import CardData

    figures: dict = {}
    with PcscDaemon() as _daemon, SmartCardSimulator() as sim:
        wait_for_card(sim.psam_reader, 5, atr=sim.psam.atr)
        serial = 0x7B000000
        card = blank_card_for(serial)
        sim.insert(card)
        wait_for_card(sim.card_reader, 5, atr=card.atr)
        times = []
        with CardChannel(sim.card_reader) as channel:
            challenge = CommandApdu(0x00, 0x84, 0x00, 0x00, le=8)
            for _ in range(args.apdus):
                started = time.perf_counter()
                channel.transmit(challenge)
                times.append(time.perf_counter() - started)
        apdu_ms = statistics.median(times) * 1000
        figures["apdu_median_ms"] = round(apdu_ms, 3)
        figures["apdu_p95_ms"] = round(sorted(times)[int(len(times) * 0.95)] * 1000, 3)
        sim.remove()

        body = "C1234567"
        photo = b"\xff\xd8" + bytes(i % 251 for i in range(args.photo_bytes - 4)) + b"\xff\xd9"
        data = CardData(
            "BENCH",
            body + card_number_check_char(body),
            "11010519491231002X",
            "张三",
            "1",
            "01",
            date(1949, 12, 31),
            date(2026, 1, 1),
            date(2036, 1, 1),
            photo_jpeg=photo,
        )
        psam = PsamKeyBackend(sim.psam_reader)
        all_runs: list[float] = []
        for algorithm in Algorithm:
            for name, backend in (("psam", psam), ("hsm", HsmKeyBackend(SimulatedHsm()))):
                runs = []
                for _ in range(args.cards):
                    serial += 1
                    card = blank_card_for(serial, algorithm)
                    sim.insert(card)
                    wait_for_card(sim.card_reader, 5, atr=card.atr)
                    station = ChipStation(sim.card_reader, backend)
                    started = time.perf_counter()
                    station.personalize(data)
                    runs.append(time.perf_counter() - started)
                    sim.remove()
                    wait_for_card(sim.card_reader, 5, present=False)
                figures[f"personalization_s_{algorithm.value}_{name}"] = round(statistics.median(runs), 4)
                all_runs.extend(runs)
        psam.close()
    personalization = statistics.median(all_runs)
    figures["personalization_s"] = round(personalization, 4)
    figures["photo_bytes"] = args.photo_bytes
    figures["apdu_target_ms"] = 1.0
    figures["apdu_ratio_to_target"] = round(apdu_ms / 1.0, 3)
    figures["personalization_target_s"] = 0.5
    figures["personalization_ratio_to_target"] = round(personalization / 0.5, 3)
    return figures
