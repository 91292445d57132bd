"""The driver against the simulator over a real pseudo-terminal: layouts, statuses, faults, events."""

from __future__ import annotations

import itertools
import os
import time

import pytest

from hardware.idreader import protocol as p
from hardware.idreader.reader import IdCardReader
from hardware.idreader.simulator import IdReaderSimulator
from kiosk.devices import DeviceState
from kiosk.devices.idreader import (
    BadChecksumError,
    CardInserted,
    CardReadFailed,
    CardRemoved,
    CardRemovedError,
    CardType,
    IdReader,
    NoCardError,
    PortUnavailableError,
    ReaderStatusError,
    ReplyTimeoutError,
    SamNotAuthorizedError,
    SelfTestFailedError,
    TruncatedFrameError,
    Validity,
)
from tests.idreader.conftest import PEOPLE_FILE, EventLog, make_reader, wait_until

FIND, SELECT, READ = (0x20, 0x01), (0x20, 0x02), (0x30, 0x01)


def test_reader_satisfies_the_core_protocol(reader: IdCardReader) -> None:
    assert isinstance(reader, IdReader)


@pytest.mark.parametrize("key", sorted(IdReaderSimulator(PEOPLE_FILE).deck))
def test_every_deck_card_reads_over_the_pty(
    simulator: IdReaderSimulator, reader: IdCardReader, key: str
) -> None:
    simulator.place(key)
    card = reader.read_identity()
    expected = simulator.deck[key]
    assert card.name == expected.text.name and card.id_number == expected.text.id_number.upper()
    assert card.card_type is expected.text.card_type and card.photo == expected.photo
    assert simulator.commands[-3:] == [FIND, SELECT, READ]


def test_all_four_layouts_and_validity(simulator: IdReaderSimulator, reader: IdCardReader) -> None:
    types = set()
    for key in ("renewal", "hk_macau_taiwan", "foreign_permanent_2017", "foreign_permanent_2023"):
        simulator.place(key)
        types.add(reader.read_identity().card_type)
    assert types == set(CardType)
    simulator.place("expired_id")
    assert reader.read_identity().validity is Validity.EXPIRED  # TODAY = 2026-11-23


def test_fingerprint_read_and_card_without_fingerprints(simulator: IdReaderSimulator) -> None:
    with make_reader(simulator.path, with_fingerprint=True) as driver:
        simulator.place("with_fingerprint")
        assert len(driver.read_identity().fingerprint) == 1024
        assert simulator.commands[-1] == (0x30, 0x10)
        simulator.place("renewal")
        assert driver.read_identity().fingerprint == b""


def test_new_address_sam_id_and_reset(simulator: IdReaderSimulator, reader: IdCardReader) -> None:
    simulator.place("with_fingerprint")
    assert reader.read_new_address() == "示例市示例区新居路99号"
    simulator.place("renewal")
    assert reader.read_new_address() is None  # SW3 91: no appended address
    assert reader.sam_id() == "05.01-20080808-0000123456-0000654321"
    reader.reset_sam()
    reader.check_sam()


def test_set_baud_switches_both_ends(simulator: IdReaderSimulator, reader: IdCardReader) -> None:
    reader.set_baud(57600)
    assert simulator.baud == 57600
    simulator.place("renewal")
    assert reader.read_identity().name == "王建国"


def test_no_card_raises_no_card(reader: IdCardReader) -> None:
    with pytest.raises(NoCardError) as caught:
        reader.read_identity()
    assert caught.value.code == "idreader.no_card" and caught.value.sw3 == 0x80


# ------------------------------------------------------------------ every SW3 code

_READ_STATUSES = [s for s in p.Sw3 if s not in (p.Sw3.SUCCESS, p.Sw3.FIND_SUCCESS)]


@pytest.mark.parametrize("status", _READ_STATUSES, ids=lambda s: s.name)
def test_every_sw3_status_on_read_raises_its_error_then_recovers(
    simulator: IdReaderSimulator, reader: IdCardReader, status: p.Sw3
) -> None:
    simulator.place("renewal")
    simulator.inject("status", sw3=int(status))
    with pytest.raises(ReaderStatusError) as caught:
        reader.read_identity()
    assert caught.value.sw3 == status and caught.value.code == p.status_error(status).code
    reads = simulator.commands.count(READ)
    assert reads == (1 + reader.retries if caught.value.retryable else 1)
    simulator.clear_faults()
    assert reader.read_identity().name == "王建国"


@pytest.mark.parametrize("status", [p.Sw3.FIND_FAILED, p.Sw3.SAM_NOT_AUTHORIZED, p.Sw3.CARD_NOT_FOUND])
def test_status_on_find_and_select(simulator: IdReaderSimulator, reader: IdCardReader, status: p.Sw3) -> None:
    simulator.place("renewal")
    for command in ("find", "select"):
        simulator.inject("status", count=1, sw3=int(status), command=command)
        with pytest.raises(ReaderStatusError) as caught:
            reader.read_identity()
        assert caught.value.sw3 == status
    assert reader.read_identity().name == "王建国"


