"""Errors of the outbox package (离线队列错误), rooted in :class:`OutboxError`.

Each error carries a stable machine ``code`` (journal, engineer menu, CLI) and a catalog
``message_key`` (``kiosk/locale/*/LC_MESSAGES/outbox.po``). The send errors are the three ways a
delivery can fail; the sync worker treats each differently (research/anchors.md §2.4):

- :class:`TransientSendError`: provably produced no result (connection refused, HTTP 5xx/429):
  send again later with the same idempotency key;
- :class:`AmbiguousSendError`: the back end *may* have processed it (timeout, connection dropped
  after the request left): look the key up before anything else;
- :class:`RefusedSendError`: the back end answered and said no (4xx with a business code): the
  message is quarantined with that reason for staff to review, never resent blindly.
"""

from __future__ import annotations

from kiosk.devices import Audience, DeviceError


class OutboxError(DeviceError):
    """Root of the outbox package's errors."""

    default_code = "outbox.error"
    default_message_key = "outbox.error"
    default_audience = Audience.ENGINEER


class SealingError(OutboxError):
    """A payload cannot be sealed or opened (key file missing, wrong key, tampered ciphertext)."""

    default_code = "outbox.sealing_failed"
    default_message_key = "outbox.sealing_failed"


class KeyReusedError(OutboxError):
    """An idempotency key was enqueued again for a different message (kind or visit differ)."""

    default_code = "outbox.key_reused"
    default_message_key = "outbox.key_reused"


class MessageNotFound(OutboxError):
    default_code = "outbox.not_found"
    default_message_key = "outbox.not_found"


class NotQuarantined(OutboxError):
    """Only a quarantined message can be released for another try (``kiosk outbox retry``)."""

    default_code = "outbox.not_quarantined"
    default_message_key = "outbox.not_quarantined"


class SendError(OutboxError):
    """A delivery failed; ``reason`` is a short non-personal text kept as the row's last error."""

    default_code = "outbox.send_failed"
    default_message_key = "outbox.send_failed"

    def __init__(self, reason: str, *, code: str | None = None) -> None:
        super().__init__(reason, code=code, retryable=isinstance(self, TransientSendError))
        self.reason = reason


class TransientSendError(SendError):
    default_code = "outbox.transient"
    default_message_key = "outbox.send_failed"


class AmbiguousSendError(SendError):
    default_code = "outbox.ambiguous"
    default_message_key = "outbox.send_failed"


class RefusedSendError(SendError):
    default_code = "outbox.refused"
    default_message_key = "outbox.refused"
    default_audience = Audience.STAFF
