"""A worker's notifications: what happened to their work and money, read in the client and e-mailed."""
