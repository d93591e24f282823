"""Static checks of the provisioned Grafana dashboards: well-formed, wired to the provisioned
data source, and covering every metric of the contract (DESIGN.md "Metrics") by its exact name.
Whether each expression returns data is tested against a live stack in
tests/integration/test_dashboards.py."""

from __future__ import annotations

import re

import yaml

from tests.support.dashboards import ROOT, dashboards, family, queries

PROVISIONING = ROOT / "grafana" / "provisioning"
REQUIRED_BOARDS = {
    "webhook-intake.json": "Webhook intake",
    "billing-funnel.json": "Billing funnel",
    "subscriptions.json": "Subscriptions",
    "pipeline-health.json": "Pipeline health",
    "dunning-cohorts.json": "Dunning cohorts",
}
# Boards on the read model (PostgreSQL) instead of Prometheus.
SQL_BOARDS = {"dunning-cohorts.json"}


def contract_metrics() -> set[str]:
    design = (ROOT / "docs" / "DESIGN.md").read_text()
    section = design.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`((?:stripe|billstream)_[a-z0-9_]+)", section))


def datasource_uid(file: str = "prometheus.yml", kind: str = "prometheus") -> str:
    config = yaml.safe_load((PROVISIONING / "datasources" / file).read_text())
    [source] = config["datasources"]
    assert source["type"] == kind
    return str(source["uid"])


def test_the_four_dashboards_exist_with_unique_uids() -> None:
    boards = dashboards()
    assert set(boards) == set(REQUIRED_BOARDS)
    for name, title in REQUIRED_BOARDS.items():
        assert str(boards[name]["title"]).endswith(title)
    uids = [board["uid"] for board in boards.values()]
    assert len(set(uids)) == len(uids)


def test_panels_are_laid_out_and_use_the_provisioned_datasource() -> None:
    read_model = datasource_uid("read-model.yml", "grafana-postgresql-datasource")
    for name, board in dashboards().items():
        uid = read_model if name in SQL_BOARDS else datasource_uid()
        query = "rawSql" if name in SQL_BOARDS else "expr"
        panels = board["panels"]
        assert isinstance(panels, list)
        ids = [panel["id"] for panel in panels]
        assert len(set(ids)) == len(ids), name
        for panel in panels:
            grid = panel["gridPos"]
            assert grid["x"] >= 0, (name, panel["title"])
            assert grid["x"] + grid["w"] <= 24, (name, panel["title"])
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == uid
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == uid
                assert target[query].strip()


def test_every_contract_metric_is_on_a_dashboard() -> None:
    shown = {family(metric) for query in queries() for metric in query.metrics()}
    assert contract_metrics() - shown == set()


def test_dashboards_name_only_contract_or_api_metrics() -> None:
    known = contract_metrics()
    for query in queries():
        for name in query.families():
            assert name in known or name == "up" or name.startswith("billstream_api_"), (
                query.name(),
                name,
            )


def test_histograms_are_aggregated_by_le_before_the_quantile() -> None:
    for query in queries():
        for match in re.finditer(r"histogram_quantile\(([^,]+),\s*(.*)\)$", query.expr):
            # `le` first; other labels (e.g. route) may follow to get one quantile per series.
            assert re.match(r"sum by \(le(, \w+)*\) \(rate\(", match.group(2)), query.name()


def test_provider_loads_the_dashboards_directory() -> None:
    config = yaml.safe_load((PROVISIONING / "dashboards" / "billstream.yml").read_text())
    [provider] = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
