"""[logging] [staff] — logs and staff accounts"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoggingSection:
    level: str = "INFO"
    # Log file name in kiosk.log_dir; empty: log to stderr only.
    file: str = "kiosk.log"
    retention_days: int = 180

    def __post_init__(self) -> None:
        if self.level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("level must be DEBUG, INFO, WARNING or ERROR")


@dataclass(frozen=True)
class StaffSection:
    failed_logins_before_lockout: int = 5
    lockout_minutes: int = 15
    session_timeout_s: int = 300
