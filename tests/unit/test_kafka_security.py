"""KAFKA_SECURITY_* validation, and the same settings translated for each client library."""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from confluent_kafka import Producer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import ValidationError

from billstream import kafka_security
from billstream.processors.runtime.app import create_faust_app
from billstream.settings import describe_error
from tests.support.secure_broker import certificate, pem
from tests.support.settings import SettingsFactory

PASSWORD = "s3cret-never-logged"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A CA, and a client certificate and key it signed (mutual TLS)."""
    workdir = tmp_path_factory.mktemp("tls")
    ca_key, client_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    files = {
        "kafka_ssl_ca_file": workdir / "ca.pem",
        "kafka_ssl_cert_file": workdir / "client.pem",
        "kafka_ssl_key_file": workdir / "client.key",
    }
    files["kafka_ssl_ca_file"].write_text(pem(certificate("test CA", ca_key)))
    client = certificate("billstream", client_key, issuer=("test CA", ca_key))
    files["kafka_ssl_cert_file"].write_text(pem(client))
    files["kafka_ssl_key_file"].write_bytes(
        client_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return {name: str(path) for name, path in files.items()}


def sasl(mechanism: str = "SCRAM-SHA-256", protocol: str = "SASL_SSL") -> dict[str, str]:
    return {
        "kafka_security_protocol": protocol,
        "kafka_sasl_mechanism": mechanism,
        "kafka_sasl_username": "billstream",
        "kafka_sasl_password": PASSWORD,
    }


def error_of(make_settings: SettingsFactory, **values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        make_settings(**values)
    return describe_error(caught.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "u"},
            "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_MECHANISM, KAFKA_SASL_PASSWORD",
        ),
        (
            sasl() | {"kafka_sasl_password": ""},
            "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_PASSWORD",
        ),
        (
            {"kafka_sasl_username": "u"},
            "KAFKA_SASL_USERNAME is set but KAFKA_SECURITY_PROTOCOL is PLAINTEXT",
        ),
        (
            sasl(protocol="SASL_PLAINTEXT") | {"kafka_ssl_ca_file": __file__},
            "KAFKA_SSL_CA_FILE is set but KAFKA_SECURITY_PROTOCOL is SASL_PLAINTEXT",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_cert_file": __file__},
            "KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together (mutual TLS)",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_ca_file": "/no/such/ca.pem"},
            "KAFKA_SSL_CA_FILE: Path does not point to a file",
        ),
        (
            sasl(mechanism="GSSAPI"),
            "KAFKA_SASL_MECHANISM: Input should be 'PLAIN', 'SCRAM-SHA-256' or 'SCRAM-SHA-512'",
        ),
        (
            {"kafka_security_protocol": "TLS"},
            "KAFKA_SECURITY_PROTOCOL: Input should be 'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT' or",
        ),
    ],
)
def test_incomplete_or_contradictory_security_is_one_line_naming_the_variable(
    make_settings: SettingsFactory, values: dict[str, str], message: str
) -> None:
    line = error_of(make_settings, **values)
    assert line.startswith(message), line
    assert "\n" not in line
    assert PASSWORD not in line


def test_the_password_is_never_in_repr_str_or_the_description(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(**sasl())
    for text in (repr(settings), str(settings), kafka_security.describe(settings)):
        assert PASSWORD not in text
    assert kafka_security.describe(settings) == "SASL_SSL SCRAM-SHA-256 as 'billstream'"


def test_plaintext_is_the_default_and_adds_nothing(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    assert kafka_security.librdkafka_config(settings) == {"security.protocol": "plaintext"}
    assert kafka_security.aiokafka_options(settings) == {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": "PLAINTEXT",
    }
    assert kafka_security.faust_credentials(settings) is None


def test_librdkafka_gets_sasl_and_the_tls_files(
    make_settings: SettingsFactory, tls_files: dict[str, str]
) -> None:
    settings = make_settings(**sasl("SCRAM-SHA-512"), **tls_files)
    config = kafka_security.librdkafka_config(settings)
    assert config == {
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "billstream",
        "sasl.password": PASSWORD,
        "ssl.ca.location": tls_files["kafka_ssl_ca_file"],
        "ssl.certificate.location": tls_files["kafka_ssl_cert_file"],
        "ssl.key.location": tls_files["kafka_ssl_key_file"],
    }
    Producer({"bootstrap.servers": "127.0.0.1:1", **config})  # librdkafka accepts every key


async def test_aiokafka_gets_a_verifying_context_and_sasl(
    make_settings: SettingsFactory, tls_files: dict[str, str]
) -> None:
    settings = make_settings(**sasl("PLAIN"), **tls_files)
    options = kafka_security.aiokafka_options(settings)
    context = options.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert len(context.get_ca_certs()) == 1  # KAFKA_SSL_CA_FILE, not the system's
    assert options == {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "billstream",
        "sasl_plain_password": PASSWORD,
    }
    AIOKafkaConsumer(**kafka_security.aiokafka_options(settings))  # aiokafka accepts them


@pytest.mark.parametrize("protocol", ["SSL", "SASL_PLAINTEXT", "SASL_SSL"])
def test_faust_translates_its_credentials_exactly_as_aiokafka_options(
    make_settings: SettingsFactory, tls_files: dict[str, str], protocol: str
) -> None:
    """Faust turns broker_credentials into aiokafka kwargs itself: they must be ours."""
    values = sasl(protocol=protocol) if protocol.startswith("SASL_") else {}
    if protocol.endswith("SSL"):
        values |= tls_files
    settings = make_settings(**(values | {"kafka_security_protocol": protocol}))
    credentials = kafka_security.faust_credentials(settings)
    expected_type = SSLCredentials if protocol == "SSL" else SASLCredentials
    assert isinstance(credentials, expected_type)
    assert PASSWORD not in repr(credentials)
    faust_kwargs = dict(credentials_to_aiokafka_auth(credentials))
    ours = kafka_security.aiokafka_options(settings)
    ours.pop("bootstrap_servers")
    # SSLContext objects compare by identity: compare what they verify with instead.
    faust_context, our_context = (
        faust_kwargs.pop("ssl_context", None),
        ours.pop("ssl_context", None),
    )
    assert (faust_context is None) == (our_context is None)
    if our_context is not None:
        assert faust_context.get_ca_certs() == our_context.get_ca_certs()
    assert {key: value for key, value in faust_kwargs.items() if value is not None} == ours


def test_the_worker_app_carries_the_credentials_to_both_producers(
    make_settings: SettingsFactory, tls_files: dict[str, str]
) -> None:
    settings = make_settings(**sasl(), kafka_ssl_ca_file=tls_files["kafka_ssl_ca_file"])
    app = create_faust_app(settings)
    assert isinstance(app.conf.broker_credentials, SASLCredentials)  # consumer, aiokafka producer
    assert app.librdkafka_security == kafka_security.librdkafka_config(settings)  # librdkafka


def test_every_kafka_client_in_the_package_is_built_through_kafka_security() -> None:
    """A new client constructed elsewhere would miss the security settings: keep them here."""
    package = Path(kafka_security.__file__).parent
    constructor = re.compile(
        r"(?<!class )\b(AIOKafka(Consumer|Producer|AdminClient)|(Rd)?Producer)\("
    )
    for path in package.rglob("*.py"):
        text = path.read_text()
        if not constructor.search(text):
            continue
        assert "kafka_security" in text or path.name == "kafka_security.py", path
