"""The signed HTTPS client of the card-management system and the bank host (卡管/银行接口客户端).

:class:`BackendClient` implements :class:`kiosk.backend.api.CardManagementBackend` on
``requests``:

- TLS verified against the province's CA file from configuration (optionally a client
  certificate), separate connect and read timeouts;
- every request signed: ``X-Kiosk-Id``, ``X-Timestamp``, ``X-Nonce`` (CSPRNG) and
  ``X-Signature`` (SM2 over SM3, :mod:`kiosk.backend.signing`); mutating requests carry the
  caller's ``Idempotency-Key`` (from the visit and the step: :func:`kiosk.backend.api.idempotency_key`);
- retries: queries are retried on transient and ambiguous failures; a mutating request is
  retried only when it provably never left the kiosk (connection refused / connect timeout).
  After an ambiguous failure the caller asks :meth:`BackendClient.recover` with the same key —
  the client never sends a second application or activation on its own;
- every reply is validated against ``docs/api/openapi.yaml`` and turned into a frozen value or a
  typed error (:class:`BackendTransient`, :class:`BackendAmbiguous`/:class:`BackendContractError`,
  :class:`BackendRefused` with its :class:`NoticeCode`).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from kiosk.backend.api import (
    Activation,
    Application,
    ApplicationState,
    BackendAmbiguous,
    BackendContractError,
    BackendRefused,
    BackendTransient,
    BankAccount,
    BankAccountState,
    Business,
    BusinessReason,
    CardData,
    CardRecord,
    CardState,
    Certificate,
    Eligibility,
    Fee,
    KeyWorkOperation,
    KeyWorkResult,
    LossCancellation,
    LossKind,
    LossReport,
    NoticeCode,
    PersonRecord,
    PinChangeResult,
    PinSetResult,
    Progress,
    ProgressItem,
    ProgressStage,
    RequestOutcome,
    ResultAck,
    TemporaryCard,
    TemporaryCardStatus,
)
from kiosk.backend.contract import Contract, load_contract
from kiosk.backend.signing import Sm2PrivateKey, canonical_request, sign
from kiosk.devices import DeviceState, DeviceStatus

log = logging.getLogger(__name__)


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _b64(text: str | None) -> bytes | None:
    return base64.b64decode(text) if text else None


# Reply body → frozen value, per operation (also used to turn a looked-up stored answer into a value).
def _person(b: Mapping[str, Any]) -> PersonRecord:
    card = b["card"]
    return PersonRecord(
        id_number=b["id_number"],
        name=b["name"],
        sex=b["sex"],
        ethnicity_code=b["ethnicity_code"],
        birth_date=date.fromisoformat(b["birth_date"]),
        card=None
        if card is None
        else CardRecord(
            card_number=card["card_number"],
            state=CardState(card["state"]),
            issued_on=date.fromisoformat(card["issued_on"]),
            expires_on=date.fromisoformat(card["expires_on"]),
            bank_code=card["bank_code"],
            generation=card["generation"],
        ),
        temporary_card=TemporaryCardStatus(b["temporary_card"]),
        photo_on_record=b["photo_on_record"],
        open_application=b["open_application"],
        mobile_masked=b.get("mobile_masked"),
    )


def _eligibility(b: Mapping[str, Any]) -> Eligibility:
    return Eligibility(
        business=Business(b["business"]),
        eligible=b["eligible"],
        refusal=NoticeCode.parse(b["refusal"]) if b["refusal"] else None,
        fee_fen=b["fee_fen"],
        old_card_number=b["old_card_number"],
        renewal_window_opens_on=_date(b["renewal_window_opens_on"]),
    )


def _application(b: Mapping[str, Any]) -> Application:
    return Application(
        application_id=b["application_id"],
        business=Business(b["business"]),
        state=ApplicationState(b["state"]),
        fee_fen=b["fee_fen"],
        submitted_at=_dt(b["submitted_at"]),
        old_card_number=b["old_card_number"],
    )


def _card_data(b: Mapping[str, Any]) -> CardData:
    return CardData(
        application_id=b["application_id"],
        card_number=b["card_number"],
        id_number=b["id_number"],
        name=b["name"],
        sex=b["sex"],
        ethnicity_code=b["ethnicity_code"],
        birth_date=date.fromisoformat(b["birth_date"]),
        issue_date=date.fromisoformat(b["issue_date"]),
        valid_until=date.fromisoformat(b["valid_until"]),
        region_code=b["region_code"],
        card_category=b["card_category"],
        spec_version=b["spec_version"],
        bank_code=b["bank_code"],
        photo_jpeg=_b64(b["photo_jpeg_base64"]),
    )


def _result_ack(b: Mapping[str, Any]) -> ResultAck:
    return ResultAck(
        application_id=b["application_id"],
        card_number=b["card_number"],
        success=b["success"],
        card_state=CardState(b["card_state"]) if b["card_state"] else None,
        old_card_state=CardState(b["old_card_state"]) if b["old_card_state"] else None,
    )


def _bank(b: Mapping[str, Any]) -> BankAccount:
    return BankAccount(
        card_number=b["card_number"], account_masked=b["account_masked"], state=BankAccountState(b["state"])
    )


def _temporary(b: Mapping[str, Any]) -> TemporaryCard:
    return TemporaryCard(
        status=TemporaryCardStatus(b["status"]), card_number=b["card_number"], fee_fen=b["fee_fen"]
    )


def _loss(b: Mapping[str, Any]) -> LossReport:
    return LossReport(
        report_id=b["report_id"],
        card_number=b["card_number"],
        kind=LossKind(b["kind"]),
        card_state=CardState(b["card_state"]),
        reported_at=_dt(b["reported_at"]),
    )


def _loss_cancel(b: Mapping[str, Any]) -> LossCancellation:
    return LossCancellation(
        card_number=b["card_number"],
        card_state=CardState(b["card_state"]),
        cancelled_at=_dt(b["cancelled_at"]),
    )


def _progress(b: Mapping[str, Any]) -> Progress:
    return Progress(
        tuple(
            ProgressItem(
                application_id=i["application_id"],
                business=Business(i["business"]),
                stage=ProgressStage(i["stage"]),
                submitted_on=date.fromisoformat(i["submitted_on"]),
                expected_ready_on=_date(i["expected_ready_on"]),
                branch=i["branch"],
                card_number=i["card_number"],
            )
            for i in b["items"]
        )
    )


def _certificate(b: Mapping[str, Any]) -> Certificate:
    return Certificate(
        card_number=b["card_number"],
        certificate=base64.b64decode(b["certificate_base64"]),
        ca_name=b["ca_name"],
        serial=b["serial"],
        valid_until=_date(b["valid_until"]),
    )


CONVERTERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "queryPerson": _person,
    "queryPersonPhoto": lambda b: base64.b64decode(b["photo_jpeg_base64"]),
    "checkEligibility": _eligibility,
    "queryFee": lambda b: Fee(Business(b["business"]), b["fee_fen"], b["waived_reason"]),
    "queryTemporaryCard": _temporary,
    "recallTemporaryCard": _temporary,
    "submitApplication": _application,
    "markInstantIssue": _card_data,
    "hsmKeyWork": lambda b: KeyWorkResult(KeyWorkOperation(b["operation"]), bytes.fromhex(b["output"])),
    "reportResult": _result_ack,
    "activateSocialSecurity": lambda b: Activation(b["card_number"], CardState(b["card_state"])),
    "openBankAccount": _bank,
    "activateBankAccount": _bank,
    "queryBankAccount": _bank,
    "confirmBankActivation": _bank,
    "setFinancialPin": lambda b: PinSetResult(b["card_number"], b["accepted"]),
    "changeFinancialPin": lambda b: PinChangeResult(b["card_number"], b["accepted"], b["old_pin_correct"]),
    "reportLoss": _loss,
    "cancelLoss": _loss_cancel,
    "queryProgress": _progress,
    "requestCertificate": _certificate,
    "submitKioskRecord": lambda b: str(b["reference"]),
}


def _never_sent(exc: requests.exceptions.RequestException) -> bool:
    """True when the request provably never reached the server (refused, DNS, connect timeout)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.SSLError):
        return True  # the TLS handshake failed: nothing of the request was sent
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, NewConnectionError | ConnectTimeoutError)
    return False


