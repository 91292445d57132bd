"""The import rules (import-linter contracts in pyproject.toml) hold, and they do catch a break."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("kiosk", "screens", "hardware", "printer", "camera", "offline")
LINT = str(Path(sys.executable).with_name("lint-imports"))


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run([LINT, "--no-cache"], cwd=root, capture_output=True, text=True, env=env, timeout=300)


def copy_tree(dst: Path) -> None:
    shutil.copy(REPO / "pyproject.toml", dst / "pyproject.toml")
    for package in PACKAGES:
        shutil.copytree(REPO / package, dst / package, ignore=shutil.ignore_patterns("__pycache__", "*.po", "*.kv"))


def test_the_tree_keeps_its_layers() -> None:
    out = lint(REPO)
    assert out.returncode == 0, out.stdout + out.stderr


def test_core_importing_a_device_library_breaks_the_build(tmp_path: Path) -> None:
    copy_tree(tmp_path)
    with (tmp_path / "kiosk" / "journal.py").open("a") as f:
        f.write("\nimport serial  # a break of the layering\n")
    out = lint(tmp_path)
    assert out.returncode != 0
    assert "core never imports" in out.stdout


def test_a_screen_importing_a_driver_breaks_the_build(tmp_path: Path) -> None:
    copy_tree(tmp_path)
    (tmp_path / "hardware" / "leak.py").write_text("X = 1\n")
    with (tmp_path / "screens" / "theme.py").open("a") as f:
        f.write("\nimport hardware.leak\n")
    out = lint(tmp_path)
    assert out.returncode != 0
    assert "screens never import drivers" in out.stdout


def test_a_driver_importing_the_core_breaks_the_build(tmp_path: Path) -> None:
    copy_tree(tmp_path)
    (tmp_path / "hardware" / "leak.py").write_text("import kiosk.visit\n")
    out = lint(tmp_path)
    assert out.returncode != 0
    assert "drivers and the outbox never import the core" in out.stdout


def test_device_interfaces_import_nothing_else_from_the_core() -> None:
    for path in (REPO / "kiosk" / "devices").glob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith(("import kiosk", "from kiosk")):
                assert stripped.startswith(("from kiosk.devices", "import kiosk.devices")), f"{path.name}: {stripped}"


def test_no_undefined_names_unused_imports_or_syntax_errors() -> None:
    ruff = str(Path(sys.executable).with_name("ruff"))
    out = subprocess.run(
        [ruff, "check", "--select", "F,E9", "--no-cache", *PACKAGES, "bench", "tests"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stdout
