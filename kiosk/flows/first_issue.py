"""首次申领 + 即时制卡: the first card, made on the spot (DOMAIN.md, business 1)."""

from kiosk.backend.api import Business
from kiosk.flows.instant import IssuanceRules, flow

FLOW = flow("first_issue", IssuanceRules(Business.FIRST_ISSUE, None), order=10)
