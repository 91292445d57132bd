"""Fixtures: the back-end simulator on a real loopback HTTP socket, a signed client, a clock."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kiosk.backend.client import BackendClient
from kiosk.backend.signing import Sm2PrivateKey, sm3
from kiosk.backend.simulator import BackendSimulator, SimulatorRules

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_PEOPLE = REPO_ROOT / "config" / "demo-people.json"
KIOSK_ID = "KIOSK-TEST-01"

# Demo people by their key (config/demo-people.json, fictitious).
FIRST_ISSUE = "110101195503120048"
RENEWAL = "110101196211050011"  # card expires in 30 days
REPLACEMENT = "110101194807210021"  # formal loss report made
NO_LOSS_REPORT = "110101197002280034"  # card normal, 2000 days left
TEMPORARY_HELD = "110101195812300069"
ACTIVE = "11010119751010001X"  # normal card, 3000 days left
RARE = "110101199001010082"

# Extra fictitious people for rules the demo file does not cover.
CENTRAL_READY = "110101198801010013"
CENTRAL_FRESH = "110101199202020028"
SEALED = "110101198303030037"
TEMPORARY_LOST = "110101198404040046"
TEMPORARY_LOSS = "110101198505050055"

EXTRA_PEOPLE = [
    {
        "key": "central_ready",
        "name": "钱测试",
        "sex": "male",
        "ethnicity": "汉",
        "birth_date": "1988-01-01",
        "id_number": CENTRAL_READY,
        "backend": {
            "card_state": "未启用",
            "card_expires_in_days": 3650,
            "central_application": {"submitted_days_ago": 60},
        },
    },
    {
        "key": "central_fresh",
        "name": "孙测试",
        "sex": "female",
        "ethnicity": "回",
        "birth_date": "1992-02-02",
        "id_number": CENTRAL_FRESH,
        "backend": {
            "card_state": "未启用",
            "card_expires_in_days": 3650,
            "central_application": {"submitted_days_ago": 0, "delivery": "mail"},
        },
    },
    {
        "key": "sealed",
        "name": "李封存",
        "sex": "male",
        "ethnicity": "汉",
        "birth_date": "1983-03-03",
        "id_number": SEALED,
        "backend": {"card_state": "封存", "card_expires_in_days": 2000},
    },
    {
        "key": "temporary_lost",
        "name": "周临时",
        "sex": "female",
        "ethnicity": "汉",
        "birth_date": "1984-04-04",
        "id_number": TEMPORARY_LOST,
        "backend": {"card_state": None, "temporary_card": "lost"},
    },
    {
        "key": "temporary_loss",
        "name": "吴临挂",
        "sex": "male",
        "ethnicity": "满",
        "birth_date": "1985-05-05",
        "id_number": TEMPORARY_LOSS,
        "backend": {"card_state": "临时挂失", "card_expires_in_days": 2000},
    },
]


class FakeClock:
    """Business time the tests move (renewal windows, progress timelines, pending accounts)."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, **delta: float) -> None:
        with self._lock:
            self._now += timedelta(**delta)


class FakeHsm:
    """Trivial HSM double: a keyed SM3 of its inputs, and a record of every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bytes, bytes]] = []

    def compute(self, operation: str, key_name: str, diversifier: bytes, data: bytes) -> bytes:
        self.calls.append((operation, key_name, diversifier, data))
        return sm3(b"|".join((operation.encode(), key_name.encode(), diversifier, data)))[:8]


@pytest.fixture
def people_file(tmp_path: Path) -> Path:
    data = json.loads(DEMO_PEOPLE.read_text(encoding="utf-8"))
    data["people"].extend(EXTRA_PEOPLE)
    path = tmp_path / "people.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))


@pytest.fixture
def hsm() -> FakeHsm:
    return FakeHsm()


@pytest.fixture
def kiosk_key() -> Sm2PrivateKey:
    return Sm2PrivateKey.generate()


@pytest.fixture
def rules() -> SimulatorRules:
    return SimulatorRules(fee_replacement=2000, fee_renewal=0)


def make_simulator(
    state_dir: Path,
    people_file: Path,
    clock: FakeClock,
    hsm: FakeHsm,
    rules: SimulatorRules,
    kiosk_key: Sm2PrivateKey,
    **kw: Any,
) -> BackendSimulator:
    sim = BackendSimulator(
        state_dir,
        people_file,
        hsm=hsm,
        rules=rules,
        clock=clock,
        kiosk_keys={KIOSK_ID: kiosk_key.public_key},
        **kw,
    )
    return sim.start()


@pytest.fixture
def sim(
    tmp_path: Path,
    people_file: Path,
    clock: FakeClock,
    hsm: FakeHsm,
    rules: SimulatorRules,
    kiosk_key: Sm2PrivateKey,
) -> Iterator[BackendSimulator]:
    simulator = make_simulator(tmp_path / "sim", people_file, clock, hsm, rules, kiosk_key)
    try:
        yield simulator
    finally:
        simulator.close()


def make_client(sim: BackendSimulator, kiosk_key: Sm2PrivateKey, **kw: Any) -> BackendClient:
    options: dict[str, Any] = {
        "connect_timeout_s": 1.0,
        "read_timeout_s": 2.0,
        "retries": 2,
        "backoff_s": 0.0,
    }
    options.update(kw)
    return BackendClient(sim.base_url, KIOSK_ID, kiosk_key, **options)


@pytest.fixture
def client(sim: BackendSimulator, kiosk_key: Sm2PrivateKey) -> Iterator[BackendClient]:
    c = make_client(sim, kiosk_key)
    try:
        yield c
    finally:
        c.close()
