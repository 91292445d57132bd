"""The sync worker against the loopback receiver simulator over real HTTP: acknowledgement with
purge and destruction record, quarantine, ambiguous outcomes resolved by look-up, transient
failures with backoff, restart with messages left in flight, and the link state."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from outbox_helpers import Clock

from offline.errors import TransientSendError
from offline.http_sender import HttpTestSender
from offline.outbox import Delivery, MessageKind, MessageState, Outbox, PersonalData
from offline.simulator import OutboxReceiverSimulator
from offline.sync import Acknowledgement, Backoff, LinkState, SyncWorker

NAME = "王秀英"
ID_NUMBER = "11010519491231002X"


def payload(n: int = 0) -> bytes:
    return json.dumps({"name": NAME, "id_number": ID_NUMBER, "n": n}, ensure_ascii=False).encode("utf-8")


def make_worker(outbox: Outbox, sender: object, clock: Clock, **kwargs: object) -> SyncWorker:
    return SyncWorker(
        outbox,
        sender,
        backoff=Backoff(1.0, 60.0, random.Random(3)),
        clock=clock,  # type: ignore[arg-type]
        **kwargs,
    )  # type: ignore[arg-type]


def test_acknowledged_application_is_purged_and_a_destruction_record_written(
    outbox: Outbox,
    worker_outbox: Outbox,
    sender: HttpTestSender,
    receiver: OutboxReceiverSimulator,
    clock: Clock,
) -> None:
    message_id = outbox.enqueue("V1.submit", MessageKind.APPLICATION, payload(), visit_id="V1")
    make_worker(worker_outbox, sender, clock).run_until_idle()
    message = outbox.get(message_id)
    assert message.state is MessageState.ACKNOWLEDGED and message.purged
    assert receiver.get("V1.submit").body == payload(), "the back end must get the payload whole"
    [record] = outbox.destruction_records()
    assert record.idempotency_key == "V1.submit" and record.visit_id == "V1"
    assert record.what == (PersonalData.ID_TEXT, PersonalData.PHOTO, PersonalData.CONSENT)
    assert record.destroyed_at == clock.now and message.acknowledgement in record.why
    # The destruction record itself went to the back end, after the message, and holds no data.
    sent = receiver.get("V1.submit.destroyed")
    assert sent is not None and sent.kind == "destruction_record"
    assert [r.idempotency_key for r in receiver.received()] == ["V1.submit", "V1.submit.destroyed"]
    for text in (sent.body.decode(), json.dumps(record.as_dict(), ensure_ascii=False)):
        assert NAME not in text and ID_NUMBER not in text and ID_NUMBER[-4:] not in text


def test_a_message_without_personal_data_leaves_no_destruction_record(
    outbox: Outbox, worker_outbox: Outbox, sender: HttpTestSender, clock: Clock
) -> None:
    message_id = outbox.enqueue(
        "V1.ledger", MessageKind.LEDGER_MOVEMENT, b'{"card":"blank-1"}', visit_id="V1"
    )
    make_worker(worker_outbox, sender, clock).run_until_idle()
    assert outbox.get(message_id).purged
    assert outbox.destruction_records() == []


def test_refused_message_is_quarantined_with_its_reason_and_holds_its_visit(
    outbox: Outbox,
    worker_outbox: Outbox,
    sender: HttpTestSender,
    receiver: OutboxReceiverSimulator,
    clock: Clock,
) -> None:
    report = outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, payload(1), visit_id="V1")
    activation = outbox.enqueue("V1.activate", MessageKind.ACTIVATION, payload(2), visit_id="V1")
    other = outbox.enqueue("V2.report", MessageKind.RESULT_REPORT, payload(3), visit_id="V2")
    receiver.inject("refuse", count=1, code="card_not_found")
    worker = make_worker(worker_outbox, sender, clock)
    worker.run_until_idle()
    quarantined = outbox.get(report)
    assert quarantined.state is MessageState.QUARANTINED
    assert "backend.card_not_found" in (quarantined.last_error or "")
    assert outbox.get(activation).state is MessageState.PENDING, "activation must wait for its result report"
    assert outbox.get(other).state is MessageState.ACKNOWLEDGED, "another visit must not wait"
    assert not quarantined.purged, "a quarantined message keeps its payload for staff"
    assert outbox.device_status().code == "outbox.quarantined"
    # Staff check with the card-management system, then release it: it goes, then the activation.
    outbox.retry(report)
    worker.run_until_idle()
    assert outbox.get(report).state is MessageState.ACKNOWLEDGED
    assert outbox.get(activation).state is MessageState.ACKNOWLEDGED
    keys = [r.idempotency_key for r in receiver.received()]
    assert keys.index("V1.report") < keys.index("V1.activate")


def test_connection_dropped_after_commit_is_resolved_by_look_up_not_resent(
    outbox: Outbox,
    worker_outbox: Outbox,
    sender: HttpTestSender,
    receiver: OutboxReceiverSimulator,
    clock: Clock,
) -> None:
    message_id = outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, payload(), visit_id="V1")
    receiver.inject("drop_after_commit", count=1)
    make_worker(worker_outbox, sender, clock).run_until_idle()
    assert outbox.get(message_id).state is MessageState.ACKNOWLEDGED
    assert receiver.posts == 1, "the look-up found it: no second POST"
    assert receiver.applied["V1.report"] == 1


def test_timeout_after_commit_is_resolved_by_look_up(
    outbox: Outbox,
    worker_outbox: Outbox,
    sender: HttpTestSender,
    receiver: OutboxReceiverSimulator,
    clock: Clock,
) -> None:
    message_id = outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, payload(), visit_id="V1")
    receiver.inject("timeout_after_commit", count=1, hold_s=1.0)
    make_worker(worker_outbox, sender, clock).run_until_idle()
    message = outbox.get(message_id)
    assert message.state is MessageState.ACKNOWLEDGED and message.attempts == 1
    assert receiver.applied["V1.report"] == 1


def test_dropped_before_commit_is_sent_again_with_the_same_key(
    outbox: Outbox,
    worker_outbox: Outbox,
    sender: HttpTestSender,
    receiver: OutboxReceiverSimulator,
    clock: Clock,
) -> None:
    message_id = outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, payload(), visit_id="V1")
    receiver.inject("drop_before_commit", count=1)
    worker = make_worker(worker_outbox, sender, clock)
    worker.run_until_idle()
    message = outbox.get(message_id)
    assert message.state is MessageState.PENDING, "look-up said never arrived: pending again"
    assert "never arrived" in (message.last_error or "")
    clock.advance(60)
    worker.run_until_idle()
    assert outbox.get(message_id).state is MessageState.ACKNOWLEDGED
    assert receiver.applied["V1.report"] == 1 and outbox.get(message_id).attempts == 2


def test_look_up_unreachable_keeps_the_message_in_flight_until_it_can_ask(
    outbox: Outbox,
    worker_outbox: Outbox,
    sender: HttpTestSender,
    receiver: OutboxReceiverSimulator,
    clock: Clock,
) -> None:
    message_id = outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, payload(), visit_id="V1")
    receiver.inject("drop_after_commit", count=1)
    receiver.inject("lookup_down", count=1)
    worker = make_worker(worker_outbox, sender, clock)
    worker.run_until_idle()
    message = outbox.get(message_id)
    assert message.state is MessageState.IN_FLIGHT and "look-up unreachable" in (message.last_error or "")
    assert message.next_attempt_at > clock.now
    clock.advance(120)
    worker.run_until_idle()
    assert outbox.get(message_id).state is MessageState.ACKNOWLEDGED
    assert receiver.posts == 1


class AmbiguousLookupSender:
    """The look-up's own answer is unusable: the outcome stays unknown → quarantine for staff."""

    def __init__(self, inner: HttpTestSender) -> None:
        self.inner = inner

    def send(self, delivery: Delivery) -> Acknowledgement:
        return self.inner.send(delivery)

    def lookup(self, idempotency_key: str) -> Acknowledgement | None:
        from offline.errors import AmbiguousSendError

        raise AmbiguousSendError("look-up reply breaks the contract")


