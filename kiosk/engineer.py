"""The engineer menu's side of the core (运维工程师): what each engineer page asks the kiosk to
do, each action recorded in the audit log with the engineer's id.

The UI (``screens/engineer.py``) holds an :class:`EngineerDesk` and calls it off the UI thread
for anything that touches a device. The desk reaches devices only through the core's services:

- device states: the self-check (:mod:`kiosk.selftest`);
- self-tests per device (:mod:`kiosk.device_tests`);
- fault injection when simulators run (the ``faults`` service, :mod:`kiosk.faults`);
- the log (already redacted at creation, and again here), the outbox (depth, oldest age,
  quarantined rows with their reasons, retry), the configuration (view; validated edit of the
  site file with a backup, :mod:`kiosk.siteconfig`) and the diagnostics bundle
  (:mod:`kiosk.diagnostics`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kiosk import device_tests, diagnostics, siteconfig
from kiosk.devices import DeviceError
from kiosk.journal import utc_now
from kiosk.logs import redact
from kiosk.runtime import KioskCore
from kiosk.selftest import SelfCheckReport

log = logging.getLogger(__name__)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# The outbox's message states (offline/outbox.py MessageState), in the order the page lists them.
OUTBOX_STATES = ("pending", "in_flight", "quarantined", "acknowledged")


@dataclass(frozen=True)
class QuarantinedRow:
    """A quarantined outbox message as the engineer sees it: never its payload."""

    id: int
    kind: str
    visit_id: str | None
    created_at: datetime
    attempts: int
    reason: str


@dataclass(frozen=True)
class OutboxSummary:
    depth: int  # pending + in flight
    oldest_age_s: float | None
    counts: Mapping[str, int]
    quarantined: tuple[QuarantinedRow, ...]


class EngineerDesk:
    def __init__(
        self,
        core: KioskCore,
        *,
        site_file: Path | None = None,
        clock: Callable[[], datetime] = utc_now,
        export_roots: tuple[Path, ...] = (Path("/media"), Path("/run/media")),
    ) -> None:
        self.core = core
        self.site_file = site_file if site_file is not None else siteconfig.site_file_path()
        self.clock = clock
        self.export_roots = export_roots

    @property
    def services(self) -> Any:
        return self.core.services

    # -- the record --------------------------------------------------------------------------
    def record(self, actor: str, action: str, subject: str = "", outcome: str = "done", **details: Any) -> None:
        """Records who did what, like the staff actions: in the ``staff_actions`` table (role
        ``engineer``) and in the hash-chained audit log, where the kiosk has them, and in the log.
        ``details`` hold no personal data."""
        staff_log = self.services.devices.get("staff_log")
        if staff_log is not None:
            staff_log.record(actor, "engineer", f"engineer.{action}", subject, outcome, dict(details))
        audit = self.services.devices.get("audit")
        if audit is not None:
            audit.append(actor, f"engineer.{action}", subject, {"outcome": outcome, **details})
        log.info("engineer.%s actor=%s subject=%s outcome=%s", action, actor, subject, outcome)

    # -- device states -----------------------------------------------------------------------
    def report(self, max_age_s: float = 1.0) -> SelfCheckReport:
        """The self-check, refreshed in the background once older than ``max_age_s``."""
        return self.core.selfcheck.latest(max_age_s)

    def run_selfcheck(self, actor: str) -> SelfCheckReport:
        report = self.core.selfcheck.run()
        self.record(actor, "selfcheck", "kiosk", in_service=report.in_service,
                    blocking=[c.code for c in report.blocking])
        return report

    # -- self-tests per device -----------------------------------------------------------------
    def available_tests(self) -> list[str]:
        return [name for name, service in device_tests.TESTS.items() if service in self.services.devices]

    def run_test(self, actor: str, test: str) -> device_tests.SelfTestResult:
        """Runs one self-test (blocking: call it off the UI thread); the camera has its own
        start/stop (:meth:`camera_preview`)."""
        devices = self.services.devices
        config = self.core.config
        if test == "idreader":
            result = device_tests.idreader_read_loop(devices["idreader"])
        elif test == "chip":
            result = device_tests.chip_station_read(devices["smartcard"], devices.get("psam"))
        elif test == "printer":
            result = device_tests.printer_test_card(devices["cardprinter"], devices.get("ledger"), actor, self.clock)
        elif test == "pinpad":
            result = device_tests.pinpad_key_test(devices["pinpad"], config)
        elif test == "receipt":
            result = device_tests.receipt_test_print(devices["receipt"], config, actor, self.clock)
        else:
            raise ValueError(f"unknown self-test {test!r}")
        self.record(actor, "selftest", test, "passed" if result.ok else "failed", passed=result.passed,
                    failed=result.failed, code=result.code)
        return result

    def camera_preview(self, actor: str) -> device_tests.CameraPreviewTest:
        self.record(actor, "selftest", "camera", "started")
        return device_tests.CameraPreviewTest(self.services.devices["face"])

    def camera_done(self, actor: str, result: device_tests.SelfTestResult) -> None:
        self.record(actor, "selftest", "camera", "passed" if result.ok else "failed", passed=result.passed,
                    failed=result.failed, code=result.code)

    # -- fault injection -----------------------------------------------------------------------
    @property
    def faults(self) -> Any:
        """The fault panel (only when the kiosk runs on simulators), else None."""
        return self.services.devices.get("faults")

    def inject_fault(self, actor: str, device: str, fault: str) -> None:
        """Arms ``fault`` on the simulator of ``device`` until cleared; raises
        :class:`kiosk.faults.FaultRefused` (recorded too) when the simulator refuses it."""
        from kiosk.faults import FaultRefused

        try:
            self.faults.inject(device, fault)
        except FaultRefused as refused:
            self.record(actor, "fault_injected", device, "refused", fault=fault, code=refused.code)
            raise
        self.record(actor, "fault_injected", device, fault=fault)
        self.core.selfcheck.latest(0)  # the states show the fault at the next refresh

    def clear_faults(self, actor: str, device: str) -> None:
        self.faults.clear(device)
        self.record(actor, "faults_cleared", device)
        self.core.selfcheck.latest(0)

    # -- the log -------------------------------------------------------------------------------
    def log_file(self) -> Path | None:
        config = self.core.config
        if not config.logging.file:
            return None
        return config.resolve(config.kiosk.log_dir) / config.logging.file

    def log_lines(self, limit: int = 200, min_level: str = "DEBUG") -> list[str]:
        """The last ``limit`` lines at ``min_level`` or above, newest last, redacted again."""
        path = self.log_file()
        if path is None:
            return []
        wanted = set(LOG_LEVELS[LOG_LEVELS.index(min_level):])
        lines = diagnostics.tail_lines(path.parent, path.name, limit * 5 if min_level != "DEBUG" else limit)
        merged: list[str] = []
        for name in reversed(list(lines)):  # oldest file first
            merged += lines[name]
        if min_level != "DEBUG":
            merged = [line for line in merged if len(line.split(" ", 4)) > 3 and line.split(" ", 4)[2] in wanted]
        return [redact(line) for line in merged[-limit:]]

    def log_viewed(self, actor: str) -> None:
        self.record(actor, "log_viewed", "kiosk.log")

    # -- the outbox ----------------------------------------------------------------------------
    def outbox_summary(self, limit: int = 50) -> OutboxSummary | None:
        outbox = self.services.devices.get("outbox")
        if outbox is None:
            return None
        status = outbox.status()
        counts = dict.fromkeys(OUTBOX_STATES, 0)
        counts.update({state.value: n for state, n in status.counts.items()})
        # The outbox's own state object (the core's UI side stays clear of offline/ imports):
        # present among the counts exactly when there are quarantined rows to list.
        quarantined = next((s for s in status.counts if s.value == "quarantined"), None)
        rows = tuple(
            QuarantinedRow(m.id, m.kind.value, m.visit_id, m.created_at, m.attempts, redact(m.last_error or ""))
            for m in (outbox.messages(quarantined, limit) if quarantined is not None else [])
        )
        depth = counts["pending"] + counts["in_flight"]
        return OutboxSummary(depth, status.oldest_unacknowledged_age_s, counts, rows)

    def retry_outbox(self, actor: str, message_id: int) -> str | None:
        """Releases a quarantined message; returns None, or the error code it was refused with."""
        try:
            self.services.devices["outbox"].retry(message_id)
        except DeviceError as exc:
            self.record(actor, "outbox_retry", str(message_id), "refused", code=exc.code)
            return exc.code
        self.record(actor, "outbox_retry", str(message_id))
        return None

    # -- configuration -------------------------------------------------------------------------
    def config_entries(self) -> list[siteconfig.ConfigEntry]:
        return siteconfig.entries(self.core.config)

    def edit_config(self, actor: str, key: str, raw: str) -> siteconfig.ConfigEdit:
        """Validates and writes one key to the site file (backup first); raises
        :class:`kiosk.siteconfig.ConfigEditRefused` naming the key. Takes effect at restart."""
        try:
            edit = siteconfig.edit_site_file(self.core.config, self.site_file, key, raw, clock=self.clock)
        except siteconfig.ConfigEditRefused as refused:
            self.record(actor, "config_edit", refused.key, "refused", code=refused.code, problem=refused.problem)
            raise
        secret = siteconfig.is_secret_key(key)
        self.record(actor, "config_edit", key, old="<hidden>" if secret else edit.old,
                    new="<hidden>" if secret else edit.new, backup=str(edit.backup) if edit.backup else None)
        return edit

    # -- diagnostics ---------------------------------------------------------------------------
    def export_dir(self) -> Path:
        config = self.core.config
        return config.resolve(config.kiosk.state_dir) / "diagnostics"

    def export_destinations(self) -> list[Path]:
        return diagnostics.export_destinations(self.export_dir(), self.export_roots)

    def export_diagnostics(self, actor: str, directory: Path) -> diagnostics.Bundle:
        """Writes a bundle into ``directory`` (blocking: runs the self-check)."""
        config = self.core.config
        report = self.core.selfcheck.run()
        summary = self.outbox_summary()
        outbox = None
        if summary is not None:
            outbox = {
                "depth": summary.depth, "oldest_age_s": summary.oldest_age_s, "counts": dict(summary.counts),
                # A refusal's text comes from the back end: Chinese in it could be a name.
                "quarantined": [{"id": r.id, "kind": r.kind, "attempts": r.attempts,
                                 "reason": diagnostics.scrub_log_line(r.reason)} for r in summary.quarantined],
            }
        bundle = diagnostics.build_bundle(
            directory / diagnostics.bundle_name(config, self.clock), config,
            devices=report.as_dict(), outbox=outbox, visits=diagnostics.recent_visits(self.core.journal),
            clock=self.clock,
        )
        self.record(actor, "diagnostics_exported", str(bundle.path), files=len(bundle.files), size=bundle.size)
        return bundle
