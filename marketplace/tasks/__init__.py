"""Claiming tasks: who holds which task, for how long, and its tracked-link code."""
