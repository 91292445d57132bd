"""What each business needs from the outbox while the card-management system cannot be reached
(离线业务). The screens and notices belong to the visit flows; these tests pin the outbox's side:

- first issue (首次申领): the application (ID text, photo, consents) is queued for central
  production (集中制卡) whole and sealed, and reaches the back end byte for byte when it returns;
- loss report (挂失): cannot wait, so it is never queued — there is no outbox kind for it;
- activations and result reports of cards already made are queued and arrive in order per visit;
- the home screen shows the kiosk offline: the worker's link state and its change callback.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from outbox_helpers import Clock

from offline.http_sender import HttpTestSender
from offline.outbox import MessageKind, MessageState, Outbox
from offline.simulator import OutboxReceiverSimulator
from offline.sync import Backoff, LinkState, SyncWorker

PHOTO = bytes(range(256)) * 64 + b"PORTRAIT-END"  # 16 KiB of binary "JPEG"
ID_NUMBER = "11010519491231002X"
NAME = "王秀英"


def application() -> bytes:
    return json.dumps(
        {
            "business": "first_issue",
            "production": "central",
            "identity": {"name": NAME, "id_number": ID_NUMBER, "address": "示例市示例区示例路 1 号"},
            "photo_jpeg_b64": base64.b64encode(PHOTO).decode("ascii"),
            "consents": [
                {"purpose": "card_issuance", "retention": "until acknowledged", "at": "2026-11-23T02:00:00Z"}
            ],
        },
        ensure_ascii=False,
    ).encode("utf-8")


@pytest.fixture
def down_then_up() -> tuple[OutboxReceiverSimulator, int]:
    """A receiver that is not running yet, on a port kept for it."""
    probe = OutboxReceiverSimulator().start()
    port = probe.address[1]
    probe.stop()
    return OutboxReceiverSimulator(port=port, seed=1), port


def test_first_issue_offline_application_waits_sealed_then_arrives_whole(
    outbox: Outbox,
    worker_outbox: Outbox,
    clock: Clock,
    db_path: Path,
    down_then_up: tuple[OutboxReceiverSimulator, int],
) -> None:
    receiver, port = down_then_up
    links: list[LinkState] = []
    sender = HttpTestSender(f"http://127.0.0.1:{port}", timeout_s=0.5)
    worker = SyncWorker(
        worker_outbox, sender, backoff=Backoff(1, 60), clock=clock, on_link_change=links.append
    )
    message_id = outbox.enqueue(
        "V20261123-a1.submit_application", MessageKind.APPLICATION, application(), visit_id="V20261123-a1"
    )
    worker.run_until_idle()
    assert worker.link is LinkState.OFFLINE, "the home screen must be able to show the kiosk offline"
    clock.advance(3600)
    status = outbox.status()
    assert status.counts[MessageState.PENDING] == 1 and status.oldest_unacknowledged_age_s == pytest.approx(
        3600
    )
    raw = db_path.read_bytes() + db_path.with_name(db_path.name + "-wal").read_bytes()
    assert ID_NUMBER.encode() not in raw and b"PORTRAIT-END" not in raw and NAME.encode() not in raw
    with receiver:
        worker.run_until_idle()
        assert receiver.get("V20261123-a1.submit_application").body == application()
    assert worker.link is LinkState.ONLINE and links == [LinkState.OFFLINE, LinkState.ONLINE]
    message = outbox.get(message_id)
    assert message.state is MessageState.ACKNOWLEDGED and message.purged
    assert [r.idempotency_key for r in outbox.destruction_records()] == ["V20261123-a1.submit_application"]


def test_a_loss_report_has_no_outbox_kind_it_cannot_be_queued() -> None:
    with pytest.raises(ValueError):
        MessageKind("loss_report")
    assert {k.value for k in MessageKind} == {
        "result_report",
        "activation",
        "ledger_movement",
        "audit",
        "destruction_record",
        "application",
    }


def test_result_reports_and_activations_of_cards_made_offline_arrive_in_order(
    outbox: Outbox, worker_outbox: Outbox, clock: Clock, down_then_up: tuple[OutboxReceiverSimulator, int]
) -> None:
    receiver, port = down_then_up
    worker = SyncWorker(
        worker_outbox, HttpTestSender(f"http://127.0.0.1:{port}", 0.5), backoff=Backoff(1, 60), clock=clock
    )
    visits = [f"V20261123-b{n}" for n in range(3)]
    for visit in visits:
        outbox.enqueue(
            f"{visit}.ledger", MessageKind.LEDGER_MOVEMENT, b'{"movement":"blank_used"}', visit_id=visit
        )
        outbox.enqueue(
            f"{visit}.result_report", MessageKind.RESULT_REPORT, b'{"card":"A1234567X"}', visit_id=visit
        )
        worker.run_until_idle()  # offline: nothing goes, nothing is lost
        outbox.enqueue(f"{visit}.activate", MessageKind.ACTIVATION, b'{"card":"A1234567X"}', visit_id=visit)
    assert outbox.status().counts[MessageState.PENDING] == 9
    clock.advance(600)
    with receiver:
        worker.run_until_idle()
        order = [r.idempotency_key for r in receiver.received()]
    for visit in visits:
        assert (
            order.index(f"{visit}.ledger")
            < order.index(f"{visit}.result_report")
            < order.index(f"{visit}.activate")
        )
    assert outbox.status().counts[MessageState.ACKNOWLEDGED] == 9
