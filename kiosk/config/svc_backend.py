"""[backend] — card-management system and bank host (卡管系统)"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BackendSection:
    """Card-management system (卡管系统) and the cooperating bank's host, over HTTPS."""

    simulate: bool = False
    base_url: str = "https://cardmgmt.example.invalid/api/v1"
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    # SM2 key that signs every request (hex private key file), and the server's public key.
    signing_key_file: Path | None = None
    server_public_key_file: Path | None = None
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 10.0
    retries: int = 2
    banks: tuple[str, ...] = ("示例银行",)
    # Simulator: port on 127.0.0.1 (0 = any free port) and its state directory.
    sim_port: int = 0
    sim_state_dir: Path | None = None
