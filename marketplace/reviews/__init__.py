"""Review decisions on submissions, in bulk, and auto-approval."""
