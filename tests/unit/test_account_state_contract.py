"""One definition of the account state: the worker's `AccountState` is the source.

Every other place that spells the fields out (the api's message model and its field order, the
read model's columns and its migrations, the OpenAPI schema, the contract's JSON example in
DESIGN.md, the string limits) must list exactly the same fields: a field added in one place
only fails here instead of vanishing silently downstream.
"""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

from billstream.api.models import accounts
from billstream.api.openapi import SCHEMAS
from billstream.api.state import ACCOUNT_FIELDS, TRACKED_FIELDS, AccountStateMessage
from billstream.limits import ACCOUNT_INTEGER_FIELDS, ACCOUNT_LIST_LIMITS, ACCOUNT_STRING_LIMITS
from billstream.processors.account import DERIVED_FIELDS, STAMPS
from billstream.tables.state import AccountState, CustomerState

ROOT = Path(__file__).resolve().parents[2]
WORKER_FIELDS = ("customer_id", *(f.name for f in fields(AccountState)))
# Connect: the connected account, in the view only when there is one (absent: the platform).
API_FIELDS = (*WORKER_FIELDS, "stripe_account")


def test_the_api_message_has_the_workers_fields_in_order() -> None:
    assert tuple(AccountStateMessage.model_fields) == API_FIELDS
    assert ACCOUNT_FIELDS == API_FIELDS


def test_the_view_the_worker_publishes_is_the_contract() -> None:
    view = CustomerState("cus_1", AccountState(plan="PRO")).account_view()
    assert view is not None
    assert tuple(view) == WORKER_FIELDS
    AccountStateMessage.model_validate(view)  # and the api accepts it as it is


def test_a_connected_accounts_view_names_its_account() -> None:
    state = CustomerState("cus_1", AccountState(plan="PRO"), stripe_account="acct_1")
    view = state.account_view()
    assert view is not None
    assert tuple(view) == API_FIELDS
    assert AccountStateMessage.model_validate(view).key == "acct_1/cus_1"


def test_the_read_model_has_a_column_per_field() -> None:
    assert tuple(accounts.c.keys()) == API_FIELDS


def test_the_openapi_schema_lists_every_field() -> None:
    schema = SCHEMAS["Account"]
    assert tuple(schema["properties"]) == API_FIELDS
    assert set(schema["required"]) == set(API_FIELDS)


def test_the_design_documents_every_field() -> None:
    design = (ROOT / "docs" / "DESIGN.md").read_text()
    example = re.search(r"## Account state.*?```json\n(.*?)```", design, re.S)
    assert example is not None
    assert tuple(json.loads(example.group(1))) == API_FIELDS


def test_limits_cover_every_field_and_transitions_track_the_derived_ones() -> None:
    typed = {f.name: f.type for f in fields(AccountState)}
    lists = {name for name, kind in typed.items() if str(kind).startswith("tuple[")}
    strings = {name for name, kind in typed.items() if "str" in str(kind)} - lists
    integers = {name for name, kind in typed.items() if "int" in str(kind)}
    assert set(ACCOUNT_STRING_LIMITS) == {"customer_id", *strings}
    assert set(ACCOUNT_INTEGER_FIELDS) == integers
    assert set(ACCOUNT_LIST_LIMITS) == lists
    assert TRACKED_FIELDS == DERIVED_FIELDS
    assert set(WORKER_FIELDS) == {"customer_id", *DERIVED_FIELDS, *STAMPS}
