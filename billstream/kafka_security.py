"""KAFKA_SECURITY_PROTOCOL and friends, translated once for each client library billstream uses.

Every Kafka client is built from these functions — librdkafka (ingest's and the worker's
producers), aiokafka (admin, api consumer, backfill, verify) and Faust (the worker's consumer
and its aiokafka producer) — so the three stacks cannot drift apart. A shared leaf: it imports
no part of the pipeline, and Faust only when the worker asks for its credentials.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from aiokafka.helpers import create_ssl_context

from billstream.settings import Settings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT


def uses_tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def uses_sasl(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def describe(settings: Settings) -> str:
    """How billstream connects, for log lines: protocol, mechanism and user, never the password."""
    parts: list[str] = [settings.kafka_security_protocol]
    if uses_sasl(settings):
        parts.append(f"{settings.kafka_sasl_mechanism} as {settings.kafka_sasl_username!r}")
    if settings.kafka_ssl_cert_file is not None:
        parts.append(f"client certificate {settings.kafka_ssl_cert_file}")
    return " ".join(parts)


def librdkafka_config(settings: Settings) -> dict[str, str]:
    """confluent-kafka / librdkafka properties (ingest publisher, worker producer)."""
    config = {"security.protocol": settings.kafka_security_protocol.lower()}
    if uses_sasl(settings):
        assert settings.kafka_sasl_password is not None  # Settings validated it
        config |= {
            "sasl.mechanism": str(settings.kafka_sasl_mechanism),
            "sasl.username": str(settings.kafka_sasl_username),
            "sasl.password": settings.kafka_sasl_password.get_secret_value(),
        }
    if uses_tls(settings):
        # librdkafka verifies the broker's host name by default (https), as aiokafka does.
        files = {
            "ssl.ca.location": settings.kafka_ssl_ca_file,
            "ssl.certificate.location": settings.kafka_ssl_cert_file,
            "ssl.key.location": settings.kafka_ssl_key_file,
        }
        config |= {key: str(path) for key, path in files.items() if path is not None}
    return config


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for aiokafka and Faust: the CA file or the system's, host names checked."""
    if not uses_tls(settings):
        return None
    context: ssl.SSLContext = create_ssl_context(
        cafile=_path(settings.kafka_ssl_ca_file),
        certfile=_path(settings.kafka_ssl_cert_file),
        keyfile=_path(settings.kafka_ssl_key_file),
    )
    return context


def aiokafka_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaConsumer, AIOKafkaProducer and AIOKafkaAdminClient."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if uses_sasl(settings):
        assert settings.kafka_sasl_password is not None
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    return options


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """Faust's `broker_credentials`: it hands them to its aiokafka consumer and producer."""
    from faust.auth import SASLCredentials, SSLCredentials  # only the worker imports Faust

    context = ssl_context(settings)
    if uses_sasl(settings):
        assert settings.kafka_sasl_password is not None
        return SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism,
        )
    if context is not None:
        return SSLCredentials(context)
    return None


def _path(value: object) -> str | None:
    return None if value is None else str(value)
