"""The card's journey over the real loopback link, and every fault ending in a known place."""

from __future__ import annotations

import pytest
from PIL import Image

from kiosk.devices import Audience, DeviceState
from kiosk.devices.cardprinter import (
    CardInPrinter,
    CardJam,
    CardNotTaken,
    CardPosition,
    CardPrinter,
    CardPrinterOffline,
    CardStuckAtChipStation,
    CoverOpen,
    EjectOutcome,
    EmbosserNotFitted,
    HopperEmpty,
    RejectBinFull,
    RibbonOut,
)


def test_driver_satisfies_the_core_protocol(printer):
    assert isinstance(printer, CardPrinter)


def test_card_fed_personalized_printed_ejected_and_taken(printer, sim, chip_station, face):
    fed = printer.feed_to_chip_station()
    assert fed.card_number == "A00000001" and fed.position is CardPosition.CHIP_STATION
    assert chip_station.current == "A00000001"  # the chip can be personalized now
    printer.print_face(face)
    assert chip_station.current is None
    assert printer.where_is_card() is CardPosition.PRINT_HEAD
    result = printer.eject_to_citizen()
    assert result.outcome is EjectOutcome.TAKEN and result.card_number == "A00000001"
    assert chip_station.events == [("insert", "A00000001"), ("remove", "A00000001")]
    assert [c.number for c in sim.taken] == ["A00000001"]
    counters = printer.counters()
    assert (counters.cards_fed, counters.cards_printed, counters.cards_ejected) == (1, 1, 1)
    assert counters.hopper_count == 4 and counters.ribbon_remaining == 199


def test_printed_face_png_shows_photo_and_text_where_the_layout_puts_them(printer, sim, face):
    printer.feed_to_chip_station()
    printer.print_face(face)
    image = Image.open(sim.faces["A00000001"]).convert("RGB")
    assert image.size == (1016, 648)
    # Photo box 61.6..81.6 mm × 3..28 mm → its centre is coloured; the corner above it is blank.
    px = lambda mm: round(mm * 300 / 25.4)
    assert image.getpixel((px(71.6), px(15.5))) != (255, 255, 255)
    assert image.getpixel((px(80), px(1))) == (255, 255, 255)
    # Text lines (resin black) start at x = 5 mm, name line at y = 20 mm.
    name_band = image.crop((px(5), px(20), px(20), px(23)))
    assert (0, 0, 0) in [c for _, c in name_band.getcolors(1 << 16)]


def test_feed_after_restart_reuses_the_card_at_the_chip_station(printer, sim, chip_station):
    printer.feed_to_chip_station()
    again = printer.feed_to_chip_station()
    assert again.resumed and again.card_number == "A00000001"
    assert sim.counters["fed"] == 1 and chip_station.events == [("insert", "A00000001")]


def test_feed_refuses_while_a_printed_card_is_inside_and_recover_rejects_it(printer, sim, face):
    printer.feed_to_chip_station()
    printer.print_face(face)
    with pytest.raises(CardInPrinter) as info:
        printer.feed_to_chip_station()
    assert info.value.position is CardPosition.PRINT_HEAD and info.value.audience is Audience.STAFF
    recovered = printer.recover()
    assert recovered.found_at is CardPosition.PRINT_HEAD and recovered.rejected
    assert sim.reject_bin_numbers == ["A00000001"]


def test_card_not_taken_is_retracted_into_the_reject_bin(make_sim, connect, clock, face):
    sim = make_sim()
    sim.inject("card_not_taken")
    printer = connect(sim, take_card_timeout_s=30.0, poll_interval_s=1.0)
    printer.feed_to_chip_station()
    printer.print_face(face)
    result = printer.eject_to_citizen()
    assert result.outcome is EjectOutcome.RETRACTED and result.position is CardPosition.REJECT_BIN
    assert result.waited_s >= 30.0
    assert sim.reject_bin_numbers == ["A00000001"] and not sim.taken


def test_card_not_taken_and_bin_full_leaves_card_in_slot_and_tells_staff(make_sim, connect, face):
    sim = make_sim()
    printer = connect(sim, take_card_timeout_s=5.0)
    printer.feed_to_chip_station()
    sim.inject("card_not_taken")
    sim.inject("reject_bin_full")
    with pytest.raises(CardNotTaken) as info:
        printer.eject_to_citizen()
    assert info.value.position is CardPosition.OUTPUT_SLOT and info.value.audience is Audience.STAFF
    status = printer.status()
    assert status.state is DeviceState.ATTENTION