# ------------------------------------------------------------------ faults


@pytest.mark.parametrize(
    "fault,params,error",
    [
        ("bad_checksum", {}, BadChecksumError),
        ("truncated_frame", {}, TruncatedFrameError),
        ("truncated_frame", {"keep": 5}, TruncatedFrameError),
        ("silence", {}, ReplyTimeoutError),
        ("silence", {"command": "select"}, ReplyTimeoutError),
        ("card_removed_mid_read", {}, CardRemovedError),
    ],
)
def test_frame_faults_once_are_retried_and_persistent_ones_raise(
    simulator: IdReaderSimulator, reader: IdCardReader, fault: str, params: dict, error: type
) -> None:
    simulator.place("renewal")
    simulator.inject(fault, count=1, **params)
    assert reader.read_identity().name == "王建国"
    assert simulator.commands.count(FIND) == 2  # the retry restarted at find
    simulator.inject(fault, **params)
    with pytest.raises(error):
        reader.read_identity()
    simulator.clear_faults()
    assert reader.read_identity().name == "王建国"
    assert reader.status().state is DeviceState.READY


@pytest.mark.parametrize("command", ["find", "select", "read"])
def test_garbage_before_a_reply_is_skipped_without_a_retry(
    simulator: IdReaderSimulator, reader: IdCardReader, command: str
) -> None:
    simulator.place("renewal")
    simulator.inject("garbage_bytes", count=1, command=command, length=200)
    assert reader.read_identity().name == "王建国"
    assert simulator.commands == [FIND, SELECT, READ]


def test_card_lifted_mid_read_is_reported_as_removed(
    simulator: IdReaderSimulator, reader: IdCardReader
) -> None:
    simulator.place("renewal")
    simulator.inject("card_removed_mid_read", count=1, lift=True)
    with pytest.raises(CardRemovedError):
        reader.read_identity()
    simulator.place("renewal")
    assert reader.read_identity().name == "王建国"


@pytest.mark.parametrize(
    "fault,error,code",
    [
        ("sam_not_authorized", SamNotAuthorizedError, "idreader.sam_not_authorized"),
        ("self_test_failed", SelfTestFailedError, "idreader.self_test_failed"),
    ],
)
def test_module_faults_show_in_status_and_clear(
    simulator: IdReaderSimulator, reader: IdCardReader, fault: str, error: type, code: str
) -> None:
    simulator.place("renewal")
    simulator.inject(fault)
    with pytest.raises(error):
        reader.read_identity()
    status = reader.status()
    assert (status.state, status.code, status.message_key) == (DeviceState.FAULT, code, code)
    assert simulator.commands.count(FIND) == 1  # not retried: asking again cannot help
    simulator.clear_faults()
    reader.check_sam()
    assert reader.status().state is DeviceState.READY
    assert reader.read_identity().name == "王建国"


def test_port_gone_then_back_under_the_same_name(tmp_path) -> None:
    link = tmp_path / "ttyIDR"
    first = IdReaderSimulator(PEOPLE_FILE, card_delay_s=0.0).start()
    os.symlink(first.path, link)
    driver = make_reader(str(link))
    events = EventLog()
    driver.add_listener(events)
    second = IdReaderSimulator(PEOPLE_FILE, card_delay_s=0.0)
    try:
        first.place("renewal")
        driver.start()
        assert isinstance(events.next(), CardInserted)
        first.stop()  # USB unplugged
        assert isinstance(events.next(), CardRemoved)
        wait_until(lambda: driver.status().state is DeviceState.OFFLINE, what="offline")
        assert driver.status().code == "idreader.port_unavailable"
        with pytest.raises(PortUnavailableError):
            driver.read_identity()
        second.start()
        second.place("active_card")
        os.remove(link)
        os.symlink(second.path, link)  # udev gives the new device the same name
        event = events.next()
        assert isinstance(event, CardInserted) and event.card.name == "周国华"
        assert driver.status().state in (DeviceState.READY, DeviceState.BUSY)
    finally:
        driver.close()
        first.stop()
        second.stop()


def test_missing_port_is_offline() -> None:
    driver = make_reader("/dev/no-such-idreader")
    with pytest.raises(PortUnavailableError):
        driver.open()
    assert driver.status().state is DeviceState.OFFLINE


# ------------------------------------------------------------------ events


@pytest.fixture
def polling(simulator: IdReaderSimulator):
    driver = make_reader(simulator.path)
    events = EventLog()
    driver.add_listener(events)
    driver.start()
    yield driver, events
    driver.close()


