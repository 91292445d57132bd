"""Configuration (配置): typed, frozen, read once at start.

``load_config()`` merges ``config/default.toml``, an optional profile (``demo``), the site file
(``/etc/kiosk/kiosk.toml`` or ``$KIOSK_CONFIG``) and ``KIOSK_<SECTION>__<KEY>`` variables, and
returns a :class:`KioskConfig`. Nothing else in the code reads files or the environment for
settings. ``kiosk config check [FILE]`` validates a file; ``kiosk config defaults`` writes the
defaults that ``config/default.toml`` must equal.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.config.dev_camera import CameraSection, FaceSection
from kiosk.config.dev_cardprinter import CardFaceLayout, CardPrinterSection
from kiosk.config.dev_idreader import IdReaderSection
from kiosk.config.dev_pinpad import PinPadSection
from kiosk.config.dev_receipt import ReceiptSection
from kiosk.config.dev_smartcard import SmartCardSection
from kiosk.config.general import KioskSection
from kiosk.config.loader import (
    ConfigError,
    build,
    dump_toml,
    env_layer,
    merge_layers,
    read_toml,
    to_toml_tree,
)
from kiosk.config.region import FeeSchedule, ProductionTimes, RegionSection
from kiosk.config.services import LoggingSection, StaffSection
from kiosk.config.svc_backend import BackendSection
from kiosk.config.svc_outbox import OutboxSection
from kiosk.config.visit import VisitSection

__all__ = [
    "BackendSection",
    "CameraSection",
    "CardFaceLayout",
    "CardPrinterSection",
    "ConfigError",
    "FaceSection",
    "FeeSchedule",
    "IdReaderSection",
    "KioskConfig",
    "KioskSection",
    "LoggingSection",
    "OutboxSection",
    "PinPadSection",
    "ProductionTimes",
    "ReceiptSection",
    "RegionSection",
    "SmartCardSection",
    "StaffSection",
    "VisitSection",
    "check_file",
    "defaults_toml",
    "load_config",
    "REPO_ROOT",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
SITE_FILE = Path("/etc/kiosk/kiosk.toml")


@dataclass(frozen=True)
class KioskConfig:
    kiosk: KioskSection = field(default_factory=KioskSection)
    region: RegionSection = field(default_factory=RegionSection)
    idreader: IdReaderSection = field(default_factory=IdReaderSection)
    smartcard: SmartCardSection = field(default_factory=SmartCardSection)
    cardprinter: CardPrinterSection = field(default_factory=CardPrinterSection)
    receipt: ReceiptSection = field(default_factory=ReceiptSection)
    pinpad: PinPadSection = field(default_factory=PinPadSection)
    camera: CameraSection = field(default_factory=CameraSection)
    face: FaceSection = field(default_factory=FaceSection)
    backend: BackendSection = field(default_factory=BackendSection)
    outbox: OutboxSection = field(default_factory=OutboxSection)
    logging: LoggingSection = field(default_factory=LoggingSection)
    staff: StaffSection = field(default_factory=StaffSection)
    visit: VisitSection = field(default_factory=VisitSection)

    @property
    def all_simulated(self) -> bool:
        return all(
            getattr(self, name).simulate
            for name in ("idreader", "smartcard", "cardprinter", "receipt", "pinpad", "camera", "backend")
        )

    def resolve(self, path: Path) -> Path:
        """Relative paths in configuration are relative to the installation (the repo root)."""
        return path if path.is_absolute() else REPO_ROOT / path


def config_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("KIOSK_CONFIG_DIR", str(REPO_ROOT / "config")))


def load_config(
    profile: str | None = None,
    *,
    site_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    extra_files: tuple[Path, ...] = (),
) -> KioskConfig:
    """Reads every layer and returns the typed configuration, or raises :class:`ConfigError`."""
    env = os.environ if env is None else env
    directory = config_dir(env)
    files = [directory / "default.toml"]
    profile = profile or env.get("KIOSK_PROFILE") or None
    if profile:
        files.append(directory / f"{profile}.toml")
    site = site_file if site_file is not None else Path(env.get("KIOSK_CONFIG", str(SITE_FILE)))
    if site.exists():
        files.append(site)
    files.extend(extra_files)
    layers = [(str(path), read_toml(path)) for path in files]
    layers.append(("environment (KIOSK_*)", env_layer(env)))
    tree, origin = merge_layers(layers)
    return build(KioskConfig, tree, origin)


def check_file(path: Path) -> KioskConfig:
    """Validates one file on its own over the built-in defaults (``kiosk config check FILE``)."""
    tree, origin = merge_layers([(str(path), read_toml(path))])
    return build(KioskConfig, tree, origin)


def defaults_toml() -> str:
    header = (
        "# Defaults of every setting. Generated from the schema in kiosk/config/ by\n"
        "# `kiosk config defaults > config/default.toml`; a test keeps the two equal.\n"
        "# Override in /etc/kiosk/kiosk.toml or with KIOSK_<SECTION>__<KEY> variables.\n\n"
    )
    return header + dump_toml(to_toml_tree(KioskConfig()))


def as_tree(config: KioskConfig) -> dict[str, Any]:
    return to_toml_tree(config)
