"""Person-only cases: money at Stripe that no job can settle by itself, and every action on them."""
