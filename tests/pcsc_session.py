"""The session's one pcscd and one simulated chip station + PSAM on vpcd (hardware.smartcard.pcscd;
a pcscd already running is reused). Registered in tests/conftest.py so that every test directory
shares the same two: a second simulator would find the vpcd port taken and pcscd would never see
its cards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hardware.smartcard.apdu import wait_for_card
from hardware.smartcard.pcscd import PcscDaemon
from hardware.smartcard.virtual import SmartCardSimulator


@pytest.fixture(scope="session")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PcscDaemon]:
    daemon = PcscDaemon(log_path=tmp_path_factory.mktemp("pcscd") / "pcscd.log")
    daemon.start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope="session")
def simulator(pcscd: PcscDaemon) -> Iterator[SmartCardSimulator]:
    sim = SmartCardSimulator().start()
    assert wait_for_card(sim.psam_reader, 5.0, atr=sim.psam.atr), "pcscd did not see the PSAM"
    yield sim
    sim.stop()
