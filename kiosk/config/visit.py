"""[visit] — the citizen's visit: how long each screen waits, how often a step may be tried."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VisitSection:
    """Timeouts (seconds, before elder mode's factor) and attempts of the citizen's visit."""

    # A screen that waits for a touch (confirm, choose, consent).
    prompt_timeout_s: int = 60
    # Waiting for the ID card on the reader, and for it to be taken back at the end.
    id_card_timeout_s: int = 45
    return_id_card_timeout_s: int = 30
    # Face verification: attempts in one visit before the staffed path is offered.
    face_attempts: int = 2
    # Blank cards tried for one application when personalization or printing spoils one.
    card_attempts: int = 2
    # The one-time notice and the final screen stay this long when nobody touches them.
    notice_timeout_s: int = 60
    # Optional services offered (never pre-selected) when the bank account is opened.
    optional_services: tuple[str, ...] = ("sms_alerts", "online_banking")
    # Seconds the production progress screen expects each stage to take (shown as time left).
    expected_feed_s: float = 3.0
    expected_chip_s: float = 4.0
    expected_print_s: float = 25.0
    expected_emboss_s: float = 10.0

    def __post_init__(self) -> None:
        if min(self.prompt_timeout_s, self.id_card_timeout_s, self.return_id_card_timeout_s, self.notice_timeout_s) < 5:
            raise ValueError("visit timeouts must be at least 5 seconds")
        if not 1 <= self.face_attempts <= 5 or not 1 <= self.card_attempts <= 3:
            raise ValueError("face_attempts must be 1..5 and card_attempts 1..3")
        unknown = set(self.optional_services) - {"sms_alerts", "online_banking", "wealth_products"}
        if unknown:
            raise ValueError(f"optional_services: unknown {sorted(unknown)}")
