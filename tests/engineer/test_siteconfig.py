"""Configuration view and edit from the engineer menu (kiosk/siteconfig.py): a value is checked by
the configuration's own loader, refused with the key named, written to the site file only when
valid, after a timestamped backup; the kiosk reads it at the next start."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from kiosk.audit import AUDIT_SCHEMA, AuditLog
from kiosk.config import load_config
from kiosk.engineer import EngineerDesk
from kiosk.i18n import Translator
from kiosk.journal import JOURNAL_SCHEMA, Journal
from kiosk.runtime import KioskCore, Services
from kiosk.siteconfig import (
    ConfigEditRefused,
    edit_site_file,
    entries,
    redacted_tree,
    site_file_path,
    validate_edit,
)
from kiosk.storage import open_state_db
from tests.engineer.fakes import NOW, demo_config

SITE = """# the branch's own settings
[kiosk]
kiosk_id = "GZ-TH-0107"

[pinpad]
port = "/dev/kiosk-pinpad"
"""


@pytest.fixture
def config(tmp_path: Path):  # type: ignore[no-untyped-def]
    return demo_config(tmp_path / "state")


@pytest.mark.parametrize(
    "key, raw, named, problem",
    [
        ("kiosk.idle_timeout_s", "5", "kiosk.idle_timeout_s", "at least 10 seconds"),
        ("kiosk.idle_timeout_s", "soon", "kiosk.idle_timeout_s", "whole number"),
        ("kiosk.fullscreen", "yes", "kiosk.fullscreen", "true or false"),
        ("logging.level", "LOUD", "logging.level", "DEBUG, INFO"),
        ("kiosk.language", "fr", "kiosk.language", "not among languages"),
        ("backend.base_url", "http://cardmgmt.example.gov.cn", "backend.base_url", "https://"),
        ("kiosk.no_such_key", "1", "kiosk.no_such_key", "unknown key"),
        ("cardprinter.layout", "1", "cardprinter.layout", "a table"),
    ],
)
def test_an_invalid_value_is_refused_with_the_key_named_and_nothing_written(
    config, tmp_path: Path, key: str, raw: str, named: str, problem: str
) -> None:
    site = tmp_path / "kiosk.toml"
    site.write_text(SITE, encoding="utf-8")
    with pytest.raises(ConfigEditRefused) as refused:
        edit_site_file(config, site, key, raw, clock=lambda: NOW)
    assert refused.value.key == named
    assert problem in refused.value.problem
    assert site.read_text(encoding="utf-8") == SITE
    assert list(tmp_path.glob("*.bak")) == []


def test_a_valid_value_is_written_after_a_timestamped_backup_and_read_at_the_next_start(config, tmp_path: Path) -> None:
    site = tmp_path / "kiosk.toml"
    site.write_text(SITE, encoding="utf-8")
    site.chmod(0o640)
    edit = edit_site_file(config, site, "kiosk.idle_timeout_s", "90", clock=lambda: NOW)
    assert (edit.key, edit.new) == ("kiosk.idle_timeout_s", "90")
    assert edit.backup is not None and edit.backup.name.startswith("kiosk.toml.20260301T090000")
    assert edit.backup.read_text(encoding="utf-8") == SITE
    assert site.stat().st_mode & 0o777 == 0o640
    reloaded = load_config("demo", env={}, site_file=site)
    assert reloaded.kiosk.idle_timeout_s == 90
    assert reloaded.kiosk.kiosk_id == "GZ-TH-0107" and reloaded.pinpad.port == "/dev/kiosk-pinpad"  # kept
    second = edit_site_file(config, site, "pinpad.port", "/dev/ttyS3", clock=lambda: NOW + timedelta(seconds=1))
    assert second.backup != edit.backup and len(list(tmp_path.glob("kiosk.toml.*.bak"))) == 2
    assert load_config("demo", env={}, site_file=site).pinpad.port == "/dev/ttyS3"


def test_a_new_site_file_is_created_without_a_backup(config, tmp_path: Path) -> None:
    site = tmp_path / "etc" / "kiosk.toml"
    edit = edit_site_file(config, site, "region.hotline", "12333", clock=lambda: NOW)
    assert edit.backup is None
    assert load_config("demo", env={}, site_file=site).region.hotline == "12333"  # text stays text


def test_values_are_typed_as_the_setting_is(config) -> None:
    assert validate_edit(config, "kiosk.elder_font_scale", "1.6")[1].kiosk.elder_font_scale == 1.6
    assert validate_edit(config, "kiosk.voice_enabled", "false")[1].kiosk.voice_enabled is False
    assert validate_edit(config, "kiosk.languages", '["zh_CN", "en"]')[1].kiosk.languages == ("zh_CN", "en")
    assert validate_edit(config, "kiosk.kiosk_id", "0107")[1].kiosk.kiosk_id == "0107"


def test_the_view_lists_every_setting_and_the_bundle_tree_drops_secret_keys(config) -> None:
    keys = [e.key for e in entries(config)]
    assert "pinpad.port" in keys and "outbox.key_file" in keys and len(keys) > 100
    tree = redacted_tree(config)
    assert "key_file" not in tree["outbox"] and "signing_key_file" not in tree["backend"]
    assert "port" in tree["pinpad"] and "key_backend" in tree["smartcard"]


def test_the_site_file_is_the_one_the_loader_reads() -> None:
    assert site_file_path({}) == Path("/etc/kiosk/kiosk.toml")
    assert site_file_path({"KIOSK_CONFIG": "/tmp/k.toml"}) == Path("/tmp/k.toml")


def test_the_desk_records_edits_and_refusals(config, tmp_path: Path) -> None:
    conn = open_state_db(tmp_path / "state", {"journal": JOURNAL_SCHEMA, "audit": AUDIT_SCHEMA})
    audit = AuditLog(conn, b"k" * 32)
    core = KioskCore(config, Translator(config.kiosk.languages), Journal(conn), Services({"audit": audit}), {})
    desk = EngineerDesk(core, site_file=tmp_path / "kiosk.toml", clock=lambda: NOW)
    desk.edit_config("9001", "kiosk.idle_timeout_s", "120")
    with pytest.raises(ConfigEditRefused):
        desk.edit_config("9001", "kiosk.idle_timeout_s", "1")
    entries_ = audit.entries()
    assert [(e.actor, e.action, e.subject, e.details["outcome"]) for e in entries_] == [
        ("9001", "engineer.config_edit", "kiosk.idle_timeout_s", "done"),
        ("9001", "engineer.config_edit", "kiosk.idle_timeout_s", "refused"),
    ]
    assert entries_[0].details["new"] == "120"
