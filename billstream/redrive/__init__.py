"""Dead-letter re-drive: `billstream dlq list` and `billstream dlq replay` (docs/stripe-api.md)."""