def test_one_insert_per_card_then_removed_then_reinserted(simulator: IdReaderSimulator, polling) -> None:
    _driver, events = polling
    simulator.place("renewal")
    event = events.next()
    assert isinstance(event, CardInserted) and event.card.name == "王建国"
    seen = len(simulator.commands)
    wait_until(lambda: simulator.commands[seen:].count(FIND) >= 10, what="ten more polls")
    assert events.events.empty() and simulator.commands.count(READ) == 1  # no repeat while it lies there
    simulator.lift()
    assert isinstance(events.next(), CardRemoved)
    simulator.place("renewal")
    assert isinstance(events.next(), CardInserted)
    simulator.place("active_card")  # swapped within one poll: the module's IIN differs
    assert isinstance(events.next(), CardRemoved)
    event = events.next()
    assert isinstance(event, CardInserted) and event.card.name == "周国华"


def test_unreadable_card_is_reported_once_and_read_when_the_fault_clears(
    simulator: IdReaderSimulator, polling
) -> None:
    _driver, events = polling
    simulator.inject("bad_checksum")
    simulator.place("renewal")
    event = events.next()
    assert isinstance(event, CardReadFailed) and event.code == "idreader.bad_checksum"
    reads = simulator.commands.count(READ)
    wait_until(lambda: simulator.commands.count(READ) >= reads + 6, what="more read attempts")
    assert events.events.empty()
    simulator.clear_faults()
    assert isinstance(events.next(), CardInserted)
    simulator.lift()
    assert isinstance(events.next(), CardRemoved)


def test_card_placed_and_lifted_repeatedly_gives_alternating_events(
    simulator: IdReaderSimulator, polling
) -> None:
    _driver, events = polling
    simulator.place("renewal")
    assert isinstance(events.next(), CardInserted)
    # Flickering every find (a card sliding on the reader) is not a removal...
    simulator.inject("card_bounce", count=10, every=1)
    wait_until(lambda: not simulator.active_faults(), what="the flicker to end")
    # ...but lying off the field for several finds is, each time.
    simulator.inject("card_bounce", count=6, every=3)
    wait_until(lambda: not simulator.active_faults(), what="the bounces to end")
    seen = len(simulator.commands)
    wait_until(lambda: simulator.commands[seen:].count(FIND) >= 5, what="settling polls")
    kinds = [type(e) for e in events.seen]
    assert kinds[0] is CardInserted
    assert all(a is not b for a, b in itertools.pairwise(kinds)), kinds  # never two inserts in a row
    assert kinds[-1] is CardInserted and kinds.count(CardRemoved) == 3, kinds


def test_sam_fault_while_polling_shows_in_status(simulator: IdReaderSimulator, polling) -> None:
    driver, events = polling
    simulator.inject("sam_not_authorized")
    wait_until(lambda: driver.status().state is DeviceState.FAULT, what="fault status")
    simulator.clear_faults()
    wait_until(lambda: driver.status().state is DeviceState.READY, what="recovery")
    simulator.place("renewal")
    assert isinstance(events.next(), CardInserted)


def test_simulator_offers_the_card_placer_and_fault_surface(simulator: IdReaderSimulator) -> None:
    from kiosk.devices.idreader import SimulatedCardPlacer

    assert isinstance(simulator, SimulatedCardPlacer)
    assert simulator.card_keys()[0] == "first_issue" and "foreign_permanent_2023" in simulator.card_keys()
    assert set(simulator.fault_names()) >= {
        "bad_checksum", "truncated_frame", "garbage_bytes", "silence",
        "card_removed_mid_read", "sam_not_authorized", "card_bounce",
    }  # fmt: skip
    with pytest.raises(ValueError):
        simulator.inject("no_such_fault")
    with pytest.raises(KeyError):
        simulator.place("nobody")
    simulator.inject("silence", count=2)
    assert simulator.active_faults() == ["silence"]
    simulator.clear_faults()
    assert simulator.active_faults() == []


def test_sam_check_while_idle_finds_a_sam_fault_that_finds_do_not_show(simulator: IdReaderSimulator) -> None:
    driver = make_reader(simulator.path, sam_check_interval_s=0.05)
    simulator.inject("sam_not_authorized", command="sam")
    driver.start()
    try:
        wait_until(lambda: driver.status().code == "idreader.sam_not_authorized", what="SAM fault")
        simulator.clear_faults()
        wait_until(lambda: driver.status().state is DeviceState.READY, what="recovery")
    finally:
        driver.close()


def test_read_identity_while_polling_runs(simulator: IdReaderSimulator, polling) -> None:
    driver, events = polling
    simulator.place("renewal")
    assert isinstance(events.next(), CardInserted)
    for _ in range(3):
        assert driver.read_identity().name == "王建国"
    assert events.events.empty()


def test_simulator_paces_replies_at_the_baud_rate_plus_its_card_delay() -> None:
    # Lower bounds only: a loaded machine can be slower, never faster than the wire.
    wire_s = (3 * 10 + 15 + 19 + 1295) * 10 / 115200
    for delay in (0.0, 0.15):
        with IdReaderSimulator(PEOPLE_FILE, card_delay_s=delay) as sim, make_reader(sim.path) as driver:
            sim.place("renewal")
            started = time.monotonic()
            driver.read_identity()
            assert time.monotonic() - started >= wire_s + delay - 0.002