def test_ambiguous_after_the_look_up_is_quarantined(
    outbox: Outbox,
    worker_outbox: Outbox,
    sender: HttpTestSender,
    receiver: OutboxReceiverSimulator,
    clock: Clock,
) -> None:
    message_id = outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, payload(), visit_id="V1")
    receiver.inject("drop_after_commit", count=1)
    make_worker(worker_outbox, AmbiguousLookupSender(sender), clock).run_until_idle()
    message = outbox.get(message_id)
    assert message.state is MessageState.QUARANTINED
    assert "ambiguous after look-up" in (message.last_error or "")
    assert not message.purged


def test_http_500_is_transient_with_exponential_backoff_and_jitter(
    outbox: Outbox,
    worker_outbox: Outbox,
    sender: HttpTestSender,
    receiver: OutboxReceiverSimulator,
    clock: Clock,
) -> None:
    message_id = outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, payload(), visit_id="V1")
    receiver.inject("http_500", count=3)
    worker = make_worker(worker_outbox, sender, clock)
    delays = []
    for attempt in range(1, 4):
        worker.run_until_idle()
        message = outbox.get(message_id)
        assert message.state is MessageState.PENDING and message.attempts == attempt
        delay = (message.next_attempt_at - clock.now).total_seconds()
        assert 2 ** (attempt - 1) / 2 <= delay <= 2 ** (attempt - 1)
        delays.append(delay)
        clock.advance(delay)
    worker.run_until_idle()
    assert outbox.get(message_id).state is MessageState.ACKNOWLEDGED
    assert delays[0] < delays[2]


