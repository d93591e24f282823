"""`billstream rebuild` / `verify`: replay stripe.events through the pure reducer and compare."""
