"""The kiosk core at run time (运行时): what the UI is handed by the composition root.

:class:`KioskCore` holds the configuration, the translator, the journal, the services (device
drivers or simulators behind their Protocols, the back-end client, the outbox), the business
registry, and runs visits on worker threads. The UI calls it and receives prompts; it never sees
a device object.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kiosk.config import KioskConfig
from kiosk.devices import DeviceState, DeviceStatus
from kiosk.devices.idreader import CardInserted, CardRemoved, IdReaderEvent
from kiosk.i18n import Translator
from kiosk.journal import Journal
from kiosk.prompts import Prompter
from kiosk.selftest import SelfCheckMonitor
from kiosk.visit import Flow, VisitOutcome, VisitRunner

log = logging.getLogger(__name__)


@dataclass
class Services:
    """The devices and services a flow may use, by name. A name absent here is not configured.

    Names: ``idreader``, ``smartcard``, ``cardprinter``, ``receipt``, ``pinpad``, ``camera``,
    ``face``, ``backend``, ``outbox``, ``ledger``. Each object satisfies its Protocol in
    ``kiosk/devices/`` (or ``kiosk/backend/api.py``)."""

    devices: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        devices = self.__dict__.get("devices", {})
        if name in devices:
            return devices[name]
        raise AttributeError(f"service {name!r} is not configured")

    def has(self, *names: str) -> bool:
        return all(name in self.devices for name in names)

    def statuses(self) -> list[DeviceStatus]:
        """Each device's :class:`DeviceStatus` (``device_status()`` where a service has one,
        else ``status()``); services that report no device status are skipped."""
        out: list[DeviceStatus] = []
        for name, device in self.devices.items():
            status = getattr(device, "device_status", None) or getattr(device, "status", None)
            if not callable(status):
                continue
            try:
                result = status()
            except Exception as exc:  # a status call must never take the menu down
                log.warning("status of %s failed: %s", name, type(exc).__name__)
                result = DeviceStatus(name, DeviceState.FAULT, f"{name}.status_failed", "device.error", type(exc).__name__)
            if isinstance(result, DeviceStatus):
                out.append(result)
        return out


@dataclass(frozen=True)
class Business:
    """A business as the home screen shows it."""

    key: str
    title_key: str
    description_key: str


def mask_name(name: str) -> str:
    """A name for the screen: the first character, then one ``*`` per remaining character."""
    return name[:1] + "*" * max(len(name) - 1, 0) if name else ""


@dataclass(frozen=True)
class IdentityShown:
    """What the home screen may show of an ID card just read: masked, no photo."""

    masked_name: str
    masked_id_number: str
    validity: str


class KioskCore:
    def __init__(
        self,
        config: KioskConfig,
        translator: Translator,
        journal: Journal,
        services: Services,
        flows: Mapping[str, Flow],
    ) -> None:
        self.config = config
        self.translator = translator
        self.journal = journal
        self.services = services
        self.flows = dict(flows)
        self._visit_thread: threading.Thread | None = None
        self.visit_timer: Any = None  # a kiosk.timing.VisitTimer while a visit is measured (demo, bench)
        self.last_outcome: VisitOutcome | None = None
        # The self-check (kiosk/selftest.py): at start-up, before each visit, and cached for the home
        # screen. The composition root sets the devices a kiosk must have (default: those configured).
        self.selfcheck = SelfCheckMonitor(services, config, journal=journal)
        self.identity_listeners: list[Callable[[IdentityShown | None], None]] = []
        reader = services.devices.get("idreader")
        if reader is not None and hasattr(reader, "add_listener"):
            reader.add_listener(self._id_reader_event)

    def _id_reader_event(self, event: IdReaderEvent) -> None:
        """On the home screen (no visit running) a card read is shown masked; a visit's own steps
        take the reads while it runs."""
        if self.visit_running:
            return
        shown: IdentityShown | None = None
        if isinstance(event, CardInserted):
            shown = IdentityShown(mask_name(event.card.name), event.card.masked_id_number, event.card.validity.value)
        elif not isinstance(event, CardRemoved):
            return
        for listener in list(self.identity_listeners):
            listener(shown)

    def online(self) -> bool:
        """Whether the card-management system is reachable (the sync worker's last word)."""
        sync = self.services.devices.get("sync")
        if sync is not None:
            # The worker's LinkState; compared by value so the UI's imports stay clear of offline/.
            return getattr(getattr(sync, "link", None), "value", "") != "offline"
        return "backend" in self.services.devices

    def businesses(self) -> list[Business]:
        """The businesses this kiosk can do now: registered and with every service configured."""
        available = [f for f in self.flows.values() if self.services.has(*f.requires)]
        available.sort(key=lambda f: f.order)
        return [Business(f.key, f.title_key, f.description_key) for f in available]

    def device_statuses(self) -> list[DeviceStatus]:
        return self.services.statuses()

    def in_service(self) -> tuple[bool, list[DeviceStatus]]:
        """Whether a citizen can be served, and the statuses that say why not (first cause first;
        ``message_key`` is the citizen's short reason, ``code`` the exact fault). From the cached
        self-check, refreshed off the UI thread: cheap enough to ask every second."""
        report = self.selfcheck.latest()
        return (report.in_service, report.blocking_statuses())

    @property
    def visit_running(self) -> bool:
        return self._visit_thread is not None and self._visit_thread.is_alive()

    def start_visit(
        self,
        business: str,
        prompter: Prompter,
        on_done: Callable[[VisitOutcome], None] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> threading.Thread:
        """Runs the business on a worker thread; ``on_done`` is called (on that thread) at the end.
        With :attr:`visit_timer` set, the visit's calls and waits are timed into it."""
        if self.visit_running:
            raise RuntimeError("a visit is already running")
        flow = self.flows[business]
        services: Any = self.services
        if self.visit_timer is not None:
            from kiosk.timing import TimedPrompter, timed_services

            services = timed_services(self.services, self.visit_timer)
            prompter = TimedPrompter(prompter, self.visit_timer)
        runner = VisitRunner(self.journal, prompter, services, config=self.config, translator=self.translator)

        def work() -> None:
            report = self.selfcheck.run()  # the pre-visit self-check: never start what cannot finish
            if report.in_service:
                outcome = runner.run(flow, values=values)
            else:
                log.warning("visit refused business=%s out_of_service=%s", business, report.blocking[0].code)
                outcome = VisitOutcome("", business, "refused", "out_of_service")
            self.last_outcome = outcome
            if on_done is not None:
                on_done(outcome)

        thread = threading.Thread(target=work, name=f"visit-{business}", daemon=True)
        self._visit_thread = thread
        thread.start()
        return thread
