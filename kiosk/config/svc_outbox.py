"""[outbox] — durable outbox and sync worker (离线队列)"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class OutboxSection:
    """Durable outbox and sync worker (离线队列)."""

    key_file: Path | None = None
    backoff_base_s: float = 1.0
    backoff_max_s: float = 300.0
    max_attempts_before_staff_alert: int = 6
    poll_interval_s: float = 1.0
