"""HTTP routes of the payouts domain."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("payouts", __name__, description="payouts")
