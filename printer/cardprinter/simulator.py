"""Card printer SIMULATOR (模拟制卡机): the far end of a real link, speaking the same commands.

It listens on a loopback TCP socket (``link="tcp"``, the default) or holds the master side of a
pseudo-terminal (``link="pty"``: the driver opens the slave path as a serial port or as a
device file, exactly as it opens ``/dev/ttyUSB0`` or ``/dev/usb/lp0`` in the field), and keeps:

* a hopper of numbered blank cards (loadable with the bureau's numbers, e.g. ``A00000001``);
* a chip station: a card arriving there is passed to ``chip_station.insert(card_number)`` and
  ``chip_station.remove()`` is called when it leaves (the smart-card package's virtual reader
  plugs in here; the default only records);
* a print position that decodes the ``Db`` panels and writes the printed face as a PNG;
* an optional embosser whose lines are recorded and drawn on that PNG;
* an output slot (bezel): the simulated citizen takes the card after ``take_delay_s``, or not
  at all under the ``card_not_taken`` fault; the citizen may also push their own card into it
  (:meth:`CardPrinterSimulator.insert_from_front`), drawn in to the chip station by ``Pcim;M``
  + ``Sis``;
* a reject bin with a capacity, a ribbon counter and the printer's counters.

Faults (``fault_names()``): ``jam`` (``stage=`` feed | print | emboss | eject | reject;
``hard=True`` survives a reset until :meth:`clear_faults`), ``hopper_empty``, ``ribbon_out``,
``cover_open``, ``reject_bin_full``, ``stuck_at_chip_station``, ``card_not_taken``,
``no_reply`` (the printer swallows commands: the host sees a time-out). ``count`` limits how
many times a fault fires (``None``: until cleared). Mechanics delays are ``mechanics_s`` per
move (0 for tests).
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
import tty
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Self

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from kiosk.devices.cardprinter import CardPosition
from printer.cardprinter import protocol as p

log = logging.getLogger(__name__)

FAULTS = (
    "jam",
    "hopper_empty",
    "ribbon_out",
    "cover_open",
    "reject_bin_full",
    "stuck_at_chip_station",
    "card_not_taken",
    "no_reply",
)
JAM_STAGES = ("feed", "print", "emboss", "eject", "reject")
EMBOSS_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"


class ChipStation(Protocol):
    """What the simulator tells when a card reaches (``insert``) or leaves (``remove``) the
    contact chip station. The smart-card package's implementation puts a virtual social
    security card into the vpcd reader."""

    def insert(self, card_number: str) -> None: ...

    def remove(self) -> None: ...


class RecordingChipStation:
    """The default chip station: records ``("insert", number)`` / ``("remove", number)``."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.current: str | None = None

    def insert(self, card_number: str) -> None:
        if self.current is not None:
            raise RuntimeError("chip station already holds a card")
        self.current = card_number
        self.events.append(("insert", card_number))

    def remove(self) -> None:
        if self.current is not None:
            self.events.append(("remove", self.current))
        self.current = None


class SlotChipStation:
    """Connects the simulator to a reader slot that takes card *objects* (such as the smart-card
    package's vpcd ``ChipStationSlot``): ``card_for(number)`` makes the virtual chip card of that
    blank card once; the same object goes back in if the card returns to the station, so what
    was written to its chip stays written. ``slot.insert(card)`` / ``slot.remove()`` move it.

    Wiring: ``SlotChipStation(smartcard_sim.chip_station, card_for=blank_card_for)``.
    """

    def __init__(self, slot: object, card_for: Callable[[str], object]) -> None:
        self._slot = slot
        self._card_for = card_for
        self.cards: dict[str, object] = {}

    def card(self, card_number: str) -> object:
        """The virtual chip card of a blank (made now if it never reached the station): how a
        test or a trainer gives one particular blank a defective chip before it is fed."""
        card = self.cards.get(card_number)
        if card is None:
            card = self.cards[card_number] = self._card_for(card_number)
        return card

    def adopt(self, card_number: str, card: object) -> None:
        """A card from outside the hopper (the holder's own card, pushed into the front slot)
        with its chip as it is: the station reads what is already written on it."""
        self.cards[card_number] = card

    def insert(self, card_number: str) -> None:
        self._slot.insert(self.card(card_number))  # type: ignore[attr-defined]

    def remove(self) -> None:
        self._slot.remove()  # type: ignore[attr-defined]