def test_card_left_in_output_slot_shows_card_not_taken_to_staff(make_sim, connect):
    sim = make_sim(take_delay_s=None)  # nobody takes it; the driver is not waiting (e.g. restart)
    printer = connect(sim, take_card_timeout_s=1.0)
    printer.feed_to_chip_station()
    sim.inject("reject_bin_full")
    with pytest.raises(CardNotTaken):
        printer.eject_to_citizen()
    sim.clear_faults()
    status = printer.status()
    assert status.state is DeviceState.ATTENTION and status.code == "cardprinter.card_not_taken"
    assert printer.where_is_card() is CardPosition.OUTPUT_SLOT


def test_hopper_empty_feeds_nothing_and_tells_staff(make_sim, connect, chip_station):
    sim = make_sim(numbers=[])
    printer = connect(sim)
    with pytest.raises(HopperEmpty) as info:
        printer.feed_to_chip_station()
    assert info.value.audience is Audience.STAFF and info.value.position is CardPosition.NONE
    assert chip_station.events == []
    status = printer.status()
    assert (status.state, status.code) == (DeviceState.ATTENTION, "cardprinter.hopper_empty")


def test_hopper_empty_fault_on_the_feed_itself(sim, printer):
    sim.inject("hopper_empty", count=1)
    # The pre-flight sees it first: nothing leaves the hopper.
    with pytest.raises(HopperEmpty):
        printer.feed_to_chip_station()
    assert next(iter(sim.hopper)) == "A00000001" and sim.position is CardPosition.NONE


def test_ribbon_out_before_feed_keeps_cards_in_the_hopper(sim, printer):
    sim.inject("ribbon_out")
    with pytest.raises(RibbonOut) as info:
        printer.feed_to_chip_station()
    assert info.value.audience is Audience.STAFF and sim.counters["fed"] == 0
    assert printer.status().code == "cardprinter.ribbon_out"


def test_ribbon_out_during_print_leaves_card_at_chip_station_then_rejected(sim, printer, face):
    printer.feed_to_chip_station()
    sim.inject("ribbon_out")
    with pytest.raises(RibbonOut) as info:
        printer.print_face(face)
    assert info.value.position is CardPosition.CHIP_STATION and info.value.card_number == "A00000001"
    printer.reject("print_failed")
    assert sim.reject_bin_numbers == ["A00000001"]


def test_cover_open_refuses_motion_and_card_stays_put(sim, printer, face):
    printer.feed_to_chip_station()
    sim.inject("cover_open")
    with pytest.raises(CoverOpen) as info:
        printer.print_face(face)
    assert info.value.position is CardPosition.CHIP_STATION and info.value.audience is Audience.STAFF
    assert printer.status().code == "cardprinter.cover_open"
    sim.clear_faults()
    printer.reject("cover_opened")
    assert sim.reject_bin_numbers == ["A00000001"]


def test_reject_bin_full_blocks_feeding_before_a_card_leaves_the_hopper(sim, printer):
    sim.inject("reject_bin_full")
    with pytest.raises(RejectBinFull):
        printer.feed_to_chip_station()
    assert sim.counters["fed"] == 0
    assert printer.status().code == "cardprinter.reject_bin_full"


def test_reject_bin_full_during_reject_keeps_card_inside(sim, printer):
    printer.feed_to_chip_station()
    sim.inject("reject_bin_full")
    with pytest.raises(RejectBinFull) as info:
        printer.reject("chip_write_failed")
    assert info.value.position is CardPosition.CHIP_STATION and info.value.card_number == "A00000001"


def test_reject_bin_capacity_counts_real_cards(make_sim, connect):
    sim = make_sim(reject_bin_capacity=1)
    printer = connect(sim)
    printer.feed_to_chip_station()
    printer.reject("chip_write_failed")
    assert printer.status().code == "cardprinter.reject_bin_full"
    assert sim.empty_reject_bin() == ["A00000001"]
    assert printer.status().state is DeviceState.READY


