"""`billstream drift`: an audit interrupted after its listing resumes it on the rerun, and the
periodic service refuses to start with nothing to do (against stripe-mock)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from billstream.cli import build_parser
from billstream.drift import cli, service
from tests.support.settings import SettingsFactory


def drift(*argv: str) -> argparse.Namespace:
    return build_parser("drift").parse_args(["drift", *argv])


def args_of(args: argparse.Namespace) -> list[str]:
    return ["--api-url", args.api_url, "--checkpoint", str(args.checkpoint)]


def test_an_unreachable_api_keeps_the_listing_for_the_rerun(
    make_settings: SettingsFactory,
    stripe_mock: str,
    closed_port_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(stripe_api_key="sk_test_driftcli", stripe_api_base=stripe_mock)
    checkpoint = tmp_path / "drift.json"
    args = drift("--api-url", closed_port_url, "--checkpoint", str(checkpoint))

    assert cli.run(settings, args) == 1
    err = capsys.readouterr().err
    assert f"rerun to resume ({checkpoint})" in err, err
    assert "Traceback" not in err
    assert checkpoint.exists(), err  # stripe-mock's one subscription, listed once

    assert cli.run(settings, args) == 1
    assert "resuming the listing after 1 subscriptions" in capsys.readouterr().out

    assert cli.run(settings, drift(*args_of(args), "--fresh")) == 1
    assert "resuming" not in capsys.readouterr().out

    checkpoint.write_text("{}")  # not a listing: one line, and --fresh gets past it
    assert cli.run(settings, args) == 2
    assert "use --fresh" in capsys.readouterr().err
    assert cli.run(settings, drift(*args_of(args), "--fresh")) == 1


def test_a_rejected_key_says_so_and_exits_2(
    make_settings: SettingsFactory,
    stripe_mock: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(stripe_api_key="sk_live_", stripe_api_base=stripe_mock)
    assert cli.run(settings, drift("--checkpoint", str(tmp_path / "drift.json"))) == 2
    assert "Stripe rejected STRIPE_API_KEY (HTTP 401)" in capsys.readouterr().err


def test_drift_audit_with_no_interval_set_says_so_and_exits_2(
    make_settings: SettingsFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    assert service.run(make_settings(stripe_api_key="sk_test_x"), argparse.Namespace()) == 2
    assert "DRIFT_AUDIT_INTERVAL_SECONDS" in capsys.readouterr().err


def test_drift_audit_without_a_key_is_a_configuration_error(
    make_settings: SettingsFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(drift_audit_interval_seconds=3600)
    assert service.run(settings, argparse.Namespace()) == 2
    assert "STRIPE_API_KEY is not set" in capsys.readouterr().err
