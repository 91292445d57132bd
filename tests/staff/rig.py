"""A staff rig: the real core objects on a temporary state database, with the card printer and
receipt printer simulators at the far end of real loopback links (their drivers in between), a
fake PSAM slot, and the composition root's report renderer and simulated staff hands. No pcscd:
these tests run without the machine lock."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kiosk.app import _add_staff_report_services, state_components
from kiosk.audit import AuditLog
from kiosk.config import load_config
from kiosk.devices import DeviceStatus
from kiosk.devices.smartcard import ChipAlgorithm, NoCardError, PsamIdentity
from kiosk.i18n import Translator
from kiosk.ledger import CardLedger, RejectReason
from kiosk.psam_registry import PsamRegistry
from kiosk.runtime import Services
from kiosk.staff import Role, StaffAccounts, StaffSession
from kiosk.staff_actions import LevelThresholds, StaffActionLog, StaffDesk
from kiosk.storage import open_state_db
from printer.cardface import CardFaceRenderer, FaceLayout
from printer.cardprinter.driver import EvolisCardPrinter
from printer.cardprinter.simulator import CardPrinterSimulator, RecordingChipStation
from printer.cardprinter.transport import TcpTransport
from printer.receipt.escpos_printer import EscPosReceiptPrinter, TcpLink
from printer.receipt.simulator import ReceiptPrinterSimulator

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
AUDIT_KEY = bytes(range(32))
PASSWORDS = {"1001": "111111", "1002": "222222", "2001": "999999"}
PSAM_CARD = PsamIdentity(
    "440100000107", "0123456789ABCDEF", "3B6C00FF", (ChipAlgorithm.SM4, ChipAlgorithm.TDES)
)


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class PsamSlot:
    """The PSAM slot as the core sees it (``services.psam``): the identity the card reports, or
    no card. The real PC/SC read is tested in tests/smartcard (needs pcscd)."""

    def __init__(self, card: PsamIdentity | None = PSAM_CARD) -> None:
        self.card = card

    def identity(self) -> PsamIdentity:
        if self.card is None:
            raise NoCardError("no PSAM in the slot")
        return self.card

    def status(self) -> DeviceStatus:
        return DeviceStatus.ready("psam")


@dataclass
class StaffRig:
    state_dir: Path
    clock: Any
    conn: Any
    ledger: CardLedger
    accounts: StaffAccounts
    audit: AuditLog
    staff_log: StaffActionLog
    psam_registry: PsamRegistry
    psam_slot: PsamSlot
    card_sim: CardPrinterSimulator
    cardprinter: EvolisCardPrinter
    receipt_sim: ReceiptPrinterSimulator
    receipt: EscPosReceiptPrinter
    services: Services
    desk: StaffDesk
    closers: list[Any] = field(default_factory=list)

    def session(self, staff_id: str) -> StaffSession:
        role = Role.SUPERVISOR if staff_id.startswith("2") else Role.STAFF
        return StaffSession(staff_id, role, self.clock())

    def spoil(self, reasons: list[RejectReason]) -> list[str]:
        """Cards fed from the hopper and rejected, on the printer and in the ledger, as a visit does."""
        out = []
        for n, reason in enumerate(reasons, start=1):
            fed = self.cardprinter.feed_to_chip_station()
            number = fed.card_number
            assert number is not None
            self.ledger.feed(number, visit_id=f"V-{n}")
            self.cardprinter.reject(reason.value)
            self.ledger.reject(number, reason, visit_id=f"V-{n}")
            out.append(number)
        return out

    def close(self) -> None:
        for closer in reversed(self.closers):
            with contextlib.suppress(Exception):
                closer()


def build_rig(tmp_path: Path, *, clock: Any = None, reject_bin_capacity: int = 20) -> StaffRig:
    """``clock``: a callable giving aware datetimes (default: a fake clock at 2026-11-23 09:00 Beijing)."""
    clock = clock or FakeClock(datetime(2026, 11, 23, 1, 0, tzinfo=UTC))  # 09:00 in Beijing
    state_dir = tmp_path / "state"
    conn = open_state_db(state_dir, state_components())
    ledger = CardLedger(conn, clock=clock)
    accounts = StaffAccounts(conn, failures_before_lockout=3, lockout_minutes=15, clock=clock)
    for staff_id, password in PASSWORDS.items():
        accounts.add(staff_id, Role.SUPERVISOR if staff_id.startswith("2") else Role.STAFF, password)
    audit = AuditLog(conn, AUDIT_KEY, clock=clock)
    staff_log = StaffActionLog(conn, clock=clock)
    registry = PsamRegistry(conn, clock=clock)
    slot = PsamSlot()

    card_sim = CardPrinterSimulator(
        [],
        chip_station=RecordingChipStation(),
        output_dir=tmp_path / "faces",
        reject_bin_capacity=reject_bin_capacity,
    ).start()
    cardprinter = EvolisCardPrinter(
        TcpTransport.from_address(card_sim.address),
        renderer=CardFaceRenderer(FaceLayout(), FONT),
        poll_interval_s=0.01,
    )
    cardprinter.open()
    receipt_sim = ReceiptPrinterSimulator().start()
    receipt = EscPosReceiptPrinter(TcpLink(*receipt_sim.address), poll_interval_s=0.02)

    config = load_config("demo", env={}, site_file=Path("/nonexistent"))
    config = replace(config, kiosk=replace(config.kiosk, state_dir=state_dir, kiosk_id="K-TEST-01"))
    services = Services()
    services.devices.update(
        ledger=ledger,
        staff_log=staff_log,
        audit=audit,
        psam_registry=registry,
        psam=slot,
        cardprinter=cardprinter,
        receipt=receipt,
    )
    # The composition root's renderer (receipt → PNG) and simulated hands on the printers.
    _add_staff_report_services(config, services, {"cardprinter": card_sim, "receipt": receipt_sim})
    translator = Translator(("zh_CN", "en"))
    desk = StaffDesk(
        services=services,
        kiosk_id="K-TEST-01",
        text=lambda key: translator.text(key, "zh_CN"),
        export_dir=state_dir / "reports",
        thresholds=LevelThresholds.from_config(config),
        accounts=accounts,
        clock=clock,
    )
    rig = StaffRig(
        state_dir,
        clock,
        conn,
        ledger,
        accounts,
        audit,
        staff_log,
        registry,
        slot,
        card_sim,
        cardprinter,
        receipt_sim,
        receipt,
        services,
        desk,
    )
    rig.closers += [card_sim.stop, receipt_sim.stop, cardprinter.close, receipt.close, conn.close]
    return rig
