"""Every back-end error code → its one-time notice (一次性告知单): the one place of this map.

A notice tells the citizen four things (DOMAIN.md, "Rules the kiosk must enforce"): the
**reason**, what is **missing**, what to **do**, and **where** to go. Each is a message key in
``kiosk/locale/*/LC_MESSAGES/backend.po``; ``where`` texts take ``{counter_address}`` and
``{hotline}`` from the region configuration. ``staffed`` says the visit hands over to the
counter (the screen offers "call staff"); ``retry_later`` says the same business may succeed at
the kiosk later (the back end was unreachable).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kiosk.backend.api import BackendError, NoticeCode


class Missing(enum.Enum):
    NOTHING = "nothing"
    BASE_INFORMATION = "base_information"  # not registered in 人社基础信息库
    DATA_CORRECTION = "data_correction"
    FORMAL_LOSS_REPORT = "formal_loss_report"
    TEMPORARY_CARD = "temporary_card"
    TEMPORARY_CARD_FEE = "temporary_card_fee"
    FEE = "fee"
    PHOTO = "photo"
    FINANCIAL_PIN = "financial_pin"
    BANK_ACCOUNT = "bank_account"
    RENEWAL_REASON = "renewal_reason"
    CARD = "card"


class Action(enum.Enum):
    GO_TO_COUNTER = "go_to_counter"
    REPORT_LOSS_FIRST = "report_loss_first"
    INSERT_TEMPORARY_CARD = "insert_temporary_card"
    PAY_FEE = "pay_fee"
    TAKE_PHOTO = "take_photo"
    CHOOSE_OTHER_BUSINESS = "choose_other_business"
    WAIT_FOR_PRODUCTION = "wait_for_production"
    COME_BACK_IN_WINDOW = "come_back_in_window"
    SET_FINANCIAL_PIN = "set_financial_pin"
    TRY_AGAIN_LATER = "try_again_later"
    KEEP_VOUCHER_STAFF_WILL_CHECK = "keep_voucher_staff_will_check"
    CALL_STAFF = "call_staff"
    NONE_NEEDED = "none_needed"


class Where(enum.Enum):
    COUNTER = "counter"  # 社保卡服务大厅 ({counter_address})
    BANK_COUNTER = "bank_counter"  # the cooperating bank's counter in this branch
    THIS_KIOSK = "this_kiosk"
    HOTLINE = "hotline"  # 12333 ({hotline})


@dataclass(frozen=True)
class Notice:
    """One one-time notice: four message keys and how the visit continues."""

    code: NoticeCode
    missing: Missing
    action: Action
    where: Where
    staffed: bool = True
    retry_later: bool = False

    @property
    def reason_key(self) -> str:
        return f"backend.notice.{self.code.value}.reason"

    @property
    def missing_key(self) -> str:
        return f"backend.missing.{self.missing.value}"

    @property
    def action_key(self) -> str:
        return f"backend.action.{self.action.value}"

    @property
    def where_key(self) -> str:
        return f"backend.where.{self.where.value}"

    @property
    def keys(self) -> tuple[str, str, str, str]:
        return (self.reason_key, self.missing_key, self.action_key, self.where_key)


_C = NoticeCode
_N = Notice
NOTICES: dict[NoticeCode, Notice] = {
    n.code: n
    for n in (
        _N(_C.PERSON_NOT_FOUND, Missing.BASE_INFORMATION, Action.GO_TO_COUNTER, Where.COUNTER),
        _N(_C.PHOTO_NOT_ON_RECORD, Missing.PHOTO, Action.TAKE_PHOTO, Where.THIS_KIOSK, staffed=False),
        _N(_C.DATA_MISMATCH, Missing.DATA_CORRECTION, Action.GO_TO_COUNTER, Where.COUNTER),
        _N(
            _C.CARD_ALREADY_HELD,
            Missing.NOTHING,
            Action.CHOOSE_OTHER_BUSINESS,
            Where.THIS_KIOSK,
            staffed=False,
        ),
        _N(_C.NO_CARD, Missing.CARD, Action.CHOOSE_OTHER_BUSINESS, Where.THIS_KIOSK, staffed=False),
        _N(
            _C.REPLACEMENT_NEEDS_LOSS_REPORT,
            Missing.FORMAL_LOSS_REPORT,
            Action.REPORT_LOSS_FIRST,
            Where.THIS_KIOSK,
            staffed=False,
        ),
        _N(
            _C.RENEWAL_NOT_DUE,
            Missing.RENEWAL_REASON,
            Action.COME_BACK_IN_WINDOW,
            Where.THIS_KIOSK,
            staffed=False,
        ),
        _N(
            _C.TEMPORARY_CARD_NOT_RECALLED,
            Missing.TEMPORARY_CARD,
            Action.INSERT_TEMPORARY_CARD,
            Where.COUNTER,
        ),
        _N(_C.TEMPORARY_CARD_LOST_FEE_DUE, Missing.TEMPORARY_CARD_FEE, Action.GO_TO_COUNTER, Where.COUNTER),
        _N(
            _C.APPLICATION_IN_PROGRESS,
            Missing.NOTHING,
            Action.WAIT_FOR_PRODUCTION,
            Where.HOTLINE,
            staffed=False,
        ),
        _N(_C.CARD_SEALED, Missing.NOTHING, Action.GO_TO_COUNTER, Where.COUNTER),
        _N(_C.CARD_CANCELLED, Missing.CARD, Action.GO_TO_COUNTER, Where.COUNTER),
        _N(_C.CARD_NOT_REPORTED_LOST, Missing.NOTHING, Action.NONE_NEEDED, Where.THIS_KIOSK, staffed=False),
        _N(
            _C.CARD_ALREADY_REPORTED_LOST,
            Missing.NOTHING,
            Action.NONE_NEEDED,
            Where.THIS_KIOSK,
            staffed=False,
        ),
        _N(_C.REPLACEMENT_ALREADY_APPLIED, Missing.NOTHING, Action.WAIT_FOR_PRODUCTION, Where.COUNTER),
        _N(_C.CARD_STATE_INVALID, Missing.NOTHING, Action.GO_TO_COUNTER, Where.COUNTER),
        _N(_C.LOSS_MODE_NOT_ALLOWED, Missing.NOTHING, Action.GO_TO_COUNTER, Where.HOTLINE),
        _N(_C.APPLICATION_NOT_FOUND, Missing.NOTHING, Action.GO_TO_COUNTER, Where.COUNTER),
        _N(
            _C.APPLICATION_STATE_INVALID, Missing.NOTHING, Action.KEEP_VOUCHER_STAFF_WILL_CHECK, Where.COUNTER
        ),
        _N(_C.FEE_NOT_PAID, Missing.FEE, Action.PAY_FEE, Where.THIS_KIOSK, staffed=False),
        _N(_C.BANK_ACCOUNT_NOT_OPENED, Missing.BANK_ACCOUNT, Action.GO_TO_COUNTER, Where.BANK_COUNTER),
        _N(
            _C.FINANCIAL_PIN_NOT_SET,
            Missing.FINANCIAL_PIN,
            Action.SET_FINANCIAL_PIN,
            Where.THIS_KIOSK,
            staffed=False,
        ),
        _N(_C.CERTIFICATE_NOT_AVAILABLE, Missing.NOTHING, Action.GO_TO_COUNTER, Where.COUNTER),
        _N(_C.NO_APPLICATION, Missing.NOTHING, Action.GO_TO_COUNTER, Where.HOTLINE),
        _N(
            _C.REQUEST_NOT_FOUND,
            Missing.NOTHING,
            Action.TRY_AGAIN_LATER,
            Where.THIS_KIOSK,
            staffed=False,
            retry_later=True,
        ),
        _N(_C.IDEMPOTENCY_KEY_REUSED, Missing.NOTHING, Action.CALL_STAFF, Where.COUNTER),
        _N(_C.SIGNATURE_INVALID, Missing.NOTHING, Action.CALL_STAFF, Where.COUNTER),
        _N(_C.REQUEST_INVALID, Missing.NOTHING, Action.CALL_STAFF, Where.COUNTER),
        _N(
            _C.SERVICE_UNAVAILABLE,
            Missing.NOTHING,
            Action.TRY_AGAIN_LATER,
            Where.COUNTER,
            staffed=False,
            retry_later=True,
        ),
        _N(_C.OUTCOME_UNKNOWN, Missing.NOTHING, Action.KEEP_VOUCHER_STAFF_WILL_CHECK, Where.COUNTER),
    )
}


def notice_for(problem: NoticeCode | BackendError) -> Notice:
    """The one-time notice for an error code or a back-end error (transient → service
    unavailable, ambiguous → outcome unknown, refused → its code)."""
    code = problem if isinstance(problem, NoticeCode) else problem.notice
    return NOTICES[code]


def all_message_keys() -> set[str]:
    keys = {"backend.error", "backend.unavailable", "backend.ambiguous", "backend.refused"}
    for notice in NOTICES.values():
        keys.update(notice.keys)
    return keys
