"""ID reader fixtures: the simulator on a real pseudo-terminal and the pyserial driver on its slave side."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest

from hardware.idreader.reader import IdCardReader
from hardware.idreader.simulator import IdReaderSimulator
from tests.conftest import REPO_ROOT

PEOPLE_FILE = REPO_ROOT / "config" / "demo-people.json"
TODAY = date(2026, 11, 23)


@pytest.fixture
def people_file() -> Path:
    return PEOPLE_FILE


@pytest.fixture
def simulator() -> Iterator[IdReaderSimulator]:
    with IdReaderSimulator(PEOPLE_FILE, card_delay_s=0.0) as sim:
        yield sim


def make_reader(port: str, **overrides: object) -> IdCardReader:
    settings: dict[str, object] = {
        "find_timeout_s": 0.3,
        "select_timeout_s": 0.3,
        "read_timeout_s": 0.6,
        "poll_interval_s": 0.03,
        "inter_byte_timeout_s": 0.1,
        "reopen_interval_s": 0.1,
        "today": TODAY,
    }
    settings.update(overrides)
    return IdCardReader(port, **settings)  # type: ignore[arg-type]


@pytest.fixture
def reader(simulator: IdReaderSimulator) -> Iterator[IdCardReader]:
    driver = make_reader(simulator.path).open()
    yield driver
    driver.close()


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


class EventLog:
    """A listener that queues every event the reader emits."""

    def __init__(self) -> None:
        self.events: queue.Queue[object] = queue.Queue()
        self.seen: list[object] = []

    def __call__(self, event: object) -> None:
        self.events.put(event)
        self.seen.append(event)

    def next(self, timeout_s: float = 5.0) -> object:
        return self.events.get(timeout=timeout_s)
