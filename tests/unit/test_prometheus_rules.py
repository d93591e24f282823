"""The shipped Prometheus config and alert rules pass promtool, every alert is unit-tested in
alerts_test.yml, and every alert's runbook link lands on a section of docs/alerts.md."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: make test installs it (scripts/system-deps.sh)")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)


def alert_rules() -> list[dict[str, object]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "prometheus/prometheus.yml"),
        ("check", "rules", "prometheus/alerts.yml"),
        ("test", "rules", "prometheus/alerts_test.yml"),
    ],
    ids=" ".join,
)
def test_promtool_accepts(args: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = promtool(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    firing = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    names = {str(rule["alert"]) for rule in alert_rules()}
    assert names - tested == set()
    assert names - firing == set(), "every alert needs a case where it fires"


def test_every_alert_has_a_runbook_section() -> None:
    runbook = (ROOT / "docs" / "alerts.md").read_text()
    anchors = {h.strip().lower() for h in re.findall(r"^## (\S+)$", runbook, re.MULTILINE)}
    for rule in alert_rules():
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert annotations["runbook_url"] == f"docs/alerts.md#{str(rule['alert']).lower()}"
        assert str(rule["alert"]).lower() in anchors, rule["alert"]
        assert annotations["summary"]
        assert rule["labels"]["severity"] in ("warning", "critical")  # type: ignore[index]


def test_compose_prometheus_scrapes_every_service() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"ingest", "worker", "api"} <= set(jobs)
    targets = {t for job in jobs.values() for sc in job["static_configs"] for t in sc["targets"]}
    assert {"ingest:8000", "worker:6066", "api:8080"} <= targets
