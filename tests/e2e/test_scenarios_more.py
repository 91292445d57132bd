"""The card services after the first issue, end to end through ``kiosk demo --headless --json --fast
--scenario NAME``: the real UI (SDL offscreen), the real links (pty, pcscd + vpcd, loopback
TCP/HTTP), a scripted citizen touching the screen, pushing their own card into the card slot and
typing PINs on the simulated pad. Each test then opens what the visit left behind: the
card-management simulator's records, the printed voucher or one-time notice, the visit journal and
the outbox. (The PIN scenarios also fail from inside when the chip itself does not hold the new PIN:
see ``push_own_card`` in kiosk/commands/scenarios_more.py.)"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kiosk.backend.simulator.rules import add_working_days
from kiosk.journal import StepEvent
from tests.e2e.scenario_run import State, run_scenario

pytestmark = [pytest.mark.pcsc, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")
E_CARD_HINT = "扫码领取电子社保卡"
NOTICE = "一次性告知"




def local(utc_text: str) -> str:
    return datetime.fromisoformat(utc_text.replace("Z", "+00:00")).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def flat(text: str) -> str:
    """A receipt's text with its line breaks removed (long lines wrap on the 48 columns)."""
    return text.replace("\n", "")


def finished(report: dict[str, Any], state: State) -> dict[str, dict[str, Any]]:
    assert report["passed"], report
    assert state.visit(report["visit_id"]) == (report["outcome"], report["reason"])
    assert report["ledger_balanced"] is True
    assert all(m.visit_id != report["visit_id"] for m in state.ledger.movements())  # no blank card moved
    assert report["steps"] and all(step["seconds"] >= 0 for step in report["steps"])
    return state.steps(report["visit_id"])


@pytest.fixture(scope="module")
def people() -> dict[str, dict]:
    data = json.loads((REPO / "config" / "demo-people.json").read_text(encoding="utf-8"))
    return {p["key"]: p for p in data["people"]}


# --------------------------------------------------------------------------- 挂失 / 解挂


@pytest.mark.parametrize(("name", "kind", "card_state"), [("loss_report_temporary", "temporary", "temporary_loss"),
                                                          ("loss_report_formal", "formal", "lost")])
def test_a_loss_report_freezes_the_card_and_its_account_at_once(
    tmp_path: Path, people: dict, name: str, kind: str, card_state: str
) -> None:
    report = run_scenario(name, tmp_path)
    state = State(tmp_path)
    steps = finished(report, state)
    assert report["outcome"] == "loss_reported"
    card = state.card_of(people["active_card"]["id_number"])
    assert card["state"] == card_state and card["account_state"] == "frozen"
    loss = state.backend.execute("SELECT * FROM loss_reports WHERE card_number = ?", (card["card_number"],)).fetchone()
    assert loss["kind"] == kind and loss["cancelled_at"] is None
    # Journal: the report made once, under the key journaled before the call.
    made = steps["report"]
    assert made["event"] is StepEvent.DONE and made["data"]["report_id"] == loss["report_id"]
    assert [r["idempotency_key"] for r in state.requests("reportLoss")] == [made["data"]["idempotency_key"]]
    voucher = flat(report["printed"][-1])
    assert "业务类型：社保卡挂失" in voucher and f"挂失时间：{local(loss['reported_at'])}" in voucher
    assert E_CARD_HINT not in voucher  # a frozen card carries no electronic card hint
    assert state.outbox() == []


def test_an_offline_loss_report_is_never_queued_and_the_notice_gives_the_hotline_and_the_counter(
    tmp_path: Path, people: dict
) -> None:
    report = run_scenario("loss_report_offline", tmp_path)
    state = State(tmp_path)
    steps = finished(report, state)
    assert (report["outcome"], report["reason"]) == ("notice_printed", "loss_report_offline")
    assert "face" not in steps  # told at once, before any face capture
    assert state.outbox() == [] and report["outbox_pending"] == 0
    card = state.card_of(people["active_card"]["id_number"])
    assert card["state"] == "normal" and card["account_state"] == "active"
    assert state.backend.execute("SELECT COUNT(*) FROM loss_reports WHERE card_number = ?",
                                 (card["card_number"],)).fetchone()[0] == 0
    assert state.requests("reportLoss") == []
    notice = flat(report["printed"][-1])
    assert NOTICE in notice or "未能办理的原因" in notice
    assert "12333" in notice and "示例市人社局社保卡服务大厅" in notice


