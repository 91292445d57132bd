"""Receipt printer simulator (凭条打印机模拟器): an ESC/POS printer on a loopback TCP socket
(``link="tcp"``, like a network printer on port 9100) or a pseudo-terminal (``link="pty"``, like a
serial printer; the driver opens :attr:`device_path` with pyserial or as a device file).

It stands at the far end of a real link and behaves like an Epson-compatible thermal printer:

- it parses the command stream with the same parser as the PNG renderer and keeps every byte it
  received (``received``), what it actually printed (``printed``) and each finished receipt up
  to its cut (``receipts``);
- real-time commands (``DLE EOT n``, ``DLE DC4 8`` clear buffer) are answered at once, even
  while the printer is stopped; everything else goes through its buffer and is processed in
  order, so ``GS r 1`` is answered only after the receipt before it is out;
- a roll of paper counted in text lines, with a near-end sensor; when the roll ends mid-receipt
  the printer stops and holds the rest of its buffer (resumed after ``load_paper`` unless the
  host clears it).

Faults (``fault_names()``): ``paper_near_end``, ``paper_out``, ``paper_out_after`` (``lines=N``:
the roll ends after N more lines, i.e. in the middle of the next receipt), ``cover_open``,
``cutter_error`` (the next cut fails), ``offline`` (no reply at all; ``count`` = number of
status queries left unanswered, None = until cleared). Staff actions: ``load_paper()``,
``close_cover()``.
"""

from __future__ import annotations

import logging
import math
import os
import select
import socket
import threading
import tty
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, Self

from printer.receipt import protocol as p

log = logging.getLogger(__name__)

FAULTS = ("paper_near_end", "paper_out", "paper_out_after", "cover_open", "cutter_error", "offline")

# Lines a printed native QR code takes (module size 6, version ≤ 5 ≈ 230 dots at 24 dots a line).
_QR_LINES = 10


class _Conn(Protocol):
    def recv(self, n: int) -> bytes: ...

    def sendall(self, data: bytes) -> None: ...

    def close(self) -> None: ...


@dataclass
class _Queued:
    command: p.Command
    conn: _Conn


class _PtyEnd:
    """The printer's end of a pseudo-terminal, shaped like a socket for :meth:`_serve`."""

    def __init__(self, master: int, running: Callable[[], bool]) -> None:
        self._master = master
        self._running = running

    def recv(self, n: int) -> bytes:
        while self._running():
            ready, _, _ = select.select([self._master], [], [], 0.1)
            if ready:
                try:
                    return os.read(self._master, n)
                except OSError:
                    return b""
        return b""

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._master, view) :]

    def close(self) -> None:
        """The fds are closed by :meth:`ReceiptPrinterSimulator.stop`."""


