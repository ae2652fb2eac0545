"""Proof submissions: storage, validation checks and their results."""
