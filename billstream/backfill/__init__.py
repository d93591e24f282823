"""`billstream backfill`: publish events a down endpoint missed, from Stripe's Events API."""
