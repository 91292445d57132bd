"""[backend] — card-management system and bank host (卡管系统)"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BackendSection:
    """Card-management system (卡管系统) and the cooperating bank's host, over HTTPS.

    The kiosk id that signs requests is ``[kiosk] kiosk_id``. See docs/backend.md.
    """

    simulate: bool = False
    base_url: str = "https://cardmgmt.example.invalid/api/v1"
    # The province's CA (PEM) that the server certificate must chain to; unset = system CAs.
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    # SM2 key that signs every request (hex private key file), and the server's public key
    # (reserved: reply signatures are not verified yet).
    signing_key_file: Path | None = None
    server_public_key_file: Path | None = None
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 10.0
    # Extra tries for queries (and for mutating requests that provably never left the kiosk).
    retries: int = 2
    backoff_s: float = 0.2
    banks: tuple[str, ...] = ("示例银行",)
    # Simulator: port on 127.0.0.1 (0 = any free port) and its state directory.
    sim_port: int = 0
    sim_state_dir: Path | None = None
    # Simulator seed: the fictitious people shared with the ID reader simulator, and their photos.
    sim_people_file: Path = Path("config/demo-people.json")
    sim_photos_dir: Path | None = None
    # Simulator: first character of allocated card numbers (社保卡号), and how long the bank
    # takes to activate an account (0 = at once; > 0 = "pending" for that many seconds).
    sim_card_prefix: str = "A"
    sim_bank_activation_delay_s: float = 0.0

    def __post_init__(self) -> None:
        if self.connect_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise ValueError("connect_timeout_s and read_timeout_s must be > 0")
        if not 0 <= self.retries <= 5:
            raise ValueError("retries must be between 0 and 5")
        if self.backoff_s < 0:
            raise ValueError("backoff_s must be >= 0")
        if not 0 <= self.sim_port <= 65535:
            raise ValueError("sim_port must be between 0 and 65535")
        prefix = self.sim_card_prefix
        if len(prefix) != 1 or not (prefix.isdigit() or ("A" <= prefix <= "Z")):
            raise ValueError("sim_card_prefix must be one upper-case letter or digit")
        if not self.base_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError("base_url must be https:// (plain http only to the loopback simulator)")
