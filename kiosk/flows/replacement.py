"""补领: a new card after a formal loss report (DOMAIN.md, business 2); the old card is cancelled
by the card-management system once the new one is reported (回盘)."""

from kiosk.backend.api import Business, BusinessReason
from kiosk.flows.instant import IssuanceRules, flow

FLOW = flow("replacement", IssuanceRules(Business.REPLACEMENT, BusinessReason.LOST), order=20)
