"""ID card read time (find + select + read) over the pty against the wire time at the baud rate."""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

DESCRIPTION = (
    "ID card reader: whole read (find+select+read) vs wire time, simulator card delay 0 (target ratio ≤ 1.3)"
)
TARGET_RATIO = 1.3
REPO_ROOT = Path(__file__).resolve().parents[1]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reads", type=int, default=40, help="timed reads (default 40)")
    parser.add_argument("--baud", type=int, default=115200, help="configured baud rate (default 115200)")
    parser.add_argument("--card", default="first_issue", help="deck key of the card (default first_issue)")
    parser.add_argument("--fingerprint", action="store_true", help="read with fingerprint (30 10)")
    parser.add_argument("--people", type=Path, default=REPO_ROOT / "config" / "demo-people.json")


def run(args: argparse.Namespace) -> dict[str, object]:
    from hardware.idreader import protocol as p
    from hardware.idreader.reader import IdCardReader
    from hardware.idreader.simulator import IdReaderSimulator

    with IdReaderSimulator(args.people, baud=args.baud, card_delay_s=0.0) as sim:
        sim.place(args.card)
        card = sim.deck[args.card]
        fingerprint = (card.fingerprint or b"") if args.fingerprint else None
        read_reply = p.build_reply(p.Sw3.SUCCESS, p.build_read_data(card.text_block, card.photo, fingerprint))
        wire_bytes = 3 * 10 + len(p.build_reply(p.Sw3.FIND_SUCCESS, card.iin))
        wire_bytes += len(p.build_reply(p.Sw3.SUCCESS, card.sn)) + len(read_reply)
        wire_s = wire_bytes * 10 / args.baud
        with IdCardReader(sim.path, args.baud, with_fingerprint=args.fingerprint) as reader:
            reader.read_identity()  # warm-up
            times = []
            for _ in range(args.reads):
                started = time.perf_counter()
                reader.read_identity()
                times.append(time.perf_counter() - started)
    read_s = statistics.median(times)
    ratio = read_s / wire_s
    return {
        "baud": args.baud,
        "reads": args.reads,
        "wire_bytes": wire_bytes,
        "wire_s": round(wire_s, 4),
        "read_s": round(read_s, 4),
        "read_p90_s": round(sorted(times)[int(0.9 * (len(times) - 1))], 4),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
    }
