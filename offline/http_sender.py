"""HTTP test sender (测试用上送通道): a :class:`offline.sync.LookupSender` over plain HTTP to the
loopback receiver simulator (:mod:`offline.simulator`).

It maps transport outcomes the way the real back-end client must (research/anchors.md §2.4):
connection refused before anything was written → transient; timeout or connection lost after
the request was written → ambiguous; HTTP 5xx/429 → transient; other 4xx → refused; 200 →
acknowledged. The production sender over ``kiosk.backend`` is wired in ``kiosk/app.py``.
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any
from urllib.parse import quote, urlsplit

from offline.errors import AmbiguousSendError, RefusedSendError, TransientSendError
from offline.outbox import Delivery
from offline.sync import Acknowledgement


class HttpTestSender:
    def __init__(self, base_url: str, timeout_s: float = 2.0) -> None:
        parts = urlsplit(base_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self.timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)
            try:
                conn.connect()
            except OSError as exc:
                # Nothing was written: provably not processed.
                raise TransientSendError(
                    f"not sent: {type(exc).__name__}", code="outbox.unreachable"
                ) from exc
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conn = conn
        return self._conn

    def _exchange(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        conn = self._connection()
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            self.close()
            code = "outbox.timeout" if isinstance(exc, TimeoutError) else "outbox.connection_lost"
            raise AmbiguousSendError(f"{type(exc).__name__} after sending", code=code) from exc
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            return response.status, json.loads(raw or b"{}")
        except ValueError as exc:
            raise AmbiguousSendError(f"HTTP {response.status}: reply is not JSON") from exc

    def send(self, delivery: Delivery) -> Acknowledgement:
        status, body = self._exchange(
            "POST",
            f"/outbox/{quote(delivery.kind.value)}",
            delivery.payload,
            {"Idempotency-Key": delivery.idempotency_key, "Content-Type": "application/octet-stream"},
        )
        return _acknowledgement(status, body)

    def lookup(self, idempotency_key: str) -> Acknowledgement | None:
        try:
            status, body = self._exchange("GET", f"/outbox/requests/{quote(idempotency_key)}", None, {})
        except AmbiguousSendError as exc:
            # A query that failed is not ambiguous: it changed nothing. We could not ask.
            raise TransientSendError(f"look-up failed: {exc.reason}", code="outbox.lookup_failed") from exc
        if status == 404 and body.get("error", {}).get("code") == "request_not_found":
            return None
        if status == 200 and "refused" in body:
            refused = body["refused"]
            raise RefusedSendError(str(refused.get("message", "")), code=f"backend.{refused.get('code', '')}")
        return _acknowledgement(status, body)


def _acknowledgement(status: int, body: dict[str, Any]) -> Acknowledgement:
    if status == 200 and isinstance(body.get("acknowledgement"), str):
        return Acknowledgement(body["acknowledgement"])
    if status >= 500 or status == 429:
        raise TransientSendError(f"HTTP {status}", code="outbox.http_transient")
    if 400 <= status < 500:
        error = body.get("error", {})
        raise RefusedSendError(
            f"HTTP {status}: {error.get('message', '')}", code=f"backend.{error.get('code', 'refused')}"
        )
    raise AmbiguousSendError(f"HTTP {status}: unexpected reply")
