"""What the core sees of the back end (卡管系统 + 合作银行主机): a protocol, values and errors.

The protocol :class:`CardManagementBackend` is implemented by :class:`kiosk.backend.client.
BackendClient` (HTTPS to the province, or to the simulator). Every method either returns a frozen
value or raises one of three kinds of :class:`BackendError`:

- :class:`BackendTransient` — provably nothing happened (connection refused before the request
  was sent, HTTP 5xx/429); safe to try again later.
- :class:`BackendAmbiguous` — the request may have been carried out (timeout after sending, the
  connection dropped, a reply that is not JSON or contradicts the contract). Never resubmit
  blindly: ask :meth:`CardManagementBackend.recover` (or ``lookup_request``) with the same
  idempotency key.
- :class:`BackendRefused` — the card-management system refused the business (HTTP 4xx); its
  ``notice`` (:class:`NoticeCode`) selects the one-time notice (一次性告知单) for the citizen.

Mutating methods take an ``idempotency_key``; build it with :func:`idempotency_key` from the
visit id and the step name so the retry after a crash sends the same key.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol, runtime_checkable

from kiosk.devices import Audience, DeviceError, DeviceStatus

_KEY_PART = re.compile(r"[^A-Za-z0-9._-]")


def idempotency_key(visit_id: str, step: str, attempt: int = 0) -> str:
    """The idempotency key (幂等键) of one mutating call: the visit and the step, plus an attempt
    number only when the business *means* a new request (a second blank card after a spoiled
    one). A retry after a crash rebuilds the same key from the journal."""
    base = f"{_KEY_PART.sub('-', visit_id)}.{_KEY_PART.sub('-', step)}"
    key = base if attempt == 0 else f"{base}.{attempt}"
    if not 8 <= len(key) <= 128:
        raise ValueError("idempotency key must be 8..128 characters")
    return key


class CardState(enum.Enum):
    """社保卡状态 as the card-management system reports it."""

    NORMAL = "normal"  # 正常
    TEMPORARY_LOSS = "temporary_loss"  # 临时挂失
    LOST = "lost"  # 挂失 (正式挂失)
    CANCELLED = "cancelled"  # 注销
    IN_PRODUCTION = "in_production"  # 制卡中
    NOT_ACTIVATED = "not_activated"  # 未启用
    SEALED = "sealed"  # 封存

    @property
    def chinese(self) -> str:
        return CARD_STATE_CHINESE[self]

    @classmethod
    def from_chinese(cls, text: str) -> CardState:
        for state, name in CARD_STATE_CHINESE.items():
            if name == text:
                return state
        raise ValueError(f"unknown card state {text!r}")


CARD_STATE_CHINESE = {
    CardState.NORMAL: "正常",
    CardState.TEMPORARY_LOSS: "临时挂失",
    CardState.LOST: "挂失",
    CardState.CANCELLED: "注销",
    CardState.IN_PRODUCTION: "制卡中",
    CardState.NOT_ACTIVATED: "未启用",
    CardState.SEALED: "封存",
}


class Business(enum.Enum):
    FIRST_ISSUE = "first_issue"  # 首次申领
    REPLACEMENT = "replacement"  # 补领
    RENEWAL = "renewal"  # 换领


class BusinessReason(enum.Enum):
    """Why a replacement or renewal is asked for (补换领原因)."""

    LOST = "lost"  # 丢失 (replacement)
    EXPIRING = "expiring"  # 到期/有效期内换领窗口
    DAMAGED = "damaged"  # 损坏
    QUALITY_DEFECT = "quality_defect"  # 卡片质量问题
    DATA_CHANGED = "data_changed"  # 个人信息变更
    THIRD_GENERATION_UPGRADE = "third_generation_upgrade"  # 升级第三代
    BANK_CHANGE = "bank_change"  # 变更合作银行


class TemporaryCardStatus(enum.Enum):
    """临时卡: none held, held (must be recalled first), recalled, or lost (fee, counter)."""

    NONE = "none"
    HELD = "held"
    RECALLED = "recalled"
    LOST = "lost"


class LossKind(enum.Enum):
    TEMPORARY = "temporary"  # 临时挂失 (phone/kiosk, short-lived)
    FORMAL = "formal"  # 正式挂失 (needed before a replacement)


class ProgressStage(enum.Enum):
    """制卡进度 of a centrally produced card."""

    SUBMITTED = "submitted"  # 已受理
    IN_PRODUCTION = "in_production"  # 制卡中
    READY_FOR_PICKUP = "ready_for_pickup"  # 已到网点待领取
    MAILED = "mailed"  # 已邮寄
    COLLECTED = "collected"  # 已领取
    ISSUED = "issued"  # 即时制卡已发卡
    FAILED = "failed"  # 制卡失败


class ApplicationState(enum.Enum):
    SUBMITTED = "submitted"  # 已受理, awaiting instant-issue marking
    MARKED = "marked"  # 即制卡标注: card number allocated, personalization running
    ISSUED = "issued"  # 回盘 success received
    CENTRAL = "central"  # produced centrally (progress query)


class BankAccountState(enum.Enum):
    NOT_OPENED = "not_opened"
    OPENED = "opened"  # 预开户
    PENDING = "pending"  # activation sent, the bank answers later
    ACTIVE = "active"  # 金融账户已激活
    FROZEN = "frozen"  # frozen by a loss report


class KeyWorkOperation(enum.Enum):
    """Key work the back end's HSM (加密机) does for chip personalization."""

    EXTERNAL_AUTHENTICATE = "external_authenticate"  # encrypt a card challenge under a diversified key
    MAC = "mac"  # secure-messaging MAC for UPDATE RECORD / PIN reload
    ENCRYPT = "encrypt"  # encrypt data (e.g. a PIN reload block) under a diversified key


