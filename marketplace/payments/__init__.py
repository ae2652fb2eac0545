"""Payments: Stripe integration (client wrappers, webhooks); the offline stand-in is stripe_standin/."""
