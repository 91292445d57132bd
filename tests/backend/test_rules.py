"""Every business rule of the simulator, exercised through the signed client over loopback HTTP."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from kiosk.backend.api import (
    ApplicationState,
    BackendRefused,
    BankAccountState,
    Business,
    BusinessReason,
    CardManagementBackend,
    CardState,
    KeyWorkOperation,
    LossKind,
    NoticeCode,
    ProgressStage,
    TemporaryCardStatus,
    idempotency_key,
)
from kiosk.backend.client import BackendClient
from kiosk.backend.signing import Sm2PrivateKey, Sm2PublicKey, verify
from kiosk.backend.simulator import SimulatorRules, card_number_check

from .conftest import (
    ACTIVE,
    CENTRAL_FRESH,
    CENTRAL_READY,
    FIRST_ISSUE,
    NO_LOSS_REPORT,
    RARE,
    RENEWAL,
    REPLACEMENT,
    SEALED,
    TEMPORARY_HELD,
    TEMPORARY_LOSS,
    TEMPORARY_LOST,
    FakeClock,
    FakeHsm,
    make_client,
    make_simulator,
)
from .visit_driver import ACCOUNT, ATR, CIC, first_issue_visit

PHOTO = b"\xff\xd8\xff\xe0photo"


def submit(
    client: BackendClient,
    visit: str,
    id_number: str,
    business: Business,
    reason: BusinessReason | None = None,
    fee_paid_fen: int = 0,
    photo: bytes | None = PHOTO,
):
    return client.submit_application(
        idempotency_key(visit, "submit"),
        id_number=id_number,
        business=business,
        reason=reason,
        mobile="13912345678",
        bank_code="B01",
        photo_jpeg=photo,
        fee_paid_fen=fee_paid_fen,
    )


def refused(call) -> NoticeCode:
    with pytest.raises(BackendRefused) as info:
        call()
    return info.value.notice


def issue(client: BackendClient, visit: str, app_id: str) -> str:
    card = client.mark_instant_issue(idempotency_key(visit, "mark"), app_id)
    client.report_result(
        idempotency_key(visit, "result"),
        app_id,
        card.card_number,
        success=True,
        atr=ATR,
        card_identification_code=CIC,
        bank_account=ACCOUNT,
    )
    return card.card_number


def test_client_satisfies_the_core_protocol(client: BackendClient) -> None:
    assert isinstance(client, CardManagementBackend)


def test_first_issue_end_to_end_yields_an_active_card(client: BackendClient, sim) -> None:
    done = first_issue_visit(client, "V20261123-first", FIRST_ISSUE)
    card = done["card"]
    assert card.card_number[-1] == card_number_check(card.card_number[:8])
    assert card.photo_jpeg.startswith(b"\xff\xd8") and card.sex == "2" and card.ethnicity_code == "01"
    assert (card.valid_until.year - card.issue_date.year) == 10
    assert done["activation"].card_state is CardState.NORMAL
    assert done["bank"].state is BankAccountState.ACTIVE and "*" in done["bank"].account_masked
    person = client.query_person(FIRST_ISSUE)
    assert (
        person.card is not None and person.card.state is CardState.NORMAL and person.open_application is None
    )
    assert client.query_progress(FIRST_ISSUE).items[0].stage is ProgressStage.ISSUED


def test_first_issue_refused_while_a_live_card_exists(client: BackendClient) -> None:
    e = client.check_eligibility(ACTIVE, Business.FIRST_ISSUE)
    assert not e.eligible and e.refusal is NoticeCode.CARD_ALREADY_HELD
    assert (
        refused(lambda: submit(client, "V-held-0001", ACTIVE, Business.FIRST_ISSUE))
        is NoticeCode.CARD_ALREADY_HELD
    )


def test_unknown_person_is_person_not_found(client: BackendClient) -> None:
    assert refused(lambda: client.query_person("110101200001010000")) is NoticeCode.PERSON_NOT_FOUND


def test_replacement_only_after_a_formal_loss_report(client: BackendClient) -> None:
    assert (
        client.check_eligibility(NO_LOSS_REPORT, Business.REPLACEMENT).refusal
        is NoticeCode.REPLACEMENT_NEEDS_LOSS_REPORT
    )
    assert (
        refused(
            lambda: submit(
                client, "V-repl-0001", NO_LOSS_REPORT, Business.REPLACEMENT, BusinessReason.LOST, 2000
            )
        )
        is NoticeCode.REPLACEMENT_NEEDS_LOSS_REPORT
    )
    # A temporary loss report is not enough either.
    client.report_loss(idempotency_key("V-repl-0002", "loss"), NO_LOSS_REPORT, LossKind.TEMPORARY)
    assert (
        client.check_eligibility(NO_LOSS_REPORT, Business.REPLACEMENT).refusal
        is NoticeCode.REPLACEMENT_NEEDS_LOSS_REPORT
    )
    client.report_loss(idempotency_key("V-repl-0003", "loss"), NO_LOSS_REPORT, LossKind.FORMAL)
    assert client.check_eligibility(NO_LOSS_REPORT, Business.REPLACEMENT).eligible


def test_replacement_cancels_the_old_card_when_the_new_one_is_made(client: BackendClient) -> None:
    old = client.query_person(REPLACEMENT).card
    assert old is not None and old.state is CardState.LOST
    app = submit(client, "V-repl-0100", REPLACEMENT, Business.REPLACEMENT, BusinessReason.LOST, 2000)
    assert app.old_card_number == old.card_number and app.fee_fen == 2000
    card = client.mark_instant_issue(idempotency_key("V-repl-0100", "mark"), app.application_id)
    ack = client.report_result(
        idempotency_key("V-repl-0100", "result"),
        app.application_id,
        card.card_number,
        success=True,
        atr=ATR,
        card_identification_code=CIC,
        bank_account=ACCOUNT,
    )
    assert ack.old_card_state is CardState.CANCELLED and ack.card_state is CardState.NOT_ACTIVATED
    assert client.query_person(REPLACEMENT).card.card_number == card.card_number
    # The old card is dead for every business.
    assert (
        refused(
            lambda: client.activate_social_security(
                idempotency_key("V-repl-0100", "old"), old.card_number, REPLACEMENT
            )
        )
        is NoticeCode.CARD_CANCELLED
    )
    assert (
        refused(
            lambda: client.set_financial_pin(
                idempotency_key("V-repl-0100", "oldpin"), old.card_number, bytes(8)
            )
        )
        is NoticeCode.CARD_CANCELLED
    )


def test_fees_are_charged_and_must_be_paid(client: BackendClient) -> None:
    assert client.query_fee(REPLACEMENT, Business.REPLACEMENT, BusinessReason.LOST).fee_fen == 2000
    assert client.query_fee(FIRST_ISSUE, Business.FIRST_ISSUE).fee_fen == 0
    assert (
        refused(
            lambda: submit(
                client,
                "V-fee-0001",
                REPLACEMENT,
                Business.REPLACEMENT,
                BusinessReason.LOST,
                fee_paid_fen=1999,
            )
        )
        is NoticeCode.FEE_NOT_PAID
    )


def test_quality_defect_within_a_year_is_free(
    tmp_path: Path, people_file: Path, clock: FakeClock, hsm: FakeHsm, kiosk_key: Sm2PrivateKey
) -> None:
    rules = SimulatorRules(fee_renewal=1500)
    sim = make_simulator(tmp_path / "q", people_file, clock, hsm, rules, kiosk_key)
    client = make_client(sim, kiosk_key)
    try:
        first_issue_visit(client, "V-quality-01", FIRST_ISSUE)
        fee = client.query_fee(FIRST_ISSUE, Business.RENEWAL, BusinessReason.QUALITY_DEFECT)
        assert fee.fee_fen == 0 and fee.waived_reason == "quality_defect_within_free_period"
        assert client.query_fee(FIRST_ISSUE, Business.RENEWAL, BusinessReason.DAMAGED).fee_fen == 1500
        clock.advance(days=400)
        assert client.query_fee(FIRST_ISSUE, Business.RENEWAL, BusinessReason.QUALITY_DEFECT).fee_fen == 1500
    finally:
        client.close()
        sim.close()


def test_renewal_inside_the_window_only_unless_a_listed_reason(
    client: BackendClient, clock: FakeClock
) -> None:
    assert client.check_eligibility(RENEWAL, Business.RENEWAL).eligible  # expires in 30 days, window 60
    outside = client.check_eligibility(ACTIVE, Business.RENEWAL)  # 3000 days left
    assert outside.refusal is NoticeCode.RENEWAL_NOT_DUE
    assert (
        refused(lambda: submit(client, "V-ren-0001", ACTIVE, Business.RENEWAL)) is NoticeCode.RENEWAL_NOT_DUE
    )
    for reason in (
        BusinessReason.DAMAGED,
        BusinessReason.DATA_CHANGED,
        BusinessReason.THIRD_GENERATION_UPGRADE,
    ):
        assert client.check_eligibility(ACTIVE, Business.RENEWAL, reason).eligible
    # The window opens 60 days before expiry.
    opens = client.check_eligibility(NO_LOSS_REPORT, Business.RENEWAL)
    assert opens.refusal is NoticeCode.RENEWAL_NOT_DUE
    clock.advance(days=2000 - 60 - 1)
    assert not client.check_eligibility(NO_LOSS_REPORT, Business.RENEWAL).eligible
    clock.advance(days=1)
    assert client.check_eligibility(NO_LOSS_REPORT, Business.RENEWAL).eligible


def test_renewal_window_opens_on_is_reported(client: BackendClient) -> None:
    e = client.check_eligibility(RENEWAL, Business.RENEWAL)
    card = client.query_person(RENEWAL).card
    assert e.renewal_window_opens_on is not None and (card.expires_on - e.renewal_window_opens_on).days == 60


def test_temporary_card_must_be_recalled_first(client: BackendClient) -> None:
    assert (
        client.check_eligibility(TEMPORARY_HELD, Business.FIRST_ISSUE).refusal
        is NoticeCode.TEMPORARY_CARD_NOT_RECALLED
    )
    temp = client.query_temporary_card(TEMPORARY_HELD)
    assert temp.status is TemporaryCardStatus.HELD and temp.card_number
    assert (
        refused(
            lambda: client.recall_temporary_card(
                idempotency_key("V-temp-0001", "recall"), TEMPORARY_HELD, "T000000"
            )
        )
        is NoticeCode.DATA_MISMATCH
    )
    client.recall_temporary_card(idempotency_key("V-temp-0002", "recall"), TEMPORARY_HELD, temp.card_number)
    assert client.query_temporary_card(TEMPORARY_HELD).status is TemporaryCardStatus.RECALLED
    assert (
        submit(client, "V-temp-0002", TEMPORARY_HELD, Business.FIRST_ISSUE).state
        is ApplicationState.SUBMITTED
    )


def test_lost_temporary_card_owes_a_fee_at_the_counter(client: BackendClient) -> None:
    temp = client.query_temporary_card(TEMPORARY_LOST)
    assert temp.status is TemporaryCardStatus.LOST and temp.fee_fen == 2000
    assert (
        client.check_eligibility(TEMPORARY_LOST, Business.FIRST_ISSUE).refusal
        is NoticeCode.TEMPORARY_CARD_LOST_FEE_DUE
    )


def test_one_card_in_production_per_person(client: BackendClient) -> None:
    submit(client, "V-one-0001", FIRST_ISSUE, Business.FIRST_ISSUE)
    assert (
        refused(lambda: submit(client, "V-one-0002", FIRST_ISSUE, Business.FIRST_ISSUE))
        is NoticeCode.APPLICATION_IN_PROGRESS
    )
    # A centrally produced card not yet collected also counts.
    assert (
        client.check_eligibility(CENTRAL_READY, Business.RENEWAL).refusal
        is NoticeCode.APPLICATION_IN_PROGRESS
    )


def test_sealed_card_goes_to_the_counter(client: BackendClient) -> None:
    assert (
        client.check_eligibility(SEALED, Business.RENEWAL, BusinessReason.DAMAGED).refusal
        is NoticeCode.CARD_SEALED
    )
    assert (
        refused(lambda: client.report_loss(idempotency_key("V-seal-0001", "loss"), SEALED, LossKind.FORMAL))
        is NoticeCode.CARD_SEALED
    )


def test_loss_report_freezes_the_card_and_its_account(client: BackendClient) -> None:
    card = client.query_person(ACTIVE).card
    assert client.query_bank_account(card.card_number).state is BankAccountState.ACTIVE
    report = client.report_loss(idempotency_key("V-loss-0001", "loss"), ACTIVE, LossKind.TEMPORARY)
    assert report.card_state is CardState.TEMPORARY_LOSS and report.card_number == card.card_number
    assert client.query_bank_account(card.card_number).state is BankAccountState.FROZEN
    assert (
        refused(
            lambda: client.report_loss(idempotency_key("V-loss-0002", "loss"), ACTIVE, LossKind.TEMPORARY)
        )
        is NoticeCode.CARD_ALREADY_REPORTED_LOST
    )
    formal = client.report_loss(idempotency_key("V-loss-0003", "loss"), ACTIVE, LossKind.FORMAL)
    assert formal.card_state is CardState.LOST


def test_loss_cancel_restores_the_card_before_a_replacement(client: BackendClient) -> None:
    card = client.query_person(TEMPORARY_LOSS).card
    assert card.state is CardState.TEMPORARY_LOSS
    cancelled = client.cancel_loss(idempotency_key("V-cancel-01", "cancel"), TEMPORARY_LOSS)
    assert cancelled.card_state is CardState.NORMAL
    assert client.query_bank_account(card.card_number).state is BankAccountState.ACTIVE
    assert (
        refused(lambda: client.cancel_loss(idempotency_key("V-cancel-02", "cancel"), TEMPORARY_LOSS))
        is NoticeCode.CARD_NOT_REPORTED_LOST
    )


def test_loss_cancel_refused_once_a_replacement_was_applied_for(client: BackendClient) -> None:
    submit(client, "V-cancel-10", REPLACEMENT, Business.REPLACEMENT, BusinessReason.LOST, 2000)
    assert (
        refused(lambda: client.cancel_loss(idempotency_key("V-cancel-11", "cancel"), REPLACEMENT))
        is NoticeCode.REPLACEMENT_ALREADY_APPLIED
    )


def test_loss_modes_follow_the_region(
    tmp_path: Path, people_file: Path, clock: FakeClock, hsm: FakeHsm, kiosk_key: Sm2PrivateKey
) -> None:
    sim = make_simulator(
        tmp_path / "m", people_file, clock, hsm, SimulatorRules(loss_modes=("temporary",)), kiosk_key
    )
    client = make_client(sim, kiosk_key)
    try:
        assert (
            refused(
                lambda: client.report_loss(idempotency_key("V-mode-0001", "loss"), ACTIVE, LossKind.FORMAL)
            )
            is NoticeCode.LOSS_MODE_NOT_ALLOWED
        )
    finally:
        client.close()
        sim.close()


def test_progress_of_a_centrally_produced_card_follows_its_timeline(
    client: BackendClient, clock: FakeClock
) -> None:
    ready = client.query_progress(CENTRAL_READY).items[0]
    assert ready.stage is ProgressStage.READY_FOR_PICKUP and ready.branch
    fresh = client.query_progress(CENTRAL_FRESH).items[0]
    assert fresh.stage is ProgressStage.SUBMITTED and fresh.expected_ready_on > fresh.submitted_on
    clock.advance(days=2)
    assert client.query_progress(CENTRAL_FRESH).items[0].stage is ProgressStage.IN_PRODUCTION
    clock.advance(days=60)
    assert client.query_progress(CENTRAL_FRESH).items[0].stage is ProgressStage.MAILED
    assert refused(lambda: client.query_progress(ACTIVE)) is NoticeCode.NO_APPLICATION


def test_working_day_timeline_skips_weekends() -> None:
    from datetime import date

    from kiosk.backend.simulator.rules import add_working_days

    assert add_working_days(date(2026, 11, 20), 1) == date(2026, 11, 23)  # Friday + 1 → Monday
    assert add_working_days(date(2026, 11, 23), 30) == date(2027, 1, 4)


def test_activation_of_a_centrally_made_card(client: BackendClient) -> None:
    card = client.query_person(CENTRAL_READY).card
    assert card.state is CardState.NOT_ACTIVATED
    assert (
        refused(
            lambda: client.activate_social_security(
                idempotency_key("V-act-0001", "act"), card.card_number, ACTIVE
            )
        )
        is NoticeCode.DATA_MISMATCH
    )
    act = client.activate_social_security(
        idempotency_key("V-act-0002", "act"), card.card_number, CENTRAL_READY
    )
    assert act.card_state is CardState.NORMAL
    assert client.query_progress(CENTRAL_READY).items[0].stage is ProgressStage.COLLECTED
    assert (
        refused(
            lambda: client.activate_social_security(
                idempotency_key("V-act-0003", "act"), card.card_number, CENTRAL_READY
            )
        )
        is NoticeCode.CARD_STATE_INVALID
    )
    # The financial account needs the financial PIN before activation.
    assert (
        refused(lambda: client.activate_bank_account(idempotency_key("V-act-0004", "bank"), card.card_number))
        is NoticeCode.FINANCIAL_PIN_NOT_SET
    )
    client.set_financial_pin(idempotency_key("V-act-0005", "pin"), card.card_number, bytes(8))
    assert (
        client.activate_bank_account(idempotency_key("V-act-0006", "bank"), card.card_number).state
        is BankAccountState.ACTIVE
    )


def test_bank_activation_may_be_pending_and_completes_later(
    client: BackendClient, sim, clock: FakeClock
) -> None:
    card = client.query_person(CENTRAL_READY).card
    client.set_financial_pin(idempotency_key("V-pend-0001", "pin"), card.card_number, bytes(16))
    sim.inject("bank_pending", count=1)
    assert (
        client.activate_bank_account(idempotency_key("V-pend-0001", "bank"), card.card_number).state
        is BankAccountState.PENDING
    )
    assert client.query_bank_account(card.card_number).state is BankAccountState.PENDING
    clock.advance(hours=2)
    assert client.query_bank_account(card.card_number).state is BankAccountState.ACTIVE


def test_bank_pin_needs_an_opened_account(client: BackendClient) -> None:
    app = submit(client, "V-pin-00001", FIRST_ISSUE, Business.FIRST_ISSUE)
    card = client.mark_instant_issue(idempotency_key("V-pin-00001", "mark"), app.application_id)
    client.report_result(
        idempotency_key("V-pin-00001", "result"),
        app.application_id,
        card.card_number,
        success=True,
        atr=ATR,
        card_identification_code=CIC,
        bank_account=ACCOUNT,
    )
    assert (
        refused(
            lambda: client.set_financial_pin(
                idempotency_key("V-pin-00001", "pin"), card.card_number, bytes(8)
            )
        )
        is NoticeCode.BANK_ACCOUNT_NOT_OPENED
    )
    assert (
        refused(
            lambda: client.activate_bank_account(idempotency_key("V-pin-00001", "bank"), card.card_number)
        )
        is NoticeCode.BANK_ACCOUNT_NOT_OPENED
    )


def test_failed_personalization_voids_the_number_and_allows_a_new_blank(client: BackendClient) -> None:
    app = submit(client, "V-fail-0001", FIRST_ISSUE, Business.FIRST_ISSUE)
    first = client.mark_instant_issue(idempotency_key("V-fail-0001", "mark"), app.application_id)
    assert (
        refused(
            lambda: client.mark_instant_issue(idempotency_key("V-fail-0001", "mark", 9), app.application_id)
        )
        is NoticeCode.APPLICATION_STATE_INVALID
    )
    ack = client.report_result(
        idempotency_key("V-fail-0001", "result"),
        app.application_id,
        first.card_number,
        success=False,
        fail_type="chip_write",
        fail_reason="6581 on UPDATE RECORD",
    )
    assert not ack.success and ack.card_state is CardState.CANCELLED
    second = client.mark_instant_issue(idempotency_key("V-fail-0001", "mark", 1), app.application_id)
    assert second.card_number != first.card_number
    assert (
        refused(
            lambda: client.report_result(
                idempotency_key("V-fail-0001", "result", 1),
                app.application_id,
                first.card_number,
                success=True,
                atr=ATR,
                card_identification_code=CIC,
                bank_account=ACCOUNT,
            )
        )
        is NoticeCode.APPLICATION_STATE_INVALID
    )


def test_result_success_needs_atr_cic_and_account(client: BackendClient) -> None:
    app = submit(client, "V-res-00001", FIRST_ISSUE, Business.FIRST_ISSUE)
    card = client.mark_instant_issue(idempotency_key("V-res-00001", "mark"), app.application_id)
    assert (
        refused(
            lambda: client.report_result(
                idempotency_key("V-res-00001", "result"), app.application_id, card.card_number, success=True
            )
        )
        is NoticeCode.REQUEST_INVALID
    )


def test_hsm_key_work_goes_to_the_hsm_only_during_personalization(
    client: BackendClient, hsm: FakeHsm
) -> None:
    app = submit(client, "V-hsm-00001", FIRST_ISSUE, Business.FIRST_ISSUE)
    assert (
        refused(
            lambda: client.hsm_key_work(app.application_id, KeyWorkOperation.MAC, "UKSSSE", b"\x01", b"\x02")
        )
        is NoticeCode.APPLICATION_STATE_INVALID
    )
    assert hsm.calls == []
    client.mark_instant_issue(idempotency_key("V-hsm-00001", "mark"), app.application_id)
    result = client.hsm_key_work(
        app.application_id,
        KeyWorkOperation.EXTERNAL_AUTHENTICATE,
        "RKSSSE",
        bytes.fromhex("110100D156000005"),
        bytes.fromhex("1122334455667788"),
    )
    assert hsm.calls == [
        (
            "external_authenticate",
            "RKSSSE",
            bytes.fromhex("110100D156000005"),
            bytes.fromhex("1122334455667788"),
        )
    ]
    assert result.output == hsm.compute(
        "external_authenticate",
        "RKSSSE",
        bytes.fromhex("110100D156000005"),
        bytes.fromhex("1122334455667788"),
    )


def test_third_generation_certificate_is_signed_by_the_simulated_ca(client: BackendClient, sim) -> None:
    card = client.query_person(ACTIVE).card
    card_key = Sm2PrivateKey.generate().public_key
    cert = client.request_certificate(
        idempotency_key("V-cert-0001", "cert"), card.card_number, card_key.hex()
    )
    tbs, signature = cert.certificate.rsplit(b"\n", 1)
    assert json.loads(tbs)["public_key"] == card_key.hex() and json.loads(tbs)["subject"] == card.card_number
    ca_public = Sm2PrivateKey.from_hex((sim.state_dir / "ca.key").read_text().strip()).public_key
    assert verify(ca_public, tbs, signature.decode())
    assert (
        refused(
            lambda: client.request_certificate(
                idempotency_key("V-cert-0002", "cert"), card.card_number, "AB" * 64
            )
        )
        is NoticeCode.REQUEST_INVALID
    )


def test_photo_on_record_is_kept_for_a_renewal(client: BackendClient) -> None:
    assert refused(lambda: client.query_person_photo(RENEWAL)) is NoticeCode.PHOTO_NOT_ON_RECORD
    assert (
        refused(lambda: submit(client, "V-photo-001", RENEWAL, Business.RENEWAL, photo=None))
        is NoticeCode.PHOTO_NOT_ON_RECORD
    )
    submit(client, "V-photo-002", RENEWAL, Business.RENEWAL, photo=PHOTO)
    assert client.query_person_photo(RENEWAL) == PHOTO


def test_rare_characters_survive_the_round_trip(client: BackendClient) -> None:
    app = submit(client, "V-rare-0001", RARE, Business.FIRST_ISSUE)
    card = client.mark_instant_issue(idempotency_key("V-rare-0001", "mark"), app.application_id)
    assert card.name == "王𠮷"


def test_state_survives_a_restart(
    tmp_path: Path,
    people_file: Path,
    clock: FakeClock,
    hsm: FakeHsm,
    rules: SimulatorRules,
    kiosk_key: Sm2PrivateKey,
) -> None:
    sim = make_simulator(tmp_path / "r", people_file, clock, hsm, rules, kiosk_key)
    client = make_client(sim, kiosk_key)
    app = submit(client, "V-restart-1", FIRST_ISSUE, Business.FIRST_ISSUE)
    client.close()
    sim.close()
    sim = make_simulator(tmp_path / "r", people_file, clock, hsm, rules, kiosk_key)
    client = make_client(sim, kiosk_key)
    try:
        assert client.query_person(FIRST_ISSUE).open_application == app.application_id
        # Same key after the restart → the same answer, no second application.
        assert submit(client, "V-restart-1", FIRST_ISSUE, Business.FIRST_ISSUE) == app
        assert sim.state.count("applications", "id_number = ?", (FIRST_ISSUE,)) == 1
        assert sim.state.count("persons") == len(json.loads(people_file.read_text())["people"])
    finally:
        client.close()
        sim.close()


def test_same_key_same_answer_and_other_body_is_refused(client: BackendClient, sim) -> None:
    a = submit(client, "V-idem-0001", FIRST_ISSUE, Business.FIRST_ISSUE)
    assert submit(client, "V-idem-0001", FIRST_ISSUE, Business.FIRST_ISSUE) == a
    assert sim.state.count("applications", "id_number = ?", (FIRST_ISSUE,)) == 1
    assert (
        refused(
            lambda: submit(client, "V-idem-0001", FIRST_ISSUE, Business.FIRST_ISSUE, photo=b"\xff\xd8other")
        )
        is NoticeCode.IDEMPOTENCY_KEY_REUSED
    )
    # A refusal is an answer too: replaying its key gives the same refusal even after the rule changed.
    code = refused(
        lambda: submit(client, "V-idem-0002", REPLACEMENT, Business.REPLACEMENT, BusinessReason.LOST, 0)
    )
    assert code is NoticeCode.FEE_NOT_PAID
    assert (
        refused(
            lambda: submit(client, "V-idem-0002", REPLACEMENT, Business.REPLACEMENT, BusinessReason.LOST, 0)
        )
        is NoticeCode.FEE_NOT_PAID
    )


def test_lookup_by_key_returns_the_stored_answer(client: BackendClient) -> None:
    app = submit(client, "V-look-0001", FIRST_ISSUE, Business.FIRST_ISSUE)
    assert client.recover("submitApplication", idempotency_key("V-look-0001", "submit")) == app
    assert client.recover("submitApplication", idempotency_key("V-look-0001", "never")) is None
    outcome = client.lookup_request(idempotency_key("V-look-0001", "submit"))
    assert outcome.http_status == 200 and outcome.operation == "submitApplication"


def test_requests_with_a_bad_signature_stale_time_or_replayed_nonce_are_refused(
    sim, kiosk_key: Sm2PrivateKey, client: BackendClient
) -> None:
    import requests

    intruder = BackendClient(sim.base_url, "KIOSK-TEST-01", Sm2PrivateKey.generate(), retries=0)
    assert refused(lambda: intruder.query_person(ACTIVE)) is NoticeCode.SIGNATURE_INVALID
    unknown = BackendClient(sim.base_url, "KIOSK-UNKNOWN", kiosk_key, retries=0)
    assert refused(lambda: unknown.query_person(ACTIVE)) is NoticeCode.SIGNATURE_INVALID
    stale = BackendClient(sim.base_url, "KIOSK-TEST-01", kiosk_key, retries=0, wall_clock=lambda: 1_000_000.0)
    assert refused(lambda: stale.query_person(ACTIVE)) is NoticeCode.SIGNATURE_INVALID
    # Replay: the same signed request twice.
    body = json.dumps({"id_number": ACTIVE}).encode()
    headers = client._headers("POST", "/api/v1/persons/query", body, None)
    url = sim.base_url + "/persons/query"
    assert requests.post(url, data=body, headers=headers, timeout=2).status_code == 200
    second = requests.post(url, data=body, headers=headers, timeout=2)
    assert second.status_code == 401 and second.json()["error"]["code"] == "signature_invalid"
    # A body changed after signing.
    headers = client._headers("POST", "/api/v1/persons/query", body, None)
    forged = json.dumps({"id_number": FIRST_ISSUE}).encode()
    assert requests.post(url, data=forged, headers=headers, timeout=2).status_code == 401
    for c in (intruder, unknown, stale):
        c.close()


def test_mutating_call_without_a_key_is_a_programming_error(client: BackendClient) -> None:
    with pytest.raises(ValueError):
        client.call("submitApplication", {"id_number": FIRST_ISSUE}, None)
    with pytest.raises(ValueError):
        idempotency_key("V", "s")


def test_idempotency_key_is_derived_from_visit_and_step() -> None:
    assert idempotency_key("V20261123101500-ab12cd34", "submit") == idempotency_key(
        "V20261123101500-ab12cd34", "submit"
    )
    assert idempotency_key("V20261123101500-ab12cd34", "submit") != idempotency_key(
        "V20261123101500-ab12cd34", "activate"
    )
    assert idempotency_key("V20261123101500-ab12cd34", "mark", 1).endswith(".1")
    assert " " not in idempotency_key("V 2026/11 23", "step one")


def test_pin_block_and_names_never_reach_the_log(
    client: BackendClient, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    done = first_issue_visit(client, "V-log-00001", FIRST_ISSUE)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "0412AC89ABCDEF67" not in text.upper() and "张桂兰" not in text and FIRST_ISSUE not in text
    assert done["card"].card_number  # the visit really ran
    assert base64.b64encode(b"\xff\xd8\xff\xe0fake-jpeg").decode() not in text
    assert "backend.reply" in text


def test_signature_public_key_parse_of_registered_kiosk(sim, kiosk_key: Sm2PrivateKey) -> None:
    assert sim.state.kiosk_key("KIOSK-TEST-01") == Sm2PublicKey.from_hex(kiosk_key.public_key.hex())
