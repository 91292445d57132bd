"""Card printer driver (制卡机驱动): the sequence the visit flow calls, step by step, resumable.

Implements :class:`kiosk.devices.cardprinter.CardPrinter` over any
:class:`~printer.cardprinter.transport.Transport`. Each step first reads where the card is, so
a step repeated after a crash either continues (a card already at the chip station is reused,
a card already in the output slot is waited for) or refuses with a typed error that names the
card's position. Unlike the peer kiosk (research/peer-sscard-system.md §2.1, §3), it checks the
hopper, ribbon, reject bin and cover *before* taking a card, never pushes an abandoned card out
to the street (a failed or abandoned card goes to the reject bin), watches the output slot and
retracts a card not taken, and reads the position back after every fault.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

from kiosk.devices import Audience, DeviceState, DeviceStatus
from kiosk.devices.cardprinter import (
    CardFace,
    CardInPrinter,
    CardJam,
    CardNotTaken,
    CardPosition,
    CardPrinterError,
    CardPrinterOffline,
    CardPrinterProtocolError,
    CardStuckAtChipStation,
    CoverOpen,
    EjectOutcome,
    EjectResult,
    EmbosserNotFitted,
    FedCard,
    HopperEmpty,
    NoCardInPrinter,
    PrinterCounters,
    RecoveryResult,
    RejectBinFull,
    RejectResult,
    RibbonOut,
)
from printer.cardface import CardFaceRenderer
from printer.cardprinter import protocol as p
from printer.cardprinter.transport import LinkError, Transport

log = logging.getLogger(__name__)

DEVICE = "cardprinter"
_POSITIONS = {
    p.PositionWord.NO_CARD: CardPosition.NONE,
    p.PositionWord.SMART_CARD: CardPosition.CHIP_STATION,
    p.PositionWord.CARD: CardPosition.PRINT_HEAD,
    p.PositionWord.BEZEL: CardPosition.OUTPUT_SLOT,
}
_ERRORS: dict[p.ErrorCode, type[CardPrinterError]] = {
    p.ErrorCode.COVER: CoverOpen,
    p.ErrorCode.FEEDER: HopperEmpty,
    p.ErrorCode.RIBBON: RibbonOut,
    p.ErrorCode.REJECT_BOX: RejectBinFull,
    p.ErrorCode.NO_CARD: NoCardInPrinter,
}


@dataclass(frozen=True)
class EmbossLayout:
    """Where the embosser presses, in mm (ISO/IEC 7811 areas; sent in mils, D2): horizontal from
    the left edge to the first character's centre, vertical from the bottom edge to the line's
    midpoint. Font 1 = 7 CPI numeric (card number), font 2 = 10 CPI alphanumeric (name).

    The defaults keep the raised band below the printed text lines of the default face layout
    (ISO 7811-1 puts the number line 21.42 mm up, where our printed lines are): move both
    together for another card stock."""

    number_h_mm: float = 10.2
    number_v_mm: float = 8.0
    number_font: int = 1
    name_h_mm: float = 10.2
    name_v_mm: float = 3.5
    name_font: int = 2


def _mils(mm: float) -> int:
    return round(mm / 0.0254)


class EvolisCardPrinter:
    """An Evolis-style kiosk card printer (KC200B/KM500B class) with a contact chip station."""

    def __init__(
        self,
        transport: Transport,
        *,
        renderer: CardFaceRenderer,
        colour_levels: int = 32,
        embosser_fitted: bool = False,
        emboss_name: bool = False,
        emboss_layout: EmbossLayout = EmbossLayout(),
        take_card_timeout_s: float = 30.0,
        poll_interval_s: float = 0.2,
        reply_timeout_s: float = 5.0,
        motion_timeout_s: float = 60.0,
        hopper_near_empty: int = 10,
        ribbon_low_percent: int = 10,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if colour_levels not in p.PANEL_BITS or colour_levels == 2:
            raise ValueError("colour_levels must be 32, 64 or 128")
        self._link = transport
        self._renderer = renderer
        self.colour_levels = colour_levels
        self.embosser_fitted = embosser_fitted
        self.emboss_name = emboss_name
        self.emboss_layout = emboss_layout
        self.take_card_timeout_s = take_card_timeout_s
        self.poll_interval_s = poll_interval_s
        self.reply_timeout_s = reply_timeout_s
        self.motion_timeout_s = motion_timeout_s
        self.hopper_near_empty = hopper_near_empty
        self.ribbon_low_percent = ribbon_low_percent
        self._clock, self._sleep = clock, sleep
        self._lock = threading.RLock()
        self._presenting = False
        self._ready = False
        self.identity: dict[str, str] = {}

    # ------------------------------------------------------------------ link

    def open(self) -> None:
        """Connects and sets the printer up. Raises :class:`CardPrinterOffline` if unreachable;
        the driver then keeps trying on each later call (``status()`` shows OFFLINE meanwhile)."""
        with self._lock:
            self._ready = False
            self._ensure_ready()

    def _ensure_ready(self) -> None:
        """Opens the link and sends the set-up commands, once per connection: after a link
        failure the next call reconnects and sets up again (a power-cycled printer forgets)."""
        if self._ready:
            return
        try:
            self._link.open()
        except LinkError as exc:
            raise CardPrinterOffline(str(exc), retryable=True) from exc
        self._ready = True  # set first: the set-up commands below go through _ask
        try:
            for raw in p.setup_commands():
                self._expect_ok(raw, "setup")
            for key, name in (("model", "Rtp"), ("serial", "Rsn"), ("firmware", "Rfv")):
                self.identity[key] = self._ask(p.encode(name)).text
        except CardPrinterError:
            self._ready = False
            raise
        log.info(
            "cardprinter.opened model=%s serial=%s",
            self.identity.get("model"),
            self.identity.get("serial"),
        )

    def close(self) -> None:
        with self._lock:
            self._ready = False
            self._link.close()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ask(self, raw: bytes, timeout_s: float | None = None) -> p.Reply:
        """Sends one command and returns its reply (an ``ERR`` reply is returned, not raised).

        A link failure closes the link: a late reply must never be read as the answer to the
        next command. The next command reconnects and sets the printer up again."""
        self._ensure_ready()
        try:
            self._link.send(raw)
            data = self._link.read_reply(timeout_s or self.reply_timeout_s)
        except LinkError as exc:
            self._link.close()
            self._ready = False
            raise CardPrinterOffline(str(exc), retryable=True) from exc
        try:
            return p.parse_reply(data)
        except p.ProtocolError as exc:
            raise CardPrinterProtocolError(str(exc)) from exc

    def _expect_ok(
        self, raw: bytes, stage: str, timeout_s: float | None = None, card_number: str | None = None
    ) -> p.Reply:
        reply = self._ask(raw, timeout_s)
        if reply.error is not None:
            raise self._error_for(reply.error, stage, card_number)
        return reply

    def _error_for(self, code: p.ErrorCode, stage: str, card_number: str | None) -> CardPrinterError:
        """The typed error for an ``ERR`` reply, with the card's position read back."""
        position = self._position_or_none()
        number = card_number or (self._read_card_number() if position.inside_printer else None)
        message = f"stage={stage} err={code.value} position={position.value}"
        log.warning("cardprinter.error stage=%s code=%s position=%s", stage, code.value, position.value)
        if code is p.ErrorCode.MECHANICAL:
            cls: type[CardPrinterError] = (
                CardStuckAtChipStation if position is CardPosition.CHIP_STATION else CardJam
            )
            return cls(message, position=position, card_number=number)
        if code in _ERRORS:
            return _ERRORS[code](message, position=position, card_number=number)
        return CardPrinterError(
            message,
            position=position,
            card_number=number,
            code="cardprinter.refused",
            audience=Audience.ENGINEER,
        )

    def _position_or_none(self) -> CardPosition:
        try:
            return self.where_is_card()
        except CardPrinterError:
            return CardPosition.NONE

    # ------------------------------------------------------------------ queries

    def where_is_card(self) -> CardPosition:
        with self._lock:
            reply = self._ask(p.encode("Rlr", "p"))
            if reply.error is not None:
                raise CardPrinterError(f"Rlr;p refused: {reply.text}", code="cardprinter.refused")
            try:
                return _POSITIONS[p.parse_position(reply)]
            except p.ProtocolError as exc:
                raise CardPrinterProtocolError(str(exc)) from exc

    def _read_card_number(self) -> str | None:
        """The number on the card inside, when the printer can tell (``Rcn``, [ours])."""
        try:
            reply = self._ask(p.encode("Rcn"))
        except CardPrinterError:
            return None
        return reply.text if reply.ok else None

    def _flags(self) -> frozenset[p.Flag]:
        reply = self._ask(p.encode("Rst"))
        if reply.error is not None:
            raise CardPrinterError(f"Rst refused: {reply.text}", code="cardprinter.refused")
        return p.parse_flags(reply)

    def counters(self) -> PrinterCounters:
        with self._lock:
            reply = self._ask(p.encode("Rco"))
            fields = p.parse_fields(reply) if reply.ok else {}
            ribbon = self._ask(p.encode("Rri"))
            remaining = capacity = None
            if ribbon.ok:
                try:
                    _, remaining, capacity = p.parse_ribbon(ribbon)
                except p.ProtocolError as exc:
                    raise CardPrinterProtocolError(str(exc)) from exc
            return PrinterCounters(
                cards_fed=fields.get("fed", 0),
                cards_printed=fields.get("printed", 0),
                cards_ejected=fields.get("ejected", 0),
                cards_rejected=fields.get("rejected", 0),
                cards_embossed=fields.get("embossed", 0),
                ribbon_remaining=remaining,
                ribbon_capacity=capacity,
                hopper_count=fields.get("hopper"),
                reject_bin_count=fields.get("bin"),
                reject_bin_capacity=fields.get("bin_capacity"),
            )

    def status(self) -> DeviceStatus:
        """The status model mapped to staff-facing states (what blocks service comes first)."""
        with self._lock:
            try:
                flags = self._flags()
                position = self.where_is_card()
                counters = self.counters()
            except CardPrinterOffline as exc:
                return DeviceStatus(
                    DEVICE, DeviceState.OFFLINE, "cardprinter.offline", "cardprinter.offline", detail=str(exc)
                )
            except CardPrinterError as exc:
                return DeviceStatus(DEVICE, DeviceState.FAULT, exc.code, exc.message_key, detail=str(exc))
        levels: dict[str, int] = {}
        if counters.hopper_count is not None:
            levels["hopper"] = counters.hopper_count
        if counters.reject_bin_count is not None:
            levels["reject_bin"] = counters.reject_bin_count
        ribbon_percent = None
        if counters.ribbon_remaining is not None and counters.ribbon_capacity:
            ribbon_percent = counters.ribbon_remaining * 100 // counters.ribbon_capacity
            levels["ribbon_percent"] = ribbon_percent
        detail = f"position={position.value}"

        def state(s: DeviceState, code: str) -> DeviceStatus:
            return DeviceStatus(DEVICE, s, f"cardprinter.{code}", f"cardprinter.{code}", detail, levels)

        attention = DeviceState.ATTENTION
        if p.Flag.ERR_HEAD_TEMP in flags:
            return state(DeviceState.FAULT, "head_temperature")
        if p.Flag.ERR_MECHANICAL in flags:
            return state(
                attention, "stuck_at_chip_station" if position is CardPosition.CHIP_STATION else "jam"
            )
        if p.Flag.WAR_COVER_OPEN in flags:
            return state(attention, "cover_open")
        if p.Flag.WAR_REJECT_BOX_FULL in flags:
            return state(attention, "reject_bin_full")
        if p.Flag.WAR_FEEDER_EMPTY in flags:
            return state(attention, "hopper_empty")
        if p.Flag.WAR_RIBBON_ENDED in flags or p.Flag.WAR_NO_RIBBON in flags:
            return state(attention, "ribbon_out")
        if position is CardPosition.OUTPUT_SLOT and not self._presenting:
            return state(attention, "card_not_taken")
        if position is not CardPosition.NONE:
            return state(DeviceState.BUSY, "busy")
        if p.Flag.INF_RIBBON_LOW in flags or (
            ribbon_percent is not None and ribbon_percent <= self.ribbon_low_percent
        ):
            return state(DeviceState.READY, "ribbon_low")
        if p.Flag.INF_FEEDER_NEAR_EMPTY in flags or (
            counters.hopper_count is not None and counters.hopper_count <= self.hopper_near_empty
        ):
            return state(DeviceState.READY, "hopper_near_empty")
        return DeviceStatus(DEVICE, DeviceState.READY, "ok", "device.ready", detail, levels)

    # ------------------------------------------------------------------ the sequence

    def _clear_mechanical(self, stage: str) -> None:
        """After a jam the printer refuses motion until reset (``Srs``); a jam that a reset
        cannot clear needs staff, and the card stays where it is."""
        reply = self._ask(p.encode("Srs"))
        if reply.error is not None:
            raise self._error_for(reply.error, stage, None)
        log.info("cardprinter.reset stage=%s", stage)

    def feed_to_chip_station(self) -> FedCard:
        with self._lock:
            position = self.where_is_card()
            if position is CardPosition.CHIP_STATION:
                number = self._read_card_number()
                log.info("cardprinter.feed_resumed")
                return FedCard(CardPosition.CHIP_STATION, number, resumed=True)
            if position is not CardPosition.NONE:
                raise CardInPrinter(
                    f"card at {position.value}", position=position, card_number=self._read_card_number()
                )
            # Pre-flight: never take a card that could not be printed or disposed of.
            flags = self._flags()
            if p.Flag.WAR_COVER_OPEN in flags:
                raise CoverOpen("cover open before feed")
            if p.Flag.WAR_FEEDER_EMPTY in flags:
                raise HopperEmpty("hopper empty")
            if p.Flag.WAR_RIBBON_ENDED in flags or p.Flag.WAR_NO_RIBBON in flags:
                raise RibbonOut("ribbon out before feed")
            if p.Flag.WAR_REJECT_BOX_FULL in flags:
                raise RejectBinFull("reject bin full before feed")
            if p.Flag.ERR_MECHANICAL in flags:
                self._clear_mechanical("feed")
            self._expect_ok(p.feed_to_chip_station(), "feed", self.motion_timeout_s)
            number = self._read_card_number()
            log.info("cardprinter.fed")
            return FedCard(CardPosition.CHIP_STATION, number)

    def accept_card_from_front(self) -> FedCard | None:
        """手动进卡: the holder's own card, pushed into the front slot, drawn in to the chip station
        (``Pcim;M`` + ``Sis``; input is set back to the feeder afterwards). Returns None while no
        card has been pushed in: the caller polls, its prompt's countdown bounds the wait. A card
        already at the chip station is returned with ``resumed=True``."""
        with self._lock:
            position = self.where_is_card()
            if position is CardPosition.CHIP_STATION:
                return FedCard(CardPosition.CHIP_STATION, self._read_card_number(), resumed=True)
            if position not in (CardPosition.NONE, CardPosition.OUTPUT_SLOT):
                raise CardInPrinter(
                    f"card at {position.value}", position=position, card_number=self._read_card_number()
                )
            select, take_in = p.take_in_from_front()
            try:
                self._expect_ok(select, "front")
                reply = self._ask(take_in, self.motion_timeout_s)
            finally:
                self._expect_ok(p.input_from_feeder(), "front")
            if reply.error is p.ErrorCode.FEEDER:
                return None  # nothing at the front slot yet
            if reply.error is not None:
                raise self._error_for(reply.error, "front", None)
            log.info("cardprinter.card_taken_in_from_front")
            return FedCard(CardPosition.CHIP_STATION, self._read_card_number())

    def reseat_at_chip_station(self) -> None:
        """Moves the card out to the print position and back under the contacts (重新定位), for
        a chip that did not power up: the peer kiosk retries this way (peer-sscard-system.md §1.6)."""
        with self._lock:
            position, number = self._card_inside("reseat")
            if position is CardPosition.CHIP_STATION:
                self._expect_ok(p.encode("Si"), "reseat", self.motion_timeout_s, card_number=number)
            self._expect_ok(p.feed_to_chip_station(), "reseat", self.motion_timeout_s, card_number=number)
            log.info("cardprinter.reseated")

    def _card_inside(self, stage: str) -> tuple[CardPosition, str | None]:
        position = self.where_is_card()
        if position not in (CardPosition.CHIP_STATION, CardPosition.PRINT_HEAD):
            raise NoCardInPrinter(f"{stage}: no card inside (at {position.value})", position=position)
        return position, self._read_card_number()

    def print_face(self, face: CardFace) -> None:
        rendered = self._renderer.render(face)  # outside the lock: rendering needs no printer
        panels = rendered.panels(self.colour_levels)
        with self._lock:
            _, number = self._card_inside("print")
            commands = p.print_job(panels)
            for raw in commands[:-1]:
                self._expect_ok(raw, "print", card_number=number)
            self._expect_ok(commands[-1], "print", self.motion_timeout_s, card_number=number)
            log.info("cardprinter.printed panels=%d", len(panels))

    def emboss(self, card_number: str, name_latin: str | None = None) -> None:
        if not self.embosser_fitted:
            raise EmbosserNotFitted("no embosser fitted")
        lay = self.emboss_layout
        lines = [p.emboss_line(lay.number_font, _mils(lay.number_h_mm), _mils(lay.number_v_mm), card_number)]
        if self.emboss_name and name_latin:
            lines.append(
                p.emboss_line(lay.name_font, _mils(lay.name_h_mm), _mils(lay.name_v_mm), name_latin.upper())
            )
        with self._lock:
            _, number = self._card_inside("emboss")
            for raw in lines:
                self._expect_ok(raw, "emboss", self.motion_timeout_s, card_number=number)
            log.info("cardprinter.embossed lines=%d", len(lines))

    def eject_to_citizen(self, timeout_s: float | None = None) -> EjectResult:
        timeout = self.take_card_timeout_s if timeout_s is None else timeout_s
        with self._lock:
            position = self.where_is_card()
            number = self._read_card_number() if position is not CardPosition.NONE else None
            if position in (CardPosition.CHIP_STATION, CardPosition.PRINT_HEAD):
                for raw in p.eject_commands():
                    self._expect_ok(raw, "eject", self.motion_timeout_s, card_number=number)
            elif position is not CardPosition.OUTPUT_SLOT:  # resuming: already presented
                raise NoCardInPrinter("eject: no card inside", position=position)
            self._presenting = True
        log.info("cardprinter.presented timeout_s=%s", timeout)
        started = self._clock()
        try:
            while True:
                with self._lock:
                    position = self.where_is_card()
                if position is not CardPosition.OUTPUT_SLOT:
                    waited = self._clock() - started
                    log.info("cardprinter.card_taken waited_s=%.1f", waited)
                    return EjectResult(EjectOutcome.TAKEN, number, CardPosition.TAKEN, waited)
                if self._clock() - started >= timeout:
                    break
                self._sleep(self.poll_interval_s)
        finally:
            self._presenting = False
        waited = self._clock() - started
        log.warning("cardprinter.card_not_taken waited_s=%.1f", waited)
        try:
            self.reject("not_taken")
        except CardPrinterError as exc:
            raise CardNotTaken(
                f"card not taken and not retracted: {exc.code}", position=exc.position, card_number=number
            ) from exc
        return EjectResult(EjectOutcome.RETRACTED, number, CardPosition.REJECT_BIN, waited)

    def reject(self, reason: str) -> RejectResult:
        with self._lock:
            position = self.where_is_card()
            if position is CardPosition.NONE:
                raise NoCardInPrinter("reject: no card inside", position=position)
            number = self._read_card_number()
            if p.Flag.ERR_MECHANICAL in self._flags():
                self._clear_mechanical("reject")
            for raw in p.reject_commands():
                self._expect_ok(raw, "reject", self.motion_timeout_s, card_number=number)
            log.info("cardprinter.rejected reason=%s from=%s", reason, position.value)
            return RejectResult(number, reason)

    def recover(self, reason: str = "recovered_after_restart") -> RecoveryResult:
        with self._lock:
            position = self.where_is_card()
            if not position.inside_printer:
                return RecoveryResult(position, None, rejected=False)
            result = self.reject(reason)
            return RecoveryResult(position, result.card_number, rejected=True)


__all__ = ["DEVICE", "EmbossLayout", "EvolisCardPrinter"]
