"""Back-end simulator (卡管系统/银行主机模拟器): see :mod:`kiosk.backend.simulator.server`."""

from kiosk.backend.simulator.rules import (
    BackendHsm,
    CardManagementState,
    Refusal,
    SimulatorRules,
    card_number_check,
)
from kiosk.backend.simulator.server import BackendSimulator, Fault, ReceivedRequest

__all__ = [
    "BackendHsm",
    "BackendSimulator",
    "CardManagementState",
    "Fault",
    "ReceivedRequest",
    "Refusal",
    "SimulatorRules",
    "card_number_check",
]
