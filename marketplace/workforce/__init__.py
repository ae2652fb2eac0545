"""Workers as the marketplace knows them: profile, reputation, eligibility, blocks, suspensions, fraud signals."""