class NoticeCode(enum.Enum):
    """Every error code of the contract. Each maps to one one-time notice (一次性告知) in
    :mod:`kiosk.backend.notices`; ``docs/api/openapi.yaml`` lists the same codes."""

    PERSON_NOT_FOUND = "person_not_found"
    PHOTO_NOT_ON_RECORD = "photo_not_on_record"
    DATA_MISMATCH = "data_mismatch"
    CARD_ALREADY_HELD = "card_already_held"
    NO_CARD = "no_card"
    REPLACEMENT_NEEDS_LOSS_REPORT = "replacement_needs_loss_report"
    RENEWAL_NOT_DUE = "renewal_not_due"
    TEMPORARY_CARD_NOT_RECALLED = "temporary_card_not_recalled"
    TEMPORARY_CARD_LOST_FEE_DUE = "temporary_card_lost_fee_due"
    APPLICATION_IN_PROGRESS = "application_in_progress"
    CARD_SEALED = "card_sealed"
    CARD_CANCELLED = "card_cancelled"
    CARD_NOT_REPORTED_LOST = "card_not_reported_lost"
    CARD_ALREADY_REPORTED_LOST = "card_already_reported_lost"
    REPLACEMENT_ALREADY_APPLIED = "replacement_already_applied"
    CARD_STATE_INVALID = "card_state_invalid"
    LOSS_MODE_NOT_ALLOWED = "loss_mode_not_allowed"
    APPLICATION_NOT_FOUND = "application_not_found"
    APPLICATION_STATE_INVALID = "application_state_invalid"
    FEE_NOT_PAID = "fee_not_paid"
    BANK_ACCOUNT_NOT_OPENED = "bank_account_not_opened"
    FINANCIAL_PIN_NOT_SET = "financial_pin_not_set"
    CERTIFICATE_NOT_AVAILABLE = "certificate_not_available"
    NO_APPLICATION = "no_application"
    REQUEST_NOT_FOUND = "request_not_found"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    SIGNATURE_INVALID = "signature_invalid"
    REQUEST_INVALID = "request_invalid"
    SERVICE_UNAVAILABLE = "service_unavailable"
    OUTCOME_UNKNOWN = "outcome_unknown"

    @classmethod
    def parse(cls, text: str) -> NoticeCode:
        try:
            return cls(text)
        except ValueError:
            # An unknown code from a newer back end still ends in a notice, never a crash.
            return cls.REQUEST_INVALID


# ---------------------------------------------------------------- errors


class BackendError(DeviceError):
    """Root of the back-end errors (卡管/银行接口错误)."""

    default_code = "backend.error"
    default_message_key = "backend.error"
    default_audience = Audience.CITIZEN

    def __init__(self, message: str = "", *, operation: str = "", idempotency_key: str | None = None, **kw):
        super().__init__(message, **kw)
        self.operation = operation
        self.idempotency_key = idempotency_key

    @property
    def notice(self) -> NoticeCode:
        return NoticeCode.SERVICE_UNAVAILABLE


class BackendTransient(BackendError):
    """Nothing happened at the far end (连接被拒绝 before sending, HTTP 5xx, 429)."""

    default_code = "backend.unavailable"
    default_message_key = "backend.unavailable"

    def __init__(self, message: str = "", **kw):
        kw.setdefault("retryable", True)
        super().__init__(message, **kw)


