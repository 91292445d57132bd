"""What the engineer pages are shown with in the UI tests and the page screenshots: every device
(fakes), simulators' fault surfaces with their real fault names, a real outbox with a quarantined
message, an audit log, a log file, and a camera pipeline playing a test photo."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from kiosk.audit import AUDIT_SCHEMA, AuditLog
from kiosk.devices.camera import FaceBox
from kiosk.faults import FaultPanel
from kiosk.ledger import LEDGER_SCHEMA, CardLedger
from kiosk.storage import open_state_db
from offline.outbox import OUTBOX_COMPONENT, OUTBOX_SCHEMA, MessageKind, Outbox, Quarantine
from offline.sealing import Sealer
from tests.engineer.fakes import FakeSimulator, full_services

FACES = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "faces"


class PhotoPipeline:
    """A face pipeline stand-in: a test photo as the live frame, a face box on it."""

    def __init__(self) -> None:
        self.started = self.stopped = False
        self.index = 0
        try:
            from PIL import Image

            self.rgb = np.asarray(Image.open(FACES / "obama2.jpg").convert("RGB").resize((480, 360)))
        except OSError:
            self.rgb = np.full((360, 480, 3), 200, np.uint8)
        self.box = FaceBox(80, 300, 260, 170)

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def preview(self) -> Any:
        self.index += 1
        return SimpleNamespace(frame_index=self.index, rgb=self.rgb, face=self.box, analysed_index=self.index,
                               hint_key="", liveness=None)


def simulators() -> dict[str, Any]:
    """Fault surfaces with the names the real simulators offer."""
    from camera.capture import SimulatedCamera
    from hardware.idreader.simulator import FAULTS as IDREADER
    from hardware.pinpad.simulator import FAULTS as PINPAD
    from kiosk.backend.simulator.server import Fault
    from printer.cardprinter.simulator import FAULTS as CARDPRINTER
    from printer.receipt.simulator import FAULTS as RECEIPT

    return {
        "idreader": FakeSimulator(list(IDREADER)),
        "cardprinter": FakeSimulator(list(CARDPRINTER)),
        "receipt": FakeSimulator(list(RECEIPT)),
        "pinpad": FakeSimulator(list(PINPAD)),
        "camera": FakeSimulator(list(SimulatedCamera.FAULTS)),
        "backend": FakeSimulator(list(Fault.ALL)),
    }


def quarantined_outbox(conn: sqlite3.Connection, clock: Any = None) -> Outbox:
    """An outbox with two messages waiting and one quarantined (refused by the back end)."""
    outbox = Outbox(conn, Sealer({"k1": bytes(16)}, "k1"), **({"clock": clock} if clock else {}))
    first = outbox.enqueue("V20260301-a.result", MessageKind.RESULT_REPORT, b"{}", visit_id="V20260301-a")
    outbox.enqueue("V20260301-a.activation", MessageKind.ACTIVATION, b"{}", visit_id="V20260301-a")
    outbox.enqueue("V20260301-b.ledger", MessageKind.LEDGER_MOVEMENT, b"{}", visit_id="V20260301-b")
    outbox.claim([first], timedelta(minutes=5))
    outbox.settle([Quarantine(first, "refused card_number_unknown: the card number is not allocated")])
    return outbox


def engineer_services(state_dir: Path) -> tuple[dict[str, Any], sqlite3.Connection]:
    conn = open_state_db(state_dir, {"audit": AUDIT_SCHEMA, OUTBOX_COMPONENT: OUTBOX_SCHEMA, "ledger": LEDGER_SCHEMA})
    services = full_services()
    ledger = CardLedger(conn)
    ledger.register_cards([f"A{n:08d}" for n in range(1, 11)], operator="setup")
    services.update({
        "face": PhotoPipeline(),
        "faults": FaultPanel.from_simulators(simulators()),
        "audit": AuditLog(conn, b"k" * 32),
        "outbox": quarantined_outbox(conn),
        "ledger": ledger,
    })
    return services, conn


def seed_log(log_dir: Path) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(40):
        level = ("INFO", "WARNING", "ERROR", "DEBUG")[i % 4]
        lines.append(f"2026-03-01 09:{i:02d}:00,000 {level} kiosk.visit visit V2026030109{i:02d}-abcd step=read_id "
                     f"event=done id=110101195503120048 took_ms={100 + i}")
    (log_dir / "kiosk.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
