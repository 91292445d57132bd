"""End-to-end fixtures: the whole kiosk built by the composition root from the demo profile,
every simulator at the far end of its real link (pty, loopback TCP/HTTP, pcscd + vpcd)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from kiosk.app import Kiosk, build_kiosk
from kiosk.config import KioskConfig, load_config

REPO = Path(__file__).resolve().parents[2]


def demo_config(state_dir: Path, **sections: dict) -> KioskConfig:
    config = load_config("demo", env={}, site_file=Path("/nonexistent"))
    config = replace(
        config,
        kiosk=replace(config.kiosk, state_dir=state_dir, log_dir=state_dir / "log", screenshot_dir=state_dir / "shots"),
        backend=replace(config.backend, sim_state_dir=state_dir / "backend-sim"),
        cardprinter=replace(config.cardprinter, sim_mechanics_s=0.0, sim_output_dir=str(state_dir / "faces")),
        idreader=replace(config.idreader, sim_card_delay_s=0.0),
    )
    for name, values in sections.items():
        config = replace(config, **{name: replace(getattr(config, name), **values)})
    return config


@pytest.fixture
def demo_kiosk(tmp_path: Path) -> Iterator[Kiosk]:
    kiosk = build_kiosk(demo_config(tmp_path / "state"), console_log=False)
    try:
        yield kiosk
    finally:
        kiosk.close()


@pytest.fixture(scope="session")
def people() -> dict[str, dict]:
    data = json.loads((REPO / "config" / "demo-people.json").read_text(encoding="utf-8"))
    return {p["key"]: p for p in data["people"]}