@given(attempts=st.integers(min_value=1, max_value=40), seed=st.integers(min_value=0, max_value=2**32))
def test_backoff_stays_between_half_and_full_capped_ceiling(attempts: int, seed: int) -> None:
    backoff = Backoff(1.0, 300.0, random.Random(seed))
    ceiling = min(300.0, 2.0 ** (attempts - 1))
    assert ceiling / 2 <= backoff.delay_s(attempts) <= ceiling


def test_back_end_down_marks_the_link_offline_and_puts_the_batch_back_unsent(
    outbox: Outbox, worker_outbox: Outbox, clock: Clock
) -> None:
    for n in range(5):
        outbox.enqueue(f"V{n}.report-x", MessageKind.RESULT_REPORT, payload(n), visit_id=f"V{n}")
    receiver = OutboxReceiverSimulator()
    receiver.start()
    url = receiver.base_url
    receiver.stop()  # nothing listens: connection refused
    changes: list[LinkState] = []
    sender = HttpTestSender(url, timeout_s=0.3)
    worker = make_worker(worker_outbox, sender, clock, on_link_change=changes.append)
    report = worker.run_until_idle()
    assert worker.link is LinkState.OFFLINE and changes == [LinkState.OFFLINE]
    assert report.sent == 1, "after the first refused connection the rest must not be tried"
    messages = outbox.messages()
    assert [m.state for m in messages] == [MessageState.PENDING] * 5
    assert sorted(m.attempts for m in messages) == [0, 0, 0, 0, 1]
    assert outbox.status().counts[MessageState.PENDING] == 5


def test_link_comes_back_online_when_the_back_end_answers(
    outbox: Outbox,
    worker_outbox: Outbox,
    sender: HttpTestSender,
    receiver: OutboxReceiverSimulator,
    clock: Clock,
) -> None:
    outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, payload(), visit_id="V1")
    changes: list[LinkState] = []
    worker = make_worker(worker_outbox, sender, clock, on_link_change=changes.append)
    receiver.inject("http_500", count=1)
    worker.run_until_idle()
    clock.advance(5)
    worker.run_until_idle()
    assert changes == [LinkState.OFFLINE, LinkState.ONLINE]


def test_after_a_restart_in_flight_messages_are_looked_up_then_resent_with_the_same_key(
    outbox: Outbox,
    worker_outbox: Outbox,
    sender: HttpTestSender,
    receiver: OutboxReceiverSimulator,
    clock: Clock,
) -> None:
    arrived = outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, payload(1), visit_id="V1")
    lost = outbox.enqueue("V2.report", MessageKind.RESULT_REPORT, payload(2), visit_id="V2")
    # A previous worker claimed both (in flight) and died: one request had reached the back end.
    claimed = outbox.claim([arrived, lost], lease=timedelta(minutes=5))
    sender.send(claimed[0])  # type: ignore[arg-type]
    assert receiver.applied["V1.report"] == 1 and outbox.get(lost).state is MessageState.IN_FLIGHT
    restarted = make_worker(worker_outbox, sender, clock)
    assert restarted.recover() == 2
    assert outbox.get(arrived).state is MessageState.ACKNOWLEDGED
    assert outbox.get(lost).state is MessageState.ACKNOWLEDGED
    assert receiver.applied == {"V1.report": 1, "V2.report": 1}
    assert receiver.posts == 2


class SendOnlySender:
    """A sender without a look-up: the worker re-sends with the same key (the back end replays)."""

    def __init__(self, inner: HttpTestSender) -> None:
        self.inner = inner
        self.keys: list[str] = []

    def send(self, delivery: Delivery) -> Acknowledgement:
        self.keys.append(delivery.idempotency_key)
        return self.inner.send(delivery)


