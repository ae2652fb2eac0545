"""Usage rights a brief grants the brand over its approved content: channels, term, territories, exclusivity."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from marketplace.db.clock import as_utc

# Where a brand may use an asset. "organic": its own unpaid posts; the paid ones are media it buys.
CHANNELS = ("organic", "paid_social", "paid_search", "display", "website", "email", "ooh", "broadcast", "print")
MAX_TERM_DAYS = 3650
# ISO 3166-1 alpha-2, the 249 officially assigned codes (as tzdata's iso3166.tab lists them).
TERRITORIES = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split())
# GET /v1/briefs/{id}/assets?rights=expiring: assets whose rights end within this long from now.
EXPIRING_WITHIN = timedelta(days=30)


def rights_expire_at(approved_at: datetime | None, rights: Mapping[str, Any] | None) -> datetime | None:
    """When the brand's rights over an asset approved at `approved_at` end: the term runs from approval."""
    if approved_at is None or not rights:
        return None
    return as_utc(approved_at) + timedelta(days=int(rights["term_days"]))


def approved_between_for_expiring(rights: Mapping[str, Any] | None, now: datetime) -> tuple[datetime, datetime] | None:
    """The approval times (exclusive, inclusive] whose rights end after `now` and within EXPIRING_WITHIN:
    one term for the whole brief, so the filter is a range on the approval time. None: no rights stated."""
    if not rights:
        return None
    term = timedelta(days=int(rights["term_days"]))
    return now - term, now + EXPIRING_WITHIN - term
