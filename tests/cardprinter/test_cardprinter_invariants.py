"""Whatever happens, every blank card is somewhere known: hopper + printer + bin + taken = loaded,
the driver's view of the position equals the simulator's, and an error names that position."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.devices.cardprinter import CardPosition, CardPrinterError
from printer.cardprinter.driver import EvolisCardPrinter
from printer.cardprinter.simulator import CardPrinterSimulator, RecordingChipStation, SlotChipStation
from printer.cardprinter.transport import TcpTransport

N_CARDS = 4
FAULT = st.sampled_from(
    [
        ("jam", {"stage": "feed"}),
        ("jam", {"stage": "print"}),
        ("jam", {"stage": "eject"}),
        ("jam", {"stage": "reject"}),
        ("jam", {"stage": "print", "hard": True}),
        ("hopper_empty", {}),
        ("ribbon_out", {}),
        ("cover_open", {}),
        ("reject_bin_full", {}),
        ("stuck_at_chip_station", {}),
        ("card_not_taken", {}),
    ]
)
OPERATION = st.one_of(
    st.sampled_from(
        ["feed", "print", "eject", "reject", "recover", "reseat", "clear", "empty_bin", "status"]
    ),
    st.tuples(FAULT, st.sampled_from([1, None])),
)


class _OneFace:
    """The renderer's output computed once: this test is about the mechanics, not the pixels."""

    def __init__(self, renderer, face) -> None:
        self._rendered = renderer.render(face)

    def render(self, face):
        return self._rendered


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(OPERATION, min_size=1, max_size=10))
def test_every_card_is_always_somewhere_known(renderer, face, clock, operations):
    chip = RecordingChipStation()
    numbers = [f"A{n:08d}" for n in range(1, N_CARDS + 1)]
    with CardPrinterSimulator(numbers, chip_station=chip, reject_bin_capacity=3) as sim:
        printer = EvolisCardPrinter(
            TcpTransport.from_address(sim.address),
            renderer=_OneFace(renderer, face),
            take_card_timeout_s=2.0,
            poll_interval_s=0.5,
            clock=clock,
            sleep=clock.sleep,
        )
        printer.open()
        try:
            for op in operations:
                error = None
                try:
                    if isinstance(op, tuple):
                        (name, params), count = op
                        sim.inject(name, count, **params)
                    elif op == "feed":
                        printer.feed_to_chip_station()
                    elif op == "print":
                        printer.print_face(face)
                    elif op == "eject":
                        printer.eject_to_citizen()
                    elif op == "reject":
                        printer.reject("test")
                    elif op == "reseat":
                        printer.reseat_at_chip_station()
                    elif op == "recover":
                        printer.recover()
                    elif op == "clear":
                        sim.clear_faults()
                    elif op == "empty_bin":
                        sim.empty_reject_bin()
                    else:
                        printer.status()
                except CardPrinterError as exc:
                    error = exc
                inside = 1 if sim.card is not None else 0
                assert (
                    len(sim.hopper)
                    + inside
                    + len(sim.reject_bin_numbers)
                    + len(sim.taken)
                    + sim.counters["rejected"]
                    - len(sim.reject_bin_numbers)
                    == N_CARDS
                ), op
                assert printer.where_is_card() is sim.position, op
                if error is not None:
                    assert error.position is sim.position, (op, error)
                expected_chip = sim.card.number if sim.position is CardPosition.CHIP_STATION else None
                assert chip.current == expected_chip, op
        finally:
            printer.close()


def test_slot_chip_station_puts_the_numbered_virtual_card_into_the_slot():
    class Slot:
        def __init__(self) -> None:
            self.card = None

        def insert(self, card) -> None:
            self.card = card

        def remove(self) -> None:
            self.card = None

    slot = Slot()
    station = SlotChipStation(slot, card_for=lambda number: {"number": number, "chip": []})
    station.insert("A00000001")
    assert slot.card == {"number": "A00000001", "chip": []}
    slot.card["chip"].append("personalized")
    station.remove()
    assert slot.card is None
    station.insert("A00000001")  # back at the station: the same chip, still personalized
    assert slot.card["chip"] == ["personalized"]
