"""SIMULATORS of the chip-station card and the PSAM on pcscd + vsmartcard-vpcd (development and
tests only; vsmartcard-vpcd must never be installed on a kiosk — it accepts a card from the
network).

For the card printer simulator (芯片工位):

    slot = ChipStationSlot(0)                 # "Virtual PCD 00 00", the chip station
    card = blank_card_for(serial_or_number)   # a blank VirtualSocialSecurityCard
    slot.insert(card)                         # the card reaches the chip station
    ...
    slot.remove()                             # the card leaves it (the object keeps its chip data)

:class:`SmartCardSimulator` bundles the two slots (chip station + PSAM) with one fault surface.
"""

from __future__ import annotations

import threading
from typing import Any, Self

from hardware.smartcard.crypto import Algorithm
from hardware.smartcard.virtual.psam import VirtualPsam
from hardware.smartcard.virtual.sscard import (
    VirtualSocialSecurityCard,
    blank_card,
    card_atr,
    personalized_card,
)
from hardware.smartcard.virtual.vpcd import VPCD_PORT, CardPulled, ChipStationSlot

__all__ = [
    "Algorithm",
    "CardPulled",
    "ChipStationSlot",
    "SmartCardSimulator",
    "VirtualPsam",
    "VirtualSocialSecurityCard",
    "blank_card",
    "blank_card_for",
    "card_atr",
    "personalized_card",
]


def blank_card_for(
    serial: bytes | str | int, algorithm: Algorithm | str = Algorithm.SM4, city_code: str = "110100"
) -> VirtualSocialSecurityCard:
    """The blank virtual card the card printer simulator puts into the chip station.

    ``serial``: 8 bytes, 16 hex digits, an int, or any text (e.g. the printer's card counter,
    right-aligned into 8 bytes). Distinct serials give distinct ATRs and card keys.
    """
    return blank_card(serial, algorithm=Algorithm(algorithm), city_code=city_code)


class SmartCardSimulator:
    """Chip station (slot 0) and PSAM (slot 1) on vpcd, with one fault-injection surface.

    ``start()`` inserts the PSAM (and ``card`` if given); ``stop()`` removes both. Faults are
    injected into the card in the chip station at the time of the call (``target="psam"`` for
    the PSAM); ``pin_tries_exhausted`` only applies to a card.
    """

    def __init__(
        self,
        *,
        psam: VirtualPsam | None = None,
        card_slot: int = 0,
        psam_slot: int = 1,
        port: int = VPCD_PORT,
    ) -> None:
        self.chip_station = ChipStationSlot(card_slot, port=port + card_slot)
        self.psam_slot = ChipStationSlot(psam_slot, port=port + psam_slot)
        self.psam = psam or VirtualPsam()
        self._lock = threading.Lock()

    @property
    def card_reader(self) -> str:
        return self.chip_station.reader_name

    @property
    def psam_reader(self) -> str:
        return self.psam_slot.reader_name

    @property
    def address(self) -> tuple[str, int]:
        return self.chip_station.address

    def start(self, card: VirtualSocialSecurityCard | None = None) -> Self:
        self.psam_slot.insert(self.psam)
        if card is not None:
            self.chip_station.insert(card)
        return self

    def stop(self) -> None:
        self.chip_station.remove()
        self.psam_slot.remove()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def insert(self, card: VirtualSocialSecurityCard) -> None:
        self.chip_station.insert(card)

    def remove(self) -> VirtualSocialSecurityCard | None:
        return self.chip_station.remove()  # type: ignore[return-value]

    def fault_names(self) -> list[str]:
        from hardware.smartcard.virtual.faults import FAULTS

        return sorted(FAULTS)

    def inject(self, name: str, count: int | None = None, *, target: str = "card", **params: Any) -> None:
        if target == "psam":
            self.psam.inject(name, count, **params)
            return
        card = self.chip_station.card
        if card is None:
            raise RuntimeError("no card in the chip station to inject a fault into")
        card.inject(name, count, **params)  # type: ignore[attr-defined]

    def clear_faults(self) -> None:
        self.psam.clear_faults()
        card = self.chip_station.card
        if card is not None:
            card.clear_faults()  # type: ignore[attr-defined]
