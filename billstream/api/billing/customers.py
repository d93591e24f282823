"""`POST /billing/customers`: the Stripe customer of an application user, created once.

The user id lives in the customer's `metadata.billstream_user_id`. An existing customer is
found with the Search API; Search is eventually consistent (a customer created a moment ago
may not be found yet), so the create itself carries an idempotency key derived from the
request: a retry within Stripe's 24 h key window gets the same customer back, not a second one.
"""

from __future__ import annotations

from typing import Any

import stripe

METADATA_KEY = "billstream_user_id"


def find_or_create(
    client: stripe.StripeClient, user_id: str, email: str | None, key: str
) -> tuple[dict[str, Any], bool]:
    """(customer, created); `user_id` is pre-validated, so it is safe inside the query."""
    query = f"metadata['{METADATA_KEY}']:'{user_id}'"
    for customer in client.v1.customers.search({"query": query, "limit": 10}).data:
        found = customer.to_dict()
        if (found.get("metadata") or {}).get(METADATA_KEY) == user_id:
            return found, False
    params: dict[str, Any] = {"metadata": {METADATA_KEY: user_id}}
    if email is not None:
        params["email"] = email
    created = client.v1.customers.create(params, {"idempotency_key": key})  # type: ignore[arg-type]
    return created.to_dict(), True


def customer_json(customer: dict[str, Any], user_id: str, created: bool) -> dict[str, Any]:
    return {"customer_id": customer["id"], "user_id": user_id, "created": created}
