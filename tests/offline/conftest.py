"""Fixtures for the outbox tests: a key file, the state database opened as the kiosk opens it,
a controllable clock, and the loopback receiver simulator (started and stopped per test)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from outbox_helpers import Clock

from kiosk.storage import STATE_DB_NAME, connect, migrate
from offline.http_sender import HttpTestSender
from offline.outbox import OUTBOX_COMPONENT, OUTBOX_SCHEMA, Outbox
from offline.sealing import Sealer, add_key
from offline.simulator import OutboxReceiverSimulator


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "outbox.key"
    add_key(path, "k2026a")
    return path


@pytest.fixture
def sealer(key_file: Path) -> Sealer:
    return Sealer.from_key_file(key_file)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / STATE_DB_NAME


@pytest.fixture
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    connection = connect(db_path)
    migrate(connection, OUTBOX_COMPONENT, OUTBOX_SCHEMA)
    yield connection
    connection.close()


@pytest.fixture
def outbox(conn: sqlite3.Connection, sealer: Sealer, clock: Clock) -> Outbox:
    return Outbox(conn, sealer, clock)


@pytest.fixture
def worker_outbox(db_path: Path, conn: sqlite3.Connection, sealer: Sealer, clock: Clock) -> Iterator[Outbox]:
    """The sync worker's own connection to the same database (as in the kiosk)."""
    connection = connect(db_path)
    yield Outbox(connection, sealer, clock)
    connection.close()


@pytest.fixture
def receiver() -> Iterator[OutboxReceiverSimulator]:
    with OutboxReceiverSimulator(seed=7) as simulator:
        yield simulator


@pytest.fixture
def sender(receiver: OutboxReceiverSimulator) -> Iterator[HttpTestSender]:
    http_sender = HttpTestSender(receiver.base_url, timeout_s=0.3)
    yield http_sender
    http_sender.close()
