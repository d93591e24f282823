"""`billstream simulate` end to end against a fake ingest: summary, JSON file, exit status."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from billstream.cli import main
from billstream.simulate import catalog, versions
from tests.unit.simulate.fake_ingest import SECRET, FakeIngest


@pytest.fixture
def ingest_url() -> Iterator[str]:
    """A fake ingest on a free port, served from its own thread (the CLI runs its own loop)."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(FakeIngest().app())
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/webhooks/stripe"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS", SECRET)
    monkeypatch.setenv("BILLING_PLAN_MAP", catalog.SIMULATOR_PLAN_MAP)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")


def simulate(url: str, tmp_path: Path, *extra: str) -> int:
    args = ["simulate", "--url", url, "--rate", "400", "--duration", "2", "--seed", "11"]
    args += ["--start", "1760000000", "--customers", "20", "--noise", "0.05", "--no-progress"]
    return main([*args, "--summary-json", str(tmp_path / "summary.json"), *extra])


def test_summary_counts_what_was_sent_and_the_expected_state(
    ingest_url: str, env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert simulate(ingest_url, tmp_path) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["sent"] == 800
    assert sum(summary["deliveries"].values()) == 800
    assert sum(summary["responses"].values()) == 800
    assert {"queued", "ignored", "invalid_signature", "invalid_payload"} <= set(
        summary["responses"]
    )
    assert summary["stories"]["signup_paid"] + summary["stories"]["signup_trial"] > 0
    expected = summary["expected"]
    assert sum(expected["plan"].values()) == expected["customers"] > 0
    assert sum(expected["payment_state"].values()) == expected["customers"]
    assert set(expected["plan"]) <= {"FREE", "PRO", "BUSINESS"}
    text = capsys.readouterr().out
    assert "seed 11" in text
    assert "payment_state:" in text
    assert SECRET not in text


def test_same_seed_same_summary(ingest_url: str, env: None, tmp_path: Path) -> None:
    simulate(ingest_url, tmp_path)
    first = json.loads((tmp_path / "summary.json").read_text())
    simulate(ingest_url, tmp_path)
    second = json.loads((tmp_path / "summary.json").read_text())
    for key in ("deliveries", "responses", "stories", "expected"):
        assert first[key] == second[key]


def test_unreachable_ingest_fails(env: None, tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/webhooks/stripe"  # discard port: nothing listens
    assert simulate(url, tmp_path, "--retries", "0", "--duration", "0.02") == 1


def test_without_a_secret_it_refuses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRETS", raising=False)
    assert main(["simulate", "--duration", "1"]) == 2
    assert "STRIPE_WEBHOOK_SECRETS" in capsys.readouterr().err


def test_an_old_api_versions_traffic_expects_what_the_default_expects(
    ingest_url: str, env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert simulate(ingest_url, tmp_path) == 0
    default = json.loads((tmp_path / "summary.json").read_text())
    assert simulate(ingest_url, tmp_path, "--api-version", versions.SUPPORTED[0]) == 0
    oldest = json.loads((tmp_path / "summary.json").read_text())
    assert (default["api_version"], oldest["api_version"]) == (versions.NEWEST, "2020-08-27")
    assert oldest["expected"] == default["expected"]
    assert "--api-version 2020-08-27" in capsys.readouterr().out
