"""``kiosk outbox status|list|retry`` on the configured state directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.storage import STATE_DB_NAME, connect, migrate
from offline.outbox import OUTBOX_SCHEMA, MessageKind, MessageState, Outbox, Quarantine
from offline.sealing import Sealer


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sealer: Sealer) -> Path:
    directory = tmp_path / "kiosk-state"
    monkeypatch.setenv("KIOSK_KIOSK__STATE_DIR", json.dumps(str(directory)))
    monkeypatch.setenv("KIOSK_CONFIG", str(tmp_path / "no-site-file.toml"))
    conn = connect(directory / STATE_DB_NAME)
    migrate(conn, "outbox", OUTBOX_SCHEMA)
    outbox = Outbox(conn, sealer)
    outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, b"{}", visit_id="V1")
    refused = outbox.enqueue("V2.report", MessageKind.RESULT_REPORT, b"{}", visit_id="V2")
    outbox.claim([refused], lease=__import__("datetime").timedelta(minutes=5))
    outbox.settle([Quarantine(refused, "refused: backend.card_not_found")])
    conn.close()
    return directory


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(list(argv))
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


def test_status_counts_each_state(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, body = run(capsys, "outbox", "status", "--json")
    assert code == 0
    assert body["counts"] == {"pending": 1, "in_flight": 0, "acknowledged": 0, "quarantined": 1}
    assert body["oldest_pending_age_s"] is not None and body["oldest_pending_age_s"] >= 0


def test_list_quarantined_shows_the_reason_never_the_payload(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, body = run(capsys, "outbox", "list", "--state", "quarantined")
    assert code == 0
    [message] = body["messages"]
    assert message["idempotency_key"] == "V2.report" and "card_not_found" in message["last_error"]
    assert "payload" not in message


def test_retry_releases_a_quarantined_message(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, listing = run(capsys, "outbox", "list", "--state", "quarantined")
    message_id = listing["messages"][0]["id"]
    code, body = run(capsys, "outbox", "retry", str(message_id))
    assert code == 0 and body["retried"]["state"] == MessageState.PENDING.value
    _, status = run(capsys, "outbox", "status", "--json")
    assert status["counts"]["quarantined"] == 0 and status["counts"]["pending"] == 2


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (("outbox", "retry", "abc"), "outbox.bad_id"),
        (("outbox", "retry", "999"), "outbox.not_found"),
        (("outbox", "retry", "1"), "outbox.not_quarantined"),
        (("outbox", "list", "--limit", "0"), "outbox.bad_limit"),
    ],
)
def test_bad_input_is_a_json_error_with_exit_2(
    state_dir: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], error: str
) -> None:
    code, body = run(capsys, *argv)
    assert code == 2 and body["error"]["code"] == error and body["error"]["message"]
