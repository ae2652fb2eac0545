"""Payout accounts (Stripe Connect), payout batches and their items."""
