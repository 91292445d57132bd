"""The card services' flow logic with fakes (no device, no UI): which loss report kinds are offered,
where a locked or forgotten PIN goes, the holder's card given back, and every message key the flows
build at run time present in both languages."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date
from types import SimpleNamespace
from typing import Any

import pytest

from kiosk.backend.api import CardRecord, CardState, LossKind, PersonRecord, TemporaryCardStatus
from kiosk.devices.cardprinter import CardPosition, EjectOutcome, EjectResult, FedCard
from kiosk.flows import holder_card, loss_report, pin_change
from kiosk.i18n import load_messages
from kiosk.prompts import Answer
from kiosk.visit import VisitEnded


@dataclass
class FakeCtx:
    """What the steps under test read: values, the configuration, services, and a scripted UI."""

    config: Any
    services: Any = None
    answers: list[str] = field(default_factory=list)
    asked: list[Any] = field(default_factory=list)
    shown: list[Any] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    saved: dict[str, Any] = field(default_factory=dict)
    visit_id: str = "V-test-0001"
    business: str = "test"

    def ask(self, prompt: Any, until: Any = None) -> Answer:
        self.asked.append(prompt)
        return Answer(self.answers.pop(0))

    def show(self, prompt: Any) -> None:
        self.shown.append(prompt)


def config(**region: Any) -> Any:
    defaults = {"loss_report_modes": ("temporary", "formal"), "kiosk_pin_reset_allowed": False}
    defaults.update(region)
    return SimpleNamespace(region=SimpleNamespace(**defaults), visit=SimpleNamespace(prompt_timeout_s=60),
                           cardprinter=SimpleNamespace(take_card_timeout_s=30))


def person_with(state: CardState | None) -> PersonRecord:
    card = None if state is None else CardRecord("A00000013", state, date(2025, 1, 1), date(2035, 1, 1), "B01")
    return PersonRecord("11010119751010001X", "周国华", "1", "01", date(1975, 10, 10), card, TemporaryCardStatus.NONE, True)


# --------------------------------------------------------------------------- 挂失: which kind


def test_both_kinds_are_offered_where_the_region_allows_both_and_none_is_preselected() -> None:
    ctx = FakeCtx(config(), answers=["formal"], values={"person": person_with(CardState.NORMAL)})
    assert loss_report.choose_kind(ctx) == {"kind": "formal", "chosen": True}
    options = ctx.asked[0].data["options"]
    assert [o[0] for o in options] == ["temporary", "formal"] and ctx.values["kind"] is LossKind.FORMAL


def test_a_region_with_one_kind_asks_nothing() -> None:
    ctx = FakeCtx(config(loss_report_modes=("formal",)), values={"person": person_with(CardState.NORMAL)})
    assert loss_report.choose_kind(ctx) == {"kind": "formal", "chosen": False}
    assert ctx.asked == []


def test_a_temporary_report_can_only_be_made_formal() -> None:
    ctx = FakeCtx(config(), values={"person": person_with(CardState.TEMPORARY_LOSS)})
    assert loss_report.choose_kind(ctx)["kind"] == "formal"


@pytest.mark.parametrize(("state", "modes", "reason"), [
    (CardState.LOST, ("temporary", "formal"), "card_already_reported_lost"),
    (CardState.TEMPORARY_LOSS, ("temporary",), "card_already_reported_lost"),
    (None, ("temporary", "formal"), "no_card"),
    (CardState.SEALED, ("temporary", "formal"), "card_sealed"),
    (CardState.NORMAL, (), "loss_mode_not_allowed"),
])
def test_a_card_that_cannot_be_reported_ends_on_its_notice(state: CardState | None, modes: tuple, reason: str) -> None:
    ctx = FakeCtx(config(loss_report_modes=modes), values={"person": person_with(state)})
    with pytest.raises(VisitEnded) as ended:
        loss_report.choose_kind(ctx)
    assert (ended.value.outcome, ended.value.reason) == ("notice_printed", reason)


# --------------------------------------------------------------------------- 密码服务: the staffed path


def holder(tries: int | None) -> SimpleNamespace:
    return SimpleNamespace(pin_tries_left=tries, card_number="A00000013", pan="6217000000000000006")


@pytest.mark.parametrize(("tries", "answers", "reason"), [(0, [], "pin_locked"), (6, ["ss_forgot"], "pin_forgotten")])
def test_a_locked_or_forgotten_pin_goes_to_the_counter_unless_the_region_resets_at_the_kiosk(
    tries: int, answers: list[str], reason: str
) -> None:
    services = SimpleNamespace(has=lambda *names: False, devices={})
    ctx = FakeCtx(config(), services=services, answers=answers, values={"holder_card": holder(tries)})
    with pytest.raises(VisitEnded) as ended:
        pin_change.choose_service(ctx)
    assert (ended.value.outcome, ended.value.reason) == ("notice_printed", reason)


def test_where_the_region_allows_it_a_locked_pin_is_reset_here() -> None:
    services = SimpleNamespace(has=lambda *names: False, devices={})
    ctx = FakeCtx(config(kiosk_pin_reset_allowed=True), services=services, answers=["reset"],
                  values={"holder_card": holder(0)})
    assert pin_change.choose_service(ctx)["service"] == "ss_reset"


def test_the_tries_left_are_shown_with_the_change_option() -> None:
    services = SimpleNamespace(has=lambda *names: False, devices={})
    ctx = FakeCtx(config(), services=services, answers=["ss_change"], values={"holder_card": holder(4)})
    assert pin_change.choose_service(ctx) == {"service": "ss_change", "tries_left": 4}
    data = ctx.asked[0].data
    assert data["values"] == {"tries": 4} and [o[0] for o in data["options"]] == ["ss_change", "ss_forgot"]


# --------------------------------------------------------------------------- the holder's card


class FakePrinter:
    def __init__(self, position: CardPosition, outcome: EjectOutcome = EjectOutcome.TAKEN, fed_after: int = 0) -> None:
        self.position = position
        self.outcome = outcome
        self.ejected = 0
        self.polls = 0
        self.fed_after = fed_after

    def where_is_card(self) -> CardPosition:
        return self.position

    def eject_to_citizen(self, timeout_s: float | None = None) -> EjectResult:
        self.ejected += 1
        self.position = CardPosition.NONE
        return EjectResult(self.outcome, "A00000013", CardPosition.TAKEN, 0.1)

    def accept_card_from_front(self) -> FedCard | None:
        self.polls += 1
        return FedCard(CardPosition.CHIP_STATION, "A00000013") if self.polls > self.fed_after else None


def test_the_card_goes_back_only_when_it_is_inside_and_the_step_can_run_again() -> None:
    printer = FakePrinter(CardPosition.CHIP_STATION)
    ctx = FakeCtx(config(), services=SimpleNamespace(devices={"cardprinter": printer}))
    assert holder_card.give_card_back(ctx) == {"returned": True}
    assert holder_card.give_card_back(ctx) == {"returned": True}  # nothing inside any more: nothing done
    assert printer.ejected == 1
    assert [p.data["slot"] for p in ctx.shown] == ["card"]


def test_a_card_not_taken_is_kept_and_recorded_for_staff() -> None:
    printer = FakePrinter(CardPosition.CHIP_STATION, EjectOutcome.RETRACTED)
    sent: list[tuple[str, dict, str]] = []
    backend = SimpleNamespace(call=lambda op, body, key: sent.append((op, body, key)) or {"reference": "R1"})
    ctx = FakeCtx(config(), services=SimpleNamespace(devices={"cardprinter": printer}, backend=backend),
                  values={"holder_card": holder(6)})
    assert holder_card.give_card_back(ctx) == {"returned": False, "retained": True}
    assert ctx.values["holder_card_retained"] is True
    (operation, body, key), = sent
    assert operation == "submitKioskRecord" and body["kind"] == "ledger_movement"
    assert body["record"]["movement"] == "holder_card_retained" and key == "V-test-0001.holder_card_retained"


def test_the_slot_is_polled_until_a_card_is_drawn_in_and_stop_waits_for_the_poll() -> None:
    printer = FakePrinter(CardPosition.NONE, fed_after=2)
    answers: list[Answer] = []
    got = threading.Event()
    source = holder_card.FrontSlotAnswers(printer, poll_s=0.01)
    source.start(lambda a: (answers.append(a), got.set()))
    assert got.wait(5)
    source.stop()
    assert [a.choice for a in answers] == ["inserted"] and printer.polls == 3


# --------------------------------------------------------------------------- catalogs


def test_every_key_the_flows_build_at_run_time_is_in_both_languages() -> None:
    stages = ("submitted", "in_production", "ready_for_pickup", "mailed", "collected", "issued", "failed")
    services = ("ss_change", "ss_reset", "fin_change")
    keys = [f"business.{b}" for b in ("loss_report", "cancel_loss_report", "progress_query", "pin_change", "activation")]
    keys += [f"business.{b}.description" for b in ("loss_report", "cancel_loss_report", "progress_query", "pin_change",
                                                   "activation")]
    for kind in ("temporary", "formal"):
        keys += [f"loss.kind.{kind}", f"loss.kind.{kind}_detail", f"loss.confirm.intro_{kind}", f"loss.result.{kind}",
                 f"loss.voucher.note_{kind}", f"loss.voucher.result_{kind}", f"unloss.confirm.intro_{kind}"]
    for stage in stages:
        keys += [f"progress.stage.{stage}", f"progress.note.{stage}", f"progress.voucher.result_{stage}"]
    keys += [f"progress.track.{t}" for t in ("submitted", "in_production", "ready", "collected")]
    keys += [f"progress.business.{b}" for b in ("first_issue", "replacement", "renewal")]
    keys += [f"progress.limit.{u}" for u in ("working_days", "days")]
    for service in services:
        keys += [f"pin_service.result_{service}", f"pin_service.voucher.result_{service}", f"pin_service.title_{service}"]
    for shown in ("active", "pending", "ss_only"):
        keys += [f"activation.voucher.result_{shown}", f"activation.result_{shown}"]
    zh, en = load_messages("zh_CN"), load_messages("en")
    assert [k for k in keys if k not in zh or k not in en] == []


def test_a_lost_printer_reply_while_waiting_for_the_card_is_tried_again_but_a_lasting_fault_ends_the_wait() -> None:
    from kiosk.devices.cardprinter import CardPrinterOffline, CoverOpen

    class Flaky(FakePrinter):
        def __init__(self, errors: list[Exception]) -> None:
            super().__init__(CardPosition.NONE)
            self.errors = errors

        def accept_card_from_front(self) -> FedCard | None:
            if self.errors:
                raise self.errors.pop(0)
            return super().accept_card_from_front()

    for errors, expected in (([CardPrinterOffline("lost reply", retryable=True)], "inserted"),
                             ([CoverOpen("cover open")], "device_error"),
                             ([CardPrinterOffline("down", retryable=True)] * 3, "device_error")):
        answers: list[Answer] = []
        got = threading.Event()
        source = holder_card.FrontSlotAnswers(Flaky(list(errors)), poll_s=0.01)
        source.start(lambda a: (answers.append(a), got.set()))
        assert got.wait(5)
        source.stop()
        assert [a.choice for a in answers] == [expected]


# --------------------------------------------------------------------------- PSAM use per visit


def _registry_with_psam(tmp_path: Any) -> tuple[Any, Any]:
    import sqlite3

    from kiosk.devices.smartcard import PsamIdentity
    from kiosk.psam_registry import PSAM_SCHEMA, PsamRegistry

    conn = sqlite3.connect(tmp_path / "state.sqlite3", check_same_thread=False)
    for script in PSAM_SCHEMA:
        conn.executescript(script)
    registry = PsamRegistry(conn)
    identity = PsamIdentity(terminal_number="440100000107", psam_serial="00112233445566778899",
                            atr="3B6800000073C84013009000")
    return registry, identity


def test_a_psam_use_is_recorded_against_the_visit_and_an_unregistered_psam_is_logged_not_fatal(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from kiosk.flows.common import record_psam_use
    from kiosk.runtime import Services

    registry, identity = _registry_with_psam(tmp_path)
    audited: list[tuple[str, str, str, dict]] = []
    audit = SimpleNamespace(append=lambda *a: audited.append(a))
    ctx = FakeCtx(config(), services=Services({"psam": object(), "psam_registry": registry, "audit": audit}))
    # No PSAM registered yet: the chip work is done, so the visit goes on; staff see why in the log.
    record_psam_use(ctx, "personalize")
    assert "PSAM use personalize not recorded: PsamNotRegistered" in caplog.text
    assert audited == [("system", "psam.use_not_recorded", ctx.visit_id,
                        {"operation": "personalize", "error": "PsamNotRegistered"})]
    record = registry.register(identity, operator="S001")
    record_psam_use(ctx, "personalize")
    record_psam_use(ctx, "pin_set")
    assert [(u.visit_id, u.operation) for u in registry.uses(record.psam_id)] == [
        (ctx.visit_id, "personalize"), (ctx.visit_id, "pin_set")]
    # Key work in the back end's HSM (no PSAM in this kiosk): nothing to record.
    hsm_ctx = FakeCtx(config(), services=Services({"psam_registry": registry}))
    record_psam_use(hsm_ctx, "personalize")
    assert registry.use_count(record.psam_id) == 2
