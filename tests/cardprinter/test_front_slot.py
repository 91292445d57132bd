"""The holder's own card through the front slot (手动进卡): drawn in to the chip station, given back,
never taken from the hopper nor counted as a blank card."""

from __future__ import annotations

from kiosk.devices.cardprinter import CardPosition, EjectOutcome
from printer.cardprinter.simulator import SlotChipStation


def test_nothing_at_the_front_slot_means_no_card_and_the_hopper_is_untouched(printer, sim):
    assert printer.accept_card_from_front() is None
    assert printer.where_is_card() is CardPosition.NONE
    assert len(sim.hopper) == 5 and sim.counters["fed"] == 0


def test_a_card_pushed_in_at_the_front_reaches_the_chip_station_and_goes_back_to_the_holder(
    printer, sim, chip_station
):
    assert sim.insert_from_front("B12345678")
    assert printer.where_is_card() is CardPosition.OUTPUT_SLOT
    fed = printer.accept_card_from_front()
    assert fed is not None and fed.position is CardPosition.CHIP_STATION and fed.card_number == "B12345678"
    assert chip_station.current == "B12345678"
    again = printer.accept_card_from_front()  # a repeated step finds it where it is
    assert again is not None and again.resumed
    result = printer.eject_to_citizen()
    assert result.outcome is EjectOutcome.TAKEN
    assert [c.number for c in sim.taken] == ["B12345678"]
    assert len(sim.hopper) == 5 and sim.counters["fed"] == 0 and sim.reject_bin == []


def test_after_a_front_card_the_next_feed_comes_from_the_hopper_again(printer, sim):
    sim.insert_from_front("B12345678")
    printer.accept_card_from_front()
    printer.eject_to_citizen()
    fed = printer.feed_to_chip_station()
    assert fed.card_number == "A00000001" and sim.counters["fed"] == 1


def test_the_front_slot_is_refused_while_a_card_is_inside(printer, sim):
    printer.feed_to_chip_station()
    assert not sim.insert_from_front("B12345678")


def test_a_slot_chip_station_reads_the_adopted_chip_of_an_outside_card():
    class Slot:
        def __init__(self) -> None:
            self.inserted: list[object] = []

        def insert(self, card: object) -> None:
            self.inserted.append(card)

        def remove(self) -> None:
            return None

    slot = Slot()
    own_chip = object()
    station = SlotChipStation(slot, card_for=lambda n: ("blank", n))
    station.adopt("B12345678", own_chip)
    station.insert("B12345678")
    assert slot.inserted == [own_chip]
