"""The composition root (组装): the one place that builds drivers or simulators from
configuration and hands them to the core and the UI.

``build_kiosk(config)`` opens the state database, runs start-up recovery, builds the services
(real drivers, or simulators at the far end of real links where ``simulate = true``) and returns
a :class:`KioskCore`. ``run_ui(core)`` starts the Kivy shell.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from datetime import timedelta
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.config import KioskConfig
from kiosk.devices import DeviceError, DeviceState, DeviceStatus
from kiosk.flows import registered_flows
from kiosk.i18n import Translator
from kiosk.journal import JOURNAL_SCHEMA, Journal
from kiosk.ledger import LEDGER_SCHEMA, CardLedger
from kiosk.audit import AUDIT_SCHEMA, AuditLog, hmac_sm3
from kiosk.face_lock import FACE_LOCK_SCHEMA, FaceLock
from kiosk.psam_registry import PSAM_SCHEMA, PsamRegistry
from kiosk.staff_actions import STAFF_ACTIONS_SCHEMA, StaffActionLog
from offline.outbox import OUTBOX_COMPONENT, OUTBOX_SCHEMA, Outbox
from offline.sealing import Sealer, add_key, read_key_file
from offline.sync import Backoff, SyncWorker
from kiosk.logs import configure_logging
from kiosk.recovery import RecoveredVisit, recover
from kiosk.runtime import KioskCore, Services
from kiosk.sdnotify import notify
from kiosk.staff import STAFF_SCHEMA, StaffAccounts
from kiosk.storage import STATE_DB_NAME, connect, open_state_db

log = logging.getLogger(__name__)


def state_components() -> dict[str, tuple[str, ...]]:
    """Every component's migrations in the state database."""
    return {
        "journal": JOURNAL_SCHEMA,
        "staff": STAFF_SCHEMA,
        "ledger": LEDGER_SCHEMA,
        "audit": AUDIT_SCHEMA,
        OUTBOX_COMPONENT: OUTBOX_SCHEMA,
        "face_lock": FACE_LOCK_SCHEMA,
        "psam_registry": PSAM_SCHEMA,
        "staff_actions": STAFF_ACTIONS_SCHEMA,
    }


def open_state(config: KioskConfig) -> sqlite3.Connection:
    return open_state_db(config.resolve(config.kiosk.state_dir), state_components())


def setup_logging(config: KioskConfig, *, console: bool = True) -> None:
    log_file = None
    if config.logging.file:
        log_file = config.resolve(config.kiosk.log_dir) / config.logging.file
    configure_logging(config.logging.level, log_file, console=console)


@dataclass
class Kiosk:
    """Everything built for one run: the core, staff accounts, the simulators started (if any),
    and what to stop at the end."""

    core: KioskCore
    staff: StaffAccounts
    recovered: list[RecoveredVisit]
    simulators: dict[str, Any] = field(default_factory=dict)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        while self.closers:
            closer = self.closers.pop()
            try:
                closer()
            except Exception:
                log.exception("error while stopping")


def build_services(
    config: KioskConfig, stack: contextlib.ExitStack, conn: sqlite3.Connection
) -> tuple[Services, dict[str, Any]]:
    """Builds each configured device (a driver; for ``simulate = true`` also the simulator at the
    far end of the real link). A device that cannot be opened is still added when its driver can
    report itself OFFLINE, so the menus show why the kiosk is out of service."""
    services = Services()
    simulators: dict[str, Any] = {}
    services.devices["ledger"] = CardLedger(conn)
    services.devices["psam_registry"] = PsamRegistry(conn)
    services.devices["staff_log"] = StaffActionLog(conn)
    for builder in (
        _build_idreader, _build_smartcard, _build_cardprinter, _build_backend, _build_receipt, _build_pinpad,
        _build_camera,
    ):
        builder(config, stack, services, simulators)
    if "backend" in simulators and "pinpad" in simulators:
        # The simulated bank decrypts PIN blocks made under the simulated pad's demo key.
        from hardware.pinpad.simulator import DemoBankPinDecoder
        from kiosk.devices.pinpad import KeyAlgorithm

        simulators["backend"].state.pin_decoder = DemoBankPinDecoder(KeyAlgorithm(config.pinpad.pin_algorithm))
    _add_staff_report_services(config, services, simulators)
    if simulators:
        # The engineer menu's fault injection: the simulators' own faults, from the screen.
        from kiosk.faults import FaultPanel

        services.devices["faults"] = FaultPanel.from_simulators(simulators)
    return services, simulators


