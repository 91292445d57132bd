"""The outbox's production sender: deferred contract calls with the message's key, and look-up."""

from __future__ import annotations

import pytest

from kiosk.backend.api import Business, idempotency_key
from kiosk.backend.client import BackendClient
from kiosk.backend.outbox_sender import BackendOutboxSender, outbox_payload
from kiosk.backend.simulator import BackendSimulator, Fault
from offline.errors import AmbiguousSendError, RefusedSendError, TransientSendError
from offline.outbox import Delivery, MessageKind

from .conftest import FIRST_ISSUE
from .visit_driver import ACCOUNT, ATR, CIC


def delivery(key: str, kind: MessageKind, payload: bytes) -> Delivery:
    return Delivery(
        message_id=1, idempotency_key=key, kind=kind, visit_id="V-outbox-01", attempt=1, payload=payload
    )


@pytest.fixture
def marked(client: BackendClient):
    app = client.submit_application(
        idempotency_key("V-outbox-01", "submit"),
        id_number=FIRST_ISSUE,
        business=Business.FIRST_ISSUE,
        reason=None,
        mobile="13800138000",
        bank_code="B01",
        photo_jpeg=b"\xff\xd8x",
    )
    return client.mark_instant_issue(idempotency_key("V-outbox-01", "mark"), app.application_id)


def result_payload(card) -> bytes:
    return outbox_payload(
        "reportResult",
        {
            "application_id": card.application_id,
            "card_number": card.card_number,
            "success": True,
            "atr": ATR,
            "card_identification_code": CIC,
            "bank_account": ACCOUNT,
        },
    )


def test_deferred_result_report_is_delivered_once(
    client: BackendClient, sim: BackendSimulator, marked
) -> None:
    sender = BackendOutboxSender(client)
    key = idempotency_key("V-outbox-01", "result")
    ack = sender.send(delivery(key, MessageKind.RESULT_REPORT, result_payload(marked)))
    assert ack.reference == marked.application_id
    again = sender.send(delivery(key, MessageKind.RESULT_REPORT, result_payload(marked)))
    assert again == ack
    assert sim.state.count("requests", "operation = 'reportResult'") == 1
    assert sender.lookup(key) == ack
    assert sender.lookup(idempotency_key("V-outbox-01", "never-sent")) is None


def test_ambiguous_delivery_is_resolved_by_lookup(
    client: BackendClient, sim: BackendSimulator, marked
) -> None:
    sender = BackendOutboxSender(client)
    key = idempotency_key("V-outbox-01", "result")
    sim.inject(Fault.DROP_AFTER_COMMIT, count=1, operation="reportResult")
    with pytest.raises(AmbiguousSendError):
        sender.send(delivery(key, MessageKind.RESULT_REPORT, result_payload(marked)))
    assert sender.lookup(key).reference == marked.application_id


def test_transient_and_refused_map_to_the_outbox_errors(
    client: BackendClient, sim: BackendSimulator, marked
) -> None:
    sender = BackendOutboxSender(client)
    sim.inject(Fault.HTTP_500, count=1, operation="reportResult")
    with pytest.raises(TransientSendError):
        sender.send(
            delivery(idempotency_key("V-outbox-01", "r1"), MessageKind.RESULT_REPORT, result_payload(marked))
        )
    wrong = outbox_payload(
        "reportResult",
        {"application_id": marked.application_id, "card_number": "A99999990", "success": False},
    )
    with pytest.raises(RefusedSendError) as info:
        sender.send(delivery(idempotency_key("V-outbox-01", "r2"), MessageKind.RESULT_REPORT, wrong))
    assert info.value.code == "backend.application_state_invalid"
    with pytest.raises(RefusedSendError):
        sender.lookup(idempotency_key("V-outbox-01", "r2"))  # it arrived and was refused
    with pytest.raises(RefusedSendError):
        sender.send(delivery(idempotency_key("V-outbox-01", "r3"), MessageKind.AUDIT, b"not json"))


def test_ledger_and_audit_records_are_stored(client: BackendClient, sim: BackendSimulator) -> None:
    sender = BackendOutboxSender(client)
    payload = outbox_payload(
        "submitKioskRecord", {"kind": "ledger_movement", "record": {"card": "B000123", "movement": "spoiled"}}
    )
    ack = sender.send(
        delivery(idempotency_key("V-outbox-01", "ledger"), MessageKind.LEDGER_MOVEMENT, payload)
    )
    assert ack.reference.startswith("R") and sim.state.count("kiosk_records") == 1