def test_without_a_look_up_an_in_flight_message_is_resent_with_the_same_key(
    outbox: Outbox,
    worker_outbox: Outbox,
    sender: HttpTestSender,
    receiver: OutboxReceiverSimulator,
    clock: Clock,
) -> None:
    message_id = outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, payload(), visit_id="V1")
    [delivery] = outbox.claim([message_id], lease=timedelta(minutes=5))
    sender.send(delivery)  # type: ignore[arg-type]
    send_only = SendOnlySender(sender)
    make_worker(worker_outbox, send_only, clock).run_until_idle()
    assert send_only.keys[0] == "V1.report"
    assert outbox.get(message_id).state is MessageState.ACKNOWLEDGED
    assert receiver.applied["V1.report"] == 1 and receiver.posts == 2


class BrokenSender:
    def send(self, delivery: Delivery) -> Acknowledgement:
        raise KeyError("a bug in the sender")


def test_a_sender_bug_never_loses_the_message(outbox: Outbox, worker_outbox: Outbox, clock: Clock) -> None:
    message_id = outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, payload(), visit_id="V1")
    make_worker(worker_outbox, BrokenSender(), clock).run_until_idle()
    message = outbox.get(message_id)
    assert message.state is MessageState.PENDING and not message.purged
    assert "KeyError" in (message.last_error or "")


def test_unacknowledged_messages_are_never_removed_however_long_the_outage(
    outbox: Outbox, worker_outbox: Outbox, clock: Clock
) -> None:
    class Down:
        def send(self, delivery: Delivery) -> Acknowledgement:
            raise TransientSendError("connection refused")

    message_id = outbox.enqueue("V1.submit", MessageKind.APPLICATION, payload(), visit_id="V1")
    worker = make_worker(worker_outbox, Down(), clock)
    for _ in range(12):
        worker.run_until_idle()
        clock.advance(400)
    assert outbox.prune_acknowledged(clock.now + timedelta(days=365)) == 0
    message = outbox.get(message_id)
    assert message.state is MessageState.PENDING and message.attempts == 12 and not message.purged
    status = outbox.device_status(alert_after_attempts=6)
    assert status.code == "outbox.stuck" and status.levels["stuck"] == 1


@pytest.mark.parametrize("fault", ["http_429", "http_500"])
def test_transient_replies_do_not_count_as_delivered(
    fault: str,
    outbox: Outbox,
    worker_outbox: Outbox,
    sender: HttpTestSender,
    receiver: OutboxReceiverSimulator,
    clock: Clock,
) -> None:
    message_id = outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, payload(), visit_id="V1")
    receiver.inject(fault, count=1)
    make_worker(worker_outbox, sender, clock).run_until_idle()
    assert outbox.get(message_id).state is MessageState.PENDING
    assert receiver.applied["V1.report"] == 0


def test_the_worker_thread_delivers_what_is_enqueued_and_stops_on_request(
    outbox: Outbox, worker_outbox: Outbox, sender: HttpTestSender, receiver: OutboxReceiverSimulator
) -> None:
    import threading
    import time

    worker = SyncWorker(worker_outbox, sender, poll_interval_s=0.01)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        message_id = outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, payload(), visit_id="V1")
        deadline = time.monotonic() + 5
        while outbox.get(message_id).state is not MessageState.ACKNOWLEDGED and time.monotonic() < deadline:
            time.sleep(0.01)
        assert outbox.get(message_id).state is MessageState.ACKNOWLEDGED
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()


def test_back_end_lost_mid_session_then_back_delivers_once(
    outbox: Outbox, worker_outbox: Outbox, clock: Clock
) -> None:
    receiver = OutboxReceiverSimulator().start()
    port = receiver.address[1]
    sender = HttpTestSender(receiver.base_url, timeout_s=0.3)
    worker = make_worker(worker_outbox, sender, clock)
    try:
        outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, payload(1), visit_id="V1")
        worker.run_until_idle()  # the sender now holds a kept-alive connection
        receiver.stop()
        second = outbox.enqueue("V2.report", MessageKind.RESULT_REPORT, payload(2), visit_id="V2")
        worker.run_until_idle()
        assert worker.link is LinkState.OFFLINE
        assert outbox.get(second).state in (MessageState.PENDING, MessageState.IN_FLIGHT)
        receiver = OutboxReceiverSimulator(port=port).start()
        clock.advance(120)
        worker.run_until_idle()
        assert outbox.get(second).state is MessageState.ACKNOWLEDGED
        assert receiver.applied["V2.report"] == 1
        assert worker.link is LinkState.ONLINE
    finally:
        sender.close()
        receiver.stop()