def _add_staff_report_services(config: KioskConfig, services: Services, simulators: dict[str, Any]) -> None:
    """The staff actions' report renderer (the receipt as PNG, for the exported reports) and, in the
    demo, the stand-in for the staff member's hands on the simulated printers."""
    from printer.receipt.escpos_printer import encode_layout
    from printer.receipt.render import render_to_png
    from printer.receipt.templates import columns_for, report_layout

    rc, font = config.receipt, config.resolve(config.kiosk.font_path)

    def render_report(report: Any, out: Path) -> Path:
        layout = report_layout(report, columns=columns_for(rc.paper_dots), language=rc.language)
        return render_to_png(encode_layout(layout, profile=rc.profile), out, font_path=font, paper_dots=rc.paper_dots)

    if font.exists():
        services.devices["report_renderer"] = render_report
    if "cardprinter" in simulators:
        services.devices["stock_hands"] = _SimulatedStockHands(simulators)


class _SimulatedStockHands:
    """SIMULATED: in the demo, does what the staff member's hands do on the simulated printers
    (cards into the hopper, spoiled cards out of the bin, a new ribbon, a new roll)."""

    simulated = True

    def __init__(self, simulators: dict[str, Any]) -> None:
        self._simulators = simulators

    def load_hopper(self, card_numbers: Any) -> None:
        self._simulators["cardprinter"].load_hopper(card_numbers)

    def empty_reject_bin(self) -> None:
        self._simulators["cardprinter"].empty_reject_bin()

    def change_ribbon(self) -> None:
        sim = self._simulators["cardprinter"]
        sim.ribbon_remaining = sim.ribbon_capacity

    def load_paper(self) -> None:
        if "receipt" in self._simulators:
            self._simulators["receipt"].load_paper()


def _build_idreader(config: KioskConfig, stack: contextlib.ExitStack, services: Services, simulators: dict[str, Any]) -> None:
    from hardware.idreader.photo import SimulatedPhotoDecoder, VendorWltDecoder
    from hardware.idreader.reader import IdCardReader

    sec = config.idreader
    port, photo_decoder = sec.port, None
    if sec.simulate:
        from hardware.idreader.simulator import IdReaderSimulator

        people = config.resolve(Path(sec.sim_people_file))
        sim = IdReaderSimulator(people, baud=sec.baud, card_delay_s=sec.sim_card_delay_s).start()
        stack.callback(sim.stop)
        if sec.sim_initial_card:
            sim.place(sec.sim_initial_card)
        simulators["idreader"] = sim
        port = sim.path
        photo_decoder = SimulatedPhotoDecoder(people, config.resolve(Path(sec.sim_faces_dir)))
    elif sec.photo_decoder_library:
        photo_decoder = VendorWltDecoder(sec.photo_decoder_library, sec.photo_decoder_symbol)
    reader = IdCardReader(
        port, sec.baud, find_timeout_s=sec.find_timeout_s, select_timeout_s=sec.select_timeout_s,
        read_timeout_s=sec.read_timeout_s, poll_interval_s=sec.poll_interval_s,
        retries=sec.retries, with_fingerprint=sec.read_fingerprint,
    )
    stack.callback(reader.close)  # registered after sim.stop, so it runs first
    reader.start()  # never raises: a missing port shows as OFFLINE and is retried
    services.devices["idreader"] = reader
    if photo_decoder is not None:
        services.devices["photo_decoder"] = photo_decoder


