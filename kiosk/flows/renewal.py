"""换领: expiring (within the renewal window), damaged, changed data, upgrade to the third
generation, or a change of cooperating bank (DOMAIN.md, business 2)."""

from kiosk.backend.api import Business
from kiosk.flows.instant import IssuanceRules, flow

FLOW = flow("renewal", IssuanceRules(Business.RENEWAL, None), order=30)
