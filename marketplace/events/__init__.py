"""Events: what happened to a brand's briefs and submissions, written by each change's owner in the
change's own transaction (the outbox), listed to the brand and delivered by webhooks."""