def _build_backend(config: KioskConfig, stack: contextlib.ExitStack, services: Services, simulators: dict[str, Any]) -> None:
    from kiosk.backend.outbox_sender import BackendOutboxSender
    from kiosk.backend.wiring import build_client, build_simulator, read_signing_key

    if config.backend.simulate:
        hsm = simulators.get("hsm")
        sim = build_simulator(config, hsm=hsm)
        sim.start()
        stack.callback(sim.close)
        simulators["backend"] = sim
        client = build_client(config, read_signing_key(sim.demo_kiosk_key(config.kiosk.kiosk_id)), base_url=sim.base_url)
    else:
        if config.backend.signing_key_file is None:
            log.error("backend.signing_key_file is not configured: the back end is not available")
            return
        client = build_client(config, read_signing_key(config.resolve(config.backend.signing_key_file)))
    stack.callback(client.close)
    services.devices["backend"] = client
    services.devices["outbox_sender"] = BackendOutboxSender(client)


def _build_receipt(config: KioskConfig, stack: contextlib.ExitStack, services: Services, simulators: dict[str, Any]) -> None:
    from printer.receipt.escpos_printer import EscPosReceiptPrinter, open_link

    rc = config.receipt
    if rc.simulate:
        from printer.receipt.simulator import ReceiptPrinterSimulator

        sim = ReceiptPrinterSimulator(
            paper_lines=rc.sim_paper_lines, near_end_lines=rc.sim_near_end_lines,
            link="tcp" if rc.transport == "tcp" else "pty",
        ).start()
        stack.callback(sim.stop)
        simulators["receipt"] = sim
        transport, address = ("tcp", sim.address_text) if rc.transport == "tcp" else ("serial", sim.device_path)
    else:
        transport, address = rc.transport, rc.address
    try:
        link = open_link(transport, address, baud=rc.baud)
    except DeviceError as exc:
        log.error("receipt printer cannot be opened: %s", exc.code)
        services.devices["receipt"] = UnavailableDevice("receipt", exc)
        return
    printer = EscPosReceiptPrinter(
        link, profile=rc.profile, paper_dots=rc.paper_dots,
        language=rc.language, status_timeout_s=rc.status_timeout_s, job_timeout_s=rc.job_timeout_s,
        poll_interval_s=rc.poll_interval_s,
    )
    stack.callback(printer.close)
    services.devices["receipt"] = printer


def _build_smartcard(config: KioskConfig, stack: contextlib.ExitStack, services: Services, simulators: dict[str, Any]) -> None:
    """The chip station and PSAM over PC/SC. Simulated: pcscd + vsmartcard-vpcd with a virtual
    PSAM in slot 1; the card printer simulator puts blank virtual cards into slot 0."""
    from hardware.smartcard.keys import HsmKeyBackend, PsamKeyBackend, SimulatedHsm
    from hardware.smartcard.sscard import ChipStation

    sc = config.smartcard
    if sc.simulate:
        from hardware.smartcard.pcscd import PcscDaemon
        from hardware.smartcard.virtual import SmartCardSimulator

        if sc.sim_start_pcscd:
            try:
                daemon = PcscDaemon().start()
            except Exception as exc:  # no pcscd here: the chip station reports itself offline
                log.error("pcscd cannot be started: %s", type(exc).__name__)
                return
            stack.callback(daemon.stop)
        sim = SmartCardSimulator().start()
        stack.callback(sim.stop)
        simulators["smartcard"] = sim
        # The simulated card-management HSM holds the same root keys as the virtual cards.
        simulators["hsm"] = SimulatedHsm()
        encoder, psam = sim.card_reader, sim.psam_reader
    else:
        encoder, psam = sc.encoder_reader, sc.psam_reader
    if sc.key_backend == "psam":
        keys: Any = PsamKeyBackend(psam, key_level=sc.psam_key_level, auto_level=sc.psam_auto_level)
        stack.callback(keys.close)
        services.devices["psam"] = keys
        if sc.simulate:
            _register_demo_psam(services, keys, simulators["smartcard"])
    else:
        keys = HsmKeyBackend(_BackendHsmTransport(services))
    services.devices["smartcard"] = ChipStation(encoder, keys, photo_chunk=sc.photo_chunk, card_wait_s=sc.card_wait_s)


