"""`POST /billing/portal-sessions`: a Stripe customer portal session to redirect to.

Portal sessions are short-lived (Stripe: "create sessions on-demand"), so the key derived
for a request without `Idempotency-Key` also names a 5-minute window: a double click gets the
same session, a visit tomorrow a fresh one.
"""

from __future__ import annotations

from typing import Any

import stripe

KEY_WINDOW_SECONDS = 300


def create_portal_session(
    client: stripe.StripeClient,
    *,
    customer: str,
    return_url: str,
    configuration: str | None,
    key: str,
) -> dict[str, Any]:
    params: dict[str, Any] = {"customer": customer, "return_url": return_url}
    if configuration is not None:
        params["configuration"] = configuration
    session = client.v1.billing_portal.sessions.create(params, {"idempotency_key": key})  # type: ignore[arg-type]
    found = session.to_dict()
    return {"id": found["id"], "url": found["url"], "customer": customer}
