"""A broker whose client listeners are SASL_SSL with SCRAM and SSL with client certificates.

The CA and the broker's certificate are generated here (`cryptography`), handed to Kafka inline
as PEM (no keytool, no keystore files); the SCRAM users are written by Kafka's own StorageTool
when the data directory is formatted; StandardAuthorizer denies whatever no ACL allows. The
loopback CONTROLLER listener stays PLAINTEXT: its principal (ANONYMOUS, only ever the broker
talking to its own controller) and the broker's SCRAM user `admin` are the super users.
The SSL listener requires a client certificate signed by the CA (mutual TLS); its principal is
`User:CN=<the certificate's common name>`.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from billstream import kafka_security
from billstream.settings import Settings
from tests.support.private_broker import PrivateBroker, free_ports

MECHANISM = "SCRAM-SHA-256"
SUPER_USER = "admin"
MTLS_CLIENT = "billstream-mtls"  # the client certificate's CN
DAY = datetime.timedelta(days=1)


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None = None,
) -> x509.Certificate:
    """A self-signed CA when `issuer` is None, else a certificate for 127.0.0.1 it signs."""
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, signing_key = issuer if issuer is not None else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - DAY)
        .not_valid_after(now + DAY)
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _property(value: str) -> str:
    """A multi-line value on one properties line (Java's loader turns `\\n` back into newlines)."""
    return value.strip().replace("\n", "\\n")


@dataclass(frozen=True)
class SecureBroker:
    """A started SASL_SSL broker; `settings_for(user)` connects as one of its SCRAM users."""

    broker: PrivateBroker
    mtls_port: int
    ca_file: Path
    client_files: tuple[Path, Path]  # certificate and key of MTLS_CLIENT
    passwords: dict[str, str]
    started_in: float  # seconds from `kafka.sh up` to a SASL_SSL metadata answer

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    def security(self, user: str, password: str | None = None) -> dict[str, str]:
        """Settings values (lower-case names) for `user`, with its password unless one is given."""
        password = password if password is not None else self.passwords[user]
        return _sasl_ssl(self.bootstrap, self.ca_file, user, password)

    def mtls_security(self, *, certificate: bool = True) -> dict[str, str]:
        """Settings values for the SSL listener, as MTLS_CLIENT (or without a certificate)."""
        values = {
            "kafka_bootstrap_servers": f"127.0.0.1:{self.mtls_port}",
            "kafka_security_protocol": "SSL",
            "kafka_ssl_ca_file": str(self.ca_file),
        }
        if certificate:
            values["kafka_ssl_cert_file"] = str(self.client_files[0])
            values["kafka_ssl_key_file"] = str(self.client_files[1])
        return values

    def admin(self) -> AdminClient:
        """confluent-kafka's admin client as the super user, configured by kafka_security."""
        values: dict[str, Any] = self.security(SUPER_USER)
        settings = Settings(_env_file=None, **values)
        config = kafka_security.librdkafka_config(settings)
        return AdminClient({"bootstrap.servers": self.bootstrap, **config})

    def allow(self, user: str, resource: ResourceType, prefix: str, *ops: AclOperation) -> None:
        """ACLs letting `User:<user>` do `ops` on every resource whose name starts with `prefix`."""
        bindings = [
            AclBinding(
                resource,
                prefix,
                ResourcePatternType.PREFIXED,
                f"User:{user}",
                "*",
                op,
                AclPermissionType.ALLOW,
            )
            for op in ops
        ]
        admin = self.admin()  # kept referenced until every future is done
        for future in admin.create_acls(bindings, request_timeout=30).values():
            future.result()


def start_secure_broker(workdir: Path, users: tuple[str, ...]) -> SecureBroker:
    """Generate the CA and certificate, format with SCRAM users, start, wait for SASL_SSL."""
    ca_key, broker_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in "abc")
    ca_name = "billstream test CA"
    ca = certificate(ca_name, ca_key)
    cert = certificate("billstream test broker", broker_key, issuer=(ca_name, ca_key))
    key_pem = _pkcs8(broker_key)  # Kafka's PEM key store wants PKCS#8
    ca_file = workdir / "ca.pem"
    ca_file.write_text(pem(ca))
    client_files = (workdir / "client.pem", workdir / "client.key")
    client_files[0].write_text(pem(certificate(MTLS_CLIENT, client_key, issuer=(ca_name, ca_key))))
    client_files[1].write_text(_pkcs8(client_key))

    passwords = {user: secrets.token_hex(16) for user in (SUPER_USER, *users)}
    port, controller_port, mtls_port = free_ports(3)
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{SUPER_USER}" password="{passwords[SUPER_USER]}";'
    )
    config = f"""
listeners=SASL_SSL://127.0.0.1:{port},SSL://127.0.0.1:{mtls_port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=SASL_SSL://127.0.0.1:{port},SSL://127.0.0.1:{mtls_port}
listener.security.protocol.map=SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:PLAINTEXT
listener.name.ssl.ssl.client.auth=required
inter.broker.listener.name=SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol={MECHANISM}
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={jaas}
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas}
ssl.keystore.type=PEM
ssl.keystore.certificate.chain={_property(pem(cert))}
ssl.keystore.key={_property(key_pem)}
ssl.truststore.type=PEM
ssl.truststore.certificates={_property(pem(ca))}
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:{SUPER_USER};User:ANONYMOUS
"""
    scram = [
        f"--add-scram {mechanism}=[name={user},password={password}]"
        for user, password in passwords.items()
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
    ]
    # kafka.sh's readiness probe connects as billstream does, as the super user.
    probe = _sasl_ssl(f"127.0.0.1:{port}", ca_file, SUPER_USER, passwords[SUPER_USER])
    broker = PrivateBroker(
        port,
        controller_port,
        env=(
            ("KAFKA_EXTRA_CONFIG", config),
            ("KAFKA_FORMAT_ARGS", " ".join(scram)),
            *((name.upper(), value) for name, value in probe.items()),
        ),
    )
    started = time.monotonic()
    broker.start()
    took = time.monotonic() - started
    return SecureBroker(broker, mtls_port, ca_file, client_files, passwords, took)


def _sasl_ssl(bootstrap: str, ca_file: Path, user: str, password: str) -> dict[str, str]:
    return {
        "kafka_bootstrap_servers": bootstrap,
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": MECHANISM,
        "kafka_sasl_username": user,
        "kafka_sasl_password": password,
        "kafka_ssl_ca_file": str(ca_file),
    }


def _pkcs8(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