@dataclass
class SimulatedCard:
    number: str
    position: CardPosition
    face: Image.Image | None = None
    embossed: list[tuple[int, int, int, str]] = field(default_factory=list)


@dataclass
class _Fault:
    count: int | None
    params: dict


class CardPrinterSimulator:
    """A simulated Evolis-style kiosk card printer. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        card_numbers: Iterable[str] = (),
        *,
        chip_station: ChipStation | None = None,
        output_dir: Path | None = None,
        link: str = "tcp",
        host: str = "127.0.0.1",
        port: int = 0,
        reject_bin_capacity: int = 20,
        hopper_near_empty: int = 10,
        ribbon_capacity: int = 200,
        ribbon_remaining: int | None = None,
        ribbon_low: int = 20,
        embosser_fitted: bool = False,
        take_delay_s: float | None = 0.0,
        mechanics_s: float = 0.0,
        card_orientation_deg: int = 180,
        reject_bin_cards: Iterable[str] = (),
        card_inside: str | None = None,
    ) -> None:
        """``reject_bin_cards`` / ``card_inside``: the machine as it was left (a restart after a
        power cut finds the spoiled cards still in the bin and a card still in the card path)."""
        if link not in ("tcp", "pty"):
            raise ValueError("link must be 'tcp' or 'pty'")
        self.chip_station: ChipStation = chip_station if chip_station is not None else RecordingChipStation()
        self.output_dir = output_dir
        self.link, self.host, self._port = link, host, port
        self.reject_bin_capacity = reject_bin_capacity
        self.hopper_near_empty = hopper_near_empty
        self.ribbon_capacity = ribbon_capacity
        self.ribbon_remaining = ribbon_capacity if ribbon_remaining is None else ribbon_remaining
        self.ribbon_low = ribbon_low
        self.embosser_fitted = embosser_fitted
        self.take_delay_s = take_delay_s
        self.mechanics_s = mechanics_s
        self.card_orientation_deg = card_orientation_deg

        self.hopper: deque[str] = deque(card_numbers)
        self.card: SimulatedCard | None = (  # the card in the printer's path
            SimulatedCard(card_inside, CardPosition.PRINT_HEAD) if card_inside else None
        )
        self.reject_bin: list[SimulatedCard] = [SimulatedCard(n, CardPosition.REJECT_BIN) for n in reject_bin_cards]
        self.taken: list[SimulatedCard] = []
        self.faces: dict[str, Path] = {}
        self.counters = {"fed": 0, "printed": 0, "ejected": 0, "rejected": 0, "embossed": 0}
        self.commands_seen: list[str] = []
        self.busy_s = 0.0

        self._faults: dict[str, _Fault] = {}
        self._jammed = False
        self._jam_hard = False
        self._keep_after_print = False
        self._manual_input = False  # Pcim;M: Sis draws a card in from the front slot, not the hopper
        self._sequence = False
        self._panels: dict[str, tuple[int, bytes]] = {}
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._timers: list[threading.Timer] = []
        self._server: socket.socket | None = None
        self._clients: list[socket.socket] = []
        self._pty: tuple[int, int] | None = None
        self._wake: tuple[int, int] | None = None
        self._emboss_font: ImageFont.FreeTypeFont | ImageFont.ImageFont | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def address(self) -> str:
        """``host:port`` (tcp) or the slave device path (pty)."""
        if self.link == "pty":
            if self._pty is None:
                raise RuntimeError("simulator not started")
            return os.ttyname(self._pty[1])
        if self._server is None:
            raise RuntimeError("simulator not started")
        host, port = self._server.getsockname()[:2]
        return f"{host}:{port}"

    def start(self) -> CardPrinterSimulator:
        self._stopping.clear()
        if self.link == "tcp":
            server = socket.create_server((self.host, self._port))
            server.settimeout(0.2)
            self._server = server
            self._spawn(self._accept_loop, "cardprinter-sim-accept")
        else:
            master, slave = os.openpty()
            tty.setraw(slave)  # bytes pass untouched (no CR→NL, no echo), like a real port
            self._pty = (master, slave)
            self._wake = os.pipe()
            self._spawn(self._pty_loop, "cardprinter-sim-pty")
        log.info("cardprinter_sim.started link=%s", self.link)
        return self

    def stop(self) -> None:
        self._stopping.set()
        for timer in self._timers:
            timer.cancel()
        if self._wake is not None:
            os.write(self._wake[1], b"x")
        if self._server is not None:
            self._server.close()
        for client in list(self._clients):
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the driver
            client.close()
        for thread in self._threads:
            thread.join(5)
        self._threads.clear()
        self._server = None
        for fd in (*(self._pty or ()), *(self._wake or ())):
            os.close(fd)
        self._pty = self._wake = None
        log.info("cardprinter_sim.stopped")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target, name: str, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._server is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # listening socket closed by stop()
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._clients.append(client)
            self._spawn(self._serve_client, "cardprinter-sim-client", client)

    def _serve_client(self, client: socket.socket) -> None:
        parser = p.CommandParser()
        try:
            while not self._stopping.is_set():
                chunk = client.recv(1 << 20)
                if not chunk:
                    return
                for command in parser.feed(chunk):
                    reply = self.handle(command)
                    if reply:
                        client.sendall(reply)
        except OSError:
            return  # the driver went away or stop() closed the socket
        finally:
            client.close()
            if client in self._clients:
                self._clients.remove(client)

    def _pty_loop(self) -> None:
        assert self._pty is not None and self._wake is not None
        master, wake = self._pty[0], self._wake[0]
        parser = p.CommandParser()
        while not self._stopping.is_set():
            readable, _, _ = select.select([master, wake], [], [])
            if wake in readable:
                return
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:
                return
            for command in parser.feed(chunk):
                reply = self.handle(command)
                if reply:
                    os.write(master, reply)

    # ------------------------------------------------------------------ fault surface

    def fault_names(self) -> list[str]:
        return list(FAULTS)

    def inject(self, name: str, count: int | None = None, **params: object) -> None:
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        if name == "jam" and params.get("stage", "feed") not in JAM_STAGES:
            raise ValueError(f"jam stage must be one of {JAM_STAGES}")
        with self._lock:
            self._faults[name] = _Fault(count, dict(params))
        log.info("cardprinter_sim.fault_injected name=%s count=%s", name, count)

    def clear_faults(self) -> None:
        """Staff cleared everything: faults off, jams reset. Cards stay where they are."""
        with self._lock:
            self._faults.clear()
            self._jammed = self._jam_hard = False

    def _fires(self, name: str, **match: object) -> bool:
        """Whether fault ``name`` is active (and matches ``match``); counts one firing."""
        fault = self._faults.get(name)
        if fault is None or any(fault.params.get(k, d) != v for k, v, d in _with_defaults(name, match)):
            return False
        if fault.count is not None:
            fault.count -= 1
            if fault.count <= 0:
                del self._faults[name]
        return True

    def _active(self, name: str) -> bool:
        return name in self._faults

    # ------------------------------------------------------------------ simulated people

    def load_hopper(self, card_numbers: Iterable[str]) -> None:
        """Staff restock (补卡): cards go on the stack behind those already there."""
        with self._lock:
            self.hopper.extend(card_numbers)

    def empty_reject_bin(self) -> list[str]:
        """Staff empty the reject bin (清废卡箱); returns the numbers taken out."""
        with self._lock:
            numbers = [c.number for c in self.reject_bin]
            self.reject_bin.clear()
            return numbers

    def insert_from_front(self, card_number: str, chip: object | None = None) -> bool:
        """The citizen pushes their own card into the front slot (插卡, e.g. to activate it or to
        change its PIN); it waits there until the printer draws it in (``Pcim;M`` + ``Sis``).
        ``chip`` is its virtual chip (given to a chip station that can ``adopt`` it). False if
        the slot or the card path is occupied."""
        with self._lock:
            if self.card is not None:
                return False
            adopt = getattr(self.chip_station, "adopt", None)
            if chip is not None and adopt is not None:
                adopt(card_number, chip)
            self.card = SimulatedCard(card_number, CardPosition.OUTPUT_SLOT)
            log.info("cardprinter_sim.card_at_front")
            return True

    def take_card(self) -> bool:
        """The citizen takes the card from the output slot (取卡). False if none is there."""
        with self._lock:
            card = self.card
            if card is None or card.position is not CardPosition.OUTPUT_SLOT:
                return False
            card.position = CardPosition.TAKEN
            self.taken.append(card)
            self.card = None
            return True

    @property
    def position(self) -> CardPosition:
        with self._lock:
            return self.card.position if self.card else CardPosition.NONE

    @property
    def reject_bin_numbers(self) -> list[str]:
        with self._lock:
            return [c.number for c in self.reject_bin]

    # ------------------------------------------------------------------ command handling

    def handle(self, command: p.Command) -> bytes:
        """One command in, one reply out (empty under ``no_reply``)."""
        started = time.perf_counter()
        try:
            return self._handle(command)
        finally:
            # The far end's own time (decoding panels, writing PNGs): a benchmark of the host
            # side subtracts it, since both ends share this machine's CPU.
            self.busy_s += time.perf_counter() - started

    def _handle(self, command: p.Command) -> bytes:
        with self._lock:
            self.commands_seen.append(command.name)
            if self._fires("no_reply"):
                return b""
            handler = getattr(self, f"_cmd_{command.name}", None)
            if handler is None:
                return p.encode_error(p.ErrorCode.COMMAND)
            try:
                return handler(command)
            except _Refused as refusal:
                return p.encode_error(refusal.code)

    def _move(self) -> None:
        if self.mechanics_s:
            time.sleep(self.mechanics_s)  # the mechanism's own time, configurable, 0 in tests

    def _check_motion(self) -> None:
        if self._active("cover_open"):
            raise _Refused(p.ErrorCode.COVER)
        if self._jammed:
            raise _Refused(p.ErrorCode.MECHANICAL)

    def _jam(self, stage: str, at: CardPosition) -> None:
        fault = self._faults.get("jam")
        if fault is not None and self._fires("jam", stage=stage):
            self._jammed, self._jam_hard = True, bool(fault.params.get("hard", False))
            if self.card is not None:
                self._place(at)
            log.info("cardprinter_sim.jam stage=%s hard=%s", stage, self._jam_hard)
            raise _Refused(p.ErrorCode.MECHANICAL)

    def _leave_chip_station(self) -> None:
        """The card must leave the chip station: the stuck fault keeps it there."""
        at_station = self.card is not None and self.card.position is CardPosition.CHIP_STATION
        if at_station and self._fires("stuck_at_chip_station"):
            self._jammed = True
            raise _Refused(p.ErrorCode.MECHANICAL)

    def _place(self, position: CardPosition) -> None:
        card = self.card
        assert card is not None
        if card.position is position:
            return
        if card.position is CardPosition.CHIP_STATION:
            self.chip_station.remove()
        card.position = position
        if position is CardPosition.CHIP_STATION:
            self.chip_station.insert(card.number)

    def _reject_bin_full(self) -> bool:
        return self._active("reject_bin_full") or len(self.reject_bin) >= self.reject_bin_capacity

    def _ribbon_left(self) -> int:
        return 0 if self._active("ribbon_out") else self.ribbon_remaining

    # Settings (E1/E4): stored, acknowledged.
    def _cmd_Pem(self, c: p.Command) -> bytes:
        return p.encode_reply("OK")

    _cmd_Psmgr = _cmd_Pbc = _cmd_Pcrm = _cmd_Pcem = _cmd_Pem

    def _cmd_Pcim(self, c: p.Command) -> bytes:
        """Card input: ``F`` the feeder (hopper), ``M`` the manual/front slot."""
        if not c.params or c.params[0] not in ("F", "M"):
            raise _Refused(p.ErrorCode.PARAMETER)
        self._manual_input = c.params[0] == "M"
        return p.encode_reply("OK")

    def _cmd_Pneab(self, c: p.Command) -> bytes:
        if not c.params or c.params[0] not in ("E", "A"):
            raise _Refused(p.ErrorCode.PARAMETER)
        self._keep_after_print = c.params[0] == "E"
        return p.encode_reply("OK")

    def _cmd_Rtp(self, c: p.Command) -> bytes:
        return p.encode_reply("KC200B-SIM")

    def _cmd_Rsn(self, c: p.Command) -> bytes:
        return p.encode_reply("SIM00001")

    def _cmd_Rfv(self, c: p.Command) -> bytes:
        return p.encode_reply("SIM 1.0")

    def _cmd_Rlr(self, c: p.Command) -> bytes:
        what = c.params[0] if c.params else ""
        if what == "p":
            word = {
                None: p.PositionWord.NO_CARD,
                CardPosition.CHIP_STATION: p.PositionWord.SMART_CARD,
                CardPosition.PRINT_HEAD: p.PositionWord.CARD,
                CardPosition.OUTPUT_SLOT: p.PositionWord.BEZEL,
            }[self.card.position if self.card else None]
            return p.encode_reply(word.value)
        if what == "h":
            return p.encode_reply("CARD" if self._reject_bin_full() else "NO CARD")
        raise _Refused(p.ErrorCode.PARAMETER)

    def _cmd_Rst(self, c: p.Command) -> bytes:
        flags: list[p.Flag] = []
        if not self.hopper or self._active("hopper_empty"):
            flags.append(p.Flag.WAR_FEEDER_EMPTY)
        elif len(self.hopper) <= self.hopper_near_empty:
            flags.append(p.Flag.INF_FEEDER_NEAR_EMPTY)
        ribbon = self._ribbon_left()
        if ribbon <= 0:
            flags.append(p.Flag.WAR_RIBBON_ENDED)
        elif ribbon <= self.ribbon_low:
            flags.append(p.Flag.INF_RIBBON_LOW)
        if self._reject_bin_full():
            flags.append(p.Flag.WAR_REJECT_BOX_FULL)
        if self._active("cover_open"):
            flags.append(p.Flag.WAR_COVER_OPEN)
        if self._jammed:
            flags.append(p.Flag.ERR_MECHANICAL)
        if self.card is not None:
            flags.append(
                {
                    CardPosition.CHIP_STATION: p.Flag.INF_CARD_SMART,
                    CardPosition.PRINT_HEAD: p.Flag.INF_CARD_PRINT,
                    CardPosition.OUTPUT_SLOT: p.Flag.INF_CARD_EJECT,
                }[self.card.position]
            )
        return p.encode_reply(",".join(f.value for f in flags) or "OK")

    def _cmd_Rco(self, c: p.Command) -> bytes:
        items = dict(self.counters)
        items.update(hopper=len(self.hopper), bin=len(self.reject_bin), bin_capacity=self.reject_bin_capacity)
        return p.encode_reply(",".join(f"{k}={v}" for k, v in items.items()))

    def _cmd_Rri(self, c: p.Command) -> bytes:
        return p.encode_reply(f"YMCKO,{self._ribbon_left()},{self.ribbon_capacity}")

    def _cmd_Rcn(self, c: p.Command) -> bytes:
        if self.card is None:
            raise _Refused(p.ErrorCode.NO_CARD)
        return p.encode_reply(self.card.number)

    def _cmd_Srs(self, c: p.Command) -> bytes:
        if self._jam_hard:
            raise _Refused(p.ErrorCode.MECHANICAL)
        self._jammed = False
        self._sequence = False
        self._panels.clear()
        return p.encode_reply("OK")

    def _cmd_Sis(self, c: p.Command) -> bytes:
        self._check_motion()
        card = self.card
        if self._manual_input:
            # From the front slot: the card waiting there is drawn in; nothing there, nothing to take.
            if card is None:
                raise _Refused(p.ErrorCode.FEEDER)
            self._move()
            self._place(CardPosition.CHIP_STATION)
            return p.encode_reply("OK")
        if card is not None:
            if card.position is CardPosition.OUTPUT_SLOT:
                raise _Refused(p.ErrorCode.PARAMETER)  # a presented card is not pulled back in
            self._move()
            self._place(CardPosition.CHIP_STATION)
            return p.encode_reply("OK")
        if not self.hopper or self._fires("hopper_empty"):
            raise _Refused(p.ErrorCode.FEEDER)
        self._move()
        self.card = SimulatedCard(self.hopper.popleft(), CardPosition.PRINT_HEAD)
        self.counters["fed"] += 1
        self._jam("feed", CardPosition.PRINT_HEAD)
        self._place(CardPosition.CHIP_STATION)
        return p.encode_reply("OK")

    def _cmd_Si(self, c: p.Command) -> bytes:
        """``Si`` [G]: a card inside goes to the print position (no card from the feeder here:
        the driver feeds only through ``Sis``)."""
        self._check_motion()
        if self.card is None or self.card.position is CardPosition.OUTPUT_SLOT:
            raise _Refused(p.ErrorCode.NO_CARD)
        self._leave_chip_station()
        self._move()
        self._place(CardPosition.PRINT_HEAD)
        return p.encode_reply("OK")

    def _cmd_Ss(self, c: p.Command) -> bytes:
        self._sequence = True
        self._panels.clear()
        return p.encode_reply("OK")

    def _cmd_Sr(self, c: p.Command) -> bytes:
        if not self._sequence:
            raise _Refused(p.ErrorCode.PARAMETER)
        return p.encode_reply("OK")

    def _cmd_Db(self, c: p.Command) -> bytes:
        if not self._sequence:
            raise _Refused(p.ErrorCode.PARAMETER)
        panel, levels = c.params[0], int(c.params[1])
        self._panels[panel] = (levels, c.data)
        return p.encode_reply("OK")

    def _cmd_Se(self, c: p.Command) -> bytes:
        if not self._sequence:
            raise _Refused(p.ErrorCode.PARAMETER)
        self._check_motion()
        if self.card is None or self.card.position is CardPosition.OUTPUT_SLOT:
            raise _Refused(p.ErrorCode.NO_CARD)
        panels, self._panels = self._panels, {}
        if panels:
            if self._ribbon_left() <= 0:
                raise _Refused(p.ErrorCode.RIBBON)
            self._leave_chip_station()
            self._move()
            self._place(CardPosition.PRINT_HEAD)
            self._jam("print", CardPosition.PRINT_HEAD)
            self.card.face = self._compose(panels)
            self.ribbon_remaining = max(0, self.ribbon_remaining - 1)
            self.counters["printed"] += 1
            self._write_face(self.card)
        self._sequence = False
        if panels and self._keep_after_print:
            return p.encode_reply("OK")
        self._leave_chip_station()
        self._move()
        self._place(CardPosition.PRINT_HEAD)
        self._jam("eject", CardPosition.PRINT_HEAD)
        self._place(CardPosition.OUTPUT_SLOT)
        self.counters["ejected"] += 1
        self._present()
        return p.encode_reply("OK")

    def _cmd_Ser(self, c: p.Command) -> bytes:
        self._check_motion()
        self._sequence = False
        if self.card is None:
            raise _Refused(p.ErrorCode.NO_CARD)
        if self._reject_bin_full():
            raise _Refused(p.ErrorCode.REJECT_BOX)
        self._leave_chip_station()
        self._jam("reject", self.card.position)
        self._move()
        self._place(CardPosition.REJECT_BIN)
        self.reject_bin.append(self.card)
        self.card = None
        self.counters["rejected"] += 1
        return p.encode_reply("OK")

    def _cmd_Dem(self, c: p.Command) -> bytes:
        if not self.embosser_fitted:
            raise _Refused(p.ErrorCode.COMMAND)
        self._check_motion()
        if self.card is None or self.card.position is CardPosition.OUTPUT_SLOT:
            raise _Refused(p.ErrorCode.NO_CARD)
        try:
            font, h, v = (int(x) for x in c.params[:3])
            text = c.params[3]
        except (ValueError, IndexError):
            raise _Refused(p.ErrorCode.PARAMETER) from None
        self._leave_chip_station()
        self._move()
        self._place(CardPosition.PRINT_HEAD)
        self._jam("emboss", CardPosition.PRINT_HEAD)
        self.card.embossed.append((font, h, v, text))
        self.counters["embossed"] += 1
        self._write_face(self.card)
        return p.encode_reply("OK")

    def _present(self) -> None:
        """The card is in the output slot: the simulated citizen takes it, or not."""
        if self._fires("card_not_taken") or self.take_delay_s is None:
            return
        if self.take_delay_s == 0:
            self.take_card()
            return
        timer = threading.Timer(self.take_delay_s, self.take_card)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    # ------------------------------------------------------------------ what was printed

    def _compose(self, panels: dict[str, tuple[int, bytes]]) -> Image.Image:
        """The printed face from the panels (subtractive YMC, then resin black on top)."""
        rgb = np.full((p.CARD_HEIGHT_DOTS, p.CARD_WIDTH_DOTS, 3), 255, dtype=np.int32)
        for panel, channel in (("c", 0), ("m", 1), ("y", 2)):
            if panel in panels:
                levels, data = panels[panel]
                ink = p.unpack_panel(data, levels).astype(np.int32)
                rgb[:, :, channel] = 255 - ink * 255 // (levels - 1)
        if "k" in panels:
            black = p.unpack_panel(panels["k"][1], 2).astype(bool)
            rgb[black] = 0
        face = Image.fromarray(rgb.astype(np.uint8), "RGB")
        return face.rotate(180) if self.card_orientation_deg == 180 else face

    def _write_face(self, card: SimulatedCard) -> None:
        if card.face is None and not card.embossed:
            return
        image = (
            card.face.copy()
            if card.face is not None
            else Image.new("RGB", (p.CARD_WIDTH_DOTS, p.CARD_HEIGHT_DOTS), "white")
        )
        if card.embossed:
            self._draw_emboss(image, card.embossed)
        if self.output_dir is None:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        path = self.output_dir / f"{card.number}.png"
        image.save(path, format="PNG", compress_level=1)
        self.faces[card.number] = path

    def _draw_emboss(self, image: Image.Image, lines: list[tuple[int, int, int, str]]) -> None:
        """Raised characters: mils from the left edge (first character's centre) and from the
        bottom edge (midpoint); 7 CPI for font 1 (numbers), 10 CPI otherwise (D2, D5)."""
        draw = ImageDraw.Draw(image)
        dots_per_mil = 300 / 1000
        for font, h, v, text in lines:
            pitch = 300 / (7 if font == 1 else 10)
            size = round(pitch * 1.25)
            if self._emboss_font is None or getattr(self._emboss_font, "size", None) != size:
                try:
                    self._emboss_font = ImageFont.truetype(EMBOSS_FONT, size)
                except OSError:
                    self._emboss_font = ImageFont.load_default()
            cy = p.CARD_HEIGHT_DOTS - v * dots_per_mil
            for i, ch in enumerate(text):
                cx = h * dots_per_mil + i * pitch
                # Highlight then body: reads as raised in the preview.
                draw.text((cx + 2, cy + 2), ch, font=self._emboss_font, fill=(255, 255, 255), anchor="mm")
                draw.text((cx, cy), ch, font=self._emboss_font, fill=(150, 120, 40), anchor="mm")


class _Refused(Exception):
    def __init__(self, code: p.ErrorCode) -> None:
        super().__init__(code.value)
        self.code = code


def _with_defaults(name: str, match: dict) -> list[tuple[str, object, object]]:
    defaults = {"jam": {"stage": "feed"}}.get(name, {})
    return [(k, v, defaults.get(k)) for k, v in match.items()]


__all__ = [
    "FAULTS",
    "JAM_STAGES",
    "CardPrinterSimulator",
    "ChipStation",
    "RecordingChipStation",
    "SimulatedCard",
]
