"""A scripted instant-issuance visit against the client, with the recovery a flow must do:
after an ambiguous failure it looks the request up by its key; after a transient one, or when
the lookup says the request never arrived, it sends the same request with the same key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from kiosk.backend.api import (
    BackendAmbiguous,
    BackendTransient,
    Business,
    idempotency_key,
)
from kiosk.backend.client import BackendClient

T = TypeVar("T")
ATR = "3B6D00000081318065B0830201F3829000"
CIC = "110100D15600000510000B26FFFFFFFF"
ACCOUNT = "6217000011112222333"


def with_recovery(
    client: BackendClient, operation: str, key: str, send: Callable[[], T], tries: int = 6
) -> T:
    for _ in range(tries):
        try:
            return send()
        except BackendAmbiguous:
            found = _recover(client, operation, key)
            if found is not None:
                return found
        except BackendTransient:
            continue
    raise AssertionError(f"{operation} did not complete in {tries} tries")


def _recover(client: BackendClient, operation: str, key: str) -> Any:
    for _ in range(6):
        try:
            return client.recover(operation, key)
        except (BackendAmbiguous, BackendTransient):
            continue
    raise AssertionError("lookup kept failing")


def first_issue_visit(client: BackendClient, visit_id: str, id_number: str) -> dict[str, Any]:
    k = lambda step: idempotency_key(visit_id, step)
    app = with_recovery(
        client,
        "submitApplication",
        k("submit"),
        lambda: client.submit_application(
            k("submit"),
            id_number=id_number,
            business=Business.FIRST_ISSUE,
            reason=None,
            mobile="13800138000",
            bank_code="B01",
            photo_jpeg=b"\xff\xd8\xff\xe0fake-jpeg",
        ),
    )
    card = with_recovery(
        client,
        "markInstantIssue",
        k("mark"),
        lambda: client.mark_instant_issue(k("mark"), app.application_id),
    )
    ack = with_recovery(
        client,
        "reportResult",
        k("result"),
        lambda: client.report_result(
            k("result"),
            app.application_id,
            card.card_number,
            success=True,
            atr=ATR,
            card_identification_code=CIC,
            bank_account=ACCOUNT,
        ),
    )
    with_recovery(
        client,
        "openBankAccount",
        k("bank_open"),
        lambda: client.open_bank_account(k("bank_open"), card.card_number, ACCOUNT),
    )
    with_recovery(
        client,
        "setFinancialPin",
        k("fin_pin"),
        lambda: client.set_financial_pin(k("fin_pin"), card.card_number, bytes.fromhex("0412AC89ABCDEF67")),
    )
    act = with_recovery(
        client,
        "activateSocialSecurity",
        k("activate_ss"),
        lambda: client.activate_social_security(k("activate_ss"), card.card_number, id_number),
    )
    bank = with_recovery(
        client,
        "activateBankAccount",
        k("activate_bank"),
        lambda: client.activate_bank_account(k("activate_bank"), card.card_number),
    )
    return {"application": app, "card": card, "ack": ack, "activation": act, "bank": bank}
