"""Random sequences of ledger operations against a plain model of where each card is: the ledger
refuses exactly what the model says is impossible, and its books always add up."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from kiosk.ledger import (
    LEDGER_SCHEMA,
    CardLedger,
    CardNotInPlace,
    CardNotRegistered,
    CountSource,
    LedgerDiscrepancy,
    LedgerError,
    Movement,
    Place,
    RejectReason,
    StockCount,
)
from kiosk.storage import open_state_db

# The model's own statement of the rules (not the ledger's table, so a wrong table is caught).
MODEL_TRANSITIONS = {
    Movement.FED: (Place.HOPPER, Place.PRINTER),
    Movement.ISSUED: (Place.PRINTER, Place.ISSUED),
    Movement.REJECTED: (Place.PRINTER, Place.REJECT_BIN),
    Movement.HANDED_OVER: (Place.REJECT_BIN, Place.HANDED_OVER),
    Movement.DESTROYED: (Place.REJECT_BIN, Place.DESTROYED),
    Movement.RETURNED: (Place.HOPPER, Place.RETURNED),
}
POOL = [f"P{n:04d}" for n in range(12)]
cards = st.sampled_from(POOL)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._dir = tempfile.TemporaryDirectory()
        self.conn = open_state_db(Path(self._dir.name), {"ledger": LEDGER_SCHEMA})
        self.ledger = CardLedger(self.conn)
        self.model: dict[str, Place] = {}
        self.movements = 0
        self.open_discrepancies = 0

    def teardown(self) -> None:
        self.conn.close()
        self._dir.cleanup()

    @rule(batch=st.lists(cards, min_size=1, max_size=4))
    def restock(self, batch: list[str]) -> None:
        possible = len(set(batch)) == len(batch) and not any(c in self.model for c in batch)
        try:
            self.ledger.register_cards(batch, operator="S001")
        except LedgerError:
            assert not possible
            return
        assert possible
        for card in batch:
            self.model[card] = Place.HOPPER
        self.movements += len(batch)

    def _move(self, card: str, movement: Movement, action) -> None:
        source, target = MODEL_TRANSITIONS[movement]
        try:
            action()
        except CardNotRegistered:
            assert card not in self.model
            return
        except CardNotInPlace:
            assert card in self.model and self.model[card] is not source
            return
        assert self.model.get(card) is source
        self.model[card] = target
        self.movements += 1

    @rule(card=cards)
    def feed(self, card: str) -> None:
        self._move(card, Movement.FED, lambda: self.ledger.feed(card, visit_id="V"))

    @rule(card=cards)
    def issue(self, card: str) -> None:
        self._move(card, Movement.ISSUED, lambda: self.ledger.issue(card, visit_id="V"))

    @rule(card=cards, reason=st.sampled_from(RejectReason))
    def reject(self, card: str, reason: RejectReason) -> None:
        self._move(card, Movement.REJECTED, lambda: self.ledger.reject(card, reason, visit_id="V"))

    @rule(card=cards)
    def hand_over(self, card: str) -> None:
        self._move(card, Movement.HANDED_OVER, lambda: self.ledger.hand_over([card], operator="S001"))

    @rule(card=cards)
    def destroy(self, card: str) -> None:
        self._move(card, Movement.DESTROYED, lambda: self.ledger.destroy([card], operator="S001"))

    @rule(card=cards)
    def return_to_vault(self, card: str) -> None:
        self._move(card, Movement.RETURNED, lambda: self.ledger.return_to_vault([card], operator="S001"))

    @rule(hopper_error=st.integers(-1, 1), bin_error=st.integers(-1, 1))
    def count(self, hopper_error: int, bin_error: int) -> None:
        per = {p: sum(1 for v in self.model.values() if v is p) for p in Place}
        observed = StockCount(
            hopper=max(0, per[Place.HOPPER] + hopper_error),
            reject_bin=max(0, per[Place.REJECT_BIN] + bin_error),
            in_printer=per[Place.PRINTER],
        )
        truthful = observed.hopper == per[Place.HOPPER] and observed.reject_bin == per[Place.REJECT_BIN]
        try:
            self.ledger.count(observed, source=CountSource.STAFF, operator="S001")
        except LedgerDiscrepancy:
            assert not truthful
            self.open_discrepancies += 1
        else:
            assert truthful
        self.movements += 1

    @invariant()
    def places_match_the_model(self) -> None:
        balance = self.ledger.balance()
        for place in Place:
            assert balance.per_place[place] == sum(1 for v in self.model.values() if v is place)
        assert balance.registered == len(self.model)
        assert balance.held == balance.expected.total

    @invariant()
    def nothing_is_lost_from_the_record(self) -> None:
        assert len(self.ledger.movements()) == self.movements
        assert len(self.ledger.open_discrepancies()) == self.open_discrepancies


TestLedgerSequences = LedgerMachine.TestCase
TestLedgerSequences.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
