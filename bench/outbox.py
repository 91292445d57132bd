"""Outbox throughput: durable enqueues per second against this disk's raw fsync rate (ratio
target ≥ 0.5), and the time to drain a 10 000-message backlog to the loopback receiver
simulator (target ≤ 60 s). Also the sealing speed (SM4-GCM, cryptography) beside pure-Python
gmssl SM4 — why the outbox seals with the former."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from kiosk.storage import connect, migrate
from offline.http_sender import HttpTestSender
from offline.outbox import OUTBOX_SCHEMA, MessageKind, MessageState, Outbox
from offline.sealing import Sealer, add_key
from offline.simulator import OutboxReceiverSimulator
from offline.sync import Backoff, SyncWorker

DESCRIPTION = (
    "durable enqueue_per_s vs raw fsync_per_s (ratio ≥ 0.5), drain_10k_s (≤ 60), "
    "SM4-GCM vs gmssl sealing MB/s"
)

PAYLOAD = json.dumps(
    {"name": "测试人员", "id_number": "11010519491231002X", "photo": "x" * 600}, ensure_ascii=False
).encode("utf-8")
KINDS = (
    MessageKind.RESULT_REPORT,
    MessageKind.ACTIVATION,
    MessageKind.LEDGER_MOVEMENT,
    MessageKind.AUDIT,
    MessageKind.APPLICATION,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--enqueues", type=int, default=2000, help="durable enqueues to time")
    parser.add_argument("--fsync-seconds", type=float, default=2.0, help="total, over the rounds")
    parser.add_argument("--rounds", type=int, default=8, help="alternating fsync/enqueue rounds (medians)")
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="directory on the disk to measure (default: a temp dir; use the state dir's disk)",
    )


def raw_fsync_per_s(directory: Path, seconds: float) -> float:
    """Appends a 4 KiB page and fsyncs it, as a WAL commit does, for ``seconds``."""
    path = directory / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    page = os.urandom(4096)
    count = 0
    try:
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            os.write(fd, page)
            os.fsync(fd)
            count += 1
        elapsed = time.perf_counter() - started
    finally:
        os.close(fd)
        path.unlink()
    return count / elapsed


def _outbox(directory: Path, name: str) -> Outbox:
    if not (directory / "outbox.key").exists():
        add_key(directory / "outbox.key", "bench1")
    conn = connect(directory / name)
    migrate(conn, "outbox", OUTBOX_SCHEMA)
    return Outbox(conn, Sealer.from_key_file(directory / "outbox.key"))


def enqueue_per_s(outbox: Outbox, start: int, count: int) -> float:
    started = time.perf_counter()
    for i in range(start, start + count):
        outbox.enqueue(f"bench-enqueue-{i:08d}", KINDS[i % len(KINDS)], PAYLOAD, visit_id=f"V{i // 4:06d}")
    return count / (time.perf_counter() - started)


def interleaved(
    directory: Path, enqueues: int, fsync_seconds: float, rounds: int
) -> tuple[float, float, float]:
    """Median enqueue and fsync rates over alternating rounds, and the median per-round ratio:
    a shared disk's speed drifts, so the two are measured side by side, not one after the other."""
    outbox = _outbox(directory, "enqueue.sqlite3")
    enqueue_rates: list[float] = []
    fsync_rates: list[float] = []
    per_round = max(1, enqueues // rounds)
    try:
        for r in range(rounds):
            fsync_rates.append(raw_fsync_per_s(directory, fsync_seconds / rounds))
            enqueue_rates.append(enqueue_per_s(outbox, r * per_round, per_round))
    finally:
        outbox.connection.close()
    ratios = [e / f for e, f in zip(enqueue_rates, fsync_rates, strict=True)]
    return statistics.median(enqueue_rates), statistics.median(fsync_rates), statistics.median(ratios)


def drain(directory: Path, backlog: int) -> dict[str, float | int]:
    outbox = _outbox(directory, "drain.sqlite3")
    conn = outbox.connection
    conn.execute("BEGIN IMMEDIATE")  # the backlog is built fast, in one transaction: not what is timed
    for i in range(backlog):
        outbox.enqueue(f"bench-drain-{i:08d}", KINDS[i % len(KINDS)], PAYLOAD, visit_id=f"V{i // 4:06d}")
    conn.execute("COMMIT")
    with OutboxReceiverSimulator() as receiver:
        worker_outbox = Outbox(
            connect(directory / "drain.sqlite3"), Sealer.from_key_file(directory / "outbox.key")
        )
        worker = SyncWorker(
            worker_outbox, HttpTestSender(receiver.base_url, 5.0), backoff=Backoff(0.01, 0.1), batch_size=200
        )
        started = time.perf_counter()
        while True:
            worker.run_until_idle()
            counts = worker_outbox.status().counts
            if counts.get(MessageState.PENDING, 0) + counts.get(MessageState.IN_FLIGHT, 0) == 0:
                break
        elapsed = time.perf_counter() - started
        received = len(receiver.received())
    records = worker_outbox.status().destruction_records
    return {
        "drain_10k_s": round(elapsed, 2),
        "drain_messages_sent": received,
        "drain_destruction_records": records,
    }


def sealing_mb_per_s() -> dict[str, float]:
    from gmssl.sm4 import SM4_ENCRYPT, CryptSM4

    sealer = Sealer({"b": os.urandom(16)}, "b")
    data = os.urandom(4 << 20)
    started = time.perf_counter()
    sealer.seal(data, b"bench")
    sm4_gcm = 4 / (time.perf_counter() - started)
    crypt = CryptSM4()
    crypt.set_key(os.urandom(16), SM4_ENCRYPT)
    sample = os.urandom(64 << 10)
    started = time.perf_counter()
    crypt.crypt_ecb(sample)
    gmssl = (len(sample) / (1 << 20)) / (time.perf_counter() - started)
    return {"seal_sm4_gcm_mb_per_s": round(sm4_gcm, 1), "gmssl_sm4_ecb_mb_per_s": round(gmssl, 3)}


def run(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp)
        enqueues, fsync, ratio = interleaved(directory, args.enqueues, args.fsync_seconds, args.rounds)
        drained = drain(directory, args.backlog)
    figures: dict[str, object] = {
        "enqueue_per_s": round(enqueues, 1),
        "fsync_per_s": round(fsync, 1),
        "ratio": round(ratio, 3),
        "rounds": args.rounds,
        "ratio_target": 0.5,
        "backlog": args.backlog,
        **drained,
        "drain_target_s": 60,
        "drain_ratio_to_target": round(float(drained["drain_10k_s"]) / 60, 3),
    }
    figures.update(sealing_mb_per_s())
    return figures
