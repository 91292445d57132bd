"""The diagnostics bundle (kiosk/diagnostics.py, ``kiosk diagnostics export``): versions, the
configuration without secrets, device states, the last log lines and outbox counts — and, with an
ID number, a name and the site key file's contents seeded where a careless log could put them,
none of them in any file of the bundle."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.diagnostics import (
    DiagnosticsError,
    _refuse_leaks,
    build_bundle,
    export_destinations,
    secret_values,
)
from offline.sealing import add_key, read_key_file
from tests.engineer.fakes import NOW, demo_config, free_disk, full_services

ID_NUMBER = "110101195503120048"
NAME = "张桂兰"
MOBILE = "13912345678"


def seed(tmp: Path) -> tuple[Path, str]:
    """A key file, and a log into which a careless line put the ID number, the name and the key."""
    key_file = tmp / "site.key"
    add_key(key_file, "k2026a")
    keys, order = read_key_file(key_file)
    key_hex = keys[order[0]].hex()
    log_dir = tmp / "log"
    log_dir.mkdir(parents=True)
    (log_dir / "kiosk.log.1").write_text(
        f"2026-02-28 09:00:00,000 INFO kiosk.visit old line for {NAME}\n", encoding="utf-8")
    (log_dir / "kiosk.log").write_text(
        "2026-03-01 09:00:00,000 INFO kiosk.visit visit V1 started business=first_issue\n"
        f"2026-03-01 09:00:01,000 WARNING kiosk.flows careless id={ID_NUMBER} name={NAME} phone={MOBILE}\n"
        f"2026-03-01 09:00:02,000 ERROR offline.sealing key k2026a {key_hex} refused\n"
        f"2026-03-01 09:00:03,000 ERROR kiosk.app traceback: ValueError({NAME!r}, {ID_NUMBER!r})\n",
        encoding="utf-8",
    )
    return key_file, key_hex


def bundle_texts(path: Path) -> dict[str, str]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read().decode("utf-8") for m in tar.getmembers() if m.isfile()}


def assert_clean(texts: dict[str, str], key_hex: str) -> None:
    everything = "\n".join(texts.values())
    assert ID_NUMBER not in everything and ID_NUMBER[:14] not in everything
    assert NAME not in everything
    assert MOBILE not in everything
    assert key_hex not in everything.lower() and key_hex.upper() not in everything


def test_the_bundle_holds_what_an_engineer_needs_and_no_personal_data_or_key(tmp_path: Path) -> None:
    from dataclasses import replace

    from kiosk.selftest import run_selfcheck

    key_file, key_hex = seed(tmp_path)
    config = demo_config(tmp_path / "state")
    config = replace(config, kiosk=replace(config.kiosk, log_dir=tmp_path / "log"),
                     outbox=replace(config.outbox, key_file=key_file))
    report = run_selfcheck(full_services(), config, lambda: NOW, disk_usage=free_disk(50_000))
    out = tmp_path / "usb" / "diag.tar.gz"
    bundle = build_bundle(out, config, devices=report.as_dict(), outbox={"counts": {"pending": 2}},
                          visits=[{"visit_id": "V1", "business": "first_issue"}], clock=lambda: NOW)
    texts = bundle_texts(out)
    names = {n.removeprefix("diagnostics/") for n in texts}
    assert {"manifest.json", "versions.json", "config.toml", "devices.json", "outbox.json", "visits.json",
            "logs/kiosk.log", "logs/kiosk.log.1"} <= names
    assert set(bundle.files) == names
    assert json.loads(texts["diagnostics/devices.json"])["in_service"] is True
    assert json.loads(texts["diagnostics/versions.json"])["python"].startswith("3.")
    assert "[pinpad]" in texts["diagnostics/config.toml"] and "key_file" not in texts["diagnostics/config.toml"]
    log = texts["diagnostics/logs/kiosk.log"]
    assert "visit V1 started" in log and "**************0048" in log  # useful lines kept, ID masked
    assert_clean(texts, key_hex)


def test_a_leak_past_the_scrubbing_is_refused() -> None:
    with pytest.raises(DiagnosticsError):
        _refuse_leaks({"x.json": f'"{ID_NUMBER}"'}, [])
    with pytest.raises(DiagnosticsError):
        _refuse_leaks({"x.json": "abcdef0123456789abcdef0123456789"}, ["abcdef0123456789abcdef0123456789"])


def test_key_material_is_read_from_the_key_files(tmp_path: Path) -> None:
    key_file, key_hex = seed(tmp_path)
    assert key_hex in secret_values([key_file, None, tmp_path / "missing"])


def test_cli_export_greps_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    key_file, key_hex = seed(tmp_path)
    site = tmp_path / "kiosk.toml"
    site.write_text(
        f'[kiosk]\nstate_dir = "{tmp_path / "state"}"\nlog_dir = "{tmp_path / "log"}"\n'
        f'[outbox]\nkey_file = "{key_file}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("KIOSK_CONFIG", str(site))
    out = tmp_path / "out" / "diag.tar.gz"
    assert main(["--profile", "demo", "diagnostics", "export", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["path"] == str(out) and "logs/kiosk.log" in printed["files"]
    texts = bundle_texts(out)
    assert json.loads(texts["diagnostics/outbox.json"])["counts"]["pending"] == 0
    assert_clean(texts, key_hex)


def test_export_destinations_are_the_kiosk_directory_then_mounted_sticks(tmp_path: Path) -> None:
    found = export_destinations(tmp_path / "diag", roots=(tmp_path / "media",))
    assert found == [tmp_path / "diag"]  # nothing mounted under the test's own root
