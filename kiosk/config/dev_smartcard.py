"""[smartcard] — chip encoder and PSAM (PC/SC)

``simulate = true`` starts the simulator at the far end of the real link instead of opening
field hardware."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SmartCardSection:
    """Contact chip encoder in the card printer, and the PSAM slot (PC/SC)."""

    simulate: bool = False
    encoder_reader: str = ""
    psam_reader: str = ""
    # Key work: "psam" (security module in a second slot) or "hsm" (card-management HSM).
    key_backend: str = "psam"
    # Simulator: the virtual cards' algorithm ("3des" or "sm4") and whether tests/demo start pcscd.
    sim_algorithm: str = "sm4"
    sim_start_pcscd: bool = True

    def __post_init__(self) -> None:
        if self.key_backend not in ("psam", "hsm"):
            raise ValueError("key_backend must be 'psam' or 'hsm'")
        if self.sim_algorithm not in ("3des", "sm4"):
            raise ValueError("sim_algorithm must be '3des' or 'sm4'")
