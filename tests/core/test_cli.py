from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kiosk.cli import main


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kiosk", *args], capture_output=True, text=True, input=stdin, timeout=120)


def test_help_lists_the_commands() -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    for command in ("run", "demo", "doctor", "config"):
        assert command in out.stdout


def test_config_check_accepts_the_shipped_files(capsys) -> None:
    for name in ("default.toml", "demo.toml"):
        assert main(["config", "check", str(Path(__file__).resolve().parents[2] / "config" / name)]) == 0


def test_config_check_names_the_bad_key_and_file_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "site.toml"
    bad.write_text("[camera]\nwidht = 640\n", encoding="utf-8")
    out = run_cli("config", "check", str(bad))
    assert out.returncode == 2
    error = json.loads(out.stdout)["error"]
    assert error["code"] == "config.invalid"
    assert "camera.widht" in error["message"] and str(bad) in error["message"]
    assert "Traceback" not in out.stderr


def test_start_up_stops_on_a_bad_site_file(tmp_path: Path) -> None:
    bad = tmp_path / "site.toml"
    bad.write_text("[kiosk]\nidle_timeout_s = 3\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "kiosk", "run", "--exit-after", "1"], capture_output=True, text=True, timeout=120,
        env={"KIOSK_CONFIG": str(bad), "PATH": "/usr/bin:/bin", "SDL_VIDEODRIVER": "offscreen"},
    )
    assert out.returncode == 2
    assert "idle_timeout_s must be at least 10" in out.stdout and str(bad) in out.stdout


def test_doctor_reports_one_line_per_check_as_json(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kiosk", "--profile", "demo", "doctor", "--json"], capture_output=True, text=True,
        timeout=120, env={"PATH": "/usr/bin:/bin", "KIOSK_KIOSK__STATE_DIR": str(tmp_path)},
    )
    report = json.loads(out.stdout)
    names = [c["name"] for c in report["checks"]]
    assert {"font", "state directory", "pcscd", "idreader", "pinpad", "camera", "back end"} <= set(names)
    assert all(set(c) == {"name", "ok", "detail", "fix"} for c in report["checks"])
    assert out.returncode == (0 if report["ok"] else 1)