def _register_demo_psam(services: Services, keys: Any, sim: Any) -> None:
    """SIMULATED: the simulated PSAM registered from what it reports, as staff do at installation
    (operator ``demo-setup``, like the demo's first restock), so the demo records each use of it.
    A kiosk with a real PSAM is registered by staff from the staff menu."""
    registry = services.devices["psam_registry"]
    if registry.active() is not None:
        return
    from hardware.smartcard.apdu import wait_for_card

    try:
        wait_for_card(sim.psam_reader, 5.0, atr=sim.psam.atr)  # pcscd sees the new reader first
        registry.register(keys.identity(), operator="demo-setup")
    except Exception as exc:  # the visits then log that their PSAM uses are not recorded
        log.warning("the simulated PSAM was not registered: %s", type(exc).__name__)


class _BackendHsmTransport:
    """Key work through the card-management HSM (satisfies ``kiosk.devices.smartcard.HsmTransport``)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def key_work(self, request: Any) -> bytes:
        from kiosk.backend.api import KeyWorkOperation

        result = self.services.backend.hsm_key_work(
            request.application_id, KeyWorkOperation(request.operation), request.key_name,
            request.diversifier, bytes(request.data),
        )
        return bytes(result.output)


def _demo_hopper(config: KioskConfig, ledger: CardLedger) -> list[str]:
    """The simulated hopper holds what the ledger says is in the hopper; an empty demo ledger is
    first restocked with numbered blank cards (as staff would, by operator 'demo-setup')."""
    from kiosk.ledger import Place

    cards = ledger.cards_in(Place.HOPPER)
    if not cards and not ledger.movements():
        cards = ledger.register_cards(
            [f"A{n:08d}" for n in range(1, config.cardprinter.hopper_capacity + 1)], operator="demo-setup"
        )
    return cards


def _build_cardprinter(config: KioskConfig, stack: contextlib.ExitStack, services: Services, simulators: dict[str, Any]) -> None:
    from printer.cardface import CardFaceRenderer, FaceLayout
    from printer.cardprinter.driver import EmbossLayout, EvolisCardPrinter
    from printer.cardprinter.transport import open_transport

    cp = config.cardprinter
    renderer = CardFaceRenderer(
        FaceLayout.from_config(cp.layout), config.kiosk.font_path,
        dpi=cp.dpi, rotation_deg=cp.face_rotation_deg, ribbon=cp.ribbon,
    )
    transport, address = cp.transport, cp.address
    if cp.simulate:
        from printer.cardprinter.simulator import CardPrinterSimulator, SlotChipStation

        chip = None
        smartcard_sim = simulators.get("smartcard")
        if smartcard_sim is not None:
            from hardware.smartcard.virtual import blank_card_for

            algorithm = config.smartcard.sim_algorithm
            chip = SlotChipStation(smartcard_sim.chip_station, card_for=lambda n: blank_card_for(n, algorithm))
        out = Path(cp.sim_output_dir) if cp.sim_output_dir else Path(config.kiosk.state_dir) / "cardprinter-sim"
        from kiosk.ledger import Place

        ledger = services.devices["ledger"]
        inside = ledger.cards_in(Place.PRINTER)
        sim = CardPrinterSimulator(
            _demo_hopper(config, ledger),
            # The simulated machine is as the ledger left it: spoiled cards in the bin, and a card
            # interrupted in the card path (a power cut) still there for recovery to find.
            reject_bin_cards=ledger.cards_in(Place.REJECT_BIN), card_inside=inside[0] if inside else None,
            chip_station=chip, output_dir=config.resolve(out),
            link="tcp" if cp.transport == "tcp" else "pty",
            reject_bin_capacity=cp.reject_bin_capacity, hopper_near_empty=cp.hopper_near_empty,
            embosser_fitted=cp.embosser_fitted, mechanics_s=cp.sim_mechanics_s,
            card_orientation_deg=cp.face_rotation_deg,
        ).start()
        stack.callback(sim.stop)
        simulators["cardprinter"] = sim
        transport = "tcp" if cp.transport == "tcp" else "serial"
        address = sim.address
    printer = EvolisCardPrinter(
        open_transport(transport, address, baud=cp.baud), renderer=renderer,
        colour_levels=cp.colour_levels, embosser_fitted=cp.embosser_fitted, emboss_name=cp.emboss_name,
        emboss_layout=EmbossLayout(
            cp.emboss_number_h_mm, cp.emboss_number_v_mm, 1, cp.emboss_name_h_mm, cp.emboss_name_v_mm, 2
        ),
        take_card_timeout_s=cp.take_card_timeout_s, poll_interval_s=cp.poll_interval_s,
        reply_timeout_s=cp.reply_timeout_s, motion_timeout_s=cp.motion_timeout_s,
        hopper_near_empty=cp.hopper_near_empty, ribbon_low_percent=cp.ribbon_low_percent,
    )
    stack.callback(printer.close)
    try:
        printer.open()
    except DeviceError as exc:
        # status() shows OFFLINE; later calls reconnect.
        log.warning("card printer offline at start: %s", exc.code)
    services.devices["cardprinter"] = printer


def _build_pinpad(config: KioskConfig, stack: contextlib.ExitStack, services: Services, simulators: dict[str, Any]) -> None:
    from hardware.pinpad.driver import EncryptedPinPad
    from kiosk.devices.pinpad import KeyAlgorithm

    sec = config.pinpad
    port = sec.port
    if sec.simulate:
        from hardware.pinpad.simulator import PinPadSimulator

        sim = PinPadSimulator().start()
        stack.callback(sim.stop)
        # Fictitious demo keys: a real pad has its keys loaded at installation (kiosk pinpad load-key).
        sim.install_demo_keys(sec.pin_key_master_index, sec.pin_key_index, KeyAlgorithm(sec.pin_algorithm))
        simulators["pinpad"] = sim
        port = sim.path
    pad = EncryptedPinPad(port, baud=sec.baud, command_set=sec.command_set, reply_timeout_s=sec.reply_timeout_s)
    try:
        pad.open()
    except DeviceError as exc:
        log.error("PIN pad cannot be opened: %s", exc.code)
        services.devices["pinpad"] = UnavailableDevice("pinpad", exc)
        return
    stack.callback(pad.close)
    services.devices["pinpad"] = pad


def _build_camera(config: KioskConfig, stack: contextlib.ExitStack, services: Services, simulators: dict[str, Any]) -> None:
    """The camera and the face pipeline. The pipeline's worker process (~2 s to load the models)
    is started by the face step and stopped after it."""
    from camera.capture import OpenCVCamera, SimulatedCamera
    from camera.cardphoto import CardPhotoSpec
    from camera.liveness import LivenessSettings
    from camera.pipeline import FacePipeline
    from camera.quality import QualityThresholds
    from camera.worker import WorkerConfig

    cam, face = config.camera, config.face
    if cam.simulate:
        source: Any = SimulatedCamera(
            [config.resolve(Path(p)) for p in cam.sim_source], fps=cam.sim_fps,
            noise_sigma=cam.sim_noise_sigma, ir=cam.sim_ir or None,
        )
        simulators["camera"] = source
    else:
        source = OpenCVCamera(
            cam.device, width=cam.width, height=cam.height, fps=cam.fps, buffer_size=cam.buffer_size,
            ir_device=cam.ir_device or None, fourcc=cam.fourcc,
        )
    worker = WorkerConfig(
        detect_width=face.detect_width, accept_distance=face.accept_distance, reject_distance=face.reject_distance,
        liveness=LivenessSettings(
            challenges=face.liveness_challenges, time_limit_s=face.liveness_time_limit_s,
            blink_ratio=face.blink_ratio, turn_deg=face.turn_deg, identity_distance=face.identity_distance,
        ),
        thresholds=QualityThresholds(min_face_width_ratio=face.min_face_width_ratio),
        card_spec=CardPhotoSpec(jpeg_quality=face.card_photo_quality, max_bytes=face.card_photo_max_kb * 1024),
        require_ir=bool(cam.ir_device) or cam.sim_ir != "",
    )
    services.devices["camera"] = source
    pipeline = FacePipeline(source, worker)
    stack.callback(pipeline.close)
    services.devices["face"] = pipeline
    if face.warm_worker:
        # The models load in the background once, not in front of each citizen.
        threading.Thread(target=_warm_face_worker, args=(pipeline,), name="face-warm-up", daemon=True).start()


def _warm_face_worker(pipeline: Any) -> None:
    try:
        pipeline.warm_up()
    except DeviceError as exc:
        log.warning("face worker warm-up failed code=%s", exc.code)


class UnavailableDevice:
    """Stands for a configured device that could not be opened: it reports itself OFFLINE (or
    its error's state) so the home screen is out of service and the menus say why."""

    def __init__(self, name: str, error: DeviceError) -> None:
        self.name = name
        self.error = error

    def status(self) -> DeviceStatus:
        return DeviceStatus(self.name, DeviceState.OFFLINE, self.error.code, self.error.message_key, str(self.error))


def site_key_file(config: KioskConfig) -> Path | None:
    """The kiosk's key file (``[outbox] key_file``): SM4 keys, newest first. The demo creates
    one in its state directory; a real site installs its own (mode 0600)."""
    state_dir = config.resolve(config.kiosk.state_dir)
    key_path = config.resolve(config.outbox.key_file) if config.outbox.key_file else state_dir / "outbox.key"
    if config.outbox.key_file is None and not key_path.exists():
        if not config.all_simulated:
            log.error("outbox.key_file is not configured: personal data cannot be kept")
            return None
        add_key(key_path, "demo1")  # demo only
    return key_path


def derived_key(key_path: Path, purpose: str) -> bytes:
    """A key for one purpose (face lock, audit MAC) derived from the newest site key, so one key
    file is all a site installs."""
    keys, order = read_key_file(key_path)
    return hmac_sm3(keys[order[0]], b"kiosk/" + purpose.encode("ascii"))


def start_outbox(
    config: KioskConfig, services: Services, stack: contextlib.ExitStack, journal: Journal, key_path: Path
) -> None:
    """The outbox shares the journal's connection and lock (a step and its message commit
    together); the sync worker has its own connection and thread."""
    state_dir = config.resolve(config.kiosk.state_dir)
    sealer = Sealer.from_key_file(key_path)
    services.devices["outbox"] = Outbox(journal.connection, sealer, lock=journal.lock)
    sender = services.devices.get("outbox_sender")
    if sender is None:
        return
    worker_conn = connect(state_dir / STATE_DB_NAME)
    worker = SyncWorker(
        Outbox(worker_conn, sealer),
        sender,
        backoff=Backoff(config.outbox.backoff_base_s, config.outbox.backoff_max_s),
        batch_size=config.outbox.batch_size,
        lease=timedelta(seconds=config.outbox.lease_s),
        poll_interval_s=config.outbox.poll_interval_s,
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), name="outbox-sync", daemon=True)
    thread.start()
    stack.callback(lambda: (stop.set(), thread.join(timeout=5), worker_conn.close()))
    services.devices["sync"] = worker