class BackendClient:
    """HTTPS client of the contract in ``docs/api/openapi.yaml`` (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        kiosk_id: str,
        signing_key: Sm2PrivateKey,
        *,
        ca_file: Path | None = None,
        client_cert: Path | None = None,
        client_key: Path | None = None,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 10.0,
        retries: int = 2,
        backoff_s: float = 0.2,
        contract: Contract | None = None,
        session: requests.Session | None = None,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.kiosk_id = kiosk_id
        self._key = signing_key
        self.contract = contract or load_contract()
        self.timeout = (connect_timeout_s, read_timeout_s)
        self.retries = retries
        self.backoff_s = backoff_s
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._session = session or requests.Session()
        # Passed on every request: a Session-level ``verify`` loses to REQUESTS_CA_BUNDLE from the
        # environment (requests merges the environment first), and the kiosk must trust only the
        # configured CA.
        self._verify: str | bool = str(ca_file) if ca_file else True
        self._cert: tuple[str, str] | str | None = None
        if client_cert is not None:
            self._cert = (str(client_cert), str(client_key)) if client_key else str(client_cert)
        self._base_path = urlsplit(self.base_url).path
        self.last_sign_ms = 0.0

    def close(self) -> None:
        self._session.close()

    # ------------------------------------------------------------ transport

    def _headers(self, method: str, path: str, raw: bytes, key: str | None) -> dict[str, str]:
        timestamp = datetime.fromtimestamp(self._wall_clock(), UTC).isoformat(timespec="milliseconds")
        timestamp = timestamp.replace("+00:00", "Z")
        nonce = secrets.token_hex(16)
        started = time.perf_counter()
        signature = sign(self._key, canonical_request(method, path, timestamp, nonce, key or "", raw))
        self.last_sign_ms = (time.perf_counter() - started) * 1000
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "X-Kiosk-Id": self.kiosk_id,
            "X-Timestamp": timestamp,
            "X-Nonce": nonce,
            "X-Signature": signature,
        }
        if key:
            headers["Idempotency-Key"] = key
        return headers

    def call(
        self, operation_id: str, body: Mapping[str, Any] | None, key: str | None = None
    ) -> dict[str, Any]:
        """Sends one operation and returns its validated reply body, or raises a typed error."""
        op = self.contract.operations[operation_id]
        if op.mutating and not key:
            raise ValueError(f"{operation_id} is mutating: it needs an idempotency key")
        raw = (
            b""
            if body is None
            else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        )
        url = self.base_url + op.path
        path = self._base_path + op.path
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                response = self._session.request(
                    op.method,
                    url,
                    data=raw or None,
                    headers=self._headers(op.method, path, raw, key if op.mutating else None),
                    timeout=self.timeout,
                    verify=self._verify,
                    cert=self._cert,
                )
            except requests.exceptions.RequestException as exc:
                error = self._transport_error(operation_id, key, exc)
                if self._may_retry(op.mutating, error, attempt):
                    self._sleep(self.backoff_s * attempt)
                    continue
                raise error from exc
            elapsed = (time.perf_counter() - started) * 1000
            log.info(
                "backend.reply op=%s status=%d ms=%.1f attempt=%d key=%s",
                operation_id,
                response.status_code,
                elapsed,
                attempt,
                key or "-",
            )
            try:
                return self._reply(operation_id, key, response)
            except BackendTransient as error:
                if self._may_retry(op.mutating, error, attempt):
                    self._sleep(self.backoff_s * attempt)
                    continue
                raise
            except BackendAmbiguous as error:
                if self._may_retry(op.mutating, error, attempt):
                    self._sleep(self.backoff_s * attempt)
                    continue
                raise

    def _may_retry(self, mutating: bool, error: Exception, attempt: int) -> bool:
        if attempt > self.retries:
            return False
        if not mutating:
            return isinstance(error, BackendTransient | BackendAmbiguous)
        # A mutating request is repeated only if it never left the kiosk.
        return isinstance(error, BackendTransient) and getattr(error, "never_sent", False)

    def _transport_error(self, operation: str, key: str | None, exc: Exception) -> Exception:
        if isinstance(exc, requests.exceptions.RequestException) and _never_sent(exc):
            error = BackendTransient(
                f"{operation}: not sent ({type(exc).__name__})",
                operation=operation,
                idempotency_key=key,
                code="backend.unreachable",
            )
            error.never_sent = True  # type: ignore[attr-defined]
            log.warning("backend.unreachable op=%s kind=%s", operation, type(exc).__name__)
            return error
        log.warning("backend.ambiguous op=%s kind=%s key=%s", operation, type(exc).__name__, key or "-")
        code = (
            "backend.timeout" if isinstance(exc, requests.exceptions.Timeout) else "backend.connection_lost"
        )
        return BackendAmbiguous(
            f"{operation}: {type(exc).__name__} after sending",
            operation=operation,
            idempotency_key=key,
            code=code,
        )

    def _reply(self, operation: str, key: str | None, response: requests.Response) -> dict[str, Any]:
        status = response.status_code
        if status >= 500 or status == 429:
            raise BackendTransient(f"{operation}: HTTP {status}", operation=operation, idempotency_key=key)
        try:
            body = response.json()
        except ValueError as exc:
            raise BackendContractError(
                f"{operation}: reply is not JSON (HTTP {status})", operation=operation, idempotency_key=key
            ) from exc
        op = self.contract.operations[operation]
        if 200 <= status < 300:
            schema = op.response_schema
            problems = self.contract.errors(schema, body) if schema else []
            if problems:
                log.error("backend.contract_violation op=%s problems=%s", operation, problems[:5])
                raise BackendContractError(
                    f"{operation}: reply breaks the contract: {problems[:3]}",
                    operation=operation,
                    idempotency_key=key,
                )
            return body
        problems = self.contract.errors("Error", body)
        if problems or not 400 <= status < 500:
            raise BackendContractError(
                f"{operation}: HTTP {status} without a contract error body",
                operation=operation,
                idempotency_key=key,
            )
        notice = NoticeCode.parse(body["error"]["code"])
        log.info("backend.refused op=%s code=%s status=%d", operation, notice.value, status)
        raise BackendRefused(
            notice, body["error"]["message"], http_status=status, operation=operation, idempotency_key=key
        )

    def _typed(self, operation: str, body: Mapping[str, Any] | None, key: str | None = None) -> Any:
        return CONVERTERS[operation](self.call(operation, body, key))

    # ------------------------------------------------------------ recovery

    def lookup_request(self, key: str) -> RequestOutcome:
        """What the back end answered to ``key`` (raises BackendRefused(REQUEST_NOT_FOUND) if it
        never arrived: then the same request may be sent again with the same key)."""
        b = self.call("lookupRequest", {"idempotency_key": key})
        return RequestOutcome(b["idempotency_key"], b["operation"], b["http_status"], b["body"])

    def recover(self, operation: str, key: str) -> Any | None:
        """After an ambiguous failure: the typed result of the request sent with ``key``, the
        typed refusal it got (raised), or None if it never arrived (safe to send again)."""
        try:
            outcome = self.lookup_request(key)
        except BackendRefused as refused:
            if refused.notice is NoticeCode.REQUEST_NOT_FOUND:
                return None
            raise
        if outcome.operation != operation:
            raise BackendContractError(
                f"key {key} belongs to {outcome.operation}, not {operation}",
                operation=operation,
                idempotency_key=key,
            )
        op = self.contract.operations[operation]
        if 200 <= outcome.http_status < 300:
            problems = self.contract.errors(op.response_schema, outcome.body) if op.response_schema else []
            if problems:
                raise BackendContractError(
                    f"stored reply breaks the contract: {problems[:3]}",
                    operation=operation,
                    idempotency_key=key,
                )
            return CONVERTERS[operation](outcome.body)
        error = outcome.body.get("error", {})
        raise BackendRefused(
            NoticeCode.parse(str(error.get("code", ""))),
            str(error.get("message", "")),
            http_status=outcome.http_status,
            operation=operation,
            idempotency_key=key,
        )

    def status(self) -> DeviceStatus:
        """Reachability for the engineer menu (GET /health, unsigned, one try)."""
        try:
            response = self._session.get(
                self.base_url + "/health", timeout=self.timeout, verify=self._verify, cert=self._cert
            )
            ok = response.status_code == 200 and not self.contract.errors("Health", response.json())
        except (requests.exceptions.RequestException, ValueError) as exc:
            return DeviceStatus(
                "backend",
                DeviceState.OFFLINE,
                "backend.unreachable",
                "backend.unavailable",
                type(exc).__name__,
            )
        if ok:
            return DeviceStatus.ready("backend")
        return DeviceStatus(
            "backend",
            DeviceState.FAULT,
            "backend.contract_violation",
            "backend.unavailable",
            f"HTTP {response.status_code}",
        )

    # ------------------------------------------------------------ queries

    def query_person(self, id_number: str) -> PersonRecord:
        return self._typed("queryPerson", {"id_number": id_number})

    def query_person_photo(self, id_number: str) -> bytes:
        return self._typed("queryPersonPhoto", {"id_number": id_number})

    @staticmethod
    def _business(id_number: str, business: Business, reason: BusinessReason | None) -> dict[str, Any]:
        body: dict[str, Any] = {"id_number": id_number, "business": business.value}
        if reason is not None:
            body["reason"] = reason.value
        return body

    def check_eligibility(
        self, id_number: str, business: Business, reason: BusinessReason | None = None
    ) -> Eligibility:
        return self._typed("checkEligibility", self._business(id_number, business, reason))

    def query_fee(self, id_number: str, business: Business, reason: BusinessReason | None = None) -> Fee:
        return self._typed("queryFee", self._business(id_number, business, reason))

    def query_temporary_card(self, id_number: str) -> TemporaryCard:
        return self._typed("queryTemporaryCard", {"id_number": id_number})

    def query_bank_account(self, card_number: str) -> BankAccount:
        return self._typed("queryBankAccount", {"card_number": card_number})

    def query_progress(self, id_number: str) -> Progress:
        return self._typed("queryProgress", {"id_number": id_number})

    def hsm_key_work(
        self, application_id: str, operation: KeyWorkOperation, key_name: str, diversifier: bytes, data: bytes
    ) -> KeyWorkResult:
        return self._typed(
            "hsmKeyWork",
            {
                "application_id": application_id,
                "operation": operation.value,
                "key_name": key_name,
                "diversifier": diversifier.hex().upper(),
                "data": data.hex().upper(),
            },
        )

    # ------------------------------------------------------------ mutating (each with its idempotency key)

    def recall_temporary_card(self, key: str, id_number: str, temporary_card_number: str) -> TemporaryCard:
        return self._typed(
            "recallTemporaryCard",
            {"id_number": id_number, "temporary_card_number": temporary_card_number},
            key,
        )

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
    ) -> Application:
        body = self._business(id_number, business, reason)
        body.update(bank_code=bank_code, person_type=person_type, fee_paid_fen=fee_paid_fen)
        if mobile:  # None: keep the number on record
            body["mobile"] = mobile
        if photo_jpeg is not None:
            body["photo_jpeg_base64"] = base64.b64encode(photo_jpeg).decode()
        return self._typed("submitApplication", body, key)

    def mark_instant_issue(self, key: str, application_id: str) -> CardData:
        return self._typed("markInstantIssue", {"application_id": application_id}, key)

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
    ) -> ResultAck:
        body: dict[str, Any] = {
            "application_id": application_id,
            "card_number": card_number,
            "success": success,
        }
        optional = {
            "atr": atr,
            "card_identification_code": card_identification_code,
            "bank_account": bank_account,
            "fail_type": fail_type,
            "fail_reason": fail_reason,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return self._typed("reportResult", body, key)

    def activate_social_security(self, key: str, card_number: str, id_number: str) -> Activation:
        return self._typed(
            "activateSocialSecurity", {"card_number": card_number, "id_number": id_number}, key
        )

    def open_bank_account(
        self, key: str, card_number: str, bank_account: str, optional_services: tuple[str, ...] = ()
    ) -> BankAccount:
        return self._typed(
            "openBankAccount",
            {
                "card_number": card_number,
                "bank_account": bank_account,
                "optional_services": list(optional_services),
            },
            key,
        )

    def activate_bank_account(self, key: str, card_number: str) -> BankAccount:
        return self._typed("activateBankAccount", {"card_number": card_number}, key)

    def confirm_bank_activation(self, key: str, card_number: str) -> BankAccount:
        """The bank's late answer to a pending activation; BackendTransient while it has not come."""
        return self._typed("confirmBankActivation", {"card_number": card_number}, key)

    def set_financial_pin(
        self, key: str, card_number: str, pin_block: bytes, key_index: int = 1
    ) -> PinSetResult:
        return self._typed(
            "setFinancialPin",
            {"card_number": card_number, "pin_block": pin_block.hex().upper(), "key_index": key_index},
            key,
        )

    def change_financial_pin(
        self, key: str, card_number: str, old_pin_block: bytes, pin_block: bytes, key_index: int = 1
    ) -> PinChangeResult:
        """金融密码修改: two PIN blocks (current, new), never a PIN."""
        body = {"card_number": card_number, "old_pin_block": old_pin_block.hex().upper(),
                "pin_block": pin_block.hex().upper(), "key_index": key_index}
        return self._typed("changeFinancialPin", body, key)

    def report_loss(self, key: str, id_number: str, kind: LossKind) -> LossReport:
        return self._typed("reportLoss", {"id_number": id_number, "kind": kind.value}, key)

    def cancel_loss(self, key: str, id_number: str) -> LossCancellation:
        return self._typed("cancelLoss", {"id_number": id_number}, key)

    def submit_kiosk_record(self, key: str, kind: str, record: Mapping[str, Any]) -> str:
        """Sends a ledger movement, audit or destruction record; returns the back end's reference."""
        return self._typed("submitKioskRecord", {"kind": kind, "record": dict(record)}, key)

    def request_certificate(self, key: str, card_number: str, public_key_hex: str) -> Certificate:
        return self._typed(
            "requestCertificate", {"card_number": card_number, "public_key": public_key_hex.upper()}, key
        )
