"""Links to the card printer (I/O only): TCP socket, serial port, USB printer device file.

The python-escpos split: :mod:`printer.cardprinter.protocol` knows the bytes, these classes
only move them. Each reads one reply up to its CR within a time-out. Every failure of the
link is :class:`LinkError` (an ``OSError``), which the driver turns into ``CardPrinterOffline``.
"""

from __future__ import annotations

import os
import select
import socket
import time
from collections.abc import Callable
from typing import Protocol

from printer.cardprinter.protocol import CR, MAX_REPLY_BYTES


class LinkError(OSError):
    """The link failed: not connected, closed by the far end, or no reply in time."""


class Transport(Protocol):
    def open(self) -> None: ...

    def close(self) -> None: ...

    def send(self, data: bytes) -> None: ...

    def read_reply(self, timeout_s: float) -> bytes:
        """The next reply, without its CR. Raises :class:`LinkError` on time-out or close."""


class _ReplyBuffer:
    """Holds bytes read past a CR for the next reply."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def take(self) -> bytes | None:
        end = self.buf.find(bytes([CR]))
        if end < 0:
            if len(self.buf) > MAX_REPLY_BYTES:
                self.buf.clear()
                raise LinkError("reply without CR longer than the protocol allows")
            return None
        reply = bytes(self.buf[:end])
        del self.buf[: end + 1]
        return reply

    def read(self, timeout_s: float, read_chunk: Callable[[float], bytes]) -> bytes:
        """The next CR-terminated reply: buffered bytes first, then ``read_chunk(seconds_left)``
        (which raises :class:`LinkError` on a dead link) until a reply is whole or time runs out."""
        deadline = time.monotonic() + timeout_s
        while True:
            reply = self.take()
            if reply is not None:
                return reply
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkError("no reply in time")
            self.buf += read_chunk(left)


class TcpTransport:
    """A raw TCP socket (a network card printer, or the simulator on 127.0.0.1)."""

    def __init__(self, host: str, port: int, *, connect_timeout_s: float = 3.0) -> None:
        self.host, self.port = host, port
        self.connect_timeout_s = connect_timeout_s
        self._sock: socket.socket | None = None
        self._replies = _ReplyBuffer()

    @classmethod
    def from_address(cls, address: str) -> TcpTransport:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("tcp address must be host:port")
        return cls(host, int(port))

    def open(self) -> None:
        if self._sock is not None:
            return
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout_s)
        except OSError as exc:
            raise LinkError(f"connect {self.host}:{self.port}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._replies = _ReplyBuffer()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def send(self, data: bytes) -> None:
        if self._sock is None:
            raise LinkError("not connected")
        try:
            self._sock.settimeout(10.0)
            self._sock.sendall(data)
        except OSError as exc:
            self.close()
            raise LinkError(f"send: {exc}") from exc

    def read_reply(self, timeout_s: float) -> bytes:
        if self._sock is None:
            raise LinkError("not connected")
        return self._replies.read(timeout_s, self._recv)

    def _recv(self, left: float) -> bytes:
        assert self._sock is not None
        try:
            self._sock.settimeout(left)
            chunk = self._sock.recv(4096)
        except TimeoutError as exc:
            raise LinkError("no reply in time") from exc
        except OSError as exc:
            self.close()
            raise LinkError(f"recv: {exc}") from exc
        if not chunk:
            self.close()
            raise LinkError("printer closed the link")
        return chunk


class _FdTransport:
    """Shared by the device-file links: a file descriptor read with select()."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._replies = _ReplyBuffer()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def send(self, data: bytes) -> None:
        if self._fd is None:
            raise LinkError("not open")
        view = memoryview(data)
        try:
            while view:
                _, writable, _ = select.select([], [self._fd], [], 10.0)
                if not writable:
                    raise LinkError("device not accepting data")
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as exc:
            raise LinkError(f"write {self.path}: {exc}") from exc

    def read_reply(self, timeout_s: float) -> bytes:
        if self._fd is None:
            raise LinkError("not open")
        return self._replies.read(timeout_s, self._read)

    def _read(self, left: float) -> bytes:
        assert self._fd is not None
        readable, _, _ = select.select([self._fd], [], [], left)
        if not readable:
            raise LinkError("no reply in time")
        try:
            chunk = os.read(self._fd, 4096)
        except OSError as exc:
            raise LinkError(f"read {self.path}: {exc}") from exc
        if not chunk:
            raise LinkError("device closed")
        return chunk


class UsbPrinterTransport(_FdTransport):
    """The USB printer-class device file (``/dev/usb/lp0``), opened read-write: replies come back
    on the printer's back channel (E1 ``evolis-command.pl``)."""

    def open(self) -> None:
        if self._fd is not None:
            return
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise LinkError(f"open {self.path}: {exc}") from exc
        self._replies = _ReplyBuffer()
        self._drain()

    def _drain(self) -> None:
        """Drops replies still queued from before (a late answer to a timed-out command)."""
        assert self._fd is not None
        while select.select([self._fd], [], [], 0)[0]:
            try:
                if not os.read(self._fd, 4096):
                    return
            except BlockingIOError:
                return
            except OSError as exc:
                raise LinkError(f"read {self.path}: {exc}") from exc


class SerialTransport:
    """A serial port (older models, ``Pcom;1;9600;N;8;1``, E1), through pyserial."""

    def __init__(self, path: str, baud: int = 9600) -> None:
        self.path, self.baud = path, baud
        self._port = None
        self._replies = _ReplyBuffer()

    def open(self) -> None:
        if self._port is not None:
            return
        import serial  # pyserial; imported here so TCP/USB users need not have it

        try:
            self._port = serial.Serial(self.path, self.baud, timeout=0, write_timeout=10)
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"open {self.path}: {exc}") from exc
        self._port.reset_input_buffer()  # a late answer to a timed-out command is not a reply
        self._replies = _ReplyBuffer()

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None

    def send(self, data: bytes) -> None:
        if self._port is None:
            raise LinkError("not open")
        try:
            self._port.write(data)
            self._port.flush()
        except Exception as exc:  # pyserial raises SerialException/SerialTimeoutException/OSError
            raise LinkError(f"write {self.path}: {exc}") from exc

    def read_reply(self, timeout_s: float) -> bytes:
        if self._port is None:
            raise LinkError("not open")
        return self._replies.read(timeout_s, self._read)

    def _read(self, left: float) -> bytes:
        """What has arrived within ``left`` (at most 0.2 s), possibly nothing."""
        assert self._port is not None
        try:
            self._port.timeout = min(left, 0.2)
            return bytes(self._port.read(max(1, self._port.in_waiting)))
        except Exception as exc:  # pyserial raises SerialException/OSError
            raise LinkError(f"read {self.path}: {exc}") from exc


def open_transport(kind: str, address: str, *, baud: int = 9600) -> Transport:
    """``kind`` as in the configuration: ``tcp`` (host:port), ``serial`` (tty path), ``usb``
    (printer device file). The link is not opened yet."""
    if kind == "tcp":
        return TcpTransport.from_address(address)
    if kind == "serial":
        return SerialTransport(address, baud)
    if kind == "usb":
        return UsbPrinterTransport(address)
    raise ValueError(f"unknown transport {kind!r}")