def build_kiosk(config: KioskConfig, *, console_log: bool = True) -> Kiosk:
    setup_logging(config, console=console_log)
    conn = open_state(config)
    journal = Journal(conn)
    translator = Translator(config.kiosk.languages)
    stack = contextlib.ExitStack()
    try:
        services, simulators = build_services(config, stack, conn)
        key_path = site_key_file(config)
        if key_path is not None:
            start_outbox(config, services, stack, journal, key_path)
            services.devices["face_lock"] = FaceLock(
                conn, derived_key(key_path, "face_lock"),
                failures_before_lock=config.face.failures_before_lock, lock_minutes=config.face.lock_minutes,
            )
            services.devices["audit"] = AuditLog(conn, derived_key(key_path, "audit"))
        flows = registered_flows()
        recovered = recover(journal, flows, services, config)
        sweep_printer(services, recovered)
        for visit in recovered:
            log.warning("recovered visit %s business=%s steps=%s", visit.visit_id, visit.business, visit.compensated_steps)
        staff = StaffAccounts(
            conn,
            failures_before_lockout=config.staff.failed_logins_before_lockout,
            lockout_minutes=config.staff.lockout_minutes,
        )
        core = KioskCore(config, translator, journal, services, flows)
        # The start-up self-check: every device configuration asks for must be there and ready.
        from kiosk.selftest import required_devices

        core.selfcheck.require(required_devices(config))
        core.selfcheck.save_path = config.resolve(config.kiosk.state_dir) / "selfcheck.json"
        core.selfcheck.run()
    except BaseException:
        stack.close()
        conn.close()
        raise
    kiosk = Kiosk(core, staff, recovered, simulators)
    kiosk.closers.append(conn.close)
    kiosk.closers.append(stack.close)
    return kiosk


