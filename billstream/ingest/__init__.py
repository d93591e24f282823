"""Webhook intake: verify Stripe's signature, filter by type, publish durably to Kafka."""

from billstream.ingest.app import create_app
from billstream.ingest.publisher import Publisher, PublishError, Record

__all__ = ["PublishError", "Publisher", "Record", "create_app"]