def test_a_loss_report_is_cancelled_and_the_card_usable_again(tmp_path: Path, people: dict) -> None:
    report = run_scenario("cancel_loss_report", tmp_path)
    state = State(tmp_path)
    steps = finished(report, state)
    assert report["outcome"] == "loss_cancelled"
    card = state.card_of(people["cancel_loss_report"]["id_number"])
    assert card["state"] == "normal" and card["account_state"] == "active"
    loss = state.backend.execute("SELECT * FROM loss_reports WHERE card_number = ?", (card["card_number"],)).fetchone()
    assert loss["cancelled_at"] is not None
    assert steps["cancel"]["event"] is StepEvent.DONE and steps["cancel"]["data"]["card_state"] == "normal"
    voucher = flat(report["printed"][-1])
    assert "业务类型：社保卡解挂" in voucher and f"解挂时间：{local(loss['cancelled_at'])}" in voucher
    assert E_CARD_HINT in voucher  # the card is active again
    assert state.outbox() == []


def test_cancelling_after_a_replacement_was_applied_for_ends_on_the_notice_and_changes_nothing(
    tmp_path: Path, people: dict
) -> None:
    report = run_scenario("cancel_loss_after_replacement", tmp_path)
    state = State(tmp_path)
    steps = finished(report, state)
    assert (report["outcome"], report["reason"]) == ("notice_printed", "replacement_already_applied")
    assert steps["cancel"]["event"] is StepEvent.FAILED
    card = state.card_of(people["cancel_loss_after_replacement"]["id_number"])
    assert card["state"] == "lost" and card["account_state"] == "frozen"
    assert state.backend.execute("SELECT cancelled_at FROM loss_reports WHERE card_number = ?",
                                 (card["card_number"],)).fetchone()[0] is None
    notice = flat(report["printed"][-1])
    assert "已申请补领新卡，原卡不能解除挂失" in notice
    assert state.outbox() == []


# --------------------------------------------------------------------------- 制卡进度查询


def test_the_progress_of_an_application_made_elsewhere_is_shown_and_printed_with_the_time_limit(
    tmp_path: Path, people: dict
) -> None:
    report = run_scenario("progress_query", tmp_path)
    state = State(tmp_path)
    steps = finished(report, state)
    assert report["outcome"] == "progress_shown" and "progress_result" in report["screens"]
    assert steps["query"]["data"]["stages"] == ["in_production"]
    app = state.backend.execute("SELECT submitted_at FROM applications WHERE id_number = ?",
                                (people["progress_query"]["id_number"],)).fetchone()
    submitted = datetime.fromisoformat(app[0].replace("Z", "+00:00")).astimezone(SHANGHAI).date()
    expected = add_working_days(submitted, 30)  # [region.production] central_production_days, working days
    voucher = flat(report["printed"][-1])
    assert "业务类型：制卡进度查询" in voucher and "制卡进度：制卡中" in voucher
    assert f"受理日期：{submitted.isoformat()}" in voucher
    assert f"预计完成：{expected.isoformat()}（规定时限30个工作日）" in voucher
    assert state.outbox() == []


# --------------------------------------------------------------------------- 密码服务


def test_the_social_security_pin_is_changed_with_the_card_in_the_slot(tmp_path: Path) -> None:
    report = run_scenario("pin_change", tmp_path)
    state = State(tmp_path)
    steps = finished(report, state)
    assert report["outcome"] == "pin_changed"
    assert steps["service"]["data"]["service"] == "ss_change" and steps["service"]["data"]["tries_left"] == 6
    assert steps["ss_change"]["data"]["result"] == "set"
    assert steps["return_card"]["data"] == {"returned": True}
    assert report["screens"].count("pin_entry") == 3  # current PIN, new PIN twice
    assert "card taken" in report["citizen_log"]
    voucher = flat(report["printed"][-1])
    assert "社保卡密码修改成功" in voucher and E_CARD_HINT in voucher
    for pin in ("246813", "371958"):  # no PIN ever reaches a log or the state database
        assert pin not in state.log_text() and pin.encode() not in state.raw_state()
    assert state.outbox() == []


