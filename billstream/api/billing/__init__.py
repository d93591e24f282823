"""The billing actions under `/billing/`: catalog, customers, checkout, plan changes, portal.

Stripe is the writer of billing objects and billstream's reducer the only writer of account
state: these routes change Stripe, and the account state follows from the webhooks Stripe
sends for the change (docs/api.md, "Billing actions").
"""

from billstream.api.billing.routes import BILLING, add_billing_routes
from billstream.api.billing.service import BillingService

__all__ = ["BILLING", "BillingService", "add_billing_routes"]