@pytest.mark.parametrize(
    "stage,expected",
    [
        ("feed", CardPosition.PRINT_HEAD),
        ("print", CardPosition.PRINT_HEAD),
        ("eject", CardPosition.PRINT_HEAD),
        ("reject", CardPosition.CHIP_STATION),
    ],
)
def test_transient_jam_reports_position_then_card_is_rejected(sim, printer, face, stage, expected):
    sim.inject("jam", count=1, stage=stage)
    with pytest.raises(CardJam) as info:
        printer.feed_to_chip_station()
        if stage in ("print", "eject"):
            printer.print_face(face)
        if stage == "eject":
            printer.eject_to_citizen()
        if stage == "reject":
            printer.reject("test")
    assert info.value.position is expected and info.value.card_number == "A00000001"
    assert info.value.audience is Audience.STAFF
    assert printer.status().code in ("cardprinter.jam", "cardprinter.stuck_at_chip_station")
    printer.reject("jam")  # resets the printer, then puts the card into the bin
    assert sim.reject_bin_numbers == ["A00000001"] and sim.position is CardPosition.NONE


def test_hard_jam_needs_staff_and_card_stays_where_it_stopped(sim, printer, face):
    sim.inject("jam", stage="print", hard=True)
    printer.feed_to_chip_station()
    with pytest.raises(CardJam):
        printer.print_face(face)
    with pytest.raises(CardJam) as info:
        printer.reject("jam")
    assert info.value.position is CardPosition.PRINT_HEAD
    status = printer.status()
    assert (status.state, status.code) == (DeviceState.ATTENTION, "cardprinter.jam")
    sim.clear_faults()  # staff opened the cover and freed the card
    printer.reject("jam")
    assert sim.reject_bin_numbers == ["A00000001"]


def test_card_stuck_at_chip_station(sim, printer, face, chip_station):
    printer.feed_to_chip_station()
    sim.inject("stuck_at_chip_station")
    with pytest.raises(CardStuckAtChipStation) as info:
        printer.print_face(face)
    assert info.value.position is CardPosition.CHIP_STATION and info.value.audience is Audience.STAFF
    assert chip_station.current == "A00000001"  # still in the reader
    with pytest.raises(CardStuckAtChipStation):
        printer.reject("stuck")
    assert printer.status().code == "cardprinter.stuck_at_chip_station"
    sim.clear_faults()
    printer.reject("stuck")
    assert chip_station.current is None and sim.reject_bin_numbers == ["A00000001"]


def test_no_reply_is_offline_and_status_says_so(sim, printer):
    sim.inject("no_reply")
    with pytest.raises(CardPrinterOffline):
        printer.where_is_card()
    status = printer.status()
    assert status.state is DeviceState.OFFLINE


def test_status_warns_hopper_near_empty_and_ribbon_low_while_still_serving(make_sim, connect):
    sim = make_sim(numbers=["A1", "A2"], hopper_near_empty=3, ribbon_remaining=5, ribbon_low=20)
    printer = connect(sim, hopper_near_empty=3)
    status = printer.status()
    assert status.state is DeviceState.READY and status.code == "cardprinter.ribbon_low"
    assert status.levels["hopper"] == 2 and status.levels["ribbon_percent"] == 2
    sim.ribbon_remaining = 200
    assert printer.status().code == "cardprinter.hopper_near_empty"


def test_emboss_records_number_and_name_and_draws_on_preview(make_sim, connect, face):
    sim = make_sim(embosser_fitted=True)
    printer = connect(sim, embosser_fitted=True, emboss_name=True)
    printer.feed_to_chip_station()
    printer.print_face(face)
    before = Image.open(sim.faces["A00000001"]).convert("RGB").tobytes()
    printer.emboss("A00000001", face.name_latin)
    card = sim.card
    assert [line[3] for line in card.embossed] == ["A00000001", "ZHANG SANFENG"]
    assert Image.open(sim.faces["A00000001"]).convert("RGB").tobytes() != before
    assert printer.counters().cards_embossed == 2


def test_emboss_without_embosser_is_refused(printer):
    with pytest.raises(EmbosserNotFitted):
        printer.emboss("A00000001")


def test_jam_during_emboss(make_sim, connect, face):
    sim = make_sim(embosser_fitted=True)
    sim.inject("jam", count=1, stage="emboss")
    printer = connect(sim, embosser_fitted=True)
    printer.feed_to_chip_station()
    with pytest.raises(CardJam) as info:
        printer.emboss("A00000001")
    assert info.value.position is CardPosition.PRINT_HEAD
    printer.reject("jam")
    assert sim.reject_bin_numbers == ["A00000001"]


