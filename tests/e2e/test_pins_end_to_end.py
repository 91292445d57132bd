"""The financial PIN through the real links: keys pressed on the simulated pad (pty), a PIN block
only, through the signed client to the back-end simulator, which decrypts it as the bank's HSM
would and refuses a weak PIN. No PIN digit or PIN block reaches a log or the state database."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from kiosk.app import Kiosk
from kiosk.devices.pinpad import KeyAlgorithm
from kiosk.pins import FinancialPinService, PinResult


@pytest.fixture
def central_card(demo_kiosk: Kiosk, people) -> tuple[str, str]:
    person = people["activate_central_card"]
    backend = demo_kiosk.core.services.backend
    record = backend.query_person(person["id_number"])
    # The account number (PAN, tag 5A) is read from the card's chip in a visit; here from the
    # simulated bank, since no chip is involved in this test.
    row = demo_kiosk.simulators["backend"].state._conn.execute(
        "SELECT bank_account FROM cards WHERE card_number = ?", (record.card.card_number,)
    ).fetchone()
    return record.card.card_number, row[0]


def service(kiosk: Kiosk) -> FinancialPinService:
    c = kiosk.core.config.pinpad
    return FinancialPinService(
        kiosk.core.services.pinpad, kiosk.core.services.backend,
        key_slot=(c.pin_key_master_index, c.pin_key_index), algorithm=KeyAlgorithm(c.pin_algorithm),
        bank_key_index=c.bank_key_index, timeout_s=10, max_attempts=3,
    )


def test_financial_pin_block_is_accepted_by_the_back_end_simulator(
    demo_kiosk: Kiosk, central_card: tuple[str, str], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    card_number, account = central_card
    pad_sim = demo_kiosk.simulators["pinpad"]
    # First pair: a weak PIN the bank refuses; second pair: a good one.
    pad_sim.queue_keys("123456E123456E" + "582947E582947E")
    with caplog.at_level(logging.DEBUG):
        outcome = service(demo_kiosk).set_pin("V-test.financial_pin", card_number, account)
    assert outcome.result is PinResult.SET
    assert outcome.attempts == 2
    assert [r.value for r in outcome.refusals] == ["bank_refused"]
    backend_db = demo_kiosk.simulators["backend"].state
    row = backend_db._conn.execute("SELECT pin_set FROM cards WHERE card_number = ?", (card_number,)).fetchone()
    assert row[0] == 1
    text = "\n".join(caplog.messages)
    assert "582947" not in text and "123456" not in text
    state_db = Path(demo_kiosk.core.config.kiosk.state_dir) / "kiosk.sqlite3"
    raw = b"".join(p.read_bytes() for p in state_db.parent.glob("kiosk.sqlite3*"))
    assert b"582947" not in raw


def test_mismatched_entries_never_reach_the_bank(demo_kiosk: Kiosk, central_card: tuple[str, str]) -> None:
    card_number, account = central_card
    pad_sim = demo_kiosk.simulators["pinpad"]
    pad_sim.queue_keys("582947E582946E" + "582947E582947E")
    outcome = service(demo_kiosk).set_pin("V-test2.financial_pin", card_number, account)
    assert outcome.result is PinResult.SET
    assert [r.value for r in outcome.refusals] == ["mismatch"]
    requests = demo_kiosk.simulators["backend"].state._conn.execute(
        "SELECT COUNT(*) FROM requests WHERE operation = 'setFinancialPin'"
    ).fetchone()[0]
    assert requests == 1
