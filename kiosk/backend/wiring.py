"""Configuration → back-end objects, for the composition root (``kiosk/app.py``) and the CLI.

Nothing here reads files or the environment by itself except the key files that configuration
names; the composition root calls these once at start.
"""

from __future__ import annotations

from pathlib import Path

from kiosk.backend.client import BackendClient
from kiosk.backend.signing import Sm2PrivateKey
from kiosk.backend.simulator.rules import BackendHsm, SimulatorRules
from kiosk.backend.simulator.server import BackendSimulator
from kiosk.config import KioskConfig


def simulator_rules(config: KioskConfig) -> SimulatorRules:
    """The regional rules (``[region]``) the simulator enforces."""
    region, fees, backend = config.region, config.region.fees, config.backend
    return SimulatorRules(
        region_code=region.region_code
        if region.region_code.isdigit() and len(region.region_code) == 6
        else "110100",
        renewal_window_days=region.renewal_window_days,
        card_validity_years=region.card_validity_years,
        quality_defect_free_days=region.quality_defect_free_days,
        fee_first_issue=fees.first_issue,
        fee_replacement=fees.replacement,
        fee_renewal=fees.renewal,
        fee_temporary_card_lost=fees.temporary_card_lost,
        central_production_days=region.production.central_production_days,
        central_production_working_days=region.production.central_production_working_days,
        loss_modes=region.loss_report_modes,
        third_generation=region.third_generation,
        card_prefix=backend.sim_card_prefix,
        bank_activation_delay_s=backend.sim_bank_activation_delay_s,
        default_bank_code=backend.banks[0] if backend.banks else "示例银行",
    )


def build_simulator(
    config: KioskConfig,
    *,
    state_dir: Path | None = None,
    port: int | None = None,
    people_file: Path | None = None,
    hsm: BackendHsm | None = None,
) -> BackendSimulator:
    """The back-end simulator from ``[backend] sim_*`` (not started)."""
    backend = config.backend
    state = state_dir or backend.sim_state_dir or Path(config.kiosk.state_dir) / "backend-sim"
    people = people_file or backend.sim_people_file
    return BackendSimulator(
        config.resolve(Path(state)),
        config.resolve(Path(people)),
        port=backend.sim_port if port is None else port,
        hsm=hsm,
        rules=simulator_rules(config),
        photos_dir=config.resolve(backend.sim_photos_dir) if backend.sim_photos_dir else None,
    )


def build_client(
    config: KioskConfig, signing_key: Sm2PrivateKey, base_url: str | None = None
) -> BackendClient:
    """The HTTPS client from ``[backend]`` (``base_url`` overrides it, e.g. the simulator's URL)."""
    backend = config.backend
    return BackendClient(
        base_url or backend.base_url,
        config.kiosk.kiosk_id,
        signing_key,
        ca_file=config.resolve(backend.ca_file) if backend.ca_file else None,
        client_cert=config.resolve(backend.client_cert) if backend.client_cert else None,
        client_key=config.resolve(backend.client_key) if backend.client_key else None,
        connect_timeout_s=backend.connect_timeout_s,
        read_timeout_s=backend.read_timeout_s,
        retries=backend.retries,
        backoff_s=backend.backoff_s,
    )


def read_signing_key(path: Path) -> Sm2PrivateKey:
    """The kiosk's SM2 private key from its file (64 hex digits; the file must not be world-readable)."""
    return Sm2PrivateKey.from_hex(Path(path).read_text(encoding="ascii").strip())
