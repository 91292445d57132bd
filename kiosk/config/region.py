"""[region] — regional business rules (地区业务规则). Where a rule differs between regions it is here,
not in code (DOMAIN.md)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FeeSchedule:
    """Fees in fen (分) per case, shown before consent. Zero by default (DOMAIN.md)."""

    first_issue: int = 0
    replacement: int = 0
    # A replacement within quality_defect_free_days of issue for a card quality defect is free.
    replacement_quality_defect: int = 0
    renewal: int = 0
    temporary_card_lost: int = 2000


@dataclass(frozen=True)
class ProductionTimes:
    """Time limits quoted on notices and by the progress query."""

    central_production_days: int = 30
    central_production_working_days: bool = True
    replacement_working_days: int = 7
    unit_collection_working_days: int = 5


@dataclass(frozen=True)
class RegionSection:
    region_code: str = "000000"
    region_name: str = "示例市"
    card_validity_years: int = 10
    # Renewal (换领) may start this many days before expiry.
    renewal_window_days: int = 60
    quality_defect_free_days: int = 365
    photo_width_px: int = 358
    photo_height_px: int = 441
    photo_jpeg_quality: int = 70
    # PIN tries before the chip locks the social-security PIN (6 or 8 by region).
    pin_tries: int = 6
    default_ss_pin_is_not_enabled: bool = True
    kiosk_pin_reset_allowed: bool = False
    loss_report_modes: tuple[str, ...] = ("temporary", "formal")
    temporary_card_issued: bool = False
    same_number_replacement: bool = False
    third_generation: bool = True
    hotline: str = "12333"
    counter_address: str = "示例市人社局社保卡服务大厅（示例路 100 号）"
    face_guardian_consent_under_age: int = 14
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    production: ProductionTimes = field(default_factory=ProductionTimes)

    def __post_init__(self) -> None:
        if not 0 <= self.renewal_window_days <= 366:
            raise ValueError("renewal_window_days must be between 0 and 366")
        if self.pin_tries not in (3, 6, 8, 10):
            raise ValueError("pin_tries must be 3, 6, 8 or 10")
        for mode in self.loss_report_modes:
            if mode not in ("temporary", "formal"):
                raise ValueError(f"loss_report_modes: unknown mode {mode!r}")
