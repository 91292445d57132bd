"""Contract tests generated from docs/api/openapi.yaml (schemathesis) against the simulator, and
consistency checks between the contract, the client, the simulator and the notice map."""

from __future__ import annotations

import ast
from datetime import UTC
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import ignored_auth

from kiosk.backend.api import NoticeCode
from kiosk.backend.client import CONVERTERS, BackendClient
from kiosk.backend.contract import DEFAULT_SPEC, load_contract
from kiosk.backend.notices import NOTICES, all_message_keys
from kiosk.backend.signing import Sm2PrivateKey, canonical_request, sign
from kiosk.backend.simulator import BackendSimulator, CardManagementState
from kiosk.i18n import load_messages

from .conftest import KIOSK_ID

SCHEMA = schemathesis.openapi.from_path(str(DEFAULT_SPEC))
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
REPO = Path(__file__).resolve().parents[2]


class SignedAuth(requests.auth.AuthBase):
    """Signs whatever schemathesis generated, exactly as the kiosk does."""

    def __init__(self, key: Sm2PrivateKey) -> None:
        self.key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        import secrets
        from datetime import datetime

        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        timestamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        nonce = secrets.token_hex(16)
        key = request.headers.get("Idempotency-Key", "")
        path = urlsplit(request.url).path
        request.headers["X-Kiosk-Id"] = KIOSK_ID
        request.headers["X-Timestamp"] = timestamp
        request.headers["X-Nonce"] = nonce
        request.headers["X-Signature"] = sign(
            self.key, canonical_request(request.method, path, timestamp, nonce, key, body)
        )
        return request


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_simulator_conforms_to_the_contract(
    operation, sim: BackendSimulator, kiosk_key: Sm2PrivateKey
) -> None:
    auth = SignedAuth(kiosk_key)
    session = requests.Session()
    statuses: set[int] = set()

    @settings(
        max_examples=8,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
        ],
    )
    @given(case=operation.as_strategy())
    def check(case) -> None:
        response = case.call(base_url=sim.base_url, session=session, auth=auth, timeout=5)
        assert response.status_code < 500, response.text
        assert response.status_code != 401, "the signature must be accepted"
        # schemathesis's ignored_auth check re-sends through our signing auth (so it is signed
        # again); unsigned requests are checked below for every operation instead.
        case.validate_response(response, excluded_checks=[ignored_auth])
        statuses.add(response.status_code)

    try:
        check()
    finally:
        session.close()
    assert statuses  # examples really reached the simulator


def test_every_operation_refuses_an_unsigned_request(sim: BackendSimulator) -> None:
    for op in load_contract().operations.values():
        if op.operation_id == "health":
            continue
        response = requests.post(
            sim.base_url + op.path, json={}, headers={"Idempotency-Key": "V-unsigned-1"}, timeout=5
        )
        assert response.status_code == 401, op.operation_id
        assert response.json()["error"]["code"] == "signature_invalid"


def test_generated_checks_catch_a_contract_breach(sim: BackendSimulator, kiosk_key: Sm2PrivateKey) -> None:
    """The contract tests can fail: a reply that breaks the schema is reported."""
    operation = next(op for op in OPERATIONS if op.label == "GET /health")
    sim.inject("contradict_contract")
    case = operation.Case()
    response = case.call(base_url=sim.base_url, timeout=5)
    sim.clear_faults()
    assert response.status_code == 200  # health is not faulted: it never reaches the fault point
    bad = next(op for op in OPERATIONS if op.label == "POST /persons/query")
    case = bad.Case(body={"id_number": "11010119751010001X"}, media_type="application/json")
    sim.inject("contradict_contract", count=1)
    response = case.call(base_url=sim.base_url, auth=SignedAuth(kiosk_key), timeout=5)
    with pytest.raises(BaseException) as info:  # schemathesis raises an exception group
        case.validate_response(response)
    assert "violates schema" in repr(
        info.value.exceptions if hasattr(info.value, "exceptions") else info.value
    )


def test_every_error_code_has_a_notice_and_texts_in_both_languages() -> None:
    contract = load_contract()
    assert set(contract.error_codes) == {c.value for c in NoticeCode}
    assert set(NOTICES) == set(NoticeCode)
    for language in ("zh_CN", "en"):
        messages = load_messages(language)
        missing = sorted(all_message_keys() - set(messages))
        assert not missing, f"{language}: {missing}"


def test_every_operation_has_a_client_and_a_simulator_implementation() -> None:
    contract = load_contract()
    for op in contract.operations.values():
        if op.operation_id in ("health", "lookupRequest"):
            continue
        assert op.operation_id in CONVERTERS, op.operation_id
        assert hasattr(CardManagementState, f"op_{op.operation_id}"), op.operation_id
        assert op.response_schema is not None and op.request_schema is not None


def test_every_mutating_operation_requires_an_idempotency_key() -> None:
    spec = load_contract().spec
    for path, methods in spec["paths"].items():
        for op in methods.values():
            names = [p.get("$ref", "").rsplit("/", 1)[-1] for p in op.get("parameters", [])]
            assert ("IdempotencyKey" in names) == bool(op.get("x-mutating")), path


def test_error_codes_raised_by_the_simulator_exist_in_the_contract() -> None:
    codes = set(load_contract().error_codes)
    for name in ("rules.py", "server.py"):
        tree = ast.parse((REPO / "kiosk" / "backend" / "simulator" / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", "") in ("Refusal", "_error")
                and node.args
            ):
                first = node.args[0]
                if isinstance(first, ast.Constant):
                    assert first.value in codes, first.value


def test_core_never_imports_requests_outside_the_backend_package() -> None:
    for path in (REPO / "kiosk").rglob("*.py"):
        if "backend" in path.relative_to(REPO / "kiosk").parts[:1]:
            continue
        text = path.read_text(encoding="utf-8")
        assert "import requests" not in text and "from requests" not in text, path
    for path in (REPO / "kiosk" / "backend" / "simulator").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "hardware" not in [n.split(".")[0] for n in _imports(text)], path


def _imports(text: str) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_client_rejects_a_reply_the_contract_forbids(sim: BackendSimulator, kiosk_key: Sm2PrivateKey) -> None:
    from kiosk.backend.api import BackendContractError

    client = BackendClient(sim.base_url, KIOSK_ID, kiosk_key, retries=0)
    sim.inject("contradict_contract", count=1)
    with pytest.raises(BackendContractError):
        client.query_fee("11010119751010001X", __import__("kiosk.backend.api").backend.api.Business.RENEWAL)
    client.close()
