"""The vpcd link (simulator side): a virtual card connects to pcscd's vsmartcard-vpcd reader
over TCP, exactly as vicc does. One :class:`ChipStationSlot` per reader slot.

vpcd protocol: 2-byte big-endian length, then the payload. A 1-byte payload is a control
message (00 power off, 01 power on, 02 reset, 04 get ATR — only 04 is answered); a longer
payload is an APDU, answered with R-data ‖ SW. TCP_QUICKACK is re-armed after every ``recv``
(research/deps.md §2: without it each APDU stalls ~45 ms on delayed ACKs).

DEVELOPMENT ONLY: vpcd accepts a "card" from the network; it must never be installed on a kiosk.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from typing import Protocol, Self

log = logging.getLogger(__name__)

VPCD_HOST = "127.0.0.1"
VPCD_PORT = 35963  # slot 0 ("Virtual PCD 00 00"); slot n listens on VPCD_PORT + n


class CardPulled(Exception):
    """Raised by a virtual card's APDU handler to model the card leaving the reader mid-command."""


class VirtualCard(Protocol):
    """What a slot needs from a virtual card (simulator)."""

    @property
    def atr(self) -> bytes: ...

    def power(self, on: bool) -> None: ...

    def process(self, apdu: bytes) -> bytes: ...


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("vpcd closed the link")
        buf += chunk
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    return bytes(buf)


class ChipStationSlot:
    """One vpcd reader slot into which a virtual card is inserted (插卡) and removed (取卡).

    ``insert(card)`` connects the card's link to vpcd (pcscd then sees a card in the reader);
    ``remove()`` closes it (pcscd sees the reader empty). The card object keeps its chip state,
    so a card removed and inserted again still holds what was written. ``start()``/``stop()``
    and the context manager exist for symmetry with the other simulators (``stop`` removes).
    """

    # pcscd polls vpcd for presence every 400 ms (PCSCLITE_STATUS_POLL_RATE). A card inserted
    # before that poll noticed the previous card leave is taken by pcscd for the old card (same
    # state, old ATR, no power-up), so a slot waits this long after a removal before the next card.
    REINSERT_GAP_S = 0.5

    def __init__(self, slot: int = 0, *, host: str = VPCD_HOST, port: int | None = None) -> None:
        self.slot = slot
        self._emptied_at = 0.0
        self.address = (host, port if port is not None else VPCD_PORT + slot)
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._card: VirtualCard | None = None
        self._gone = threading.Event()
        self._gone.set()

    @property
    def reader_name(self) -> str:
        """pcscd's name for this slot with the stock /etc/reader.conf.d/vpcd."""
        return f"Virtual PCD 00 {self.slot:02d}"

    @property
    def card(self) -> VirtualCard | None:
        return self._card if not self._gone.is_set() else None

    @property
    def occupied(self) -> bool:
        return not self._gone.is_set()

    def insert(self, card: VirtualCard) -> None:
        """Puts ``card`` into the slot. Raises ConnectionError if vpcd is not listening."""
        with self._lock:
            if not self._gone.is_set():
                raise RuntimeError(f"slot {self.slot} already holds a card")
            wait = self._emptied_at + self.REINSERT_GAP_S - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # no event to wait for: pcscd's presence poll is timer-driven
            sock = socket.create_connection(self.address, timeout=5)
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock, self._card = sock, card
            self._gone.clear()
            self._thread = threading.Thread(
                target=self._serve, args=(sock, card), daemon=True, name=f"vpcd-slot{self.slot}"
            )
            self._thread.start()
        log.info("virtual_card.inserted slot=%d", self.slot)

    def remove(self, timeout: float = 5.0) -> VirtualCard | None:
        """Takes the card out; returns it (None if the slot was empty)."""
        with self._lock:
            card, sock, thread = self._card, self._sock, self._thread
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed by a pulled-card fault
                sock.close()
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)
            self._sock = self._thread = None
            self._card = None
            if not self._gone.is_set():
                self._emptied_at = time.monotonic()
            self._gone.set()
        if card is not None:
            log.info("virtual_card.removed slot=%d", self.slot)
        return card

    def wait_empty(self, timeout: float) -> bool:
        return self._gone.wait(timeout)

    def start(self, card: VirtualCard | None = None) -> None:
        if card is not None:
            self.insert(card)

    def stop(self) -> None:
        self.remove()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _send(self, sock: socket.socket, payload: bytes) -> None:
        sock.sendall(struct.pack(">H", len(payload)) + payload)

    def _serve(self, sock: socket.socket, card: VirtualCard) -> None:
        try:
            while True:
                (length,) = struct.unpack(">H", _recv_exact(sock, 2))
                message = _recv_exact(sock, length)
                if length == 1:
                    control = message[0]
                    if control == 0x04:
                        self._send(sock, card.atr)
                    elif control in (0x00, 0x01, 0x02):
                        card.power(control != 0x00)
                    continue
                try:
                    answer = card.process(message)
                except CardPulled:
                    log.info("virtual_card.pulled slot=%d", self.slot)
                    break
                self._send(sock, answer)
        except (ConnectionError, OSError):
            pass  # removed by remove() or vpcd went away: either way the slot is empty now
        finally:
            try:
                sock.close()
            except OSError:
                pass
            if not self._gone.is_set():
                self._emptied_at = time.monotonic()
            self._gone.set()
