"""The one settings object: every environment variable billstream reads, validated at start-up.

Names follow the public contract (DESIGN.md, "Configuration"). Comma-separated lists are parsed
here, so a bad value stops the process with one line naming the variable instead of failing later.
"""

from __future__ import annotations

import re
import sys
from typing import Annotated, Literal

from pydantic import Field, FilePath, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_ALLOWED_EVENTS = (
    "checkout.session.*",
    "customer.subscription.*",
    "invoice.*",
    "customer.*",
    "subscription_schedule.*",
    "entitlements.active_entitlement_summary.updated",
    # Decline codes of invoice payments (before basil these name their invoice).
    "payment_intent.payment_failed",
    "charge.failed",
    # The api's billing catalog is invalidated by these (docs/api.md, "Catalog"); the worker
    # folds no state from them (no rule), so they change no account.
    "price.*",
    "product.*",
)

# A bearer token's characters (RFC 6750 b64token, without '='); long enough not to be guessed.
TOKEN_CHARS = re.compile(r"[A-Za-z0-9\-._~+/]+")
MIN_TOKEN_LENGTH = 16
# The Stripe accounts a token may read (`API_TOKENS=token@acct_1|platform`, docs/connect.md).
TOKEN_SCOPE = re.compile(r"(?:acct_[A-Za-z0-9]+|platform)(?:\|(?:acct_[A-Za-z0-9]+|platform))*")

CsvTuple = Annotated[tuple[str, ...], NoDecode]
CsvSecrets = Annotated[tuple[SecretStr, ...], NoDecode]
PlanMap = Annotated[dict[str, str], NoDecode]


