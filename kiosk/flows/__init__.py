"""The registry of businesses (业务). A flow appears on the home screen only when it is
registered here *and* every service it requires is configured: a business that does not work
is never shown as a placeholder.

Each business module defines ``FLOW`` (a :class:`kiosk.visit.Flow`) and is listed in
:data:`BUSINESS_MODULES`; missing modules (not built yet) are skipped.
"""

from __future__ import annotations

import importlib
import importlib.util

from kiosk.visit import Flow

# In home-screen order. Each is a module kiosk.flows.<name> defining FLOW.
BUSINESS_MODULES: tuple[str, ...] = (
    "first_issue",
    "replacement",
    "renewal",
    "loss_report",
    "cancel_loss_report",
    "progress_query",
    "pin_change",
    "activation",
)


def registered_flows() -> dict[str, Flow]:
    flows: dict[str, Flow] = {}
    for name in BUSINESS_MODULES:
        module_name = f"kiosk.flows.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        flow: Flow = importlib.import_module(module_name).FLOW
        flows[flow.key] = flow
    return flows
