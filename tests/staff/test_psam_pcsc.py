"""The PSAM registry fed by the real PC/SC path: the terminal number is read from the (virtual)
PSAM in the slot through pcscd + vsmartcard-vpcd by the driver the kiosk uses (one pcscd per
machine: run under the machine lock, ``flock /tmp/pcsc.lock``)."""

from __future__ import annotations

import pytest

from hardware.smartcard.virtual import VirtualPsam
from kiosk import staff_actions as sa
from tests.smartcard.conftest import ChipStationRig
from tests.smartcard.conftest import rig as chip_rig  # noqa: F401  (a fixture)
from tests.staff.rig import StaffRig

pytestmark = pytest.mark.pcsc


def test_the_psam_in_the_slot_is_registered_by_the_terminal_number_it_reports(
    rig: StaffRig,
    chip_rig: ChipStationRig,  # noqa: F811
) -> None:
    chip_rig.swap_psam(
        VirtualPsam(terminal_number="440106000107", psam_serial=bytes.fromhex("00112233445566778899"))
    )
    rig.services.devices["psam"] = chip_rig.backend("psam")  # the kiosk's PsamKeyBackend over PC/SC
    view = sa.psam_view(rig.desk)
    assert view.in_slot is not None and view.in_slot.terminal_number == "440106000107"
    record = sa.register_psam(rig.desk, rig.session("1001"))
    assert (record.terminal_number, record.psam_serial) == ("440106000107", "00112233445566778899")
    assert sa.psam_view(rig.desk).slot_matches is True
    chip_rig.swap_psam(None)  # the PSAM is taken out
    assert sa.psam_view(rig.desk).slot_error_key is not None
