"""The back-end simulator (卡管系统模拟器): a real HTTP server on 127.0.0.1 speaking the contract.

:class:`BackendSimulator` serves ``docs/api/openapi.yaml`` under ``/api/v1`` with a
``ThreadingHTTPServer``. It verifies every request's SM2 signature, timestamp and nonce,
validates bodies against the contract, honours idempotency keys (same key + same body → the
stored answer; same key + other body → 422), and runs the business rules of
:mod:`kiosk.backend.simulator.rules` over SQLite so a restart keeps the state.

Faults on command (the same surface as every simulator): ``fault_names()``,
``inject(name, count=None, **params)``, ``clear_faults()``. ``params`` may hold
``operation="submitApplication"`` to hit one operation only.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from kiosk.backend.contract import Contract, load_contract
from kiosk.backend.signing import Sm2PrivateKey, Sm2PublicKey, canonical_request, verify
from kiosk.backend.simulator.rules import (
    BackendHsm,
    CardManagementState,
    Refusal,
    SimulatorRules,
    body_hash,
)

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
DEFAULT_RULES = SimulatorRules()
TIMESTAMP_WINDOW_S = 300.0


class Fault:
    """Names of the injectable faults."""

    LATENCY = "latency"  # params: seconds (default 0.5)
    HTTP_500 = "http_500"  # 500 before anything is done (transient)
    TIMEOUT = "timeout"  # params: seconds (default 30): commit, then say nothing for that long
    MALFORMED_JSON = "malformed_json"  # commit, then reply 200 with a body that is not JSON
    DROP_AFTER_COMMIT = "drop_after_commit"  # commit, then close the connection without a reply
    CONTRADICT_CONTRACT = "contradict_contract"  # commit, then reply 200 JSON that breaks the schema
    BANK_PENDING = "bank_pending"  # the bank answers account activations later ("pending")

    ALL = (LATENCY, HTTP_500, TIMEOUT, MALFORMED_JSON, DROP_AFTER_COMMIT, CONTRADICT_CONTRACT, BANK_PENDING)


@dataclass
class _Armed:
    remaining: int | None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReceivedRequest:
    """What arrived (for tests and the engineer menu): operation, key, body digest, HTTP status."""

    operation: str
    idempotency_key: str
    body_hash: str
    status: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    simulator: BackendSimulator


class BackendSimulator:
    """Simulated card-management system and bank host on ``http://127.0.0.1:<port>/api/v1``.

    ``people_file`` seeds the people (``config/demo-people.json``); ``state_dir`` holds
    ``backend.sqlite`` and the simulator's own keys; ``hsm`` does the key work; ``clock`` gives
    the business date (renewal windows, progress timelines) so tests control it.
    """

    def __init__(
        self,
        state_dir: Path,
        people_file: Path | None = None,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        hsm: BackendHsm | None = None,
        rules: SimulatorRules = DEFAULT_RULES,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        wall_clock: Callable[[], float] = time.time,
        kiosk_keys: dict[str, Sm2PublicKey] | None = None,
        photos_dir: Path | None = None,
        contract: Contract | None = None,
        tls_certfile: Path | None = None,
        tls_keyfile: Path | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.people_file = people_file
        self.host = host
        self._port = port
        self.contract = contract or load_contract()
        self.wall_clock = wall_clock
        self.tls = (tls_certfile, tls_keyfile) if tls_certfile and tls_keyfile else None
        self.state = CardManagementState(
            self.state_dir / "backend.sqlite",
            rules=rules,
            hsm=hsm,
            clock=clock,
            ca_key=self._own_key("ca"),
            photos_dir=photos_dir,
        )
        if people_file is not None:
            self.state.seed(Path(people_file))
        for kiosk_id, key in (kiosk_keys or {}).items():
            self.state.register_kiosk(kiosk_id, key)
        self._faults: dict[str, _Armed] = {}
        self._fault_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.received: list[ReceivedRequest] = []
        self._nonces: dict[str, float] = {}
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._nonce_lock = threading.Lock()
        self._nonce_purged = 0.0

    # ------------------------------------------------------------ keys

    def _own_key(self, name: str) -> Sm2PrivateKey:
        path = self.state_dir / f"{name}.key"
        if path.exists():
            return Sm2PrivateKey.from_hex(path.read_text().strip())
        key = Sm2PrivateKey.generate()
        path.write_text(key.hex() + "\n")
        path.chmod(0o600)
        return key

    def demo_kiosk_key(self, kiosk_id: str = "KIOSK-DEMO") -> Path:
        """Creates (once) a kiosk signing key in the state directory, registers its public key and
        returns the key file's path — how ``kiosk demo`` gets a key the simulator trusts."""
        key = self._own_key(f"kiosk-{kiosk_id}")
        self.state.register_kiosk(kiosk_id, key.public_key)
        return self.state_dir / f"kiosk-{kiosk_id}.key"

    def register_kiosk(self, kiosk_id: str, public_key: Sm2PublicKey) -> None:
        self.state.register_kiosk(kiosk_id, public_key)

    # ------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}{API_PREFIX}"

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self._port), _Handler)
        server.simulator = self
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._port = self.port  # a restart keeps the same port
        # A short poll interval: shutdown() waits up to one interval (0.5 s by default, per stop).
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="backend-sim", daemon=True
        )
        self._thread.start()
        log.info("backend_sim.started port=%d", self.port)
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases requests held by a timeout/latency fault
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        # Keep-alive connections outlive the listening socket: close them too, so a stopped
        # simulator looks like a stopped server to the client (connection refused / reset).
        with self._connections_lock:
            open_connections = list(self._connections)
        for connection in open_connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self.state.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ faults

    def fault_names(self) -> list[str]:
        return list(Fault.ALL)

    def inject(self, name: str, count: int | None = None, **params: Any) -> None:
        if name not in Fault.ALL:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(Fault.ALL)}")
        with self._fault_lock:
            self._faults[name] = _Armed(count, dict(params))

    def clear_faults(self) -> None:
        with self._fault_lock:
            self._faults.clear()

    def _take(self, name: str, operation: str) -> dict[str, Any] | None:
        """Consumes one shot of fault ``name`` if it is armed for ``operation``."""
        with self._fault_lock:
            armed = self._faults.get(name)
            if armed is None:
                return None
            target = armed.params.get("operation")
            if target is not None and target != operation:
                return None
            if armed.remaining is not None:
                armed.remaining -= 1
                if armed.remaining <= 0:
                    del self._faults[name]
            return armed.params

    def wait(self, seconds: float) -> None:
        """Sleeps for a fault, but wakes at stop() so no thread outlives the simulator."""
        self._stopping.wait(seconds)

    # ------------------------------------------------------------ request handling

    def handle(self, method: str, path: str, headers: Any, raw: bytes) -> tuple[int, Any, str | None]:
        """Returns (status, reply, fault) where fault names what the transport must do after."""
        if not path.startswith(API_PREFIX):
            return 404, _error("request_invalid", "unknown path"), None
        route = path[len(API_PREFIX) :].split("?", 1)[0]
        op = self.contract.by_route.get((method, route))
        if op is None:
            return 404, _error("request_invalid", "unknown operation"), None
        if op.operation_id == "health":
            return 200, {"status": "up", "time": _now_text()}, None
        key = headers.get("Idempotency-Key", "") or ""
        refused = self._check_signature(method, path, headers, raw, key)
        if refused is not None:
            return refused, _error("signature_invalid", "signature, timestamp or nonce rejected"), None
        params = self._take(Fault.LATENCY, op.operation_id)
        if params is not None:
            self.wait(float(params.get("seconds", 0.5)))
        if self._take(Fault.HTTP_500, op.operation_id) is not None:
            return 500, _error("service_unavailable", "injected HTTP 500"), None
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            return 400, _error("request_invalid", "body is not JSON"), None
        if op.request_schema is not None:
            problems = self.contract.errors(op.request_schema, body)
            if problems:
                return 400, _error("request_invalid", "; ".join(problems[:5])), None
        if op.mutating:
            if not self.contract.validator("IdempotencyKey").is_valid(key):
                return 400, _error("request_invalid", "Idempotency-Key missing or malformed"), None
            status, reply = self._mutate(op.operation_id, key, headers.get("X-Kiosk-Id", ""), body)
        else:
            status, reply = self._query(op.operation_id, body)
        self.received.append(ReceivedRequest(op.operation_id, key, body_hash(body or {}), status))
        for fault in (
            Fault.TIMEOUT,
            Fault.DROP_AFTER_COMMIT,
            Fault.MALFORMED_JSON,
            Fault.CONTRADICT_CONTRACT,
        ):
            params = self._take(fault, op.operation_id)
            if params is not None:
                if fault == Fault.TIMEOUT:
                    self.wait(float(params.get("seconds", 30.0)))
                if fault == Fault.CONTRADICT_CONTRACT:
                    return 200, _contradict(reply), fault
                return status, reply, fault
        return status, reply, None

    def _check_signature(self, method: str, path: str, headers: Any, raw: bytes, key: str) -> int | None:
        kiosk_id = headers.get("X-Kiosk-Id", "")
        timestamp = headers.get("X-Timestamp", "")
        nonce = headers.get("X-Nonce", "")
        signature = headers.get("X-Signature", "")
        public = self.state.kiosk_key(kiosk_id) if kiosk_id else None
        if public is None or not nonce or len(nonce) > 64:
            return 401
        try:
            sent = datetime.fromisoformat(timestamp).timestamp()
        except ValueError:
            return 401
        now = self.wall_clock()
        if abs(now - sent) > TIMESTAMP_WINDOW_S:
            return 401
        if not verify(public, canonical_request(method, path, timestamp, nonce, key, raw), signature.lower()):
            return 401
        if not self._use_nonce(f"{kiosk_id}:{nonce}", now):
            return 401  # a replayed request
        return None

    def _use_nonce(self, nonce: str, now: float) -> bool:
        """Records a nonce; False if seen inside the window (a replay). Kept in memory: a durable
        write (fsync) per request would triple the round trip, and after a restart the timestamp
        window plus the idempotency records still stop a replayed mutating request."""
        with self._nonce_lock:
            if len(self._nonces) > 10_000 or now - self._nonce_purged > TIMESTAMP_WINDOW_S:
                self._nonces = {n: t for n, t in self._nonces.items() if t > now - 2 * TIMESTAMP_WINDOW_S}
                self._nonce_purged = now
            if nonce in self._nonces:
                return False
            self._nonces[nonce] = now
            return True

    def _query(self, operation: str, body: Any) -> tuple[int, Any]:
        if operation == "lookupRequest":
            row = self.state.stored_request(body["idempotency_key"])
            if row is None:
                return 404, _error("request_not_found", "no request with this key arrived")
            return 200, {
                "idempotency_key": row["idempotency_key"],
                "operation": row["operation"],
                "http_status": row["http_status"],
                "body": json.loads(row["response"]),
            }
        try:
            return 200, getattr(self.state, f"op_{operation}")(body)
        except Refusal as refusal:
            return refusal.status, _error(refusal.code, refusal.message)

    def _mutate(self, operation: str, key: str, kiosk_id: str, body: Any) -> tuple[int, Any]:
        try:
            return self._mutate_once(operation, key, kiosk_id, body)
        except Refusal as refusal:  # 5xx: rolled back and not stored, so the same key may come again
            return refusal.status, _error(refusal.code, refusal.message)

    def _mutate_once(self, operation: str, key: str, kiosk_id: str, body: Any) -> tuple[int, Any]:
        digest = body_hash({"operation": operation, "body": body})
        with self.state.transaction():
            stored = self.state.stored_request(key)
            if stored is not None:
                if stored["body_hash"] != digest:
                    return 422, _error("idempotency_key_reused", "this key was used for another request")
                return int(stored["http_status"]), json.loads(stored["response"])
            method = getattr(self.state, f"op_{operation}")
            try:
                if operation == "activateBankAccount":
                    pending = self._take(Fault.BANK_PENDING, operation) is not None
                    status, reply = 200, method(body, pending=pending)
                else:
                    status, reply = 200, method(body)
            except Refusal as refusal:
                if refusal.status >= 500:
                    raise
                status, reply = refusal.status, _error(refusal.code, refusal.message)
            # The answer is stored in the same transaction as the effect: a replay sees exactly it.
            self.state.store_request(key, kiosk_id, operation, digest, status, reply)
        return status, reply


