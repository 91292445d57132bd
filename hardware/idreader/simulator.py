"""ID card reader simulator (身份证阅读器模拟器): a GA/T 467 SAM_V module on a pseudo-terminal.

:class:`IdReaderSimulator` owns the master side of a pty (``os.openpty``); the driver opens
:attr:`IdReaderSimulator.path` with pyserial exactly as it opens ``/dev/ttyUSB0``. It answers the
same command set byte for byte, paces its output at the configured baud rate (10 bits per byte,
8N1), adds a card/SAM processing delay, holds a deck of simulated identity cards and injects
faults on command. Every identity in the deck is fictitious.

Card timing: ``card_delay_s`` is added before each read (30 xx) reply (RF + SAM crypto time,
not published for real modules), ``sam_delay_s`` before every reply.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import select
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from hardware.idreader import protocol as p
from hardware.ptylink import PseudoTerminal
from kiosk.devices.idreader import BadChecksumError, CardType, FrameError

log = logging.getLogger(__name__)

SIM_PHOTO_MAGIC = b"SIMWLT\x01"


@dataclass(frozen=True)
class SimulatedCard:
    """One card of the simulator's deck (模拟证件), fictitious. ``photo_file`` names the face picture."""

    key: str
    text: p.CardText
    photo: bytes = field(repr=False)
    photo_file: str
    fingerprint: bytes | None = field(default=None, repr=False)
    new_address: str | None = None
    iin: bytes = b"\x00\x00\x00\x00"
    sn: bytes = b"\x00" * 8

    @property
    def text_block(self) -> bytes:
        return p.build_text_block(self.text)


def simulated_photo(key: str) -> bytes:
    """1024 bytes standing for the WLT photo of ``key``: deterministic, distinct per card."""
    out = bytearray(SIM_PHOTO_MAGIC + key.encode()[:32].ljust(32, b"\x00"))
    block = key.encode()
    while len(out) < p.PHOTO_LEN:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[: p.PHOTO_LEN])


def _ids(key: str) -> tuple[bytes, bytes]:
    digest = hashlib.sha256(b"card-serial:" + key.encode()).digest()
    return digest[:4], digest[4:12]


def _with_check(first17: str) -> str:
    return first17 + p.id_check_character(first17)


def _wrong_check(first17: str) -> str:
    right = p.id_check_character(first17)
    return first17 + ("0" if right != "0" else "1")


def _ymd(iso: str | None) -> str:
    return p.LONG_TERM if iso is None else iso.replace("-", "")


def _card(key: str, text: p.CardText, photo_file: str, **extra: Any) -> SimulatedCard:
    iin, sn = _ids(key)
    return SimulatedCard(key, text, simulated_photo(key), photo_file, iin=iin, sn=sn, **extra)


def people_cards(people_file: Path) -> list[SimulatedCard]:
    """Resident cards built from the shared demo people file (``config/demo-people.json``)."""
    people = json.loads(Path(people_file).read_text(encoding="utf-8"))["people"]
    cards = []
    for person in people:
        text = p.CardText(
            card_type=CardType.RESIDENT,
            name=person["name"],
            sex_code=p.SEX_TO_CODE[p.Sex(person["sex"])],
            ethnicity_code=p.ETHNICITY_CODES[person["ethnicity"]],
            birth=_ymd(person["birth_date"]),
            address=person["address"],
            id_number=person["id_number"],
            issuer=person["issuer"],
            valid_from=_ymd(person["valid_from"]),
            valid_until=_ymd(person["valid_until"]),
        )
        cards.append(_card(person["key"], text, person["photo"]))
    return cards


