"""``kiosk selftest --json``: in_service and every device's name, state, code and message; exit 0
in service, 1 not (2 for a bad configuration)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from kiosk.cli import main
from kiosk.devices import DeviceState
from kiosk.i18n import Translator
from kiosk.journal import JOURNAL_SCHEMA, Journal
from kiosk.runtime import KioskCore, Services
from kiosk.selftest import required_devices
from kiosk.storage import open_state_db
from tests.engineer.fakes import demo_config, full_services

REPO = Path(__file__).resolve().parents[2]


def fake_kiosk(tmp_path: Path, services: dict):  # type: ignore[no-untyped-def]
    config = demo_config(tmp_path / "state")
    conn = open_state_db(tmp_path / "state", {"journal": JOURNAL_SCHEMA})
    core = KioskCore(config, Translator(config.kiosk.languages), Journal(conn), Services(services), {})
    core.selfcheck.require(required_devices(config))
    closed: list[bool] = []
    return SimpleNamespace(core=core, close=lambda: closed.append(True), closed=closed)


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["--profile", "demo", "selftest", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def test_in_service_exits_0_with_every_device_listed(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    kiosk = fake_kiosk(tmp_path, full_services())
    monkeypatch.setattr("kiosk.commands.selftest.build", lambda config: kiosk)
    code, out = run_json(capsys, "--lang", "en")
    assert code == 0 and out["in_service"] is True
    assert {"name", "state", "code", "message"} <= set(out["devices"][0])
    assert [d["name"] for d in out["devices"]][:3] == ["idreader", "smartcard", "psam"]
    assert kiosk.closed == [True]


def test_out_of_service_exits_1_and_names_the_fault(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    services = full_services()
    services["cardprinter"].set(DeviceState.ATTENTION, "cardprinter.cover_open")
    monkeypatch.setattr("kiosk.commands.selftest.build", lambda config: fake_kiosk(tmp_path, services))
    code, out = run_json(capsys, "--lang", "en")
    assert code == 1 and out["in_service"] is False
    printer = next(d for d in out["devices"] if d["name"] == "cardprinter")
    assert (printer["state"], printer["code"], printer["blocking"]) == ("attention", "cardprinter.cover_open", True)
    assert printer["message"] and printer["fix"] == "Close the card printer cover"


def test_a_bad_configuration_exits_2(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KIOSK_KIOSK__IDLE_TIMEOUT_S", "1")
    assert main(["--profile", "demo", "selftest", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "config.invalid"


def test_the_demo_kiosk_without_its_chip_reader_is_out_of_service(tmp_path: Path) -> None:
    """The real composition root and simulators (no pcscd: the chip station points at a reader
    that is not there), in a child process as an engineer would run it."""
    env = dict(
        os.environ,
        KIOSK_KIOSK__STATE_DIR=str(tmp_path / "state"), KIOSK_KIOSK__LOG_DIR=str(tmp_path / "log"),
        KIOSK_BACKEND__SIM_STATE_DIR=str(tmp_path / "bsim"), KIOSK_CARDPRINTER__SIM_OUTPUT_DIR=str(tmp_path / "faces"),
        KIOSK_SMARTCARD__SIMULATE="false", KIOSK_SMARTCARD__ENCODER_READER="No Such Reader 00 00",
        KIOSK_SMARTCARD__PSAM_READER="No Such Reader 01 00", KIOSK_FACE__WARM_WORKER="false",
    )
    done = subprocess.run([sys.executable, "-m", "kiosk", "--profile", "demo", "selftest", "--json"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    out = json.loads(done.stdout)
    states = {d["name"]: (d["state"], d["code"]) for d in out["devices"]}
    assert states["smartcard"] == ("offline", "smartcard.reader_unavailable")
    assert states["cardprinter"][0] == "ready" and states["receipt"][0] == "ready" and states["pinpad"][0] == "ready"


@pytest.mark.pcsc
def test_the_whole_demo_kiosk_is_in_service(tmp_path: Path) -> None:
    """Every simulator, pcscd + vpcd included (run under the machine's pcsc lock)."""
    env = dict(
        os.environ,
        KIOSK_KIOSK__STATE_DIR=str(tmp_path / "state"), KIOSK_KIOSK__LOG_DIR=str(tmp_path / "log"),
        KIOSK_BACKEND__SIM_STATE_DIR=str(tmp_path / "bsim"), KIOSK_CARDPRINTER__SIM_OUTPUT_DIR=str(tmp_path / "faces"),
        KIOSK_FACE__WARM_WORKER="false",
    )
    done = subprocess.run([sys.executable, "-m", "kiosk", "--profile", "demo", "selftest", "--json"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False)
    out = json.loads(done.stdout)
    assert done.returncode == 0, [d for d in out["devices"] if d["blocking"]]
    assert out["in_service"] is True
