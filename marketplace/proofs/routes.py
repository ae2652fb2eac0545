"""HTTP routes of the proofs domain."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("proofs", __name__, description="proofs")