def _csv_items(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _given(value: object) -> bool:
    """Set and not empty (an empty password is a typo, not a credential)."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value is not None and value != ""


def _split_csv(value: object) -> object:
    return _csv_items(value) if isinstance(value, str) else value


class Settings(BaseSettings):
    """Frozen configuration: `load_settings()` in entry points, `Settings(...)` in tests."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    # Kafka
    kafka_bootstrap_servers: str = Field("localhost:9092", min_length=1)
    billstream_topic_prefix: str = Field(
        "", pattern=r"^[A-Za-z0-9._-]*$", description="prefix for every topic name (tests)"
    )
    billstream_topic_partitions: int = Field(4, ge=1, le=1024)
    billstream_topic_replication: int = Field(1, ge=1, le=16)
    billstream_app_id: str = Field(
        "billstream", pattern=r"^[A-Za-z0-9._-]+$", description="Faust app id: consumer group"
    )
    # Kafka connection security, translated per client library by billstream.kafka_security.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = Field(None, min_length=1)
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_file: FilePath | None = Field(None, description="CA bundle (PEM) for the brokers")
    kafka_ssl_cert_file: FilePath | None = Field(None, description="client certificate (mTLS)")
    kafka_ssl_key_file: FilePath | None = Field(None, description="its private key (PEM)")

    # Webhook intake
    stripe_webhook_secrets: CsvSecrets = ()
    # Stripe Connect (docs/connect.md): the Connect endpoint's own secrets, the platform's id.
    stripe_connect_webhook_secrets: CsvSecrets = ()
    stripe_account_id: str | None = Field(
        None, pattern=r"^acct_[A-Za-z0-9]+$", description="the platform's own Stripe account"
    )
    backfill_stripe_accounts: CsvTuple = Field(
        (), description="connected accounts `billstream backfill` also lists events of"
    )
    metrics_account_labels: CsvTuple = Field(
        (), description="connected accounts named in metric labels; others are `connected`"
    )
    drift_stripe_accounts: CsvTuple = Field(
        (), description="connected accounts the drift audit also lists (`Stripe-Account`)"
    )
    stripe_webhook_tolerance: int = Field(300, ge=1)
    stripe_webhook_allowed_events: CsvTuple = DEFAULT_ALLOWED_EVENTS
    stripe_webhook_max_body: int = Field(1_048_576, ge=1024)
    ingest_publish_timeout: float = Field(5.0, gt=0, le=60)
    ingest_read_timeout: float = Field(
        30.0, gt=0, le=600, description="seconds a client has for a request's headers, and its body"
    )
    ingest_max_in_flight: int = Field(
        1000, ge=1, description="webhooks awaiting the broker at once; more: 503 overloaded"
    )
    ingest_max_loop_lag_ms: int = Field(
        500, ge=10, le=60_000, description="event-loop lag (ms) beyond which: 503 overloaded"
    )
    ingest_overloaded_retry_after: int = Field(
        1, ge=1, le=3600, description="Retry-After seconds on a 503 overloaded"
    )
    # Batching: each wait below is latency a record may gain at that hop, traded for fewer Kafka
    # requests and wake-ups per event at a steady rate (docs/deployment.md, "Batching").
    ingest_linger_ms: int = Field(
        5, ge=0, le=1000, description="ms a webhook may wait to share a produce request"
    )

    # Domain
    billing_plan_map: PlanMap = Field(default_factory=dict)
    billing_default_plan: str = Field("FREE", min_length=1)
    billing_plan_order: CsvTuple = ("FREE", "PRO", "BUSINESS")

    # Worker
    worker_store: str = Field("memory://", pattern=r"^(memory|rocksdb)://.*$")
    worker_data_dir: str = "var/worker"
    dedup_retention_seconds: int = Field(7 * 86400, ge=3 * 86400)
    # Closed invoices outlive Stripe's 30-day event retention, so no replay reopens one.
    closed_invoice_retention_seconds: int = Field(35 * 86400, ge=30 * 86400)
    worker_session_timeout: float = Field(
        30.0, ge=6, le=300, description="seconds before a dead worker's partitions move on"
    )
    worker_linger_ms: int = Field(
        20, ge=0, le=1000, description="ms a state change may wait to share a produce request"
    )
    worker_fetch_wait_ms: int = Field(
        25, ge=1, le=1500, description="ms the broker may hold the worker's fetch to fill it"
    )
    worker_fetch_min_bytes: int = Field(
        256 * 1024, ge=1, description="bytes that end the broker's hold of a worker fetch early"
    )

    # Read model
    database_url: str = Field("sqlite:///var/billstream.db", min_length=1)
    api_fetch_wait_ms: int = Field(
        50, ge=1, le=1500, description="ms the broker may hold the api's fetch to fill it"
    )
    api_fetch_min_bytes: int = Field(
        256 * 1024, ge=1, description="bytes that end the broker's hold of an api fetch early"
    )

    # Stripe API (backfill, reconciliation)
    stripe_api_key: SecretStr | None = None
    stripe_api_base: str | None = None
    stripe_api_rate: float = Field(
        20.0, gt=0, le=10_000, description="Stripe API calls per second, shared by every caller"
    )
    reconcile_cron_enabled: bool = False
    reconcile_cron_interval_seconds: int = Field(420, ge=1)
    reconcile_cron_lookahead_seconds: int = Field(900, ge=0)
    reconcile_cron_batch_limit: int = Field(200, ge=1, le=10_000)

    # Periodic recovery (`billstream drift-audit`, one per deployment): off unless given an interval
    drift_audit_interval_seconds: int | None = Field(
        None, ge=1, description="seconds between drift audits; unset: no periodic audit"
    )
    drift_heal: bool = Field(False, description="the periodic audit publishes what drifts")
    drift_api_url: str | None = Field(
        None, min_length=1, description="the api audits compare with (http://API_HOST:API_PORT)"
    )
    undelivered_recovery_interval_seconds: int | None = Field(
        None, ge=1, description="seconds between `backfill --undelivered` runs; unset: none"
    )

    # Billing actions (the api's /billing/ routes; docs/api.md, "Billing actions")
    stripe_automatic_tax_enabled: bool = Field(
        False, description="Checkout sessions and subscriptions ask Stripe Tax to compute tax"
    )
    billing_catalog_refresh_seconds: int = Field(
        300, ge=5, le=86_400, description="the catalog is re-read from Stripe this often"
    )

    # HTTP ports and bind addresses (loopback by default: a laptop never serves its network)
    ingest_port: int = Field(8000, ge=0, le=65535)
    worker_web_port: int = Field(6066, ge=0, le=65535)
    api_port: int = Field(8080, ge=0, le=65535)
    drift_audit_port: int = Field(6068, ge=0, le=65535)
    resolver_port: int = Field(8070, ge=0, le=65535)
    ingest_host: str = Field("127.0.0.1", min_length=1)
    worker_web_host: str = Field("127.0.0.1", min_length=1)
    api_host: str = Field("127.0.0.1", min_length=1)
    drift_audit_host: str = Field("127.0.0.1", min_length=1)
    resolver_host: str = Field("127.0.0.1", min_length=1)

    # Read API authentication
    api_tokens: CsvSecrets = ()
    api_auth: Literal["token", "none"] = "token"
    api_metrics_auth: bool = Field(False, description="whether /metrics needs a token too")

    # Logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("stripe_webhook_secrets", "stripe_connect_webhook_secrets", mode="before")
    @classmethod
    def _parse_secrets(cls, value: object) -> object:
        value = _split_csv(value)
        if isinstance(value, tuple):
            for secret in value:
                raw = secret.get_secret_value() if isinstance(secret, SecretStr) else str(secret)
                if not raw.startswith("whsec_"):
                    raise ValueError("every secret must start with 'whsec_'")
        return value

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _parse_tokens(cls, value: object) -> object:
        value = _split_csv(value)
        if isinstance(value, tuple):
            for token in value:
                raw = token.get_secret_value() if isinstance(token, SecretStr) else str(token)
                raw, at, scope = raw.partition("@")  # `token@acct_1|acct_2`: an account scope
                if at and not TOKEN_SCOPE.fullmatch(scope):
                    raise ValueError(
                        "a token's scope is `@` then accounts (acct_… or platform) joined by '|'"
                    )
                if len(raw) < MIN_TOKEN_LENGTH or not TOKEN_CHARS.fullmatch(raw):
                    raise ValueError(
                        f"every token needs at least {MIN_TOKEN_LENGTH} characters of "
                        "A-Z a-z 0-9 - . _ ~ + /"
                    )
        return value

    @field_validator(
        "backfill_stripe_accounts", "metrics_account_labels", "drift_stripe_accounts", mode="before"
    )
    @classmethod
    def _parse_accounts(cls, value: object) -> object:
        value = _split_csv(value)
        if isinstance(value, tuple):
            for account in value:
                if not re.fullmatch(r"acct_[A-Za-z0-9]+", str(account)):
                    raise ValueError(f"{account!r} is not a Stripe account id (acct_…)")
        return value

    @field_validator("stripe_webhook_allowed_events", mode="before")
    @classmethod
    def _parse_allowlist(cls, value: object) -> object:
        value = _split_csv(value)
        if isinstance(value, tuple):
            for pattern in value:
                body = pattern[:-2] if pattern.endswith(".*") else pattern
                if pattern != "*" and (not body or "*" in body):
                    raise ValueError(
                        f"pattern {pattern!r} must be an exact type or 'prefix.*' (or '*')"
                    )
        return value

    @field_validator("billing_plan_order", mode="before")
    @classmethod
    def _parse_order(cls, value: object) -> object:
        value = _split_csv(value)
        if isinstance(value, tuple):
            if not value:
                raise ValueError("needs at least one plan")
            if len(set(value)) != len(value):
                raise ValueError("plans must be unique")
        return value

    @field_validator("billing_plan_map", mode="before")
    @classmethod
    def _parse_plan_map(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        mapping: dict[str, str] = {}
        for entry in _csv_items(value):
            key, sep, plan = entry.partition("=")
            if not sep or not key.strip() or not plan.strip():
                raise ValueError(f"entry {entry!r} must be key=PLAN")
            mapping[key.strip()] = plan.strip()
        return mapping

    @model_validator(mode="after")
    def _plans_are_known(self) -> Settings:
        known = set(self.billing_plan_order)
        if self.billing_default_plan not in known:
            raise ValueError(
                f"BILLING_DEFAULT_PLAN {self.billing_default_plan!r} is not in BILLING_PLAN_ORDER"
            )
        unknown = sorted({plan for plan in self.billing_plan_map.values() if plan not in known})
        if unknown:
            raise ValueError(f"BILLING_PLAN_MAP names plans not in BILLING_PLAN_ORDER: {unknown}")
        return self

    @model_validator(mode="after")
    def _kafka_security_is_complete(self) -> Settings:
        protocol = self.kafka_security_protocol
        sasl = {
            "KAFKA_SASL_MECHANISM": self.kafka_sasl_mechanism,
            "KAFKA_SASL_USERNAME": self.kafka_sasl_username,
            "KAFKA_SASL_PASSWORD": self.kafka_sasl_password,
        }
        tls = {
            "KAFKA_SSL_CA_FILE": self.kafka_ssl_ca_file,
            "KAFKA_SSL_CERT_FILE": self.kafka_ssl_cert_file,
            "KAFKA_SSL_KEY_FILE": self.kafka_ssl_key_file,
        }
        # A setting the protocol ignores would be a silent downgrade (no auth, no TLS): refuse.
        for used, group in ((protocol.startswith("SASL_"), sasl), (protocol.endswith("SSL"), tls)):
            extra = [name for name, value in group.items() if value is not None and not used]
            if extra:
                raise ValueError(f"{extra[0]} is set but KAFKA_SECURITY_PROTOCOL is {protocol}")
        if protocol.startswith("SASL_"):
            missing = [name for name, value in sasl.items() if not _given(value)]
            if missing:
                raise ValueError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs {', '.join(missing)}")
        if (self.kafka_ssl_cert_file is None) != (self.kafka_ssl_key_file is None):
            raise ValueError("KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together (mutual TLS)")
        return self

    def topic(self, name: str) -> str:
        """The physical topic name for a contract topic name (prefix applied)."""
        return f"{self.billstream_topic_prefix}{name}"

    def webhook_secret_values(self) -> tuple[str, ...]:
        return tuple(secret.get_secret_value() for secret in self.stripe_webhook_secrets)

    def connect_webhook_secret_values(self) -> tuple[str, ...]:
        return tuple(secret.get_secret_value() for secret in self.stripe_connect_webhook_secrets)

    def api_token_values(self) -> tuple[str, ...]:
        return tuple(token.get_secret_value() for token in self.api_tokens)

    def drift_api(self) -> str:
        """The api the drift audit reads served accounts from."""
        return self.drift_api_url or f"http://{self.api_host}:{self.api_port}"

    def periodic_recovery(self) -> bool:
        """Whether `billstream drift-audit` has anything to do."""
        intervals = (self.drift_audit_interval_seconds, self.undelivered_recovery_interval_seconds)
        return any(interval is not None for interval in intervals)


def describe_error(error: ValidationError) -> str:
    """One line naming each bad variable, e.g. `BILLING_PLAN_MAP: entry 'x' must be key=PLAN`."""
    parts = []
    for item in error.errors():
        variable = "_".join(str(loc) for loc in item["loc"]).upper()
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{variable}: {message}" if variable else message)
    return "; ".join(parts)


def load_settings() -> Settings:
    """Settings from the environment, or exit with a one-line message (status 2)."""
    try:
        return Settings()
    except ValidationError as error:
        print(f"billstream: invalid configuration: {describe_error(error)}", file=sys.stderr)
        raise SystemExit(2) from None
