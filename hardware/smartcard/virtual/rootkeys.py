"""SIMULATION root keys (模拟根密钥) shared by the virtual card, the virtual PSAM and SimulatedHsm.

Derived from a public label, so they protect nothing: they exist only so the three simulators
agree. Real root keys live only in the real PSAM and the card-management HSM.
"""

from __future__ import annotations

import hashlib

from hardware.smartcard.crypto import Algorithm
from hardware.smartcard.layout import SsseKey

__all__ = ["SsseKey", "simulation_root_key"]


def simulation_root_key(algorithm: Algorithm, key: SsseKey) -> bytes:
    """The simulators' root key for ``key`` (16 bytes): SM3-free, plain SHA-256 of a label."""
    return hashlib.sha256(f"SIMULATION-ONLY|{algorithm.value}|{key.name}".encode()).digest()[:16]