def extra_cards() -> list[SimulatedCard]:
    """Built-in cards for the other layouts and the awkward cases (all fictitious)."""
    resident = CardType.RESIDENT
    return [
        _card(
            "hk_macau_taiwan",
            p.CardText(
                CardType.HK_MACAU_TAIWAN, "陈大文", "1", "19880606", _with_check("81000019880606003"),
                valid_from="20200101", valid_until="20300101",
                address="示例市示例区港湾道1号", issuer="示例市公安局", permit_number="H12345678", issue_count="02",
            ),
            "obama.jpg",
        ),
        _card(
            "foreign_permanent_2017",
            p.CardText(
                CardType.FOREIGN_PERMANENT_2017, "史密斯", "1", "19700102", "USA110070010201",
                valid_from="20170301", valid_until="20270301", name_en="SMITH, JOHN PAUL",
                nationality="USA", issuer="1100",
            ),
            "biden.jpg",
        ),
        _card(
            "foreign_permanent_2023",
            p.CardText(
                CardType.FOREIGN_PERMANENT_2023, "蒙哥马利", "2", "19851111", _with_check("93682619851111002"),
                valid_from="20230601", valid_until="20330601",
                name_en="MONTGOMERY-WILLIAMSON, ALEXANDRA CATHERINE", nationality="GBR",
            ),
            "obama2.jpg",
        ),
        _card(
            "bad_check_digit",
            p.CardText(
                resident, "钱多多", "1", "19790303", _wrong_check("11010119790303001"), "20150303",
                "20350303", ethnicity_code="01", address="示例市示例区校验路3号", issuer="示例市公安局示例分局",
            ),
            "obama3.jpg",
        ),
        _card(
            "unknown_codes",
            p.CardText(
                resident, "吴未知", "5", "19820202", _with_check("11010119820202003"), "20120202", "20320202",
                ethnicity_code="77", address="示例市示例区编码街77号", issuer="示例市公安局示例分局",
            ),
            "biden2.jpg",
        ),
        _card(
            "rare_address",
            p.CardText(
                resident, "龑䶮", "2", "20000229", _with_check("11010120000229002"), "20180301", p.LONG_TERM,
                ethnicity_code="04", address="示例市𠀋𡈽𤋮路18号", issuer="示例市公安局示例分局",
            ),
            "obama.jpg",
        ),
        _card(
            "with_fingerprint",
            p.CardText(
                resident, "郑指纹", "1", "19930909", _with_check("11010119930909001"), "20130909", "20330909",
                ethnicity_code="11", address="示例市示例区指纹巷9号", issuer="示例市公安局示例分局",
            ),
            "biden.jpg",
            fingerprint=hashlib.sha256(b"fp").digest() * 32,
            new_address="示例市示例区新居路99号",
        ),
    ]  # fmt: skip


def load_deck(people_file: Path, *, extras: bool = True) -> dict[str, SimulatedCard]:
    """The simulator's deck by key: the demo people plus (``extras``) the built-in cards."""
    cards = people_cards(people_file) + (extra_cards() if extras else [])
    return {card.key: card for card in cards}


# --------------------------------------------------------------------------- faults

FAULTS: dict[str, str] = {
    "bad_checksum": "read",  # the reply's checksum byte is wrong
    "truncated_frame": "read",  # only the first ``keep`` bytes of the reply are sent
    "garbage_bytes": "any",  # ``length`` random bytes before the reply
    "silence": "any",  # no reply at all
    "card_removed_mid_read": "read",  # SW3 41; ``lift=True`` also takes the card away
    "sam_not_authorized": "any",  # SW3 66
    "self_test_failed": "any",  # SW3 60
    "card_bounce": "find",  # the card is placed and lifted: presence flips every ``every`` finds
    "status": "read",  # any SW3 given as ``sw3``
}


@dataclass
class _Fault:
    name: str
    remaining: int | None
    command: str
    params: dict[str, Any]


def _category(cmd: int, para: int) -> str:
    if cmd == 0x20:
        return "find" if para == 0x01 else "select"
    if cmd == 0x30:
        return "read"
    if cmd in (0x10, 0x11, 0x12):
        return "sam"
    return "other"


