"""Staff actions through the core functions (kiosk/staff_actions.py) on the real ledger, audit and
registry, with the card and receipt printers simulated at the far end of real links."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from kiosk import staff_actions as sa
from kiosk.audit import verify_chain
from kiosk.devices.cardprinter import PrinterCounters
from kiosk.devices.receipt import PaperState
from kiosk.ledger import (
    CardAlreadyRegistered,
    LedgerError,
    PeriodNotCounted,
    Place,
    RejectReason,
    ReviewerRequired,
    StockCount,
    card_range,
)
from kiosk.psam_registry import PsamAlreadyActive, PsamNotRegistered, PsamRetired
from kiosk.staff import LoginRefused, Role, StaffSession
from printer.receipt.render import render_to_png
from tests.staff.rig import AUDIT_KEY, FONT, PASSWORDS, PSAM_CARD, StaffRig


def _restock(rig: StaffRig, first: str = "A00000001", last: str = "A00000050") -> sa.RestockResult:
    return sa.restock(rig.desk, rig.session("1001"), card_range(first, last))


def _printed(rig: StaffRig) -> str:
    return rig.receipt_sim.receipts[-1].decode("gb18030", errors="replace")


# --------------------------------------------------------------------------- restock


def test_restock_registers_every_card_and_agrees_with_the_hopper_sensor(rig: StaffRig) -> None:
    result = _restock(rig)
    assert result.registered == tuple(card_range("A00000001", "A00000050"))
    assert (result.ledger_hopper, result.sensor_hopper, result.discrepancy) == (50, 50, None)
    assert rig.ledger.cards_in(Place.HOPPER) == list(result.registered)
    assert {rig.ledger.card(n).registered_by for n in result.registered} == {"1001"}
    assert list(rig.card_sim.hopper) == list(result.registered), "the simulated hands loaded the hopper"
    entry = rig.staff_log.last("restock")
    assert (entry.staff_id, entry.role, entry.outcome, entry.detail["count"]) == ("1001", "staff", "ok", 50)
    assert [e.actor for e in rig.audit.entries() if e.action == "staff.restock"] == ["1001"]


def test_restock_by_count_from_the_first_number_and_by_list(rig: StaffRig) -> None:
    assert sa.cards_for_restock("A00000101", count=3) == ["A00000101", "A00000102", "A00000103"]
    assert sa.cards_for_restock("A00000101", last="A00000102") == ["A00000101", "A00000102"]
    bad_inputs: list[tuple[str, dict[str, object]]] = [
        ("A00000101", {"count": 0}),
        ("A00000101", {"last": "B00000101"}),
        ("A00000101", {}),
        ("A00000101", {"last": "A1", "count": 1}),
        ("A99999999", {"count": 2}),
    ]
    for first, bad in bad_inputs:
        with pytest.raises(sa.BadCardInput):
            sa.cards_for_restock(first, **bad)
    listed = sa.restock(rig.desk, rig.session("1002"), ["C0000007", "C0000003"], batch="B-2026-11")
    assert listed.registered == ("C0000007", "C0000003") and listed.discrepancy is None
    assert rig.ledger.card("C0000003").batch == "B-2026-11"


def test_a_card_registered_before_is_refused_and_the_refusal_recorded(rig: StaffRig) -> None:
    _restock(rig, "A00000001", "A00000010")
    with pytest.raises(CardAlreadyRegistered):
        _restock(rig, "A00000010", "A00000020")
    assert rig.ledger.balance().registered == 10
    assert rig.staff_log.last("restock").outcome == "refused:ledger.card_already_registered"


def test_a_hopper_sensor_that_disagrees_with_the_restock_is_raised_not_hidden(rig: StaffRig) -> None:
    hands = rig.services.devices["stock_hands"]
    real_load = hands.load_hopper
    hands.load_hopper = lambda numbers: real_load(list(numbers)[:-1])  # one card never went in
    result = _restock(rig)
    assert (result.ledger_hopper, result.sensor_hopper) == (50, 49)
    assert result.discrepancy is not None and result.discrepancy.open
    assert result.discrepancy.expected["hopper"] == 50 and result.discrepancy.observed["hopper"] == 49
    assert rig.ledger.balance().registered == 50, "the ledger is not corrected behind anyone's back"
    assert [d.discrepancy_id for d in rig.ledger.open_discrepancies()] == [result.discrepancy.discrepancy_id]
    cards = sa.stock_levels(rig.desk).level("cards")
    assert (cards.state, cards.message_key, cards.sensor) == (
        sa.LevelState.LOW,
        "staffpage.level.cards_sensor_mismatch",
        49,
    )
    assert rig.staff_log.last("sensor_mismatch").detail["sensor"]["hopper"] == 49


# --------------------------------------------------------------------------- ribbon and paper


def test_change_ribbon_restarts_the_ribbon_the_printer_reports(rig: StaffRig) -> None:
    rig.card_sim.ribbon_remaining = 12
    assert sa.stock_levels(rig.desk).level("ribbon").state is sa.LevelState.LOW
    result = sa.change_ribbon(rig.desk, rig.session("1001"))
    assert (result.remaining, result.capacity, result.from_printer, result.ok) == (200, 200, True, True)
    assert sa.stock_levels(rig.desk).level("ribbon").state is sa.LevelState.OK
    assert rig.staff_log.last("ribbon_changed").staff_id == "1001"


def test_a_ribbon_that_still_reads_low_after_the_change_is_said(rig: StaffRig) -> None:
    rig.services.devices.pop("stock_hands")  # nobody fitted a new ribbon
    rig.card_sim.ribbon_remaining = 5
    result = sa.change_ribbon(rig.desk, rig.session("1001"))
    assert not result.ok
    assert rig.staff_log.last("ribbon_changed").outcome == "still_low"


class CountingPrinter:
    """A printer that reports no ribbon figure (most do not): the kiosk counts prints itself."""

    def __init__(self) -> None:
        self.printed = 150

    def counters(self) -> PrinterCounters:
        return PrinterCounters(cards_printed=self.printed, hopper_count=None)


def test_without_a_ribbon_figure_the_kiosk_counter_resets_at_the_change(rig: StaffRig) -> None:
    printer = CountingPrinter()
    rig.services.devices["cardprinter"] = printer
    rig.services.devices.pop("stock_hands")
    result = sa.change_ribbon(rig.desk, rig.session("1001"))
    assert (result.remaining, result.capacity, result.from_printer) == (200, 200, False)
    printer.printed = 190
    assert sa.stock_levels(rig.desk).level("ribbon").value == 160
    printer.printed = 335
    ribbon = sa.stock_levels(rig.desk).level("ribbon")
    assert (ribbon.value, ribbon.state) == (15, sa.LevelState.LOW)  # 7 % ≤ ribbon_low_percent 10 %
    printer.printed = 400
    assert sa.stock_levels(rig.desk).level("ribbon").state is sa.LevelState.OUT


def test_change_paper_reads_the_paper_sensor_back(rig: StaffRig) -> None:
    rig.receipt_sim.inject("paper_out")
    assert sa.stock_levels(rig.desk).level("paper").state is sa.LevelState.OUT
    hands = rig.services.devices.pop("stock_hands")
    not_loaded = sa.change_paper(rig.desk, rig.session("1001"))
    assert (not_loaded.state, not_loaded.ok) == (PaperState.OUT, False)
    rig.services.devices["stock_hands"] = hands
    loaded = sa.change_paper(rig.desk, rig.session("1001"))
    assert (loaded.state, loaded.ok) == (PaperState.ADEQUATE, True)
    assert [e.outcome for e in rig.staff_log.entries(action="paper_changed")] == ["paper_out", "ok"]


# --------------------------------------------------------------------------- reject bin


def test_empty_reject_bin_hands_over_prints_and_exports_the_list(rig: StaffRig, artifacts: Path) -> None:
    _restock(rig)
    spoiled = rig.spoil([RejectReason.PERSONALIZATION_FAILED, RejectReason.MISPRINT, RejectReason.NOT_TAKEN])
    assert [c.card_number for c in sa.reject_bin_contents(rig.desk)] == spoiled
    result = sa.empty_reject_bin(rig.desk, rig.session("1001"), reviewer="1002")
    assert [(c.card_number, c.reason) for c in result.cards] == [
        (spoiled[0], "personalization_failed"),
        (spoiled[1], "misprint"),
        (spoiled[2], "not_taken"),
    ]
    assert result.printed.printed and result.discrepancy is None
    assert rig.ledger.cards_in(Place.REJECT_BIN) == [] and rig.ledger.cards_in(Place.HANDED_OVER) == spoiled
    assert rig.card_sim.reject_bin_numbers == []
    printed = _printed(rig)
    assert "废卡交接清单" in printed and "集中销毁" in printed
    for number, reason in zip(spoiled, ("芯片个人化失败", "印刷错误", "超时未取回收"), strict=True):
        assert number in printed and reason in printed
    exported = json.loads(result.files.json_path.read_text(encoding="utf-8"))
    assert [c["card_number"] for c in exported["cards"]] == spoiled
    assert exported["reviewer"] == "1002" and exported["slip"]["title"] == "废卡交接清单"
    assert result.files.png_path is not None and result.files.png_path.stat().st_size > 5000
    # Kept for a person to look at: what the printer got, rendered, and the exported PNG.
    render_to_png(rig.receipt_sim.receipts[-1], artifacts / "handover-printed.png", font_path=FONT)
    shutil.copy(result.files.png_path, artifacts / "handover-exported.png")
    assert rig.staff_log.last("reject_bin_emptied").detail["cards"] == spoiled


def test_an_empty_bin_has_nothing_to_hand_over(rig: StaffRig) -> None:
    result = sa.empty_reject_bin(rig.desk, rig.session("1001"))
    assert result.cards == () and result.slip is None and rig.receipt_sim.receipts == []


def test_no_paper_still_books_the_handover_exports_it_and_reprints_later(rig: StaffRig) -> None:
    _restock(rig)
    spoiled = rig.spoil([RejectReason.JAM])
    rig.receipt_sim.inject("paper_out")
    result = sa.empty_reject_bin(rig.desk, rig.session("1001"))
    assert not result.printed.printed and result.printed.error_code == "receipt.paper_out"
    assert rig.ledger.cards_in(Place.HANDED_OVER) == spoiled and result.files.json_path.exists()
    rig.receipt_sim.load_paper()
    again = sa.reprint(rig.desk, rig.session("1001"), result.slip)
    assert again.printed and spoiled[0] in _printed(rig)


def test_a_bin_sensor_that_disagrees_is_raised_before_the_list_is_signed(rig: StaffRig) -> None:
    _restock(rig)
    rig.spoil([RejectReason.MISPRINT, RejectReason.MISPRINT])
    rig.card_sim.reject_bin.pop()  # a spoiled card is not in the bin
    result = sa.empty_reject_bin(rig.desk, rig.session("1001"))
    assert result.discrepancy is not None and result.discrepancy.observed["reject_bin"] == 1
    assert result.discrepancy.open


# --------------------------------------------------------------------------- count, discrepancy, closing


def test_a_count_mismatch_stays_open_until_a_supervisor_notes_and_resolves_it(rig: StaffRig) -> None:
    _restock(rig, "A00000001", "A00000020")
    staff, supervisor = rig.session("1001"), rig.session("2001")
    wrong = sa.reconcile(rig.desk, staff, StockCount(hopper=19, reject_bin=0))
    assert not wrong.balanced and wrong.discrepancy is not None
    assert (wrong.expected.hopper, wrong.observed.hopper) == (20, 19)
    discrepancy_id = wrong.discrepancy.discrepancy_id
    report = sa.period_report(rig.desk, "day")
    assert report.balanced is False and len(report.open_discrepancies) == 1

    with pytest.raises(sa.NotPermitted):
        sa.note_discrepancy(rig.desk, staff, discrepancy_id, "清点有误")
    with pytest.raises(LedgerError):
        sa.resolve_discrepancy(rig.desk, supervisor, discrepancy_id, "复点相符")  # no note yet
    noted = sa.note_discrepancy(rig.desk, supervisor, discrepancy_id, "清点有误，已重新清点")
    assert noted.open and noted.noted_by == "2001"
    recount = sa.reconcile(rig.desk, staff, StockCount(hopper=20, reject_bin=0))
    assert recount.balanced
    assert sa.period_report(rig.desk, "day").balanced is False, "still open until resolved"
    resolved = sa.resolve_discrepancy(rig.desk, supervisor, discrepancy_id, "复点相符")
    assert not resolved.open and resolved.resolved_by == "2001"
    assert sa.period_report(rig.desk, "day").balanced is True
    outcomes = [(e.action, e.staff_id, e.outcome) for e in rig.staff_log.entries() if e.action != "restock"]
    assert outcomes == [
        ("count", "1001", "discrepancy"),
        ("discrepancy_resolved", "2001", "refused:ledger.error"),
        ("discrepancy_noted", "2001", "ok"),
        ("count", "1001", "balanced"),
        ("discrepancy_resolved", "2001", "ok"),
    ]


def test_close_day_prints_and_exports_the_report_with_operator_and_reviewer(
    rig: StaffRig, artifacts: Path
) -> None:
    _restock(rig)
    spoiled = rig.spoil([RejectReason.MISPRINT])
    fed = rig.cardprinter.feed_to_chip_station().card_number
    rig.ledger.feed(fed, visit_id="V-9")
    taken = rig.cardprinter.eject_to_citizen(timeout_s=5)
    assert taken.outcome.value == "taken"
    rig.ledger.issue(fed, visit_id="V-9")
    sa.empty_reject_bin(rig.desk, rig.session("1001"))
    staff, reviewer = rig.session("1001"), rig.session("1002")

    with pytest.raises(PeriodNotCounted):
        sa.close_period(rig.desk, staff, "day", reviewer=reviewer)
    sa.reconcile(rig.desk, staff, StockCount(hopper=48, reject_bin=0))
    with pytest.raises(ReviewerRequired):
        sa.close_period(rig.desk, staff, "day", reviewer=staff)
    result = sa.close_period(rig.desk, staff, "day", reviewer=reviewer)

    report = result.report
    assert (
        report.opening,
        len(report.restocked),
        len(report.issued),
        len(report.spoiled),
        len(report.handed_over),
        report.closing,
        report.counted.total,
        report.balanced,
    ) == (
        0,
        50,
        1,
        1,
        1,
        48,
        48,
        True,
    )
    assert (result.closing.operator, result.closing.reviewer) == ("1001", "1002")
    printed = _printed(rig)
    for text in (
        "空白卡日结对账单",
        "期初结存：0",
        "本期入库：50",
        "本期发卡：1",
        "本期废卡：1",
        "期末结存：48",
        "实点数量：48",
        "帐卡相符：相符",
        "经办人：1001",
        "复核人：1002",
        spoiled[0],
        fed,
    ):
        assert text in printed, text
    exported = json.loads(result.files.json_path.read_text(encoding="utf-8"))
    for key, value in {
        "opening": 0,
        "restocked": 50,
        "issued": 1,
        "spoiled": 1,
        "handed_over": 1,
        "closing": 48,
        "counted": 48,
        "balanced": True,
    }.items():
        assert exported["report"][key] == value, key
    assert exported["report"]["cards"]["issued"] == [fed]
    assert exported["closing"]["reviewer"] == "1002"
    assert result.files.png_path is not None
    render_to_png(rig.receipt_sim.receipts[-1], artifacts / "day-report-printed.png", font_path=FONT)
    shutil.copy(result.files.png_path, artifacts / "day-report-exported.png")
    with pytest.raises(LedgerError):
        sa.close_period(rig.desk, staff, "day", reviewer=reviewer)


def test_a_shift_covers_what_happened_since_the_last_shift_closing(rig: StaffRig) -> None:
    staff, reviewer = rig.session("1001"), rig.session("2001")
    _restock(rig, "A00000001", "A00000010")
    sa.reconcile(rig.desk, staff, StockCount(hopper=10, reject_bin=0))
    first = sa.close_period(rig.desk, staff, "shift", reviewer=reviewer)
    assert (first.report.opening, first.report.closing, first.report.balanced) == (0, 10, True)
    rig.clock.advance(hours=4)
    _restock(rig, "A00000011", "A00000015")
    second = sa.period_report(rig.desk, "shift")
    assert (second.opening, second.restocked, second.counted) == (
        10,
        tuple(card_range("A00000011", "A00000015")),
        None,
    )
    sa.reconcile(rig.desk, staff, StockCount(hopper=14, reject_bin=0))
    closed = sa.close_period(rig.desk, staff, "shift", reviewer=reviewer)
    assert closed.report.balanced is False and closed.closing.balanced is False
    assert "空白卡交班对账单" in _printed(rig) and "帐卡相符：不符" in _printed(rig)


def test_reviewer_and_supervisor_sign_in_with_their_password_and_lockout(rig: StaffRig) -> None:
    reviewer = sa.authorize(rig.desk, "1002", PASSWORDS["1002"], (Role.STAFF, Role.SUPERVISOR))
    assert reviewer.role is Role.STAFF
    with pytest.raises(LoginRefused) as refused:
        sa.authorize(rig.desk, "1002", PASSWORDS["1002"], (Role.SUPERVISOR,))
    assert refused.value.code == "staff.wrong_role"
    for _ in range(3):
        with pytest.raises(LoginRefused):
            sa.authorize(rig.desk, "2001", "000000", (Role.SUPERVISOR,))
    with pytest.raises(LoginRefused) as locked:
        sa.authorize(rig.desk, "2001", PASSWORDS["2001"], (Role.SUPERVISOR,))
    assert locked.value.code == "staff.locked"


def test_only_staff_and_supervisors_do_staff_actions(rig: StaffRig) -> None:
    engineer = StaffSession("E001", Role.ENGINEER, rig.clock())
    with pytest.raises(sa.NotPermitted):
        sa.restock(rig.desk, engineer, ["A00000001"])
    with pytest.raises(sa.NotPermitted):
        sa.empty_reject_bin(rig.desk, engineer)
    assert rig.ledger.balance().registered == 0


def test_every_action_is_recorded_with_who_did_it_in_the_audit_chain(rig: StaffRig) -> None:
    _restock(rig, "A00000001", "A00000005")
    sa.change_ribbon(rig.desk, rig.session("1002"))
    sa.change_paper(rig.desk, rig.session("1001"))
    sa.reconcile(rig.desk, rig.session("2001"), StockCount(hopper=5, reject_bin=0))
    sa.register_psam(rig.desk, rig.session("1001"))
    actions = [(e.actor, e.action) for e in rig.audit.entries()]
    assert actions == [
        ("1001", "staff.restock"),
        ("1002", "staff.ribbon_changed"),
        ("1001", "staff.paper_changed"),
        ("2001", "staff.count"),
        ("1001", "staff.psam_registered"),
    ]
    assert verify_chain(rig.conn, AUDIT_KEY) is None
    assert [(e.staff_id, e.action) for e in rig.staff_log.entries()] == [
        (actor, action.removeprefix("staff.")) for actor, action in actions
    ]


# --------------------------------------------------------------------------- PSAM


def test_psam_is_registered_from_its_terminal_number_used_per_visit_and_retired(rig: StaffRig) -> None:
    staff = rig.session("1001")
    view = sa.psam_view(rig.desk)
    assert view.registered is None and view.in_slot == PSAM_CARD and view.slot_matches is None
    record = sa.register_psam(rig.desk, staff)
    assert (record.terminal_number, record.psam_serial, record.registered_by) == (
        "440100000107",
        "0123456789ABCDEF",
        "1001",
    )
    assert sa.register_psam(rig.desk, staff) == record, "the same card registered twice changes nothing"
    registry = rig.psam_registry
    registry.record_use("V-1", "personalize")
    registry.record_use("V-2", "personalize")
    registry.record_use("V-2", "pin_reload")
    assert [(u.visit_id, u.operation) for u in registry.uses(record.psam_id)] == [
        ("V-1", "personalize"),
        ("V-2", "personalize"),
        ("V-2", "pin_reload"),
    ]
    assert sa.psam_view(rig.desk).uses == 3 and sa.psam_view(rig.desk).slot_matches is True

    rig.psam_slot.card = replace(PSAM_CARD, terminal_number="440100000999", psam_serial="FEDC")
    assert sa.psam_view(rig.desk).slot_matches is False
    with pytest.raises(PsamAlreadyActive):
        sa.register_psam(rig.desk, staff)

    destruction = sa.retire_psam(rig.desk, staff, "到期更换", witness="2001")
    assert (destruction.why, destruction.who, destruction.witness) == ("到期更换", "1001", "2001")
    assert "440100000107" in destruction.what and destruction.at == rig.clock()
    assert registry.destruction(record.psam_id) == destruction
    with pytest.raises(PsamNotRegistered):
        registry.record_use("V-3", "personalize")
    new = sa.register_psam(rig.desk, staff)
    assert new.terminal_number == "440100000999"
    rig.psam_slot.card = PSAM_CARD
    sa.retire_psam(rig.desk, staff, "损坏")
    with pytest.raises(PsamRetired):
        sa.register_psam(rig.desk, staff)


def test_no_psam_in_the_slot_is_said_not_guessed(rig: StaffRig) -> None:
    rig.psam_slot.card = None
    view = sa.psam_view(rig.desk)
    assert view.in_slot is None and view.slot_error_key == "smartcard.no_card"
    with pytest.raises(sa.DeviceUnavailable):
        sa.register_psam(rig.desk, rig.session("1001"))
    assert rig.psam_registry.active() is None


# --------------------------------------------------------------------------- levels


def test_levels_use_the_configured_thresholds(rig: StaffRig) -> None:
    t = rig.desk.thresholds
    assert (t.hopper_near_empty, t.reject_bin_near_full, t.reject_bin_capacity, t.ribbon_low_percent) == (
        10,
        15,
        20,
        10,
    )
    levels = sa.stock_levels(rig.desk)
    assert levels.level("cards").state is sa.LevelState.OUT
    assert [a.alert_code for a in levels.alerts] == ["staff.cards_out"]
    _restock(rig, "A00000001", "A00000011")
    assert sa.stock_levels(rig.desk).level("cards").state is sa.LevelState.OK
    rig.spoil([RejectReason.MISPRINT])
    assert sa.stock_levels(rig.desk).level("cards").state is sa.LevelState.LOW  # 10 left
    tighter = replace(rig.desk, thresholds=replace(t, reject_bin_near_full=1, hopper_near_empty=5))
    levels = sa.stock_levels(tighter)
    assert levels.level("cards").state is sa.LevelState.OK
    assert (levels.level("reject_bin").state, levels.level("reject_bin").message_key) == (
        sa.LevelState.LOW,
        "staffpage.level.bin_near_full",
    )
    assert [a.alert_code for a in levels.alerts] == ["staff.reject_bin_low"]


def test_every_dynamic_message_key_of_the_pages_is_in_both_catalogs() -> None:
    from kiosk.i18n import load_messages

    keys = [f"staffpage.state.{s.value}" for s in sa.LevelState]
    keys += [f"staffpage.level_name.{n}" for n in ("cards", "ribbon", "paper", "reject_bin")]
    keys += [f"staffpage.amount.{n}" for n in ("cards", "ribbon", "reject_bin")]
    keys += [f"staffpage.paper_state.{s.value}" for s in PaperState]
    keys += [f"staffpage.count_source.{s}" for s in ("printer", "staff")]
    keys += [f"staffpage.restock.hint_{s}" for s in ("first", "second", "second_count", "confirm", "done")]
    keys += [
        f"staffpage.reconcile.hint_{s}"
        for s in ("period", "hopper", "bin", "result", "reviewer_id", "reviewer_password", "closed")
    ]
    keys += [
        f"staffpage.discrepancy.hint_{s}" for s in ("list", "auth_id", "auth_password", "note", "resolve")
    ]
    keys += [f"staffpage.period.{p}" for p in ("shift", "day", "month")]
    keys += [
        f"staff.service_missing.{n}" for n in ("ledger", "cardprinter", "receipt", "psam", "psam_registry")
    ]
    keys += [f"ledger.report.title.{p}" for p in ("shift", "day", "month")]
    from screens.staff_pages import NOTE_KEYS, PSAM_RETIRE_KEYS, RESOLUTION_KEYS

    keys += [f"staffpage.note.{k}" for k in NOTE_KEYS] + [
        f"staffpage.resolution.{k}" for k in RESOLUTION_KEYS
    ]
    keys += [f"staffpage.psam.reason.{k}" for k in PSAM_RETIRE_KEYS]
    zh, en = load_messages("zh_CN"), load_messages("en")
    assert [k for k in keys if k not in zh or k not in en] == []
