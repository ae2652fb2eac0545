"""The worker web client (/app/) and the admin console (/console/): static pages over the public API."""
