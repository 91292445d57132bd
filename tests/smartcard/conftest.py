"""Fixtures for the smart-card tests: each test gets a clean rig (no card in the chip station, the
default PSAM, no faults) on the session's pcscd and simulated chip station + PSAM (the ``pcscd`` and
``simulator`` fixtures of tests/pcsc_session.py, one of each for the whole run)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hardware.smartcard.apdu import wait_for_card
from hardware.smartcard.keys import HsmKeyBackend, PsamKeyBackend, SimulatedHsm
from hardware.smartcard.sscard import ChipStation
from hardware.smartcard.virtual import SmartCardSimulator, VirtualPsam, VirtualSocialSecurityCard


class ChipStationRig:
    """The simulator plus helpers to insert cards, swap the PSAM and build drivers."""

    def __init__(self, sim: SmartCardSimulator) -> None:
        self.sim = sim
        self.default_psam = sim.psam
        self.hsm = SimulatedHsm()
        self._psam_backends: list[PsamKeyBackend] = []

    def insert(self, card: VirtualSocialSecurityCard) -> VirtualSocialSecurityCard:
        self.sim.insert(card)
        assert wait_for_card(self.sim.card_reader, 5.0, atr=card.atr), "pcscd did not see the inserted card"
        return card

    def remove(self) -> None:
        self.sim.remove()
        assert wait_for_card(self.sim.card_reader, 5.0, present=False)

    def swap_psam(self, psam: VirtualPsam | None) -> None:
        """Takes the PSAM out and puts ``psam`` in (None: leave the slot empty)."""
        self.sim.psam_slot.remove()
        assert wait_for_card(self.sim.psam_reader, 5.0, present=False)
        self.sim.psam = psam or self.default_psam
        if psam is not None:
            self.sim.psam_slot.insert(psam)
            assert wait_for_card(self.sim.psam_reader, 5.0, atr=psam.atr)

    def backend(self, kind: str, **kwargs):  # type: ignore[no-untyped-def]
        if kind == "hsm":
            return HsmKeyBackend(self.hsm)
        backend = PsamKeyBackend(self.sim.psam_reader, **kwargs)
        self._psam_backends.append(backend)
        return backend

    def station(self, kind: str = "psam", **kwargs) -> ChipStation:  # type: ignore[no-untyped-def]
        return ChipStation(self.sim.card_reader, self.backend(kind, **kwargs))

    def reset(self) -> None:
        for backend in self._psam_backends:
            backend.close()
        if self.sim.chip_station.occupied:
            self.sim.remove()
        self.sim.psam.clear_faults()
        if self.sim.psam is not self.default_psam or not self.sim.psam_slot.occupied:
            self.sim.psam_slot.remove()
            self.sim.psam = self.default_psam
            self.sim.psam_slot.insert(self.default_psam)
            assert wait_for_card(self.sim.psam_reader, 5.0, atr=self.default_psam.atr)
        # The next test must not meet this test's card as pcscd's stale state.
        assert wait_for_card(self.sim.card_reader, 5.0, present=False)


@pytest.fixture
def rig(simulator: SmartCardSimulator) -> Iterator[ChipStationRig]:
    rig = ChipStationRig(simulator)
    try:
        yield rig
    finally:
        rig.reset()
