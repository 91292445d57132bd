"""Loopback HTTP receiver simulator (上送接收端模拟器) for the outbox's tests and benchmarks.

A real HTTP server on 127.0.0.1 that stands where the back end stands for the sync worker, with
the same idempotency rules the back-end contract sets: the same key with the same body gets the
original acknowledgement again (``"replayed": true``), the same key with another body gets 409.
It counts how many times each key was *applied* (committed), which the crash benchmark uses to
prove "exactly once in effect".

Wire format (the HTTP test sender, :mod:`offline.http_sender`, speaks it):

- ``POST /outbox/{kind}`` with ``Idempotency-Key`` → 200 ``{"acknowledgement": "R…", "replayed": b}``,
  422/409 ``{"error": {"code", "message"}}`` (refused), 5xx (transient);
- ``GET /outbox/requests/{key}`` → 200 ``{"acknowledgement": …}`` or 404 ``request_not_found``;
  a refused request is reported as 200 ``{"refused": {"code", "message"}}``.

Faults (``inject(name, count=None, rate=None, **params)``): ``drop_before_commit`` (connection
closed, nothing kept), ``drop_after_commit`` (kept, then the connection closed without a reply),
``timeout_after_commit`` / ``timeout_before_commit`` (holds the reply ``hold_s`` seconds, longer
than the sender's timeout), ``http_500``, ``http_429``, ``refuse`` (422 with ``code``), ``slow``
(``delay_s``), ``lookup_down`` (look-ups answer 503). ``count`` limits how many requests a fault
hits; ``rate`` makes it hit each request with that probability.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

FAULTS = (
    "drop_before_commit",
    "drop_after_commit",
    "timeout_before_commit",
    "timeout_after_commit",
    "http_500",
    "http_429",
    "refuse",
    "slow",
    "lookup_down",
)


@dataclass
class _Fault:
    name: str
    remaining: int | None
    rate: float | None
    params: dict[str, Any]


@dataclass(frozen=True)
class Received:
    idempotency_key: str
    kind: str
    body: bytes
    acknowledgement: str


class OutboxReceiverSimulator:
    """The far end for the sync worker's HTTP test sender. ``start()`` → ``base_url``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, seed: int | None = None) -> None:
        self._address = (host, port)
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._rng = random.Random(seed)
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # ------------------------------------------------------------ life cycle

    def start(self) -> OutboxReceiverSimulator:
        self._stopping.clear()
        self._server = _Server(self._address, _Handler)
        self._server.receiver = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="outbox-receiver",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers holding a reply
        if self._server is not None:
            self._server.shutdown()
            self._server.close_open_connections()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("receiver not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def base_url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    # ------------------------------------------------------------ faults

    def fault_names(self) -> list[str]:
        return list(FAULTS)

    def inject(self, name: str, count: int | None = None, **params: Any) -> None:
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        rate = params.pop("rate", None)
        with self._lock:
            self._faults.append(_Fault(name, count, rate, params))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, names: tuple[str, ...]) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.name not in names:
                    continue
                if fault.rate is not None and self._rng.random() >= fault.rate:
                    continue
                if fault.remaining is not None:
                    if fault.remaining <= 0:
                        continue
                    fault.remaining -= 1
                self.faults_hit[fault.name] += 1
                return fault
        return None

    # ------------------------------------------------------------ what it received

    def reset(self) -> None:
        with self._lock:
            self._received: dict[str, Received] = {}
            self._refused: dict[str, tuple[str, str]] = {}
            self._order: list[str] = []
            self.applied: Counter[str] = Counter()
            self.faults_hit: Counter[str] = Counter()
            self.posts = 0

    def received(self) -> list[Received]:
        with self._lock:
            return [self._received[k] for k in self._order]

    def get(self, key: str) -> Received | None:
        with self._lock:
            return self._received.get(key)

    # ------------------------------------------------------------ request handling (server threads)

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _post(self, kind: str, key: str, body: bytes) -> tuple[int, dict[str, Any]] | None:
        """The reply, or None to drop the connection. Commits before replying."""
        fault = self._take_fault(
            ("drop_before_commit", "timeout_before_commit", "http_500", "http_429", "refuse", "slow")
        )
        if fault is not None:
            if fault.name == "drop_before_commit":
                return None
            if fault.name == "timeout_before_commit":
                self._wait(float(fault.params.get("hold_s", 2.0)))
                return None
            if fault.name == "http_500":
                return 500, {"error": {"code": "internal_error", "message": "injected"}}
            if fault.name == "http_429":
                return 429, {"error": {"code": "too_many_requests", "message": "injected"}}
            if fault.name == "refuse":
                code = str(fault.params.get("code", "request_invalid"))
                with self._lock:
                    self._refused[key] = (code, "injected refusal")
                return 422, {"error": {"code": code, "message": "injected refusal"}}
            self._wait(float(fault.params.get("delay_s", 0.2)))
        if not key:
            return 400, {"error": {"code": "request_invalid", "message": "Idempotency-Key missing"}}
        with self._lock:
            self.posts += 1
            existing = self._received.get(key)
            if existing is not None:
                if existing.kind != kind or _digest(existing.body) != _digest(body):
                    return 409, {"error": {"code": "idempotency_key_reused", "message": "another body"}}
                reply: tuple[int, dict[str, Any]] = (
                    200,
                    {"acknowledgement": existing.acknowledgement, "replayed": True},
                )
            else:
                ack = f"R{len(self._order) + 1:08d}"
                self._received[key] = Received(key, kind, body, ack)
                self._order.append(key)
                self.applied[key] += 1
                reply = (200, {"acknowledgement": ack, "replayed": False})
        fault = self._take_fault(("drop_after_commit", "timeout_after_commit"))
        if fault is not None:
            if fault.name == "timeout_after_commit":
                self._wait(float(fault.params.get("hold_s", 2.0)))
            return None
        return reply

    def _lookup(self, key: str) -> tuple[int, dict[str, Any]]:
        if self._take_fault(("lookup_down",)) is not None:
            return 503, {"error": {"code": "unavailable", "message": "injected"}}
        with self._lock:
            found = self._received.get(key)
            refused = self._refused.get(key)
        if found is not None:
            return 200, {"acknowledgement": found.acknowledgement}
        if refused is not None:
            return 200, {"refused": {"code": refused[0], "message": refused[1]}}
        return 404, {"error": {"code": "request_not_found", "message": "no request with this key"}}


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        """A stopped back end keeps no kept-alive connection answering."""
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue

    def handle_error(self, request: object, client_address: object) -> None:
        # A client killed mid-request (the crash test does it on purpose) resets its connection;
        # that is the far end's normal life, not a receiver failure worth a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle plus the client's
    # delayed ACK add ~40 ms to every reply.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return  # the receiver is quiet; tests read its counters

    @property
    def receiver(self) -> OutboxReceiverSimulator:
        return self.server.receiver  # type: ignore[attr-defined, no-any-return]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if len(body) != length:
            # The client died mid-request: like any HTTP server, nothing is processed.
            self.close_connection = True
            return
        parts = self.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "outbox":
            self._reply(404, {"error": {"code": "not_found", "message": self.path}})
            return
        reply = self.receiver._post(parts[1], self.headers.get("Idempotency-Key", ""), body)
        if reply is None:
            self._drop()
            return
        self._reply(*reply)

    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")
        if len(parts) == 3 and parts[:2] == ["outbox", "requests"]:
            self._reply(*self.receiver._lookup(parts[2]))
        elif self.path == "/health":
            self._reply(200, {"status": "ok"})
        else:
            self._reply(404, {"error": {"code": "not_found", "message": self.path}})

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client went away (killed worker): nothing to do

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            self.close_connection = True
