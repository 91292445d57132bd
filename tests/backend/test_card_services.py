"""The contract and simulator for the card services after the first issue: a pending bank activation
confirmed through the kiosk's outbox once the bank answers, the financial PIN changed only with
the current PIN, 解挂 refused once a replacement was applied for, bank accounts a chip can carry."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kiosk.backend.api import (
    BackendRefused,
    BackendTransient,
    BankAccountState,
    Business,
    NoticeCode,
    ProgressStage,
    idempotency_key,
)
from kiosk.backend.client import BackendClient
from kiosk.backend.outbox_sender import BackendOutboxSender, outbox_payload
from kiosk.backend.simulator import BackendSimulator, Fault
from kiosk.storage import connect, migrate
from offline.outbox import OUTBOX_COMPONENT, OUTBOX_SCHEMA, MessageKind, Outbox
from offline.sealing import Sealer, add_key
from offline.sync import SyncWorker

from .conftest import ACTIVE, FakeClock

CENTRAL_CARD = "110101195204180024"  # activate_central_card: produced centrally, not activated
AFTER_REPLACEMENT = "110101197206150047"  # cancel_loss_after_replacement
DEMO_FINANCIAL_PIN = b"580731"  # active_card's fictitious demo PIN (config/demo-people.json)


class AsciiBlocks:
    """Test double of the bank's PIN decryption: the "block" is the PIN's digits, zero-padded."""

    def decode(self, pin_block: bytes, account_number: str, key_index: int) -> bytes:
        return pin_block.rstrip(b"\x00")


def block(pin: bytes) -> bytes:
    return pin.ljust(8, b"\x00")


def test_a_pending_bank_activation_is_confirmed_through_the_outbox_once_the_bank_answers(
    tmp_path: Path, client: BackendClient, sim: BackendSimulator, clock: FakeClock
) -> None:
    card = client.query_person(CENTRAL_CARD).card.card_number
    assert client.set_financial_pin(idempotency_key("V-act-01", "fin_pin"), card, block(b"592604")).accepted
    sim.inject(Fault.BANK_PENDING, count=1, operation="activateBankAccount")
    assert client.activate_bank_account(idempotency_key("V-act-01", "activate_bank"), card).state is BankAccountState.PENDING

    key_file = tmp_path / "keys" / "outbox.key"
    add_key(key_file, "k2026a")
    conn = connect(tmp_path / "state" / "kiosk.sqlite3")
    migrate(conn, OUTBOX_COMPONENT, OUTBOX_SCHEMA)
    now = [datetime(2026, 11, 23, 2, 0, tzinfo=UTC)]
    outbox = Outbox(conn, Sealer.from_key_file(key_file), lambda: now[0])
    outbox.enqueue(idempotency_key("V-act-01", "confirm_bank"), MessageKind.ACTIVATION,
                   outbox_payload("confirmBankActivation", {"card_number": card}), visit_id="V-act-01",
                   personal_data=())
    worker = SyncWorker(outbox, BackendOutboxSender(client), clock=lambda: now[0])

    first = worker.run_once()  # the bank has not answered: 503, nothing recorded, tried again later
    assert (first.sent, first.acknowledged, first.retried) == (1, 0, 1)
    assert client.query_bank_account(card).state is BankAccountState.PENDING
    assert sim.state.count("requests", "operation = 'confirmBankActivation'") == 0

    clock.advance(hours=2)  # the bank's answer has come in
    now[0] += timedelta(hours=2)  # and the outbox's retry is due
    second = worker.run_once()
    assert second.acknowledged == 1
    assert client.query_bank_account(card).state is BankAccountState.ACTIVE
    assert sim.state.count("requests", "operation = 'confirmBankActivation'") == 1
    states = conn.execute("SELECT state FROM outbox").fetchall()
    assert states == [("acknowledged",)]
    conn.close()


def test_confirming_an_activation_that_never_started_is_refused(client: BackendClient) -> None:
    card = client.query_person(CENTRAL_CARD).card.card_number
    with pytest.raises(BackendRefused) as refused:
        client.confirm_bank_activation(idempotency_key("V-act-02", "confirm_bank"), card)
    assert refused.value.notice is NoticeCode.CARD_STATE_INVALID


def test_a_still_pending_confirmation_is_transient(client: BackendClient, sim: BackendSimulator) -> None:
    card = client.query_person(CENTRAL_CARD).card.card_number
    client.set_financial_pin(idempotency_key("V-act-03", "fin_pin"), card, block(b"592604"))
    sim.inject(Fault.BANK_PENDING, count=1, operation="activateBankAccount")
    client.activate_bank_account(idempotency_key("V-act-03", "activate_bank"), card)
    with pytest.raises(BackendTransient):
        client.confirm_bank_activation(idempotency_key("V-act-03", "confirm_bank"), card)


def test_the_financial_pin_changes_only_with_the_current_pin(client: BackendClient, sim: BackendSimulator) -> None:
    sim.state.pin_decoder = AsciiBlocks()
    card = client.query_person(ACTIVE).card.card_number
    wrong = client.change_financial_pin(idempotency_key("V-pin-01", "fin.1"), card, block(b"111222"), block(b"592604"))
    assert (wrong.accepted, wrong.old_pin_correct) == (False, False)
    weak = client.change_financial_pin(idempotency_key("V-pin-01", "fin.2"), card, block(DEMO_FINANCIAL_PIN),
                                       block(b"123456"))
    assert (weak.accepted, weak.old_pin_correct) == (False, True)
    done = client.change_financial_pin(idempotency_key("V-pin-01", "fin.3"), card, block(DEMO_FINANCIAL_PIN),
                                       block(b"592604"))
    assert (done.accepted, done.old_pin_correct) == (True, True)
    stale = client.change_financial_pin(idempotency_key("V-pin-01", "fin.4"), card, block(DEMO_FINANCIAL_PIN),
                                        block(b"604592"))
    assert stale.old_pin_correct is False  # the old PIN is no longer the current one
    row = sim.state.query("SELECT pin_verification FROM cards WHERE card_number = ?", (card,))[0]
    assert b"592604".hex() not in str(row[0]) and "592604" not in str(row[0])


def test_a_loss_report_cannot_be_cancelled_once_a_replacement_was_applied_for(client: BackendClient) -> None:
    with pytest.raises(BackendRefused) as refused:
        client.cancel_loss(idempotency_key("V-unloss-01", "cancel_loss"), AFTER_REPLACEMENT)
    assert refused.value.notice is NoticeCode.REPLACEMENT_ALREADY_APPLIED
    progress = client.query_progress(AFTER_REPLACEMENT).items
    replacement = [i for i in progress if i.business is Business.REPLACEMENT]
    assert replacement and replacement[0].stage in (ProgressStage.SUBMITTED, ProgressStage.IN_PRODUCTION)


def test_seeded_bank_accounts_are_digits_with_a_luhn_check(sim: BackendSimulator) -> None:
    def luhn_ok(number: str) -> bool:
        total = 0
        for n, ch in enumerate(reversed(number)):
            d = int(ch) * (2 if n % 2 else 1)
            total += d - 9 if d > 9 else d
        return total % 10 == 0

    accounts = [row[0] for row in sim.state.query("SELECT bank_account FROM cards WHERE bank_account IS NOT NULL")]
    assert accounts and all(a.isdigit() and 16 <= len(a) <= 19 and luhn_ok(a) for a in accounts), accounts


def test_a_simulator_state_made_before_the_pin_check_is_migrated(tmp_path: Path, sim: BackendSimulator) -> None:
    # The schema creates cards without the column (as older states have it); opening adds it.
    columns = {row[1] for row in sqlite3.connect(sim.state_dir / "backend.sqlite").execute("PRAGMA table_info(cards)")}
    assert "pin_verification" in columns
