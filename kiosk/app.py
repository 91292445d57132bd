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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.config import KioskConfig
from kiosk.flows import registered_flows
from kiosk.i18n import Translator
from kiosk.journal import JOURNAL_SCHEMA, Journal
from kiosk.logs import configure_logging
from kiosk.recovery import RecoveredVisit, recover
from kiosk.runtime import KioskCore, Services
from kiosk.sdnotify import notify
from kiosk.staff import STAFF_SCHEMA, StaffAccounts
from kiosk.storage import open_state_db

log = logging.getLogger(__name__)


def state_components() -> dict[str, tuple[str, ...]]:
    """Every component's migrations in the state database."""
    return {"journal": JOURNAL_SCHEMA, "staff": STAFF_SCHEMA}


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


def build_services(config: KioskConfig, stack: contextlib.ExitStack) -> tuple[Services, dict[str, Any]]:
    """Builds each configured device (driver or simulator + driver). Devices whose packages are
    not built yet are absent: the businesses that need them do not appear."""
    services = Services()
    simulators: dict[str, Any] = {}
    return services, simulators


def build_kiosk(config: KioskConfig, *, console_log: bool = True) -> Kiosk:
    setup_logging(config, console=console_log)
    conn = open_state(config)
    journal = Journal(conn)
    translator = Translator(config.kiosk.languages)
    stack = contextlib.ExitStack()
    try:
        services, simulators = build_services(config, stack)
        flows = registered_flows()
        recovered = recover(journal, flows, services)
        for visit in recovered:
            log.warning("recovered visit %s business=%s steps=%s", visit.visit_id, visit.business, visit.compensated_steps)
        staff = StaffAccounts(
            conn,
            failures_before_lockout=config.staff.failed_logins_before_lockout,
            lockout_minutes=config.staff.lockout_minutes,
        )
        core = KioskCore(config, translator, journal, services, flows)
    except BaseException:
        stack.close()
        conn.close()
        raise
    kiosk = Kiosk(core, staff, recovered, simulators)
    kiosk.closers.append(conn.close)
    kiosk.closers.append(stack.close)
    return kiosk


def prepare_kivy_environment(config: KioskConfig, *, headless: bool) -> None:
    """Kivy reads its environment at import: set it before anything imports kivy."""
    state = config.resolve(config.kiosk.state_dir)
    os.environ.setdefault("KIVY_HOME", str(state / ".kivy"))
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    if headless and not os.environ.get("DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")


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
