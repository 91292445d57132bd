from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.config import REPO_ROOT, ConfigError, check_file, defaults_toml, load_config


def test_default_toml_equals_the_schema_defaults() -> None:
    assert (REPO_ROOT / "config" / "default.toml").read_text(encoding="utf-8") == defaults_toml()


def test_demo_profile_simulates_every_device() -> None:
    config = load_config("demo", env={}, site_file=Path("/nonexistent"))
    assert config.all_simulated


def test_unknown_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    site = tmp_path / "kiosk.toml"
    site.write_text("[pinpad]\nbaudrate = 9600\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(env={}, site_file=site)
    assert info.value.key == "pinpad.baudrate"
    assert info.value.source == str(site)


def test_wrong_type_names_the_key_and_the_file(tmp_path: Path) -> None:
    site = tmp_path / "kiosk.toml"
    site.write_text('[region]\nrenewal_window_days = "sixty"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(env={}, site_file=site)
    assert info.value.key == "region.renewal_window_days"
    assert "whole number" in info.value.problem


def test_section_rule_refuses_a_bad_value(tmp_path: Path) -> None:
    site = tmp_path / "kiosk.toml"
    site.write_text("[region]\npin_tries = 7\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        check_file(site)
    assert info.value.key == "region"
    assert str(site) in info.value.source


def test_environment_overrides_files_and_is_typed() -> None:
    config = load_config(env={"KIOSK_REGION__RENEWAL_WINDOW_DAYS": "30", "KIOSK_PINPAD__PORT": "/dev/ttyS3"})
    assert config.region.renewal_window_days == 30
    assert config.pinpad.port == "/dev/ttyS3"


def test_environment_typo_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={"KIOSK_REGION__RENEWAL_WINDOW": "30"})
    assert info.value.source == "environment (KIOSK_*)"


def test_site_file_overrides_profile(tmp_path: Path) -> None:
    site = tmp_path / "kiosk.toml"
    site.write_text("[region.fees]\nrenewal = 1000\n", encoding="utf-8")
    config = load_config("demo", env={}, site_file=site)
    assert config.region.fees.renewal == 1000
    assert config.region.fees.first_issue == 0
