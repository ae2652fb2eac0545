"""Webhooks: a brand's endpoints, and the signed, retried deliveries of its events to them."""
