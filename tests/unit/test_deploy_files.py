"""docker-compose.yml and the Dockerfile, checked statically (no Docker engine here): the stack
names every service, configures billstream only through settings it knows, runs nothing as root,
and its health checks really work (run here against a live probe server)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from prometheus_client import CollectorRegistry

from billstream.cli import COMMANDS
from billstream.settings import Settings
from billstream.web import add_probe_routes

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    "kafka",
    "kafka-init",
    "ingest",
    "worker",
    "api",
    "postgres",
    "drift-audit",
    "resolver",
    "prometheus",
    "grafana",
}
BILLSTREAM_PORTS = {
    "ingest": "INGEST_PORT",
    "worker": "WORKER_WEB_PORT",
    "api": "API_PORT",
    "drift-audit": "DRIFT_AUDIT_PORT",
    "resolver": "RESOLVER_PORT",
}
SETTINGS_NAMES = {name.upper() for name in Settings.model_fields}
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)")
# The one knob of the stack that is not a billstream setting: the read model's database password.
STACK_VARIABLES = {"POSTGRES_PASSWORD"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    text = (ROOT / "docker-compose.yml").read_text()
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def billstream_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image", "").startswith("billstream")
    }


def test_every_service_is_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES
    assert set(billstream_services(compose)) == {
        "kafka-init",
        "ingest",
        "worker",
        "api",
        "drift-audit",
        "resolver",
    }


def test_the_periodic_recovery_runs_only_when_asked_for(compose: dict[str, Any]) -> None:
    """One per deployment, off by default (a profile), reading the api by its service name."""
    audit = compose["services"]["drift-audit"]
    assert audit["profiles"] == ["drift-audit"]
    optional = ("drift-audit", "resolver")
    assert not any("profiles" in s for n, s in compose["services"].items() if n not in optional)
    assert "replicas" not in audit.get("deploy", {})
    env = audit["environment"]
    assert (
        env["DRIFT_API_URL"]
        == f"http://api:{compose['services']['api']['environment']['API_PORT']}"
    )
    assert env["STRIPE_API_KEY"].startswith("${STRIPE_API_KEY:?")
    assert env["DRIFT_HEAL"] == "${DRIFT_HEAL:-false}"


def test_the_resolver_runs_only_when_asked_for_and_needs_a_key(compose: dict[str, Any]) -> None:
    resolver = compose["services"]["resolver"]
    assert resolver["profiles"] == ["resolver"]
    assert resolver["command"] == ["resolve"]
    assert resolver["environment"]["STRIPE_API_KEY"].startswith("${STRIPE_API_KEY:?")


def test_kafka_is_the_official_image_in_kraft_mode(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert re.fullmatch(r"apache/kafka:4\.1\.\d+", kafka["image"])
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert not any("ZOOKEEPER" in name for name in env)
    bootstrap = billstream_services(compose)["ingest"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"]
    assert f"PLAINTEXT://{bootstrap}" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_billstream_services_use_only_settings_variables(compose: dict[str, Any]) -> None:
    for name, service in billstream_services(compose).items():
        unknown = set(service["environment"]) - SETTINGS_NAMES
        assert unknown == set(), f"{name}: not billstream settings: {sorted(unknown)}"
    # ${VAR} interpolations anywhere in the file are settings too (the stack has no other knobs).
    interpolated = set(INTERPOLATION.findall((ROOT / "docker-compose.yml").read_text()))
    assert interpolated - SETTINGS_NAMES - STACK_VARIABLES == set()
    assert "STRIPE_WEBHOOK_SECRETS" in interpolated


def test_billstream_commands_exist_and_topics_come_first(compose: dict[str, Any]) -> None:
    services = billstream_services(compose)
    for name, service in services.items():
        [command] = service["command"]
        assert command in COMMANDS, name
    assert services["kafka-init"]["command"] == ["topics"]
    for name in BILLSTREAM_PORTS:
        condition = services[name]["depends_on"]["kafka-init"]["condition"]
        assert condition == "service_completed_successfully"
    assert services["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_services_run_as_non_root(compose: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    [user] = re.findall(r"^USER (\S+)$", dockerfile, re.MULTILINE)
    assert user.split(":")[0] not in ("root", "0")
    for name, service in compose["services"].items():
        assert str(service.get("user", "")).split(":")[0] not in ("root", "0"), name


def test_dockerfile_installs_the_pinned_package(compose: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)[-1] == "python:3.11-slim"
    assert "pip install -c constraints.txt ." in dockerfile
    assert 'ENTRYPOINT ["billstream"]' in dockerfile
    copied = set(re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.MULTILINE))
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    for sources in copied:
        for source in sources.split():
            assert f"!{source.rstrip('/')}" in ignore or f"!{source}/" in ignore, source


def test_observability_config_is_mounted_where_it_is_read(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in prometheus["volumes"]
    grafana = compose["services"]["grafana"]["volumes"]
    provider = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/billstream.yml").read_text())
    assert f"./grafana/dashboards:{provider['providers'][0]['options']['path']}:ro" in grafana
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana
    scrape = yaml.safe_load((ROOT / "prometheus/prometheus.yml").read_text())["scrape_configs"]
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in scrape}
    for name, variable in BILLSTREAM_PORTS.items():
        port = compose["services"][name]["environment"][variable]
        assert targets[name] == [f"{name}:{port}"]


def test_containers_bind_every_interface_and_the_api_needs_tokens(compose: dict[str, Any]) -> None:
    """Loopback is the settings' default (a laptop); inside a container it would be unreachable."""
    hosts = {
        "ingest": "INGEST_HOST",
        "worker": "WORKER_WEB_HOST",
        "api": "API_HOST",
        "drift-audit": "DRIFT_AUDIT_HOST",
        "resolver": "RESOLVER_HOST",
    }
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name, variable in hosts.items():
        assert compose["services"][name]["environment"][variable] == "0.0.0.0", name
        assert re.search(rf"^\s+{variable}=0\.0\.0\.0\b", dockerfile, re.MULTILINE), variable
    api = compose["services"]["api"]["environment"]
    assert api["API_TOKENS"].startswith("${API_TOKENS?")  # unset stops `compose up`
    assert api["API_AUTH"] == "${API_AUTH:-token}"


def test_every_long_running_service_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name != "kafka-init":
            assert service["healthcheck"]["test"], name


@pytest.fixture(scope="module")
def probe_port() -> Iterator[int]:
    """A real billstream probe server (billstream.web) on a free port, in its own thread."""
    import asyncio

    loop = asyncio.new_event_loop()
    app = web.Application()
    add_probe_routes(app, CollectorRegistry(), ready=lambda: True)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield runner.addresses[0][1]
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("name", sorted(BILLSTREAM_PORTS))
def test_billstream_health_checks_pass_when_up_and_fail_when_down(
    compose: dict[str, Any], name: str, probe_port: int
) -> None:
    service = compose["services"][name]
    port = str(service["environment"][BILLSTREAM_PORTS[name]])
    executable, *args = service["healthcheck"]["test"][1:]
    assert service["healthcheck"]["test"][0] == "CMD"
    assert executable == "python"  # the slim image has no curl or wget
    assert any(f"127.0.0.1:{port}/healthz" in arg for arg in args)

    def run(target_port: int) -> int:
        local = [arg.replace(f":{port}/", f":{target_port}/") for arg in args]
        return subprocess.run([sys.executable, *local], capture_output=True, timeout=30).returncode

    assert run(probe_port) == 0
    assert run(closed_port()) != 0
