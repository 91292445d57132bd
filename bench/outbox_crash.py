"""Outbox crash test (断电/强杀测试): ``kill -9`` the enqueuing process and the sync worker at random
moments, many times, against the loopback receiver simulator dropping connections (before and
after committing), timing out and answering 500. Every enqueued message must reach the receiver
exactly once by idempotency key; none lost, none duplicated, nothing left in flight.

How "duplicated" can happen and is measured: the enqueuer commits a journal row (``crash_items``,
standing for the visit journal step) and its outbox message in ONE transaction, with a fresh
random idempotency key per item. If the two were separate commits, a kill between them would make
the restarted enqueuer produce the same item again under a new key: the receiver would see the
item twice. Duplicates also count keys the receiver applied more than once, and keys it holds
that no committed item owns.

Child modes (run by the parent): ``python -m bench.outbox_crash enqueue|sync|drain DIR [ARG]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

from kiosk.storage import connect, migrate
from offline.http_sender import HttpTestSender
from offline.outbox import OUTBOX_SCHEMA, MessageKind, MessageState, Outbox
from offline.sealing import Sealer, add_key
from offline.simulator import OutboxReceiverSimulator
from offline.sync import Backoff, SyncWorker

DESCRIPTION = (
    "kill -9 the enqueuer and the sync worker at random moments (--runs 200): "
    "lost, duplicated, left_in_flight must all be 0"
)

DB = "kiosk.sqlite3"
KEY_FILE = "outbox.key"
ITEMS_SCHEMA = ("CREATE TABLE crash_items (n INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE);",)
KINDS = (
    MessageKind.APPLICATION,
    MessageKind.RESULT_REPORT,
    MessageKind.ACTIVATION,
    MessageKind.LEDGER_MOVEMENT,
    MessageKind.AUDIT,
)
SEND_TIMEOUT_S = 0.25
HOLD_S = 0.4  # a "timeout" fault holds the reply longer than the sender waits


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--min-items", type=int, default=8)
    parser.add_argument("--max-items", type=int, default=30)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where run directories go (default: a temp dir)"
    )


# ------------------------------------------------------------------ children


def _open(directory: Path) -> tuple[sqlite3.Connection, Outbox]:
    conn = connect(directory / DB)
    return conn, Outbox(conn, Sealer.from_key_file(directory / KEY_FILE))


def _pause(rng: random.Random) -> None:
    time.sleep(rng.random() * 0.004)


def child_enqueue(directory: Path, count: int) -> None:
    conn, outbox = _open(directory)
    rng = random.Random()
    start = conn.execute("SELECT COALESCE(MAX(n) + 1, 0) FROM crash_items").fetchone()[0]
    print("ready", flush=True)
    for n in range(start, count):
        key = f"item-{uuid.uuid4().hex}"
        payload = json.dumps(
            {"item": n, "name": "测试人员", "id_number": "11010519491231002X"}, ensure_ascii=False
        ).encode("utf-8")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO crash_items(n, idempotency_key) VALUES (?, ?)", (n, key))
        _pause(rng)  # a kill here must lose both the journal row and the message
        outbox.enqueue(key, KINDS[n % len(KINDS)], payload, visit_id=f"V{n // 3:05d}")
        _pause(rng)
        conn.execute("COMMIT")
        _pause(rng)


def _worker(directory: Path, url: str) -> SyncWorker:
    _, outbox = _open(directory)
    return SyncWorker(
        outbox,
        HttpTestSender(url, SEND_TIMEOUT_S),
        backoff=Backoff(0.01, 0.1),
        batch_size=8,
        poll_interval_s=0.01,
    )


def child_sync(directory: Path, url: str) -> None:
    worker = _worker(directory, url)
    print("ready", flush=True)
    worker.run(threading.Event())


def child_drain(directory: Path, url: str) -> int:
    worker = _worker(directory, url)
    outbox = worker.outbox
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        worker.run_until_idle()
        counts = outbox.status().counts
        if counts.get(MessageState.PENDING, 0) + counts.get(MessageState.IN_FLIGHT, 0) == 0:
            return 0
        time.sleep(0.01)  # the next attempt is a backoff away
    return 1


# ------------------------------------------------------------------ parent


class _Child:
    def __init__(self, mode: str, directory: Path, arg: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.outbox_crash", mode, str(directory), arg],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        self.proc.stdout.readline()  # "ready" (or EOF if it died)

    def kill(self) -> bool:
        """kill -9; True if it was still running."""
        if self.proc.poll() is not None:
            return False
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        return True

    def close(self) -> None:
        self.kill()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _setup(directory: Path) -> None:
    directory.mkdir(parents=True)
    add_key(directory / KEY_FILE, "crash1")
    conn = connect(directory / DB)
    migrate(conn, "outbox", OUTBOX_SCHEMA)
    migrate(conn, "crash_items", ITEMS_SCHEMA)
    conn.close()


def one_run(
    directory: Path, receiver: OutboxReceiverSimulator, rng: random.Random, count: int
) -> dict[str, int]:
    _setup(directory)
    receiver.reset()
    url = receiver.base_url
    kills = 0
    enqueuer = _Child("enqueue", directory, str(count))
    worker = _Child("sync", directory, url)
    try:
        for _ in range(rng.randint(1, 3)):
            time.sleep(rng.uniform(0.0, 0.25))
            target = rng.choice(("enqueuer", "worker", "both"))
            if target in ("enqueuer", "both") and enqueuer.kill():
                kills += 1
                enqueuer = _Child("enqueue", directory, str(count))
            if target in ("worker", "both") and worker.kill():
                kills += 1
                worker = _Child("sync", directory, url)
        if enqueuer.proc.wait(timeout=120) != 0:
            raise RuntimeError("the enqueuer failed")
        time.sleep(rng.uniform(0.0, 0.1))
        kills += worker.kill()  # a last kill: whatever it had in flight is left for the next start
    finally:
        enqueuer.close()
        worker.close()
    left = _states(directory)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    drained = (
        subprocess.run(
            [sys.executable, "-m", "bench.outbox_crash", "drain", str(directory), url],
            check=False,
            env=env,
            timeout=120,
        ).returncode
        == 0
    )
    figures = _check(directory, receiver, kills, drained)
    figures["in_flight_at_last_kill"] = left[MessageState.IN_FLIGHT.value]
    figures["pending_at_last_kill"] = left[MessageState.PENDING.value]
    return figures


def _states(directory: Path) -> Counter[str]:
    conn = sqlite3.connect(directory / DB)
    try:
        return Counter(dict(conn.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall()))
    finally:
        conn.close()


def _check(directory: Path, receiver: OutboxReceiverSimulator, kills: int, drained: bool) -> dict[str, int]:
    conn = sqlite3.connect(directory / DB)
    try:
        items = dict(conn.execute("SELECT idempotency_key, n FROM crash_items").fetchall())
        states = Counter(dict(conn.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall()))
        queued = {k for (k,) in conn.execute("SELECT idempotency_key FROM outbox")}
        personal_acked = {
            k
            for (k,) in conn.execute(
                "SELECT idempotency_key FROM outbox WHERE state = 'acknowledged' AND personal_data <> ''"
            )
        }
        destroyed = {k for (k,) in conn.execute("SELECT idempotency_key FROM outbox_destruction_records")}
        unpurged = conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE state = 'acknowledged' AND payload IS NOT NULL"
        ).fetchone()[0]
    finally:
        conn.close()
    received = [r for r in receiver.received() if r.kind != MessageKind.DESTRUCTION_RECORD.value]
    corrupt = [r for r in received if _item(r.body) is None]
    received = [r for r in received if _item(r.body) is not None]
    received_keys = {r.idempotency_key for r in received}
    by_item = Counter(_item(r.body) for r in received)
    lost = sum(1 for key in items if key not in received_keys or key not in queued)
    duplicated = (
        sum(n - 1 for n in receiver.applied.values() if n > 1)
        + sum(n - 1 for n in by_item.values() if n > 1)
        + sum(1 for key in received_keys if key not in items)
    )
    order: dict[str, list[int]] = defaultdict(list)
    for r in received:
        n = _item(r.body)
        order[f"V{n // 3:05d}"].append(n)
    return {
        "enqueued": len(items),
        "delivered": len(received_keys),
        "lost": lost,
        "duplicated": duplicated,
        "left_in_flight": states[MessageState.IN_FLIGHT.value] + states[MessageState.PENDING.value],
        "quarantined": states[MessageState.QUARANTINED.value],
        "out_of_order": sum(1 for ns in order.values() if ns != sorted(ns)),
        "missing_destruction_records": len(personal_acked - destroyed),
        "unpurged_after_ack": unpurged,
        "not_drained": int(not drained),
        "corrupt_bodies": len(corrupt),
        "kills": kills,
    }


def _item(body: bytes) -> int | None:
    try:
        return int(json.loads(body)["item"])
    except (ValueError, KeyError, TypeError):
        return None


def run(args: argparse.Namespace) -> dict[str, object]:
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    totals: Counter[str] = Counter()
    faults: Counter[str] = Counter()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp, OutboxReceiverSimulator(seed=seed) as receiver:
        receiver.inject("drop_after_commit", rate=0.10)
        receiver.inject("drop_before_commit", rate=0.04)
        receiver.inject("timeout_after_commit", rate=0.04, hold_s=HOLD_S)
        receiver.inject("timeout_before_commit", rate=0.02, hold_s=HOLD_S)
        receiver.inject("http_500", rate=0.04)
        receiver.inject("lookup_down", rate=0.10)
        for index in range(args.runs):
            count = rng.randint(args.min_items, args.max_items)
            totals.update(one_run(Path(tmp) / f"run{index:04d}", receiver, rng, count))
            faults.update(receiver.faults_hit)
    figures: dict[str, object] = {"runs": args.runs, "seed": seed}
    for key in (
        "enqueued",
        "delivered",
        "lost",
        "duplicated",
        "left_in_flight",
        "quarantined",
        "out_of_order",
        "missing_destruction_records",
        "unpurged_after_ack",
        "not_drained",
        "corrupt_bodies",
        "kills",
        "in_flight_at_last_kill",
        "pending_at_last_kill",
    ):
        figures[key] = totals[key]
    figures["faults_hit"] = dict(faults)
    figures["seconds"] = round(time.monotonic() - started, 1)
    return figures


def main(argv: list[str]) -> int:
    # Children stay quiet: the parent reads the database and the receiver, not their logs.
    logging.basicConfig(level=logging.ERROR)
    mode, directory = argv[0], Path(argv[1])
    if mode == "enqueue":
        child_enqueue(directory, int(argv[2]))
        return 0
    if mode == "sync":
        child_sync(directory, argv[2])
        return 0
    if mode == "drain":
        return child_drain(directory, argv[2])
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
