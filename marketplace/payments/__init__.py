"""Payments: Stripe integration (client wrappers, webhooks) and the local Stripe stand-in."""
