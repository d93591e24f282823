"""billstream."""