class BackendAmbiguous(BackendError):
    """The request may have been carried out: look it up by its idempotency key, never resubmit."""

    default_code = "backend.ambiguous"
    default_message_key = "backend.ambiguous"

    @property
    def notice(self) -> NoticeCode:
        return NoticeCode.OUTCOME_UNKNOWN


class BackendContractError(BackendAmbiguous):
    """The reply is not JSON or contradicts ``docs/api/openapi.yaml``. Treated as ambiguous: a
    mutating request may have been committed even though its reply is unusable."""

    default_code = "backend.contract_violation"
    default_audience = Audience.ENGINEER


class BackendRefused(BackendError):
    """The card-management system or the bank refused (HTTP 4xx) with a business code."""

    default_code = "backend.refused"
    default_message_key = "backend.refused"

    def __init__(self, notice: NoticeCode, message: str = "", *, http_status: int = 409, **kw):
        kw.setdefault("code", f"backend.refused.{notice.value}")
        kw.setdefault("message_key", f"backend.notice.{notice.value}.reason")
        super().__init__(message or notice.value, **kw)
        self._notice = notice
        self.http_status = http_status

    @property
    def notice(self) -> NoticeCode:
        return self._notice


# ---------------------------------------------------------------- values


@dataclass(frozen=True)
class CardRecord:
    """The holder's current card as the card-management system knows it (卡信息)."""

    card_number: str  # 社保卡号, 9 characters
    state: CardState
    issued_on: date
    expires_on: date
    bank_code: str
    generation: int = 3


@dataclass(frozen=True)
class PersonRecord:
    """人员基本信息 from the social security base information library (人社基础信息库)."""

    id_number: str = field(repr=False)
    name: str = field(repr=False)
    sex: str  # GB/T 2261.1: '1' male, '2' female, '9'
    ethnicity_code: str  # GB 3304, '01' = 汉
    birth_date: date
    card: CardRecord | None
    temporary_card: TemporaryCardStatus
    photo_on_record: bool
    open_application: str | None = None  # application id of a card in production, if any
    mobile_masked: str | None = None  # the mobile number on record, masked (138****5678)


@dataclass(frozen=True)
class Eligibility:
    """资格校验 for one business: eligible, or the refusal's notice code; the fee to show."""

    business: Business
    eligible: bool
    refusal: NoticeCode | None
    fee_fen: int
    old_card_number: str | None = None
    renewal_window_opens_on: date | None = None


@dataclass(frozen=True)
class Fee:
    """工本费 for a business, in fen (分)."""

    business: Business
    fee_fen: int
    waived_reason: str | None = None


@dataclass(frozen=True)
class TemporaryCard:
    """临时卡回收状态."""

    status: TemporaryCardStatus
    card_number: str | None
    fee_fen: int = 0


@dataclass(frozen=True)
class Application:
    """A submitted application (申领受理)."""

    application_id: str
    business: Business
    state: ApplicationState
    fee_fen: int
    submitted_at: datetime
    old_card_number: str | None = None


@dataclass(frozen=True)
class CardData:
    """即制卡标注 result: the allocated card number and the holder's data for the chip (EF05/EF06)."""

    application_id: str
    card_number: str
    id_number: str = field(repr=False)
    name: str = field(repr=False)
    sex: str
    ethnicity_code: str
    birth_date: date
    issue_date: date
    valid_until: date
    region_code: str
    card_category: str  # 卡类别: '3' adult by default
    spec_version: str  # 规范版本 "3.00"
    bank_code: str
    photo_jpeg: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class KeyWorkResult:
    """Output of one HSM key-work operation (加密机运算)."""

    operation: KeyWorkOperation
    output: bytes = field(repr=False)


@dataclass(frozen=True)
class ResultAck:
    """回盘 acknowledged."""

    application_id: str
    card_number: str
    success: bool
    card_state: CardState | None
    old_card_state: CardState | None = None


@dataclass(frozen=True)
class Activation:
    """社保应用启用 result."""

    card_number: str
    card_state: CardState


@dataclass(frozen=True)
class BankAccount:
    """金融账户: opening (预开户) and activation (激活) state; the account number masked."""

    card_number: str
    account_masked: str
    state: BankAccountState


@dataclass(frozen=True)
class PinSetResult:
    """金融密码设置 acknowledged (only a PIN block ever travelled)."""

    card_number: str
    accepted: bool


@dataclass(frozen=True)
class PinChangeResult:
    """金融密码修改: ``old_pin_correct`` False → the current PIN was wrong, nothing changed;
    ``accepted`` False with a correct old PIN → the bank judged the new PIN too simple."""

    card_number: str
    accepted: bool
    old_pin_correct: bool


