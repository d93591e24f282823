"""Tests of the Stripe API tools (backfill, reconcile) against stripe-mock."""
