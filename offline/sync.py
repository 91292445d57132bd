"""The sync worker (上送进程): delivers the outbox to the back end, exactly once in effect.

Per batch: pick the due messages that are first in line for their visit (a visit's messages
reach the back end in order), mark them in flight in one durable commit, send each through a
:class:`Sender`, then settle every outcome in one durable commit:

- acknowledged → the payload is purged, a destruction record is written for personal data;
- transient failure (provably not processed: refused connection, HTTP 5xx/429) → pending again
  after an exponential backoff with jitter; the rest of the batch is put back unsent;
- ambiguous failure (timeout, connection dropped after sending) → the back end is asked by
  idempotency key (:meth:`LookupSender.lookup`): found → acknowledged; never arrived → sent again
  later with the same key; refused → quarantined; look-up unreachable → stays in flight and is
  looked up again later; look-up answer itself ambiguous → quarantined for staff;
- refused (a business "no") → quarantined with the reason, for staff.

After a crash every in-flight row is resolved the same way before anything new is sent. A row is
never deleted or purged before it is acknowledged (the schema refuses it too).
"""

from __future__ import annotations

import enum
import logging
import random
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from offline.errors import AmbiguousSendError, OutboxError, RefusedSendError, SendError, TransientSendError
from offline.outbox import (
    Acknowledged,
    Delivery,
    Outbox,
    Outcome,
    OutcomeUnknown,
    Quarantine,
    RetryLater,
    utc_now,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Acknowledgement:
    """The back end's receipt for one message (a reference number, never personal data)."""

    reference: str


class Sender(Protocol):
    """Delivers one message. Returns the acknowledgement or raises
    :class:`TransientSendError`, :class:`AmbiguousSendError` or :class:`RefusedSendError`.
    The idempotency key must travel with the request (``Idempotency-Key``) so a re-send is
    recognised by the back end."""

    def send(self, delivery: Delivery) -> Acknowledgement: ...


@runtime_checkable
class LookupSender(Protocol):
    """A sender that can also ask what became of a key after an ambiguous outcome."""

    def send(self, delivery: Delivery) -> Acknowledgement: ...

    def lookup(self, idempotency_key: str) -> Acknowledgement | None:
        """The acknowledgement the back end gave ``idempotency_key``, or None if it never arrived.
        Raises :class:`RefusedSendError` if it arrived and was refused, :class:`TransientSendError`
        if the back end could not be asked, :class:`AmbiguousSendError` if its answer is unusable."""
        ...


class LinkState(enum.Enum):
    """What the home screen shows (联网状态)."""

    UNKNOWN = "unknown"
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: ``base · 2^(attempts−1)`` capped at ``max``, then a
    random point in its upper half (equal jitter), so a fleet coming back online does not retry
    in lock-step yet never retries immediately."""

    base_s: float = 1.0
    max_s: float = 300.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay_s(self, attempts: int) -> float:
        ceiling = min(self.max_s, self.base_s * 2 ** max(0, attempts - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class BatchReport:
    sent: int = 0
    acknowledged: int = 0
    retried: int = 0
    unknown: int = 0
    quarantined: int = 0

    @property
    def did_work(self) -> bool:
        return bool(self.sent or self.acknowledged or self.retried or self.unknown or self.quarantined)


class SyncWorker:
    """Runs on its own thread (or process) with its own connection to the state database.
    One worker per database."""

    def __init__(
        self,
        outbox: Outbox,
        sender: Sender,
        *,
        backoff: Backoff | None = None,
        batch_size: int = 50,
        lease: timedelta = timedelta(minutes=5),
        poll_interval_s: float = 1.0,
        clock: Callable[[], datetime] = utc_now,
        on_link_change: Callable[[LinkState], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.sender = sender
        self.backoff = backoff or Backoff()
        self.batch_size = batch_size
        self.lease = lease
        self.poll_interval_s = poll_interval_s
        self._clock = clock
        self._on_link_change = on_link_change
        self._link = LinkState.UNKNOWN
        self._recovered = False

    @property
    def link(self) -> LinkState:
        return self._link

    def _set_link(self, state: LinkState) -> None:
        if state is not self._link:
            self._link = state
            log.info("outbox.link state=%s", state.value)
            if self._on_link_change is not None:
                self._on_link_change(state)

    # ------------------------------------------------------------ loop

    def run(self, stop: threading.Event) -> None:
        """Until ``stop`` is set: recover, then deliver batch after batch, waiting between idle
        polls. A database error (busy, disk I/O) is logged and retried after a pause rather than
        ending the thread: a silently dead worker would be an outage nobody sees."""
        while not stop.is_set():
            try:
                self.recover()
                report = self.run_once()
            except (sqlite3.Error, OutboxError) as exc:
                log.error(
                    "outbox.worker_error kind=%s code=%s", type(exc).__name__, getattr(exc, "code", "-")
                )
                stop.wait(max(self.poll_interval_s, 5.0))
                continue
            if not report.did_work:
                stop.wait(self.poll_interval_s)

    def run_until_idle(self, max_batches: int = 1_000_000) -> BatchReport:
        """Delivers until nothing is due now (tests, benchmarks, ``drain``); returns the totals."""
        self.recover()
        total = BatchReport()
        for _ in range(max_batches):
            report = self.run_once()
            if not report.did_work:
                break
            total = BatchReport(*(a + b for a, b in zip(_fields(total), _fields(report), strict=True)))
        return total

    def recover(self) -> int:
        """After a start: every message left in flight by a previous process is resolved (look-up
        or re-send with the same key) before anything new is sent. Returns how many there were."""
        if self._recovered:
            return 0
        ids = self.outbox.in_flight(due_only=False)
        if ids:
            log.warning("outbox.recover in_flight=%d", len(ids))
        self._settle(self._resolve(ids))
        self._recovered = True
        return len(ids)

    def run_once(self) -> BatchReport:
        outcomes = self._resolve(self.outbox.in_flight(due_only=True))
        heads = self.outbox.due_heads(self.batch_size)
        claimed = self.outbox.claim(heads, self.lease) if heads else []
        outcomes.extend(c for c in claimed if isinstance(c, Quarantine))
        deliveries = [c for c in claimed if isinstance(c, Delivery)]
        sent = 0
        for index, delivery in enumerate(deliveries):
            outcome = self._deliver(delivery)
            sent += 1
            outcomes.append(outcome)
            if isinstance(outcome, RetryLater) and self._link is LinkState.OFFLINE:
                # The back end is unreachable: the rest of the batch goes back unsent, uncounted.
                outcomes.extend(
                    RetryLater(
                        d.message_id, outcome.at, "not sent: back end unreachable", counts_as_attempt=False
                    )
                    for d in deliveries[index + 1 :]
                )
                break
        self._settle(outcomes)
        return BatchReport(
            sent=sent,
            acknowledged=sum(isinstance(o, Acknowledged) for o in outcomes),
            retried=sum(isinstance(o, RetryLater) and o.counts_as_attempt for o in outcomes),
            unknown=sum(isinstance(o, OutcomeUnknown) for o in outcomes),
            quarantined=sum(isinstance(o, Quarantine) for o in outcomes),
        )

    def _settle(self, outcomes: list[Outcome]) -> None:
        self.outbox.settle(outcomes)
        for outcome in outcomes:
            if isinstance(outcome, Quarantine):
                log.warning("outbox.quarantined id=%d reason=%s", outcome.message_id, outcome.reason)

    # ------------------------------------------------------------ one message

    def _deliver(self, delivery: Delivery) -> Outcome:
        try:
            ack = self.sender.send(delivery)
        except TransientSendError as exc:
            self._set_link(LinkState.OFFLINE)
            return self._retry(delivery, f"{exc.code}: {exc.reason}")
        except RefusedSendError as exc:
            self._set_link(LinkState.ONLINE)
            return Quarantine(delivery.message_id, f"refused: {exc.code}: {exc.reason}")
        except AmbiguousSendError as exc:
            log.info(
                "outbox.ambiguous id=%d key=%s code=%s",
                delivery.message_id,
                delivery.idempotency_key,
                exc.code,
            )
            return self._after_ambiguous(delivery, f"{exc.code}: {exc.reason}")
        except Exception as exc:  # a sender bug must not kill the worker; we cannot
            # know whether the request left, so it is handled as ambiguous (looked up first).
            log.exception("outbox.sender_failed id=%d kind=%s", delivery.message_id, type(exc).__name__)
            return self._after_ambiguous(delivery, f"sender failed: {type(exc).__name__}")
        self._set_link(LinkState.ONLINE)
        return Acknowledged(delivery.message_id, ack.reference)

    def _after_ambiguous(self, delivery: Delivery, error: str) -> Outcome:
        """The back end may have processed it: ask before anything else (never resend blind
        when a look-up exists)."""
        lookup = self.sender.lookup if isinstance(self.sender, LookupSender) else None
        if lookup is None:
            # Without a look-up the only safe move is the same request with the same key later:
            # the back end answers a replayed key with its original result.
            return self._retry(delivery, f"ambiguous, will re-send same key: {error}")
        try:
            found = lookup(delivery.idempotency_key)
        except TransientSendError as exc:
            self._set_link(LinkState.OFFLINE)
            return OutcomeUnknown(
                delivery.message_id,
                self._later(delivery.attempt),
                f"ambiguous ({error}); look-up unreachable: {exc.reason}",
            )
        except RefusedSendError as exc:
            self._set_link(LinkState.ONLINE)
            return Quarantine(delivery.message_id, f"refused (found by look-up): {exc.code}: {exc.reason}")
        except AmbiguousSendError as exc:
            return Quarantine(delivery.message_id, f"ambiguous after look-up: {error}; look-up: {exc.reason}")
        self._set_link(LinkState.ONLINE)
        if found is not None:
            return Acknowledged(delivery.message_id, found.reference)
        return self._retry(delivery, f"ambiguous, look-up: never arrived ({error})")

    def _resolve(self, message_ids: list[int]) -> list[Outcome]:
        """Messages in flight with the outcome unknown: look up first, else re-send same key."""
        outcomes: list[Outcome] = []
        lookup = self.sender.lookup if isinstance(self.sender, LookupSender) else None
        for message_id in message_ids:
            if lookup is None:
                outcomes.append(self._deliver_reopened(message_id))
                continue
            delivery = self.outbox.reopen(message_id, self.lease, resend=False)
            if isinstance(delivery, Quarantine):
                outcomes.append(delivery)
                continue
            try:
                found = lookup(delivery.idempotency_key)
            except TransientSendError as exc:
                self._set_link(LinkState.OFFLINE)
                outcomes.append(
                    OutcomeUnknown(
                        message_id,
                        self._later(delivery.attempt),
                        f"in flight; look-up unreachable: {exc.reason}",
                    )
                )
                continue
            except RefusedSendError as exc:
                outcomes.append(
                    Quarantine(message_id, f"refused (found by look-up): {exc.code}: {exc.reason}")
                )
                continue
            except AmbiguousSendError as exc:
                outcomes.append(Quarantine(message_id, f"in flight, look-up ambiguous: {exc.reason}"))
                continue
            self._set_link(LinkState.ONLINE)
            if found is not None:
                outcomes.append(Acknowledged(message_id, found.reference))
            else:
                # Never arrived: the same request, same key, now.
                outcomes.append(self._deliver_reopened(message_id))
        return outcomes

    def _deliver_reopened(self, message_id: int) -> Outcome:
        delivery = self.outbox.reopen(message_id, self.lease, resend=True)
        return delivery if isinstance(delivery, Quarantine) else self._deliver(delivery)

    def _retry(self, delivery: Delivery, error: str) -> RetryLater:
        return RetryLater(delivery.message_id, self._later(delivery.attempt), error)

    def _later(self, attempts: int) -> datetime:
        return self._clock() + timedelta(seconds=self.backoff.delay_s(attempts))


def _fields(report: BatchReport) -> tuple[int, int, int, int, int]:
    return (report.sent, report.acknowledged, report.retried, report.unknown, report.quarantined)


__all__ = [
    "Acknowledgement",
    "Backoff",
    "BatchReport",
    "LinkState",
    "LookupSender",
    "SendError",
    "Sender",
    "SyncWorker",
]