def sweep_printer(services: Services, recovered: list[RecoveredVisit]) -> None:
    """After recovery, a card still in the printer that no visit accounts for (a crash between
    a feed and its journal entry) goes to the reject bin, and the ledger follows."""
    from kiosk.ledger import Place, RejectReason

    printer, ledger = services.devices.get("cardprinter"), services.devices.get("ledger")
    if printer is None or ledger is None or isinstance(printer, UnavailableDevice):
        return
    try:
        found = printer.recover("found_at_start")
    except DeviceError as exc:
        log.error("start-up printer sweep failed code=%s", exc.code)
        return
    for number in ledger.cards_in(Place.PRINTER):
        ledger.reject(number, RejectReason.RECOVERY, visit_id=None, detail="found_at_start")
        log.warning("start-up sweep: card %s rejected (found in the printer, position %s)", number, found.found_at.value)


def prepare_kivy_environment(config: KioskConfig, *, headless: bool) -> None:
    """Kivy reads its environment at import: set it before anything imports kivy."""
    state = config.resolve(config.kiosk.state_dir)
    os.environ.setdefault("KIVY_HOME", str(state / ".kivy"))
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    if headless and not os.environ.get("DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
    if headless or os.environ.get("SDL_VIDEODRIVER") == "offscreen" or os.environ.get("KIOSK_UNDER_XVFB"):
        use_software_renderer_on_ui_thread()


def use_software_renderer_on_ui_thread() -> None:
    """No GPU (offscreen, Xvfb): Mesa's llvmpipe draws on the UI thread itself (LP_NUM_THREADS=0).

    With its own rasterizer threads it was seen to hang the UI thread in a draw call for tens of
    seconds (a pthread wait inside swrast_dri) on this 2-core machine, and for good once; one
    thread is fast enough for a kiosk screen. A GPU driver ignores the variable.
    """
    os.environ.setdefault("LP_NUM_THREADS", "0")


def run_ui(
    kiosk: Kiosk,
    *,
    screenshot_dir: Path | None = None,
    on_first_frame: Callable[[], None] | None = None,
    exit_after_s: float | None = None,
    actions: list[tuple[float, Callable[[Any], None]]] | None = None,
) -> None:
    """Runs the Kivy app until it is closed (or ``exit_after_s`` seconds). ``actions`` are
    (delay, callable(ui)) pairs scheduled after start: the demo uses them to take screenshots of
    each mode."""
    from screens.boot import run_kiosk_ui

    run_kiosk_ui(
        kiosk.core, kiosk.staff,
        screenshot_dir=screenshot_dir, exit_after_s=exit_after_s, actions=actions,
        on_first_frame=lambda: _first_frame(on_first_frame),
        heartbeat=lambda: notify("WATCHDOG=1"),
        demo_pinpad_press=kiosk.simulators["pinpad"].press if "pinpad" in kiosk.simulators else None,
    )


def _first_frame(then: Callable[[], None] | None) -> None:
    notify("READY=1\nSTATUS=home screen shown")
    if then is not None:
        then()


@contextlib.contextmanager
def kiosk_running(config: KioskConfig, *, console_log: bool = True) -> Iterator[Kiosk]:
    kiosk = build_kiosk(config, console_log=console_log)
    try:
        yield kiosk
    finally:
        kiosk.close()
