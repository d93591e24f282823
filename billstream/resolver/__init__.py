"""`billstream resolve`: thin notifications and refetch requests into v1 events on stripe.events."""