def _now_text() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _contradict(reply: Any) -> Any:
    """A 200 reply that breaks the contract: a required field dropped and an enum value invented."""
    if isinstance(reply, dict) and reply:
        broken = dict(reply)
        broken.pop(next(iter(broken)))
        broken["state"] = "teleported"
        return broken
    return {"unexpected": True}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle + delayed ACK adds
    # ~40 ms to every reply on loopback.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        # The default writes every request line to stderr; paths hold no personal data, but the
        # simulator keeps to events at debug level.
        log.debug("backend_sim.http " + format, *args)

    def setup(self) -> None:
        super().setup()
        sim = self.server.simulator
        with sim._connections_lock:
            sim._connections.add(self.connection)

    def finish(self) -> None:
        sim = self.server.simulator
        with sim._connections_lock:
            sim._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def _serve(self) -> None:
        sim = self.server.simulator
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            status, reply, fault = sim.handle(self.command, self.path, self.headers, raw)
        except Exception:
            log.exception("backend_sim.internal_error path=%s", self.path)
            status, reply, fault = 500, _error("service_unavailable", "internal error"), None
        if fault == Fault.DROP_AFTER_COMMIT or (fault == Fault.TIMEOUT and sim._stopping.is_set()):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        payload = (
            b'{"application_id": "S2026'
            if fault == Fault.MALFORMED_JSON
            else json.dumps(reply, ensure_ascii=False).encode("utf-8")
        )
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()