class IdReaderSimulator:
    """A GA/T 467 ID reader module at the far end of a pseudo-terminal.

    ``people_file`` is the shared demo people file; ``place(key)`` lays a card of the deck on the
    reader, ``lift()`` takes it away. Faults: :meth:`fault_names`, :meth:`inject`,
    :meth:`clear_faults`.
    """

    def __init__(
        self,
        people_file: Path,
        *,
        baud: int = 115200,
        card_delay_s: float = 0.05,
        sam_delay_s: float = 0.0,
        extras: bool = True,
        seed: int = 0,
    ) -> None:
        self.deck = load_deck(people_file, extras=extras)
        self.baud = baud
        self.card_delay_s = card_delay_s
        self.sam_delay_s = sam_delay_s
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._placed: str | None = None
        self._hidden = False  # card_bounce: the card is momentarily off the field
        self._finds_since_flip = 0
        self._selected = False
        self._faults: list[_Fault] = []
        self._pty: PseudoTerminal | None = None
        self._master: int | None = None
        self._path = ""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._line_free_at = 0.0
        self.commands: list[tuple[int, int]] = []  # every command received, for tests

    # ----------------------------------------------------------------- life cycle

    @property
    def path(self) -> str:
        """The slave side of the pty: what the driver opens as its serial port."""
        if not self._path:
            raise RuntimeError("simulator not started")
        return self._path

    def start(self) -> IdReaderSimulator:
        if self._thread is not None:
            return self
        self._pty = PseudoTerminal()
        self._master, self._path = self._pty.master, self._pty.path
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="idreader-simulator", daemon=True)
        self._thread.start()
        log.info("idreader.simulator_started", extra={"path": self._path})
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._pty is not None:
            self._pty.close()
            self._pty = None
        self._master = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- cards

    def place(self, key: str) -> None:
        """Lays the card ``key`` (from ``deck``) on the reader (放置证件)."""
        if key not in self.deck:
            raise KeyError(f"no card {key!r} in the simulator's deck")
        with self._lock:
            self._placed = key
            self._hidden = False
            self._selected = False

    def lift(self) -> None:
        """Takes the card off the reader (取走证件)."""
        with self._lock:
            self._placed = None
            self._selected = False

    def card_keys(self) -> list[str]:
        """Keys of the deck, demo people first (``place(key)`` takes one)."""
        return list(self.deck)

    @property
    def placed(self) -> str | None:
        return self._placed

    def _present(self) -> SimulatedCard | None:
        if self._placed is None or self._hidden:
            return None
        return self.deck[self._placed]

    # ----------------------------------------------------------------- faults

    def fault_names(self) -> list[str]:
        return list(FAULTS)

    def inject(self, name: str, count: int | None = None, **params: Any) -> None:
        """Injects fault ``name`` for the next ``count`` matching replies (``None``: until cleared).

        ``command`` (``find``/``select``/``read``/``sam``/``any``) chooses the replies affected.
        Parameters: ``keep`` (truncated_frame), ``length`` (garbage_bytes), ``lift``
        (card_removed_mid_read), ``every`` (card_bounce, finds per flip; ``count`` = flips),
        ``sw3`` (status).
        """
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        if name == "status" and "sw3" not in params:
            raise ValueError("fault 'status' needs sw3=<byte>")
        command = str(params.pop("command", FAULTS[name]))
        if command not in ("find", "select", "read", "sam", "other", "any"):
            raise ValueError(f"unknown command class {command!r}")
        remaining = count
        with self._lock:
            self._faults.append(_Fault(name, remaining, command, params))
            if name == "card_bounce":
                self._finds_since_flip = 0
        log.info("idreader.simulator_fault", extra={"fault": name})

    def active_faults(self) -> list[str]:
        """Names of the faults still armed (a fault with a count disarms itself when used up)."""
        with self._lock:
            return [fault.name for fault in self._faults]

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._hidden = False

    def _take_fault(self, category: str, names: tuple[str, ...]) -> _Fault | None:
        for fault in self._faults:
            if fault.name in names and fault.command in (category, "any"):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    # ----------------------------------------------------------------- serving

    def _serve(self) -> None:
        buffer = bytearray()
        assert self._master is not None
        master = self._master
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([master], [], [], 0.05)
                if not ready:
                    continue
                chunk = os.read(master, 4096)
            except OSError:
                # EIO while no one holds the slave open; keep serving.
                time.sleep(0.01)
                continue
            received_at = time.monotonic()
            buffer += chunk
            while True:
                frame, _ = p.take_frame(buffer)
                if frame is None:
                    break
                # The command needed its own wire time to arrive.
                self._line_free_at = max(self._line_free_at, received_at + self._wire(len(frame)))
                self._handle(frame)

    def _wire(self, nbytes: int) -> float:
        return nbytes * 10 / self.baud

    def _handle(self, frame: bytes) -> None:
        try:
            command = p.parse_command(frame)
        except BadChecksumError:
            self._send(p.build_reply(p.Sw3.HOST_CHECKSUM_ERROR))
            return
        except FrameError:
            self._send(p.build_reply(p.Sw3.HOST_LENGTH_ERROR))
            return
        with self._lock:
            self.commands.append((command.cmd, command.para))
            if len(self.commands) > 100_000:  # a demo polls for days: keep the recent history only
                del self.commands[:50_000]
            category = _category(command.cmd, command.para)
            if category == "find":
                self._bounce()
            reply, delay, after = self._answer(command, category)
        if reply is None:
            return
        if self.sam_delay_s or delay:
            self._line_free_at = max(self._line_free_at, time.monotonic()) + self.sam_delay_s + delay
        self._send(reply)
        if after is not None:
            after()

    def _bounce(self) -> None:
        fault = next((f for f in self._faults if f.name == "card_bounce"), None)
        if fault is None or self._placed is None:
            return
        self._finds_since_flip += 1
        if self._finds_since_flip >= int(fault.params.get("every", 1)):
            self._finds_since_flip = 0
            self._hidden = not self._hidden
            self._selected = False
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                    self._hidden = False

    def _answer(self, command: p.HostCommand, category: str) -> tuple[bytes | None, float, Any]:
        """The reply frame (None: silence), the extra delay and an action after sending."""
        fault = self._take_fault(category, ("silence",))
        if fault is not None:
            return None, 0.0, None
        fault = self._take_fault(category, ("sam_not_authorized", "self_test_failed"))
        if fault is not None:
            sw3 = p.Sw3.SAM_NOT_AUTHORIZED if fault.name == "sam_not_authorized" else p.Sw3.SELF_TEST_FAILED
            return p.build_reply(sw3), 0.0, None
        delay = self.card_delay_s if category == "read" else 0.0
        fault = self._take_fault(category, ("status",))
        if fault is not None:
            return p.build_reply(int(fault.params["sw3"]), sw1=0x6F if category == "read" else 0), delay, None
        fault = self._take_fault(category, ("card_removed_mid_read",))
        if fault is not None:
            if fault.params.get("lift"):
                self._placed = None
                self._selected = False
            return p.build_reply(p.Sw3.READ_FAILED, sw1=0x6F), delay, None
        reply = self._reply_for(command)
        fault = self._take_fault(category, ("bad_checksum",))
        if fault is not None:
            reply = reply[:-1] + bytes([reply[-1] ^ 0x5A])
        fault = self._take_fault(category, ("truncated_frame",))
        if fault is not None:
            reply = reply[: int(fault.params.get("keep", len(reply) // 2))]
        fault = self._take_fault(category, ("garbage_bytes",))
        if fault is not None:
            garbage = bytes(self._rng.randrange(256) for _ in range(int(fault.params.get("length", 37))))
            # Include a false preamble with an absurd length, the worst kind of noise.
            reply = garbage + p.PREAMBLE + b"\xff\xff" + garbage[:5] + reply
        after = None
        if command.cmd == p.SET_BAUD_CMD and reply[9] == p.Sw3.SUCCESS:
            new_baud = {v: k for k, v in p.BAUD_CODES.items()}[command.para]

            def after() -> None:
                self.baud = new_baud

        return reply, delay, after

    def _reply_for(self, command: p.HostCommand) -> bytes:
        cmd, para = command.cmd, command.para
        card = self._present()
        if (cmd, para) == p.Command.FIND_CARD.value:
            return p.build_reply(p.Sw3.FIND_SUCCESS, card.iin) if card else p.build_reply(p.Sw3.FIND_FAILED)
        if (cmd, para) == p.Command.SELECT_CARD.value:
            if card is None:
                return p.build_reply(p.Sw3.SELECT_FAILED)
            self._selected = True
            return p.build_reply(p.Sw3.SUCCESS, card.sn)
        if cmd == 0x30 and para in (0x01, 0x03, 0x10):
            if card is None:
                return p.build_reply(p.Sw3.READ_FAILED, sw1=0x6F)
            if not self._selected:
                return p.build_reply(p.Sw3.CARD_NOT_FOUND)
            if para == 0x03:
                if card.new_address is None:
                    return p.build_reply(p.Sw3.NO_CONTENT)
                raw = card.new_address.encode("utf-16-le")
                return p.build_reply(p.Sw3.SUCCESS, raw + b" \x00" * ((70 - len(raw)) // 2))
            fingerprint = (card.fingerprint or b"") if para == 0x10 else None
            return p.build_reply(p.Sw3.SUCCESS, p.build_read_data(card.text_block, card.photo, fingerprint))
        if (cmd, para) == p.Command.RESET_SAM.value:
            self._selected = False
            return p.build_reply(p.Sw3.SUCCESS)
        if (cmd, para) == p.Command.SAM_STATUS.value:
            return p.build_reply(p.Sw3.SUCCESS)
        if (cmd, para) == p.Command.SAM_ID.value:
            data = bytes([0x05, 0x00, 0x01, 0x00]) + (20080808).to_bytes(4, "little")
            data += (123456).to_bytes(4, "little") + (654321).to_bytes(4, "little")
            return p.build_reply(p.Sw3.SUCCESS, data)
        if cmd == p.SET_BAUD_CMD:
            if para in p.BAUD_CODES.values():
                return p.build_reply(p.Sw3.SUCCESS)
            return p.build_reply(p.Sw3.COMMAND_ERROR)
        if (cmd, para) == p.Command.SET_MAX_RF_BYTES.value and len(command.data) == 1:
            return p.build_reply(p.Sw3.SUCCESS)
        return p.build_reply(p.Sw3.COMMAND_ERROR)

    def _send(self, data: bytes) -> None:
        """Writes ``data`` paced at the baud rate: each chunk leaves when its last byte is on the wire."""
        master = self._master
        if master is None:
            return
        per_byte = 10 / self.baud
        chunk = max(8, int(0.002 / per_byte))  # about 2 ms of line time per write
        start = max(time.monotonic(), self._line_free_at)
        sent = 0
        while sent < len(data) and not self._stop.is_set():
            end = min(sent + chunk, len(data))
            due = start + end * per_byte
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            piece = data[sent:end]
            while piece and not self._stop.is_set():
                _, writable, _ = select.select([], [master], [], 0.05)
                if not writable:
                    continue
                try:
                    n = os.write(master, piece)
                except OSError:
                    return
                piece = piece[n:]
            sent = end
        self._line_free_at = start + len(data) * per_byte
