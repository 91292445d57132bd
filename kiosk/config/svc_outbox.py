"""[outbox] — durable outbox and sync worker (离线队列)"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class OutboxSection:
    """Durable outbox and sync worker (离线队列)."""

    # SM4 key file (lines "<key-id> <32 hex>", the first seals; mode 0600). Without it the kiosk
    # cannot queue anything (every payload is sealed).
    key_file: Path | None = None
    # Exponential backoff with jitter between attempts: base · 2^(attempts−1), capped.
    backoff_base_s: float = 1.0
    backoff_max_s: float = 300.0
    # A message still unacknowledged after this many attempts puts the outbox in "attention".
    max_attempts_before_staff_alert: int = 6
    poll_interval_s: float = 1.0
    # Messages claimed (marked in flight) and settled per durable commit.
    batch_size: int = 50
    # An in-flight message whose look-up failed is looked up again after its backoff; a claim
    # older than this is considered abandoned (only after a worker crash).
    lease_s: float = 300.0
    # Acknowledged rows (payload already purged) are deleted after this many days.
    acknowledged_retention_days: int = 30

    def __post_init__(self) -> None:
        if self.backoff_base_s <= 0 or self.backoff_max_s < self.backoff_base_s:
            raise ValueError("backoff_base_s must be > 0 and backoff_max_s ≥ backoff_base_s")
        if self.max_attempts_before_staff_alert < 1:
            raise ValueError("max_attempts_before_staff_alert must be ≥ 1")
        if self.poll_interval_s <= 0:
            raise ValueError("poll_interval_s must be > 0")
        if not 1 <= self.batch_size <= 1000:
            raise ValueError("batch_size must be between 1 and 1000")
        if self.lease_s <= 0:
            raise ValueError("lease_s must be > 0")
        if self.acknowledged_retention_days < 0:
            raise ValueError("acknowledged_retention_days must be ≥ 0")
