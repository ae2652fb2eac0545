"""Bonuses: one-off bonuses from a brief's unspent escrow, and performance bonuses per conversion."""