class ReceiptPrinterSimulator:
    """Start with :meth:`start` (or ``with``); connect to :attr:`address`."""

    def __init__(
        self,
        *,
        paper_lines: int = 5000,
        near_end_lines: int = 300,
        host: str = "127.0.0.1",
        port: int = 0,
        link: str = "tcp",
    ) -> None:
        if link not in ("tcp", "pty"):
            raise ValueError("link must be 'tcp' or 'pty'")
        self._link = link
        self._pty: tuple[int, int] | None = None
        self._host, self._port = host, port
        self._full_roll = paper_lines
        self._near_end_lines = near_end_lines
        self._lock = threading.Condition()
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: list[_Conn] = []
        self._running = False
        self.received = bytearray()
        self.printed = bytearray()
        self.receipts: list[bytes] = []
        self.status_queries = 0
        self._current = bytearray()
        self._queue: deque[_Queued] = deque()
        self._reset_mechanics()

    def _reset_mechanics(self) -> None:
        self.paper_lines = self._full_roll
        self.force_near_end = False
        self.cover_open = False
        self.error = False
        self.cutter_error = False
        self._cutter_fault_armed = False
        self._offline_left: int | None = 0
        self._pending_line_scale = 1

    # ---------------------------------------------------------------- lifecycle

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("simulator not started")
        host, port = self._server.getsockname()[:2]
        return host, port

    @property
    def address_text(self) -> str:
        """``host:port`` (TCP) or the tty path (pty), as ``[receipt] address`` takes it."""
        if self._link == "pty":
            return self.device_path
        host, port = self.address
        return f"{host}:{port}"

    @property
    def device_path(self) -> str:
        """The pseudo-terminal the driver opens like ``/dev/ttyUSB0`` (``link="pty"``)."""
        if self._pty is None:
            raise RuntimeError("simulator not started with link='pty'")
        return os.ttyname(self._pty[1])

    def start(self) -> Self:
        if self._link == "pty":
            master, slave = os.openpty()
            # Raw on the terminal itself (shared by every open of the slave): no echo of the
            # printer's replies, no CR/LF translation of receipt bytes.
            tty.setraw(slave)
            self._pty = (master, slave)
            self._running = True
            end = _PtyEnd(master, lambda: self._running)
            thread = threading.Thread(target=self._serve, args=(end,), name="receipt-sim-pty", daemon=True)
            thread.start()
            self._threads.append(thread)
            log.info("receipt_sim.started device=%s", self.device_path)
            return self
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self._host, self._port))
        server.listen(4)
        self._server = server
        self._running = True
        thread = threading.Thread(target=self._accept_loop, name="receipt-sim-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        log.info("receipt_sim.started address=%s", self.address_text)
        return self

    def stop(self) -> None:
        self._running = False
        if self._server is not None:
            try:
                self._server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # a listening socket that never connected cannot be shut down on some kernels
            self._server.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            if isinstance(conn, socket.socket):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed by the peer
            conn.close()
        for thread in self._threads:
            thread.join(timeout=2)
        self._threads.clear()
        if self._pty is not None:
            for fd in self._pty:
                os.close(fd)
            self._pty = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._server is not None
        while self._running:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), name="receipt-sim-conn", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: _Conn) -> None:
        parser = p.StreamParser()
        try:
            while self._running:
                try:
                    chunk = conn.recv(4096)
                except OSError:
                    return
                if not chunk:
                    return
                with self._lock:
                    self.received += chunk
                    for command in parser.feed(chunk):
                        self._on_command(command, conn)
                    self._run_queue()
                    self._lock.notify_all()
        finally:
            with self._lock:
                if conn in self._conns:
                    self._conns.remove(conn)
            conn.close()

    # ---------------------------------------------------------------- fault surface

    def fault_names(self) -> list[str]:
        return list(FAULTS)

    def inject(self, name: str, count: int | None = None, **params: Any) -> None:
        with self._lock:
            if name == "paper_near_end":
                self.force_near_end = True
            elif name == "paper_out":
                self.paper_lines = 0
            elif name == "paper_out_after":
                self.paper_lines = int(params.get("lines", 5))
            elif name == "cover_open":
                self.cover_open = True
            elif name == "cutter_error":
                self._cutter_fault_armed = True
            elif name == "offline":
                self._offline_left = count
            else:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
            log.info("receipt_sim.inject fault=%s count=%s", name, count)

    def clear_faults(self) -> None:
        with self._lock:
            self._reset_mechanics()
            self._run_queue()
            self._lock.notify_all()

    def load_paper(self, lines: int | None = None) -> None:
        """Staff put in a new roll; a held job resumes unless the host cleared it."""
        with self._lock:
            self.paper_lines = self._full_roll if lines is None else lines
            self._run_queue()
            self._lock.notify_all()

    def close_cover(self) -> None:
        with self._lock:
            self.cover_open = False
            self._run_queue()
            self._lock.notify_all()

    def wait_for(self, predicate: Callable[[ReceiptPrinterSimulator], bool], timeout_s: float = 5.0) -> bool:
        """Waits until ``predicate(self)`` holds (checked under the simulator's lock)."""
        with self._lock:
            return self._lock.wait_for(lambda: predicate(self), timeout=timeout_s)

    # ---------------------------------------------------------------- state

    @property
    def paper_end(self) -> bool:
        return self.paper_lines is not None and self.paper_lines <= 0

    @property
    def near_end(self) -> bool:
        return self.force_near_end or (
            self.paper_lines is not None and self.paper_lines <= self._near_end_lines
        )

    @property
    def stopped(self) -> bool:
        return self.cover_open or self.error or self.paper_end

    @property
    def held_commands(self) -> int:
        return len(self._queue)

    def _status(self) -> p.PrinterStatus:
        return p.PrinterStatus(
            offline=self.stopped,
            cover_open=self.cover_open,
            paper_end_stop=self.paper_end and bool(self._queue),
            error=self.error,
            cutter_error=self.cutter_error,
            paper_near_end=self.near_end,
            paper_end=self.paper_end,
        )

    # ---------------------------------------------------------------- commands

    def _reply(self, conn: _Conn, byte: int) -> None:
        try:
            conn.sendall(bytes([byte]))
        except OSError:
            log.info("receipt_sim.reply_lost")

    def _silent(self) -> bool:
        """Whether the offline fault swallows this query."""
        if self._offline_left is None:
            return True
        if self._offline_left > 0:
            self._offline_left -= 1
            return True
        return False

    def _on_command(self, command: p.Command, conn: _Conn) -> None:
        if command.op is p.Op.REAL_TIME_STATUS:
            self.status_queries += 1
            if self._silent() or command.arg not in (1, 2, 3, 4):
                return
            self._reply(conn, self._status().reply(command.arg))
            return
        if command.op is p.Op.CLEAR_BUFFER:
            self._queue.clear()
            self._current.clear()
            return
        self._queue.append(_Queued(command, conn))

    def _run_queue(self) -> None:
        while self._queue and not self.stopped and self._offline_left is not None:
            item = self._queue[0]
            if not self._execute(item):
                return
            self._queue.popleft()

    def _consume(self, lines: int) -> bool:
        """Takes ``lines`` of paper; False (and the printer stops) if the roll ends first."""
        if self.paper_lines is None:
            return True
        if self.paper_lines < lines:
            self.paper_lines = 0
            return False
        self.paper_lines -= lines
        return True

    def _execute(self, item: _Queued) -> bool:
        command = item.command
        op = command.op
        if op is p.Op.LF:
            if not self._consume(self._pending_line_scale):
                return False
        elif op is p.Op.FEED_LINES:
            if not self._consume(command.arg):
                return False
        elif op is p.Op.FEED_DOTS:
            if not self._consume(math.ceil(command.arg / 24)):
                return False
        elif op is p.Op.RASTER:
            if not self._consume(math.ceil(command.extra[1] / 24)):
                return False
        elif op is p.Op.QR and command.arg == 81:
            if not self._consume(_QR_LINES):
                return False
        elif op is p.Op.CHAR_SIZE:
            self._pending_line_scale = (command.arg & 0x0F) + 1
        elif op is p.Op.INIT:
            self._pending_line_scale = 1
        elif op is p.Op.CUT:
            if self._cutter_fault_armed:
                self._cutter_fault_armed = False
                self.cutter_error = True
                self.error = True
                return False
        elif op is p.Op.TRANSMIT_STATUS:
            if command.arg in (1, 49) and not self._silent():
                self._reply(item.conn, self._status().gs_r_reply())
            return True
        self.printed += command.raw
        self._current += command.raw
        if op is p.Op.CUT:
            self.receipts.append(bytes(self._current))
            self._current.clear()
        return True