def test_simulator_refuses_unknown_fault_names(sim):
    assert set(sim.fault_names()) >= {
        "jam",
        "hopper_empty",
        "ribbon_out",
        "cover_open",
        "reject_bin_full",
        "stuck_at_chip_station",
        "card_not_taken",
    }
    with pytest.raises(ValueError):
        sim.inject("paper_out")
    with pytest.raises(ValueError):
        sim.inject("jam", stage="nowhere")


def test_hopper_is_loaded_with_the_bureau_numbers_in_order(make_sim, connect):
    sim = make_sim(numbers=["B00000007"])
    sim.load_hopper(["B00000008"])
    printer = connect(sim)
    assert printer.feed_to_chip_station().card_number == "B00000007"
    printer.reject("test")
    assert printer.feed_to_chip_station().card_number == "B00000008"


def test_after_a_timeout_the_next_command_reconnects_and_reads_its_own_reply(sim, printer):
    printer.feed_to_chip_station()
    sim.inject("no_reply", count=1)
    with pytest.raises(CardPrinterOffline) as info:
        printer.counters()
    assert info.value.retryable
    assert printer.where_is_card() is CardPosition.CHIP_STATION
    assert printer.counters().cards_fed == 1


def test_reseat_takes_the_same_card_off_the_contacts_and_back(sim, printer, chip_station):
    printer.feed_to_chip_station()
    printer.reseat_at_chip_station()
    assert printer.where_is_card() is CardPosition.CHIP_STATION
    assert chip_station.events == [("insert", "A00000001"), ("remove", "A00000001"), ("insert", "A00000001")]
    assert sim.counters["fed"] == 1


def test_reseat_of_a_stuck_card_reports_it_still_at_the_chip_station(sim, printer):
    printer.feed_to_chip_station()
    sim.inject("stuck_at_chip_station")
    with pytest.raises(CardStuckAtChipStation) as info:
        printer.reseat_at_chip_station()
    assert info.value.position is CardPosition.CHIP_STATION


def test_card_face_repr_hides_personal_data(face):
    text = repr(face)
    assert face.name not in text and face.ssn not in text and "photo" not in text


def test_open_against_nothing_listening_is_offline_for_the_engineer(renderer):
    import socket

    from printer.cardprinter.driver import EvolisCardPrinter
    from printer.cardprinter.transport import TcpTransport

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    printer = EvolisCardPrinter(TcpTransport("127.0.0.1", port, connect_timeout_s=1.0), renderer=renderer)
    with pytest.raises(CardPrinterOffline) as info:
        printer.open()
    assert info.value.audience is Audience.ENGINEER
    assert printer.status().state is DeviceState.OFFLINE


def test_open_transport_picks_the_link_from_configuration():
    from printer.cardprinter.transport import (
        SerialTransport,
        TcpTransport,
        UsbPrinterTransport,
        open_transport,
    )

    assert isinstance(open_transport("tcp", "127.0.0.1:9100"), TcpTransport)
    assert isinstance(open_transport("serial", "/dev/ttyS0"), SerialTransport)
    assert isinstance(open_transport("usb", "/dev/usb/lp0"), UsbPrinterTransport)
    with pytest.raises(ValueError):
        open_transport("tcp", "no-port")


def test_printer_that_comes_up_later_is_set_up_on_the_next_call(make_sim, renderer, clock):
    from printer.cardprinter.driver import EvolisCardPrinter
    from printer.cardprinter.transport import TcpTransport

    sim = make_sim()
    host, port = sim.address.rsplit(":", 1)
    sim.stop()  # the printer is switched off when the kiosk starts
    printer = EvolisCardPrinter(
        TcpTransport(host, int(port)), renderer=renderer, clock=clock, sleep=clock.sleep
    )
    with pytest.raises(CardPrinterOffline):
        printer.open()
    assert printer.status().state is DeviceState.OFFLINE
    again = make_sim(port=int(port))  # switched on
    try:
        assert printer.status().state is DeviceState.READY
        assert again.commands_seen[:5] == ["Pem", "Psmgr", "Pbc", "Pcim", "Pcrm"]
    finally:
        printer.close()
