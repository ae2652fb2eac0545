"""HTTP routes of the reviews domain."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("reviews", __name__, description="reviews")
