"""Device interfaces shared by the core and the drivers (设备接口).

This package is the one part of ``kiosk`` that drivers (``hardware/``, ``printer/``, ``camera/``)
and ``offline/`` may import. It holds only the status model, the error root and, per device,
a ``typing.Protocol`` plus the value types that cross the boundary. It imports nothing else
from ``kiosk`` and no third-party library.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class DeviceState(enum.Enum):
    """What the staff and engineer menus show for a device.

    ``READY`` serves citizens; ``BUSY`` is working; ``ATTENTION`` needs branch staff (hopper
    empty, paper out, reject bin full, card not taken); ``FAULT`` needs a field engineer
    (hardware error, self-test failed, keys missing); ``OFFLINE`` means the device is not
    reachable (port gone, no reader, connection refused).
    """

    READY = "ready"
    BUSY = "busy"
    ATTENTION = "attention"
    FAULT = "fault"
    OFFLINE = "offline"

    @property
    def xfs_state(self) -> str:
        """The XFS4IoT common device state this maps to (engineer menu)."""
        return _XFS_STATE[self]

    @property
    def serves_citizens(self) -> bool:
        return self in (DeviceState.READY, DeviceState.BUSY)


_XFS_STATE = {
    DeviceState.READY: "online",
    DeviceState.BUSY: "deviceBusy",
    DeviceState.ATTENTION: "userError",
    DeviceState.FAULT: "hardwareError",
    DeviceState.OFFLINE: "noDevice",
}


class Audience(enum.Enum):
    """Who must act on a condition."""

    CITIZEN = "citizen"
    STAFF = "staff"
    ENGINEER = "engineer"


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """One device's status.

    ``code`` is a stable machine code (``"printer.hopper_empty"``) for the journal, telemetry and
    the engineer menu; ``message_key`` is a message-catalog key (``kiosk/locale``) for the screen;
    ``detail`` is free technical text for engineers that must never hold personal data.
    ``levels`` carries consumable levels where the device has them (e.g. ``{"hopper": 37}``).
    """

    device: str
    state: DeviceState
    code: str = "ok"
    message_key: str = "device.ready"
    detail: str = ""
    levels: dict[str, int] = field(default_factory=dict)

    @classmethod
    def ready(cls, device: str, **levels: int) -> "DeviceStatus":
        return cls(device, DeviceState.READY, levels=dict(levels))


class DeviceError(Exception):
    """Root of every device package's exception hierarchy.

    Each package derives its own root (``IdReaderError(DeviceError)``, ``SmartCardError``, …).
    ``code`` is the machine code (journal, engineer menu); ``message_key`` the catalog key shown
    to ``audience``. ``retryable`` says whether repeating the same operation is safe.
    """

    default_code = "device.error"
    default_message_key = "device.error"
    default_audience = Audience.ENGINEER

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        message_key: str | None = None,
        audience: Audience | None = None,
        retryable: bool = False,
    ) -> None:
        self.code = code or self.default_code
        self.message_key = message_key or self.default_message_key
        self.audience = audience or self.default_audience
        self.retryable = retryable
        super().__init__(message or self.code)

    def __str__(self) -> str:
        text = super().__str__()
        return text if text.startswith(self.code) else f"{self.code}: {text}"
