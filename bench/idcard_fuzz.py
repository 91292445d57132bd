"""Fuzz of the ID card parser and the driver's reply reader: only their own errors may escape."""

from __future__ import annotations

import argparse
import collections
import logging
import random
import time
from pathlib import Path

DESCRIPTION = (
    "ID card reader: ≥100 000 random and mutated frames through the parser and the driver's reply reader"
)
REPO_ROOT = Path(__file__).resolve().parents[1]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=100_000, help="frames to feed (default 100 000)")
    parser.add_argument("--seed", type=int, default=467)
    parser.add_argument(
        "--show", action="store_true", help="print each frame that raised an unexpected error"
    )
    parser.add_argument("--people", type=Path, default=REPO_ROOT / "config" / "demo-people.json")


class _Exhausted(Exception):
    """The in-memory link has no more bytes (the harness's end of input, not an error)."""


class _BytesLink:
    def __init__(self, data: bytes, rng: random.Random) -> None:
        self.data = memoryview(data)
        self.rng = rng

    def reset_input_buffer(self) -> None:
        return None

    def write(self, data: bytes) -> int:
        return len(data)

    def read(self, size: int = 1) -> bytes:
        if not self.data:
            raise _Exhausted
        n = min(size, self.rng.randint(1, 300))
        out = bytes(self.data[:n])
        self.data = self.data[n:]
        return out

    def close(self) -> None:
        return None


def _mutate(frame: bytes, rng: random.Random, xor_checksum) -> bytes:  # type: ignore[no-untyped-def]
    data = bytearray(frame)
    for _ in range(rng.randint(1, 5)):
        if not data:
            break
        kind = rng.randrange(7)
        at = rng.randrange(len(data))
        if kind == 0:
            data[at] ^= rng.randint(1, 255)
        elif kind == 1:
            del data[at:]
        elif kind == 2:
            data[at:at] = rng.randbytes(rng.randint(1, 32))
        elif kind == 3 and len(data) > 7:
            data[5:7] = rng.randint(0, 0xFFFF).to_bytes(2, "big")
        elif kind == 4 and len(data) > 14:
            # Length fields inside the data.
            off = rng.choice((10, 12))
            data[off : off + 2] = rng.randint(0, 0x0600).to_bytes(2, "big")
        elif kind == 5 and len(data) > 270:
            off = 14 + rng.randrange(256)
            data[off : off + 16] = rng.randbytes(16)
        else:
            data[at : at + 2] = rng.choice([b"\x00\xd8", b"\x00\xdc", b"\xff\xff", "长".encode("utf-16-le")])
    roll = rng.random()
    if roll < 0.4 and len(data) > 8:
        # Re-frame the mutated body (right length and checksum) to reach the data parsers.
        body = bytes(data[7:-1])
        head = (len(body) + 1).to_bytes(2, "big")
        return bytes(data[:5]) + head + body + bytes([xor_checksum(head + body)])
    if roll < 0.7 and len(data) > 7:
        data[-1] = xor_checksum(bytes(data[5:-1]))  # valid checksum only
    return bytes(data)


def run(args: argparse.Namespace) -> dict[str, object]:
    from hardware.idreader import protocol as p
    from hardware.idreader.reader import receive_reply
    from hardware.idreader.simulator import load_deck
    from kiosk.devices.idreader import IdReaderError

    rng = random.Random(args.seed)
    # Thousands of flagged cards would flood the console; the figures are the output here.
    logging.disable(logging.WARNING)
    deck = list(load_deck(args.people).values())
    good = [
        p.build_reply(p.Sw3.SUCCESS, p.build_read_data(c.text_block, c.photo, c.fingerprint)) for c in deck
    ]
    good += [p.build_reply(s) for s in p.Sw3] + [p.build_reply(p.Sw3.FIND_SUCCESS, b"\x00" * 4)]
    outcomes: collections.Counter[str] = collections.Counter()
    unexpected: collections.Counter[str] = collections.Counter()
    started = time.perf_counter()
    for i in range(args.frames):
        choice = rng.random()
        if choice < 0.25:
            frame = rng.randbytes(rng.randint(0, 1400))
        elif choice < 0.35:
            frame = p.PREAMBLE + rng.randbytes(rng.randint(0, 1400))
        else:
            frame = _mutate(rng.choice(good), rng, p.xor_checksum)
        try:
            p.decode_read_frame(frame, today=None)
            outcomes["decoded"] += 1
        except IdReaderError as exc:
            outcomes[exc.code] += 1
        except Exception as exc:  # noqa: BLE001 - what this bench exists to find
            unexpected[f"decode:{type(exc).__name__}"] += 1
            if args.show:
                print(repr(exc), frame.hex())
        if i % 4 == 0:
            stream = rng.randbytes(rng.randint(0, 64)) + frame + rng.choice([b"", rng.choice(good)])
            try:
                reply = receive_reply(_BytesLink(stream, rng), bytearray(), 5.0)
                if reply.sw3 == p.Sw3.SUCCESS and len(reply.data) > 4:
                    record = p.split_read_data(reply.data)
                    p.parse_identity(record.text, record.photo, record.fingerprint)
                outcomes["driver_frames"] += 1
            except (_Exhausted, IdReaderError):
                outcomes["driver_rejected_or_incomplete"] += 1
            except Exception as exc:  # noqa: BLE001 - what this bench exists to find
                unexpected[f"driver:{type(exc).__name__}"] += 1
    seconds = time.perf_counter() - started
    logging.disable(logging.NOTSET)
    return {
        "frames": args.frames,
        "driver_streams": (args.frames + 3) // 4,
        "unexpected_errors": sum(unexpected.values()),
        "unexpected_by_type": dict(unexpected),
        "decoded": outcomes["decoded"],
        "rejected_by_code": {k: v for k, v in sorted(outcomes.items()) if k.startswith("idreader.")},
        "seconds": round(seconds, 1),
        "frames_per_s": round(args.frames / seconds),
    }
