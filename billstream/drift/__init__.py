"""Drift audit and heal against Stripe: `billstream drift [--heal]` (docs/stripe-api.md)."""
