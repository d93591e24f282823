"""`billstream simulate`: signed, realistic Stripe Billing webhook traffic for a running stack."""
