"""[smartcard] — chip encoder and PSAM (PC/SC)

``simulate = true`` starts the simulator at the far end of the real link instead of opening
field hardware: pcscd (if none runs) with the vsmartcard-vpcd reader, the virtual PSAM in slot 1,
and blank virtual cards that the card-printer simulator puts into slot 0 (the chip station).
vsmartcard-vpcd is for development only and must never be installed on a kiosk."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SmartCardSection:
    """Contact chip encoder in the card printer, and the PSAM slot (PC/SC)."""

    simulate: bool = False
    # PC/SC reader names (`kiosk card info` lists what pcscd sees). Empty: the first reader.
    encoder_reader: str = ""
    psam_reader: str = ""
    # Key work: "psam" (security module in a second slot) or "hsm" (card-management HSM).
    key_backend: str = "psam"
    # Diversification level of the keys the PSAM holds (0 root, 1 province, 2 city); with
    # psam_auto_level a PSAM refusing the factor count is tried at the other levels.
    psam_key_level: int = 0
    psam_auto_level: bool = True
    # UPDATE/READ BINARY chunk for the EF08 photo (short APDUs: at most 255).
    photo_chunk: int = 240
    # How long the chip station waits for the card to show up in pcscd before no_card.
    card_wait_s: float = 2.0
    # Simulator: the virtual cards' algorithm ("3des" or "sm4") and whether tests/demo start pcscd.
    sim_algorithm: str = "sm4"
    sim_start_pcscd: bool = True

    def __post_init__(self) -> None:
        if self.key_backend not in ("psam", "hsm"):
            raise ValueError("key_backend must be 'psam' or 'hsm'")
        if self.sim_algorithm not in ("3des", "sm4"):
            raise ValueError("sim_algorithm must be '3des' or 'sm4'")
        if self.psam_key_level not in (0, 1, 2):
            raise ValueError("psam_key_level must be 0, 1 or 2")
        if not 16 <= self.photo_chunk <= 255:
            raise ValueError("photo_chunk must be between 16 and 255")
        if not 0 <= self.card_wait_s <= 60:
            raise ValueError("card_wait_s must be between 0 and 60")