@dataclass(frozen=True)
class LossReport:
    """挂失 result: the card (and its fund account) frozen at ``reported_at``."""

    report_id: str
    card_number: str
    kind: LossKind
    card_state: CardState
    reported_at: datetime


@dataclass(frozen=True)
class LossCancellation:
    """解挂 result."""

    card_number: str
    card_state: CardState
    cancelled_at: datetime


@dataclass(frozen=True)
class ProgressItem:
    """制卡进度 of one application."""

    application_id: str
    business: Business
    stage: ProgressStage
    submitted_on: date
    expected_ready_on: date | None
    branch: str | None
    card_number: str | None


@dataclass(frozen=True)
class Progress:
    items: tuple[ProgressItem, ...]


@dataclass(frozen=True)
class Certificate:
    """第三代卡 personal CA certificate for the chip."""

    card_number: str
    certificate: bytes = field(repr=False)
    ca_name: str = ""
    serial: str = ""
    valid_until: date | None = None


@dataclass(frozen=True)
class RequestOutcome:
    """What the back end did with a request identified by its idempotency key (按幂等键查询)."""

    idempotency_key: str
    operation: str
    http_status: int
    body: dict = field(repr=False, hash=False, compare=False)


# ---------------------------------------------------------------- protocol


@runtime_checkable
class CardManagementBackend(Protocol):
    """The card-management system (卡管系统) and the cooperating bank's host, as the core uses them.

    Queries are safe to repeat. Mutating calls carry ``key`` (see :func:`idempotency_key`);
    repeating one with the same key returns the first answer and never makes a second card.
    """

    def query_person(self, id_number: str) -> PersonRecord: ...
    def query_person_photo(self, id_number: str) -> bytes: ...
    def check_eligibility(
        self, id_number: str, business: Business, reason: BusinessReason | None = None
    ) -> Eligibility: ...
    def query_fee(self, id_number: str, business: Business, reason: BusinessReason | None = None) -> Fee: ...
    def query_temporary_card(self, id_number: str) -> TemporaryCard: ...
    def recall_temporary_card(
        self, key: str, id_number: str, temporary_card_number: str
    ) -> TemporaryCard: ...
    def submit_application(
        self,
        key: str,
        *,
        id_number: str,
        business: Business,
        reason: BusinessReason | None,
        mobile: str | None,
        bank_code: str,
        photo_jpeg: bytes | None,
        person_type: str = "resident",
        fee_paid_fen: int = 0,
    ) -> Application: ...
    def mark_instant_issue(self, key: str, application_id: str) -> CardData: ...
    def hsm_key_work(
        self, application_id: str, operation: KeyWorkOperation, key_name: str, diversifier: bytes, data: bytes
    ) -> KeyWorkResult: ...
    def report_result(
        self,
        key: str,
        application_id: str,
        card_number: str,
        *,
        success: bool,
        atr: str | None = None,
        card_identification_code: str | None = None,
        bank_account: str | None = None,
        fail_type: str | None = None,
        fail_reason: str | None = None,
    ) -> ResultAck: ...
    def activate_social_security(self, key: str, card_number: str, id_number: str) -> Activation: ...
    def open_bank_account(
        self, key: str, card_number: str, bank_account: str, optional_services: tuple[str, ...] = ()
    ) -> BankAccount: ...
    def activate_bank_account(self, key: str, card_number: str) -> BankAccount: ...
    def query_bank_account(self, card_number: str) -> BankAccount: ...
    def confirm_bank_activation(self, key: str, card_number: str) -> BankAccount: ...
    def set_financial_pin(
        self, key: str, card_number: str, pin_block: bytes, key_index: int = 1
    ) -> PinSetResult: ...
    def change_financial_pin(
        self, key: str, card_number: str, old_pin_block: bytes, pin_block: bytes, key_index: int = 1
    ) -> PinChangeResult: ...
    def report_loss(self, key: str, id_number: str, kind: LossKind) -> LossReport: ...
    def cancel_loss(self, key: str, id_number: str) -> LossCancellation: ...
    def query_progress(self, id_number: str) -> Progress: ...
    def request_certificate(self, key: str, card_number: str, public_key_hex: str) -> Certificate: ...
    def submit_kiosk_record(self, key: str, kind: str, record: Mapping[str, Any]) -> str: ...
    def lookup_request(self, key: str) -> RequestOutcome: ...

    def recover(self, operation: str, key: str) -> Any | None:
        """After :class:`BackendAmbiguous`: the typed result of the request sent with ``key``
        (operation id as in the contract, e.g. ``"submitApplication"``), its refusal (raised), or
        None if it never arrived — then send it again with the same key."""
        ...

    def status(self) -> DeviceStatus: ...
