"""APDU layer, reader watching, key back ends and status on the real pcscd + vpcd stack."""

from __future__ import annotations

import queue

import pytest
from chip_helpers import next_serial

from hardware.smartcard.apdu import CardChannel, CardEventKind, CommandApdu, ReaderWatcher, list_readers
from hardware.smartcard.crypto import Algorithm
from hardware.smartcard.keys import CardKeyContext, HsmKeyBackend, SimulatedHsm
from hardware.smartcard.layout import PSAM_DF_NAME, UNIONPAY_DEBIT_AID, SsseKey
from hardware.smartcard.pcscd import VPCD_READERS, PcscDaemon
from hardware.smartcard.sscard import ChipStation
from hardware.smartcard.virtual import blank_card_for, personalized_card
from kiosk.devices import DeviceError, DeviceState
from kiosk.devices.smartcard import (
    HsmTransport,
    KeyBackendError,
    KeyWorkRequest,
    NoCardError,
    PsamModule,
    ReaderUnavailableError,
)

pytestmark = pytest.mark.pcsc


def test_pcscd_fixture_shows_both_vpcd_readers(pcscd: PcscDaemon) -> None:
    assert set(VPCD_READERS) <= set(list_readers())
    assert PcscDaemon().start().reused  # a second start reuses the running daemon


def test_get_response_collects_61xx_replies(rig) -> None:
    with CardChannel(rig.sim.psam_reader) as channel:
        response = channel.transmit(CommandApdu(0x00, 0xA4, 0x04, 0x00, PSAM_DF_NAME))
        assert response.ok and response.data.startswith(b"\x6f")
        assert channel.apdu_count == 2  # SELECT answered 61xx, then GET RESPONSE


def test_6cxx_repeats_the_command_with_the_right_length(rig) -> None:
    rig.insert(blank_card_for(next_serial()))
    with CardChannel(rig.sim.card_reader) as channel:
        channel.transmit(CommandApdu(0x00, 0xA4, 0x04, 0x00, UNIONPAY_DEBIT_AID)).expect()
        before = channel.apdu_count
        response = channel.transmit(CommandApdu(0x00, 0xB2, 0x02, 0x0C, le=0x00))
        assert response.ok and response.data[0] == 0x70 and channel.apdu_count - before == 2


def test_empty_reader_and_unknown_reader_raise_typed_errors(rig) -> None:
    with pytest.raises(NoCardError) as caught:
        CardChannel(rig.sim.card_reader).open()
    assert caught.value.retryable
    with pytest.raises(ReaderUnavailableError):
        CardChannel("No Such Reader 00 00").open()


def test_reader_watcher_reports_insert_and_remove(rig) -> None:
    events: queue.Queue = queue.Queue()
    with ReaderWatcher([rig.sim.card_reader], events.put):
        card = rig.insert(blank_card_for(next_serial()))
        inserted = events.get(timeout=5)
        assert inserted.kind is CardEventKind.INSERTED and inserted.atr == card.atr
        rig.remove()
        assert events.get(timeout=5).kind is CardEventKind.REMOVED


def test_psam_identity_for_the_registry(rig) -> None:
    backend = rig.backend("psam")
    assert isinstance(backend, PsamModule)
    identity = backend.identity()
    assert identity.terminal_number == rig.sim.psam.terminal_number
    assert identity.psam_serial == rig.sim.psam.psam_serial.hex().upper()
    assert backend.status().state is DeviceState.READY


def test_station_status_follows_the_reader_and_the_psam(rig) -> None:
    assert rig.station("psam").status().state is DeviceState.READY
    rig.swap_psam(None)
    status = rig.station("psam").status()
    assert status.state is DeviceState.OFFLINE and status.code == "smartcard.psam_failed"
    assert ChipStation("Gone Reader", rig.backend("hsm")).status().state is DeviceState.OFFLINE


def test_hsm_transport_failures_become_key_backend_errors() -> None:
    class Down:
        def key_work(self, request: KeyWorkRequest) -> bytes:
            raise DeviceError("backend down", code="backend.unreachable", retryable=True)

    class Broken:
        def key_work(self, request: KeyWorkRequest) -> bytes:
            raise ValueError("HSM said 07")

    ctx = CardKeyContext(Algorithm.SM4, bytes.fromhex("110100D156000005") + bytes(8), bytes(8), "APP")
    for transport in (Down(), Broken()):
        assert isinstance(transport, HsmTransport)
        with pytest.raises(KeyBackendError) as caught:
            HsmKeyBackend(transport).mac(ctx, SsseKey.STKSSSE, bytes(8), b"msg")
        assert caught.value.code == "smartcard.hsm_failed"


def test_simulated_hsm_serves_the_backend_simulator_protocol() -> None:
    hsm = SimulatedHsm()
    diversifier = b"\x03" + bytes(24)
    out = hsm.compute("external_authenticate", "UKSSSE", diversifier, bytes(16))
    assert len(out) == 8
    assert len(hsm.compute("mac", "STKSSSE", diversifier, bytes(8) + b"hello")) == 4
    with pytest.raises(ValueError):
        hsm.compute("sign", "UKSSSE", diversifier, bytes(16))
    with pytest.raises(ValueError):
        hsm.compute("mac", "UKSSSE", b"\x03", bytes(16))


def test_read_card_basic_of_a_personalized_card(rig) -> None:
    card = rig.insert(personalized_card(next_serial(), algorithm=Algorithm.TDES, name="王小二", pin_tries=6))
    info = rig.station("psam").read_card_basic()
    assert info.name == "王小二" and info.ssn == "110101196005010018"
    assert info.pan == card.pan and info.pin_tries_left == 6
    assert info.card_identification_code == card.card_identification_code
    assert info.region_code == "110100" and not info.is_blank
