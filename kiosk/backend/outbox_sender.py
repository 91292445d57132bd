"""The outbox's production sender over the back-end client (离线队列上送通道).

:class:`BackendOutboxSender` implements :class:`offline.sync.LookupSender`. A message's payload
is the JSON made by :func:`outbox_payload`: the contract operation and its body, so a result
report (回盘), an activation, a queued application or a ledger/audit/destruction record is sent
later exactly as it would have been sent at once, with the message's idempotency key. Errors map
one to one: transient → :class:`TransientSendError`, ambiguous → :class:`AmbiguousSendError`,
refused → :class:`RefusedSendError` (code ``backend.<notice>``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kiosk.backend.api import BackendAmbiguous, BackendRefused, BackendTransient, NoticeCode
from kiosk.backend.client import BackendClient
from offline.errors import AmbiguousSendError, RefusedSendError, TransientSendError
from offline.outbox import Delivery
from offline.sync import Acknowledgement

# Reply fields that make a good non-personal acknowledgement reference, in order of preference.
_REFERENCE_FIELDS = ("reference", "report_id", "application_id", "card_number", "idempotency_key")


def outbox_payload(operation: str, body: Mapping[str, Any]) -> bytes:
    """The payload to enqueue for a deferred contract call (sealed by the outbox)."""
    return json.dumps({"operation": operation, "body": dict(body)}, ensure_ascii=False).encode("utf-8")


def _reference(reply: Mapping[str, Any], key: str) -> str:
    for name in _REFERENCE_FIELDS:
        value = reply.get(name)
        if isinstance(value, str) and value:
            return value
    return key


class BackendOutboxSender:
    """Delivers outbox messages through :class:`BackendClient` and looks them up by key."""

    def __init__(self, client: BackendClient) -> None:
        self._client = client

    def send(self, delivery: Delivery) -> Acknowledgement:
        try:
            message = json.loads(delivery.payload.decode("utf-8"))
            operation, body = message["operation"], message["body"]
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise RefusedSendError("payload is not an outbox_payload()", code="backend.bad_payload") from exc
        if operation not in self._client.contract.operations:
            raise RefusedSendError(f"unknown operation {operation}", code="backend.unknown_operation")
        try:
            reply = self._client.call(operation, body, delivery.idempotency_key)
        except BackendTransient as exc:
            raise TransientSendError(f"{operation}: {exc.code}", code=exc.code) from exc
        except BackendAmbiguous as exc:
            raise AmbiguousSendError(f"{operation}: {exc.code}", code=exc.code) from exc
        except BackendRefused as exc:
            raise RefusedSendError(
                f"{operation}: {exc.notice.value}", code=f"backend.{exc.notice.value}"
            ) from exc
        return Acknowledgement(_reference(reply, delivery.idempotency_key))

    def lookup(self, idempotency_key: str) -> Acknowledgement | None:
        try:
            outcome = self._client.lookup_request(idempotency_key)
        except BackendRefused as exc:
            if exc.notice is NoticeCode.REQUEST_NOT_FOUND:
                return None
            raise RefusedSendError(f"lookup: {exc.notice.value}", code=f"backend.{exc.notice.value}") from exc
        except BackendTransient as exc:
            raise TransientSendError(f"lookup: {exc.code}", code=exc.code) from exc
        except BackendAmbiguous as exc:
            raise AmbiguousSendError(f"lookup: {exc.code}", code=exc.code) from exc
        if 200 <= outcome.http_status < 300:
            return Acknowledgement(_reference(outcome.body, idempotency_key))
        code = str(outcome.body.get("error", {}).get("code", "refused"))
        raise RefusedSendError(f"{outcome.operation}: {code}", code=f"backend.{code}")
