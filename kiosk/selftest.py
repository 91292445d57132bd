"""The kiosk's self-check (开机自检 / 办理前自检): can it finish a citizen's visit right now?

:func:`run_selfcheck` looks at every required device and service — ID reader, chip encoder and
PSAM, card printer with cards and ribbon, PIN pad with its keys loaded, camera, receipt printer
with paper, the back end (or the offline queue standing in for it), free disk space and the
clock — and returns a :class:`SelfCheckReport`: one :class:`Check` per item with its state, the
XFS4IoT common state it maps to, a machine code, the message for staff and engineers, the fix,
who must act, and the short reason a citizen is shown. ``in_service`` is False when any required
item blocks a visit.

:class:`SelfCheckMonitor` is what the running kiosk holds: it runs the check at start-up and
before each visit, and hands the home screen (which asks every second) a cached report that it
refreshes off the UI thread, so service resumes by itself when a fault clears.

Devices are reached only through their ``status()`` / ``device_status()`` and the few read-only
calls of their Protocols (``counters()``, ``paper_state()``); nothing here imports a driver.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kiosk.config import KioskConfig
from kiosk.devices import Audience, DeviceState, DeviceStatus
from kiosk.journal import Journal, utc_now

log = logging.getLogger(__name__)

# Required devices and services, in the order the status page lists them. ``psam`` is required
# only where the chip keys come from a PSAM (``[smartcard] key_backend = "psam"``).
REQUIRED_DEVICES: tuple[str, ...] = (
    "idreader", "smartcard", "psam", "cardprinter", "pinpad", "camera", "receipt", "backend",
)
# Services that are plumbing, not something that can be out of order on its own.
NOT_CHECKED: frozenset[str] = frozenset({"faults", "audit", "ledger", "face_lock", "outbox_sender", "sync", "face"})

# Free space in the state directory: below the first a visit could not journal its steps.
MIN_FREE_MB = 500
LOW_FREE_MB = 2048
EARLIEST_SANE_YEAR = 2024
# The clock may have been corrected backwards a little (NTP step); more than this is wrong.
CLOCK_TOLERANCE = timedelta(minutes=2)

# The fix an engineer or staff member reads, by machine code (falls back by state).
FIX_KEYS: Mapping[str, str] = {
    "idreader.port_unavailable": "selftest.fix.idreader_port",
    "idreader.not_open": "selftest.fix.idreader_port",
    "idreader.sam_not_authorized": "selftest.fix.idreader_sam",
    "idreader.self_test_failed": "selftest.fix.idreader_replace",
    "smartcard.reader_unavailable": "selftest.fix.pcsc",
    "smartcard.key_backend_failed": "selftest.fix.psam",
    "smartcard.psam_failed": "selftest.fix.psam",
    "cardprinter.offline": "selftest.fix.cardprinter_link",
    "cardprinter.hopper_empty": "selftest.fix.refill_cards",
    "cardprinter.hopper_near_empty": "selftest.fix.refill_cards",
    "cardprinter.ribbon_out": "selftest.fix.ribbon",
    "cardprinter.ribbon_low": "selftest.fix.ribbon",
    "cardprinter.cover_open": "selftest.fix.close_cover",
    "cardprinter.reject_bin_full": "selftest.fix.empty_reject_bin",
    "cardprinter.jam": "selftest.fix.clear_jam",
    "cardprinter.stuck_at_chip_station": "selftest.fix.clear_jam",
    "cardprinter.card_not_taken": "selftest.fix.card_not_taken",
    "cardprinter.head_temperature": "selftest.fix.cool_down",
    "pinpad.keys_missing": "selftest.fix.pinpad_keys",
    "pinpad.self_test_failed": "selftest.fix.pinpad_replace",
    "pinpad.no_reply": "selftest.fix.pinpad_link",
    "pinpad.battery": "selftest.fix.pinpad_battery",
    "camera.unavailable": "selftest.fix.camera",
    "receipt.paper_out": "selftest.fix.paper",
    "receipt.paper_near_end": "selftest.fix.paper",
    "receipt.cover_open": "selftest.fix.receipt_cover",
    "receipt.not_ready": "selftest.fix.receipt_cover",
    "receipt.fault": "selftest.fix.receipt_fault",
    "receipt.offline": "selftest.fix.receipt_link",
    "backend.unreachable": "selftest.fix.network",
    "backend.offline_mode": "selftest.fix.network",
    "backend.contract_violation": "selftest.fix.backend_version",
    "outbox.quarantined": "selftest.fix.outbox_quarantined",
    "outbox.stuck": "selftest.fix.network",
    "disk.low": "selftest.fix.disk",
    "disk.full": "selftest.fix.disk",
    "clock.not_set": "selftest.fix.clock",
    "clock.behind_journal": "selftest.fix.clock",
}
_FIX_BY_STATE: Mapping[DeviceState, str] = {
    DeviceState.READY: "selftest.fix.none",
    DeviceState.BUSY: "selftest.fix.none",
    DeviceState.ATTENTION: "selftest.fix.staff",
    DeviceState.FAULT: "selftest.fix.restart",
    DeviceState.OFFLINE: "selftest.fix.check_link",
}
# The short reason a citizen reads on the home screen (the exact fault is for staff).
_CITIZEN_KEYS: Mapping[str, str] = {
    "idreader": "selftest.citizen.idreader",
    "smartcard": "selftest.citizen.card_making",
    "psam": "selftest.citizen.card_making",
    "cardprinter": "selftest.citizen.card_making",
    "cards": "selftest.citizen.card_making",
    "ribbon": "selftest.citizen.card_making",
    "pinpad": "selftest.citizen.pinpad",
    "pinpad_keys": "selftest.citizen.pinpad",
    "camera": "selftest.citizen.camera",
    "receipt": "selftest.citizen.receipt",
    "paper": "selftest.citizen.receipt",
    "backend": "selftest.citizen.network",
}
# OFFLINE codes that mean "nothing there" (XFS noDevice) rather than "there but not answering".
_NO_DEVICE_CODES = frozenset({
    "idreader.port_unavailable", "idreader.not_open", "smartcard.reader_unavailable", "camera.unavailable",
})
_WARNING_CODES = frozenset({
    "cardprinter.hopper_near_empty", "cardprinter.ribbon_low", "receipt.paper_near_end", "disk.low",
})


@dataclass(frozen=True)
class Check:
    """One item of the self-check.

    ``code`` is the machine code (journal, telemetry, the engineer's status page); ``message_key``
    the exact condition for staff and engineers; ``fix_key`` what to do; ``citizen_key`` the short
    reason shown to citizens while it blocks; ``values`` fill the messages' placeholders;
    ``detail`` is technical text that never holds personal data.
    """

    name: str
    state: DeviceState
    code: str
    message_key: str
    fix_key: str
    audience: Audience
    blocking: bool
    citizen_key: str = "selftest.citizen.maintenance"
    detail: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)
    levels: Mapping[str, int] = field(default_factory=dict)
    xfs: str = ""

    @property
    def xfs_state(self) -> str:
        """The XFS4IoT common device state: online, offline, noDevice, hardwareError,
        userError or deviceBusy."""
        return self.xfs or self.state.xfs_state

    @property
    def ok(self) -> bool:
        return self.state in (DeviceState.READY, DeviceState.BUSY) and self.code not in _WARNING_CODES

    def as_status(self) -> DeviceStatus:
        """A :class:`DeviceStatus` whose message is the citizen's short reason (home screen)."""
        return DeviceStatus(self.name, self.state, self.code, self.citizen_key, self.detail, dict(self.levels))

    def as_dict(self, translate: Callable[..., str] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "state": self.state.value,
            "xfs_state": self.xfs_state,
            "code": self.code,
            "blocking": self.blocking,
            "audience": self.audience.value,
            "message_key": self.message_key,
            "fix_key": self.fix_key,
            "detail": self.detail,
            "levels": dict(self.levels),
        }
        if translate is not None:
            out["message"] = translate(self.message_key, **dict(self.values))
            out["fix"] = translate(self.fix_key)
        return out


@dataclass(frozen=True)
class SelfCheckReport:
    checks: tuple[Check, ...]
    at: datetime

    @property
    def in_service(self) -> bool:
        return not self.blocking

    @property
    def blocking(self) -> list[Check]:
        return [c for c in self.checks if c.blocking]

    def check(self, name: str) -> Check | None:
        for c in self.checks:
            if c.name == name:
                return c
        return None

    def blocking_statuses(self) -> list[DeviceStatus]:
        """Why the kiosk is out of service, first cause first, each with the citizen's text."""
        return [c.as_status() for c in self.blocking]

    def signature(self) -> tuple[tuple[str, str, str, bool], ...]:
        """What changes when something changes (state and code of each check)."""
        return tuple((c.name, c.state.value, c.code, c.blocking) for c in self.checks)

    def as_dict(self, translate: Callable[..., str] | None = None) -> dict[str, Any]:
        return {
            "in_service": self.in_service,
            "at": self.at.isoformat(),
            "checks": [c.as_dict(translate) for c in self.checks],
        }


def required_devices(config: KioskConfig) -> tuple[str, ...]:
    """Every device a kiosk built from ``config`` must have (``psam`` only with PSAM keys)."""
    return tuple(n for n in REQUIRED_DEVICES if n != "psam" or config.smartcard.key_backend == "psam")


def fix_key_for(code: str, state: DeviceState) -> str:
    if code in FIX_KEYS:
        return FIX_KEYS[code]
    if code.endswith(".not_configured"):
        return "selftest.fix.not_configured"
    if code.endswith(".status_failed"):
        return "selftest.fix.restart"
    return _FIX_BY_STATE[state]


def _audience(state: DeviceState, code: str) -> Audience:
    if code in _WARNING_CODES or state is DeviceState.ATTENTION:
        return Audience.STAFF
    if state in (DeviceState.READY, DeviceState.BUSY):
        return Audience.CITIZEN
    return Audience.ENGINEER


def _xfs(state: DeviceState, code: str) -> str:
    if state is DeviceState.OFFLINE:
        return "noDevice" if code in _NO_DEVICE_CODES or code.endswith(".not_configured") else "offline"
    return state.xfs_state


def _check(
    name: str,
    state: DeviceState,
    code: str,
    message_key: str,
    *,
    required: bool,
    detail: str = "",
    values: Mapping[str, Any] | None = None,
    levels: Mapping[str, int] | None = None,
    blocking: bool | None = None,
) -> Check:
    if blocking is None:
        blocking = required and not state.serves_citizens
    return Check(
        name, state, code, message_key, fix_key_for(code, state), _audience(state, code), blocking,
        _CITIZEN_KEYS.get(name, "selftest.citizen.maintenance"), detail, dict(values or {}), dict(levels or {}),
        _xfs(state, code),
    )


def device_status(name: str, device: Any) -> DeviceStatus | None:
    """``device_status()`` where a service has one, else ``status()``; a status call that raises
    is a FAULT (never an exception out of the self-check). None: the service reports no status."""
    call = getattr(device, "device_status", None) or getattr(device, "status", None)
    if not callable(call):
        return None
    try:
        result = call()
    except Exception as exc:  # a broken driver must show as a fault, not stop the self-check
        log.warning("selfcheck.status_failed device=%s error=%s", name, type(exc).__name__)
        return DeviceStatus(name, DeviceState.FAULT, f"{name}.status_failed", "selftest.status_failed", type(exc).__name__)
    return result if isinstance(result, DeviceStatus) else None


def _from_status(name: str, status: DeviceStatus, *, required: bool) -> Check:
    # A device's message may count something ("{count} messages quarantined"): the level named
    # like the code's last part is that count.
    values: dict[str, Any] = dict(status.levels)
    counted = status.levels.get(status.code.rsplit(".", 1)[-1])
    if counted is not None:
        values.setdefault("count", counted)
    return _check(
        name, status.state, status.code, status.message_key, required=required,
        detail=status.detail, levels=status.levels, values=values,
    )


def _cards(status: DeviceStatus, printer: Any, config: KioskConfig) -> Check:
    """Blank cards in the hopper (from the printer's counters)."""
    count = status.levels.get("hopper")
    if count is None and status.state.serves_citizens and hasattr(printer, "counters"):
        count = getattr(_safe(printer.counters), "hopper_count", None)
    if status.code == "cardprinter.hopper_empty" or count == 0:
        return _check("cards", DeviceState.ATTENTION, "cardprinter.hopper_empty", "selftest.cards_empty",
                      required=True, values={"count": count or 0}, levels={"hopper": count or 0})
    if count is None:
        return _unknown("cards", status)
    if count <= config.cardprinter.hopper_near_empty:
        return _check("cards", DeviceState.READY, "cardprinter.hopper_near_empty", "selftest.cards_low",
                      required=True, values={"count": count}, levels={"hopper": count})
    return _check("cards", DeviceState.READY, "ok", "selftest.cards_ok", required=True,
                  values={"count": count}, levels={"hopper": count})


def _ribbon(status: DeviceStatus, printer: Any, config: KioskConfig) -> Check:
    percent = status.levels.get("ribbon_percent")
    if percent is None and status.state.serves_citizens and hasattr(printer, "counters"):
        counters = _safe(printer.counters)
        remaining, capacity = getattr(counters, "ribbon_remaining", None), getattr(counters, "ribbon_capacity", None)
        if remaining is not None and capacity:
            percent = remaining * 100 // capacity
    if status.code == "cardprinter.ribbon_out" or percent == 0:
        return _check("ribbon", DeviceState.ATTENTION, "cardprinter.ribbon_out", "selftest.ribbon_out",
                      required=True, values={"percent": 0}, levels={"ribbon_percent": 0})
    if percent is None:
        return _unknown("ribbon", status)
    if percent <= config.cardprinter.ribbon_low_percent:
        return _check("ribbon", DeviceState.READY, "cardprinter.ribbon_low", "selftest.ribbon_low",
                      required=True, values={"percent": percent}, levels={"ribbon_percent": percent})
    return _check("ribbon", DeviceState.READY, "ok", "selftest.ribbon_ok", required=True,
                  values={"percent": percent}, levels={"ribbon_percent": percent})


_PAPER_LEVELS = {"adequate": 2, "near_end": 1, "out": 0}


def _paper(status: DeviceStatus, printer: Any) -> Check:
    level = status.levels.get("paper")
    if level is None and status.state.serves_citizens and hasattr(printer, "paper_state"):
        state = _safe(printer.paper_state)
        level = _PAPER_LEVELS.get(getattr(state, "value", ""))
    if status.code == "receipt.paper_out" or level == 0:
        return _check("paper", DeviceState.ATTENTION, "receipt.paper_out", "selftest.paper_out", required=True)
    if level is None:
        return _unknown("paper", status)
    if level == 1:
        return _check("paper", DeviceState.READY, "receipt.paper_near_end", "selftest.paper_near_end", required=True)
    return _check("paper", DeviceState.READY, "ok", "selftest.paper_ok", required=True)


def _pinpad_keys(status: DeviceStatus) -> Check:
    if status.code == "pinpad.keys_missing":
        return _check("pinpad_keys", DeviceState.FAULT, "pinpad.keys_missing", "selftest.pinpad_keys_missing",
                      required=True, detail=status.detail)
    if status.state.serves_citizens:
        return _check("pinpad_keys", DeviceState.READY, "ok", "selftest.pinpad_keys_ok", required=True)
    return _unknown("pinpad_keys", status)


def _unknown(name: str, parent: DeviceStatus) -> Check:
    """A level that cannot be read while its device is down (the device's own check blocks)."""
    return _check(name, parent.state, f"{name}.unknown", "selftest.level_unknown", required=True, blocking=False,
                  detail=f"device {parent.code}")


def _safe(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:  # a level read after a good status: shown as unknown, logged
        log.warning("selfcheck.level_read_failed error=%s", type(exc).__name__)
        return None


def _backend(status: DeviceStatus, services: Mapping[str, Any]) -> Check:
    if status.state.serves_citizens:
        return _from_status("backend", status, required=True)
    if "outbox" in services:
        # The offline queue keeps applications for central production: citizens are still served.
        return _check("backend", status.state, "backend.offline_mode", "selftest.backend_offline_mode",
                      required=True, blocking=False, detail=f"{status.code} {status.detail}".strip())
    return _from_status("backend", status, required=True)


def _disk(path: Path, disk_usage: Callable[[str], Any]) -> Check:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free_mb = int(disk_usage(str(probe)).free // 2**20)
    except OSError as exc:
        return _check("disk", DeviceState.FAULT, "disk.unreadable", "selftest.disk_unreadable", required=True,
                      detail=f"{path}: {exc.strerror}")
    values = {"free_mb": free_mb, "path": str(path)}
    if free_mb < MIN_FREE_MB:
        return _check("disk", DeviceState.FAULT, "disk.full", "selftest.disk_full", required=True,
                      values=values, detail=f"{path} {free_mb} MiB free")
    if free_mb < LOW_FREE_MB:
        return _check("disk", DeviceState.READY, "disk.low", "selftest.disk_low", required=True,
                      values=values, detail=f"{path} {free_mb} MiB free")
    return _check("disk", DeviceState.READY, "ok", "selftest.disk_ok", required=True, values=values,
                  detail=f"{path} {free_mb} MiB free")


def _clock(now: datetime, last_recorded: datetime | None) -> Check:
    shown = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if now.year < EARLIEST_SANE_YEAR:
        return _check("clock", DeviceState.FAULT, "clock.not_set", "selftest.clock_not_set", required=True,
                      values={"now": shown}, detail=f"now={shown}")
    if last_recorded is not None and now + CLOCK_TOLERANCE < last_recorded:
        last = last_recorded.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return _check("clock", DeviceState.FAULT, "clock.behind_journal", "selftest.clock_behind", required=True,
                      values={"now": shown, "last": last}, detail=f"now={shown} journal={last}")
    return _check("clock", DeviceState.READY, "ok", "selftest.clock_ok", required=True, values={"now": shown},
                  detail=f"now={shown}")


def run_selfcheck(
    services: Any,
    config: KioskConfig,
    clock: Callable[[], datetime] = utc_now,
    *,
    required: Iterable[str] | None = None,
    last_recorded: datetime | None = None,
    disk_usage: Callable[[str], Any] = shutil.disk_usage,
) -> SelfCheckReport:
    """Checks every required device and service once (blocking I/O: call it off the UI thread).

    ``services``: a :class:`kiosk.runtime.Services` (or a plain mapping name → service).
    ``required``: the device names that must be present (see :func:`required_devices`); None
    means the required devices that are configured in ``services``. A required device that is
    absent is a blocking fault. ``last_recorded``: the newest time in the journal (the clock
    must not be behind it).
    """
    devices: Mapping[str, Any] = getattr(services, "devices", services)
    wanted = tuple(required) if required is not None else tuple(n for n in REQUIRED_DEVICES if n in devices)
    checks: list[Check] = []
    for name in REQUIRED_DEVICES:
        if name not in wanted:
            continue
        device = devices.get(name)
        if device is None:
            checks.append(_check(name, DeviceState.OFFLINE, f"{name}.not_configured", "selftest.not_configured",
                                 required=True))
            continue
        status = device_status(name, device) or DeviceStatus.ready(name)
        if name == "backend":
            checks.append(_backend(status, devices))
            continue
        checks.append(_from_status(name, status, required=True))
        if name == "cardprinter":
            checks.append(_cards(status, device, config))
            checks.append(_ribbon(status, device, config))
        elif name == "pinpad":
            checks.append(_pinpad_keys(status))
        elif name == "receipt":
            checks.append(_paper(status, device))
    checks.append(_disk(config.resolve(config.kiosk.state_dir), disk_usage))
    checks.append(_clock(clock(), last_recorded))
    for name, device in devices.items():
        if name in REQUIRED_DEVICES or name in NOT_CHECKED:
            continue
        status = device_status(name, device)
        if status is not None:
            checks.append(_from_status(name, status, required=False))
    return SelfCheckReport(tuple(checks), clock())


def journal_last_time(journal: Journal) -> datetime | None:
    """The newest timestamp the journal holds (a step, a visit start or end); None when the
    journal cannot be read (the clock check then only checks the year)."""
    times: list[datetime] = []
    with journal.lock:
        conn = journal.connection
        for sql in (
            "SELECT at FROM journal ORDER BY id DESC LIMIT 1",
            "SELECT started_at, ended_at FROM visits ORDER BY rowid DESC LIMIT 1",
        ):
            try:
                row = conn.execute(sql).fetchone()
            except sqlite3.Error as exc:
                log.warning("selfcheck.journal_unreadable error=%s", type(exc).__name__)
                return None
            for value in row or ():
                if value:
                    try:
                        moment = datetime.fromisoformat(value)
                    except ValueError:
                        continue
                    times.append(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return max(times) if times else None


class SelfCheckMonitor:
    """The running kiosk's self-check: a fresh run at start-up and before each visit
    (:meth:`run`), and a cached report for the home screen (:meth:`latest`) refreshed on a
    background thread once it is older than ``max_age_s`` — the UI never waits on a device.

    ``required``: the devices the kiosk must have (None: those configured). ``save_path``: where
    the last report is written as JSON when it changes (read by ``kiosk diagnostics export``).
    """

    def __init__(
        self,
        services: Any,
        config: KioskConfig,
        *,
        journal: Journal | None = None,
        clock: Callable[[], datetime] = utc_now,
        required: Iterable[str] | None = None,
        max_age_s: float = 3.0,
        background: bool = True,
        save_path: Path | None = None,
        disk_usage: Callable[[str], Any] = shutil.disk_usage,
    ) -> None:
        self.services = services
        self.config = config
        self.journal = journal
        self.clock = clock
        self.required: tuple[str, ...] | None = tuple(required) if required is not None else None
        self.max_age_s = max_age_s
        self.background = background
        self.save_path = save_path
        self.disk_usage = disk_usage
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._report: SelfCheckReport | None = None
        self._at = 0.0
        self._refreshing = False
        self.runs = 0

    def require(self, names: Iterable[str]) -> None:
        """Sets the devices the kiosk must have (the composition root: from configuration)."""
        self.required = tuple(names)
        with self._lock:
            self._at = 0.0  # the next latest() re-checks

    @property
    def last(self) -> SelfCheckReport | None:
        with self._lock:
            return self._report

    def run(self) -> SelfCheckReport:
        """Checks now (blocking) and keeps the result."""
        with self._run_lock:
            last = self.journal and journal_last_time(self.journal)
            report = run_selfcheck(
                self.services, self.config, self.clock, required=self.required,
                last_recorded=last or None, disk_usage=self.disk_usage,
            )
            with self._lock:
                previous, self._report, self._at = self._report, report, time.monotonic()
                self.runs += 1
            if previous is None or previous.signature() != report.signature():
                self._changed(previous, report)
            return report

    def latest(self, max_age_s: float | None = None) -> SelfCheckReport:
        """The last report; when it is older than ``max_age_s`` a refresh starts in the
        background (or runs now with ``background=False``). The very first call runs now."""
        limit = self.max_age_s if max_age_s is None else max_age_s
        with self._lock:
            report, age, refreshing = self._report, time.monotonic() - self._at, self._refreshing
            start = report is not None and age > limit and not refreshing and self.background
            if start:
                self._refreshing = True
        if report is None or (age > limit and not self.background):
            return self.run()
        if start:
            threading.Thread(target=self._refresh, name="selfcheck", daemon=True).start()
        return report

    def _refresh(self) -> None:
        try:
            self.run()
        except Exception:  # the monitor thread must not die silently: log and retry next time
            log.exception("selfcheck.refresh_failed")
        finally:
            with self._lock:
                self._refreshing = False

    def _changed(self, previous: SelfCheckReport | None, report: SelfCheckReport) -> None:
        if report.in_service and (previous is None or not previous.in_service):
            log.info("selfcheck.in_service")
        elif not report.in_service:
            log.warning("selfcheck.out_of_service codes=%s", ",".join(c.code for c in report.blocking))
        if self.save_path is not None:
            save_report(report, self.save_path)


def save_report(report: SelfCheckReport, path: Path) -> None:
    """Writes the report as JSON atomically (no personal data in it: codes and details only)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("selfcheck.save_failed path=%s error=%s", path, exc.strerror)
