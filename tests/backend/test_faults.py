"""Injected faults, the client's typed errors, and the promise: never a second application or
activation for one visit, whatever fault is injected."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kiosk.backend.api import (
    BackendAmbiguous,
    BackendContractError,
    BackendTransient,
    Business,
    NoticeCode,
    idempotency_key,
)
from kiosk.backend.client import BackendClient
from kiosk.backend.notices import notice_for
from kiosk.backend.signing import Sm2PrivateKey
from kiosk.backend.simulator import BackendSimulator, Fault

from .conftest import ACTIVE, FIRST_ISSUE, KIOSK_ID, make_client
from .visit_driver import first_issue_visit

PHOTO = b"\xff\xd8\xff\xe0fake-jpeg"


def submit(client: BackendClient, visit: str):
    return client.submit_application(
        idempotency_key(visit, "submit"),
        id_number=FIRST_ISSUE,
        business=Business.FIRST_ISSUE,
        reason=None,
        mobile="13800138000",
        bank_code="B01",
        photo_jpeg=PHOTO,
    )


def applications(sim: BackendSimulator) -> int:
    return sim.state.count("applications", "id_number = ?", (FIRST_ISSUE,))


def test_fault_surface(sim: BackendSimulator) -> None:
    assert set(sim.fault_names()) >= {
        "latency",
        "http_500",
        "timeout",
        "malformed_json",
        "drop_after_commit",
        "contradict_contract",
    }
    with pytest.raises(ValueError):
        sim.inject("meteor_strike")
    sim.inject("http_500")
    sim.clear_faults()
    assert sim._take("http_500", "queryPerson") is None


def test_latency_slows_but_succeeds(sim: BackendSimulator, client: BackendClient) -> None:
    sim.inject(Fault.LATENCY, count=1, seconds=0.3)
    started = time.monotonic()
    assert client.query_person(ACTIVE).card is not None
    assert time.monotonic() - started >= 0.3


def test_http_500_on_a_query_is_retried(sim: BackendSimulator, client: BackendClient) -> None:
    sim.inject(Fault.HTTP_500, count=2)
    assert client.query_person(ACTIVE).card is not None
    assert [r.operation for r in sim.received] == [
        "queryPerson"
    ]  # the two 500s were refused before the rules


def test_http_500_on_a_mutating_call_is_transient_and_nothing_happened(
    sim: BackendSimulator, client: BackendClient
) -> None:
    sim.inject(Fault.HTTP_500, count=1, operation="submitApplication")
    with pytest.raises(BackendTransient) as info:
        submit(client, "V-500-00001")
    assert info.value.retryable and notice_for(info.value).code is NoticeCode.SERVICE_UNAVAILABLE
    assert applications(sim) == 0
    assert client.recover("submitApplication", idempotency_key("V-500-00001", "submit")) is None
    submit(client, "V-500-00001")
    assert applications(sim) == 1


def test_http_500_persisting_on_a_query_ends_transient(sim: BackendSimulator, client: BackendClient) -> None:
    sim.inject(Fault.HTTP_500)
    with pytest.raises(BackendTransient):
        client.query_person(ACTIVE)


def test_timeout_after_sending_is_ambiguous_and_resolved_by_key(
    sim: BackendSimulator, kiosk_key: Sm2PrivateKey
) -> None:
    client = make_client(sim, kiosk_key, read_timeout_s=0.4)
    try:
        sim.inject(Fault.TIMEOUT, count=1, operation="submitApplication", seconds=5)
        with pytest.raises(BackendAmbiguous) as info:
            submit(client, "V-tmo-00001")
        assert info.value.code == "backend.timeout"
        assert notice_for(info.value).code is NoticeCode.OUTCOME_UNKNOWN
        found = client.recover("submitApplication", idempotency_key("V-tmo-00001", "submit"))
        assert found is not None and applications(sim) == 1
        assert [r.operation for r in sim.received].count("submitApplication") == 1
    finally:
        client.close()


@pytest.mark.parametrize("fault", [Fault.MALFORMED_JSON, Fault.CONTRADICT_CONTRACT])
def test_unusable_reply_after_commit_is_ambiguous(
    sim: BackendSimulator, client: BackendClient, fault: str
) -> None:
    sim.inject(fault, count=1, operation="submitApplication")
    with pytest.raises(BackendContractError):
        submit(client, "V-bad-00001")
    assert applications(sim) == 1  # committed before the bad reply
    assert (
        client.recover("submitApplication", idempotency_key("V-bad-00001", "submit")).state.value
        == "submitted"
    )


def test_connection_dropped_after_commit_is_ambiguous(sim: BackendSimulator, client: BackendClient) -> None:
    sim.inject(Fault.DROP_AFTER_COMMIT, count=1, operation="submitApplication")
    with pytest.raises(BackendAmbiguous) as info:
        submit(client, "V-drop-0001")
    assert info.value.code == "backend.connection_lost"
    assert applications(sim) == 1
    assert [r.operation for r in sim.received].count("submitApplication") == 1  # no blind resend


def test_contract_breaking_query_reply_is_retried_then_reported(
    sim: BackendSimulator, client: BackendClient
) -> None:
    sim.inject(Fault.CONTRADICT_CONTRACT, count=1, operation="queryPerson")
    assert client.query_person(ACTIVE).card is not None
    sim.inject(Fault.CONTRADICT_CONTRACT, operation="queryPerson")
    with pytest.raises(BackendContractError):
        client.query_person(ACTIVE)


def test_fault_aimed_at_one_operation_spares_the_others(sim: BackendSimulator, client: BackendClient) -> None:
    sim.inject(Fault.HTTP_500, operation="activateSocialSecurity")
    assert client.query_person(ACTIVE).card is not None
    submit(client, "V-aim-00001")


def test_connection_refused_is_transient_and_retried(tmp_path: Path, kiosk_key: Sm2PrivateKey) -> None:
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    slept: list[float] = []
    client = BackendClient(
        f"http://127.0.0.1:{port}/api/v1", KIOSK_ID, kiosk_key, retries=2, backoff_s=0.01, sleep=slept.append
    )
    with pytest.raises(BackendTransient) as info:
        client.submit_application(
            idempotency_key("V-refused-1", "submit"),
            id_number=FIRST_ISSUE,
            business=Business.FIRST_ISSUE,
            reason=None,
            mobile="13800138000",
            bank_code="B01",
            photo_jpeg=PHOTO,
        )
    assert info.value.code == "backend.unreachable" and len(slept) == 2  # never sent → safe to retry
    assert client.status().state.value == "offline"


def test_server_restart_mid_visit_loses_nothing(
    tmp_path: Path, people_file: Path, clock, hsm, rules, kiosk_key: Sm2PrivateKey, sim: BackendSimulator
) -> None:
    client = make_client(sim, kiosk_key)
    app = submit(client, "V-rst-00001")
    sim.stop()
    with pytest.raises(BackendTransient):
        client.query_person(FIRST_ISSUE)
    sim.start()  # same port, same SQLite
    assert client.query_person(FIRST_ISSUE).open_application == app.application_id
    client.close()


# Faults that may hit a mutating call, with the failure the client reports.
EVERY_FAULT = [
    (Fault.HTTP_500, {}),
    (Fault.TIMEOUT, {"seconds": 3}),
    (Fault.MALFORMED_JSON, {}),
    (Fault.DROP_AFTER_COMMIT, {}),
    (Fault.CONTRADICT_CONTRACT, {}),
    (Fault.LATENCY, {"seconds": 0.05}),
]


@pytest.mark.parametrize(
    "operation", ["submitApplication", "markInstantIssue", "activateSocialSecurity", "activateBankAccount"]
)
@pytest.mark.parametrize(("fault", "params"), EVERY_FAULT, ids=[f for f, _ in EVERY_FAULT])
def test_never_a_second_application_or_activation_whatever_the_fault(
    sim: BackendSimulator, kiosk_key: Sm2PrivateKey, operation: str, fault: str, params: dict
) -> None:
    client = make_client(sim, kiosk_key, read_timeout_s=0.5)
    try:
        sim.inject(fault, count=2, operation=operation, **params)
        done = first_issue_visit(client, "V-never-2x-01", FIRST_ISSUE)
    finally:
        client.close()
    assert done["activation"].card_state.value == "normal"
    state = sim.state
    assert state.count("applications", "id_number = ?", (FIRST_ISSUE,)) == 1
    assert state.count("cards", "id_number = ?", (FIRST_ISSUE,)) == 1  # never a second card number
    sent = [r for r in sim.received if r.operation == operation]
    # One key per step, one body: a resend (after "never arrived" or a 500) repeats the same request.
    assert len({r.idempotency_key for r in sent}) == 1 and len({r.body_hash for r in sent}) == 1
    committed = state.count("requests", "operation = ? AND http_status = 200", (operation,))
    assert committed == 1