def test_a_locked_pin_goes_to_the_counter_and_the_card_comes_back_first(tmp_path: Path) -> None:
    report = run_scenario("pin_locked", tmp_path)
    state = State(tmp_path)
    steps = finished(report, state)
    assert (report["outcome"], report["reason"]) == ("notice_printed", "pin_locked")
    assert steps["insert_card"]["event"] is StepEvent.COMPENSATED
    log = report["citizen_log"]
    assert log.index("card taken") < log.index("touch done")  # the card back before the notice
    notice = flat(report["printed"][-1])
    assert "社保卡密码已锁定" in notice and "人工窗口" in notice
    assert "pin_entry" not in report["screens"]


def test_a_locked_pin_is_reset_at_the_kiosk_where_the_region_allows_it(tmp_path: Path) -> None:
    report = run_scenario("pin_reset", tmp_path)
    state = State(tmp_path)
    steps = finished(report, state)
    assert report["outcome"] == "pin_reset"
    assert steps["face"]["event"] is StepEvent.DONE and "attempts" in steps["face"]["data"]
    assert steps["ss_reset"]["data"]["result"] == "set"
    assert "社保卡密码重置成功" in flat(report["printed"][-1])


def test_the_financial_pin_is_changed_through_the_bank_with_pin_blocks_only(tmp_path: Path, people: dict) -> None:
    from kiosk.backend.simulator.rules import _pin_verification

    report = run_scenario("financial_pin_change", tmp_path)
    state = State(tmp_path)
    finished(report, state)
    assert report["outcome"] == "pin_changed"
    card = state.card_of(people["active_card"]["id_number"])
    assert card["pin_verification"] == _pin_verification(card["card_number"], b"592604")
    sent = state.requests("changeFinancialPin")
    assert len(sent) == 1 and json.loads(sent[0]["response"])["accepted"] is True
    assert "金融密码修改成功" in flat(report["printed"][-1])
    for pin in ("580731", "592604"):
        assert pin not in state.log_text() and pin.encode() not in state.raw_state()


# --------------------------------------------------------------------------- 领卡启用


def test_a_centrally_produced_card_is_activated(tmp_path: Path, people: dict) -> None:
    report = run_scenario("activate_central_card", tmp_path)
    state = State(tmp_path)
    steps = finished(report, state)
    assert report["outcome"] == "card_activated"
    card = state.card_of(people["activate_central_card"]["id_number"])
    assert card["state"] == "normal" and card["account_state"] == "active" and card["pin_set"] == 1
    assert json.loads(card["optional_services"]) == []  # nothing else opened
    collected = state.backend.execute("SELECT collected FROM applications WHERE card_number = ?",
                                      (card["card_number"],)).fetchone()[0]
    assert collected == 1
    assert steps["activate_bank"]["data"] == {"bank": "active"}
    voucher = flat(report["printed"][-1])
    assert "社保应用与金融账户均已激活" in voucher and E_CARD_HINT in voucher
    assert card["bank_account"][-4:] in voucher  # the account on the chip, masked
    assert state.outbox() == []


def test_an_activation_the_bank_answers_later_is_pending_on_the_voucher_and_waits_in_the_outbox(
    tmp_path: Path, people: dict
) -> None:
    report = run_scenario("activation_pending", tmp_path)
    state = State(tmp_path)
    steps = finished(report, state)
    assert report["outcome"] == "card_activated"
    card = state.card_of(people["activate_central_card"]["id_number"])
    assert card["state"] == "normal" and card["account_state"] == "pending"
    assert steps["activate_bank"]["data"] == {"bank": "pending"}
    assert state.outbox() == [("activation", "pending")] and report["outbox_pending"] == 1
    key = state.conn.execute("SELECT idempotency_key FROM outbox").fetchone()[0]
    assert key.endswith(".confirm_bank")
    voucher = flat(report["printed"][-1])
    assert "金融账户激活办理中" in voucher and "由银行稍后确认" in voucher and E_CARD_HINT in voucher
