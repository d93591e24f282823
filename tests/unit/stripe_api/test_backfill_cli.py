"""`billstream backfill` fails with one clear line (and no traceback) when Stripe cannot be used."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from billstream.backfill import cli
from billstream.cli import build_parser
from tests.support.settings import SettingsFactory


def backfill(*argv: str) -> argparse.Namespace:
    return build_parser("backfill").parse_args(["backfill", *argv])


def test_a_rejected_key_says_so_and_exits_2(
    make_settings: SettingsFactory,
    stripe_mock: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(stripe_api_key="sk_live_", stripe_api_base=stripe_mock)

    status = cli.run(settings, backfill("--since", "1h", "--checkpoint", str(tmp_path / "c")))

    err = capsys.readouterr().err
    assert status == 2
    assert "Stripe rejected STRIPE_API_KEY (HTTP 401)" in err
    assert "Traceback" not in err
    assert not (tmp_path / "c").exists()


def test_a_missing_key_is_a_configuration_error(
    make_settings: SettingsFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.run(make_settings(), backfill("--since", "1h")) == 2
    assert "STRIPE_API_KEY is not set" in capsys.readouterr().err


def test_an_unreachable_stripe_names_the_address(
    make_settings: SettingsFactory, closed_port_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(stripe_api_key="sk_test_x", stripe_api_base=closed_port_url)

    assert cli.run(settings, backfill("--since", "1h")) == 1
    assert f"{closed_port_url}: cannot reach Stripe" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--since", "soon"), "neither a duration"),
        (("--since", "1h", "--types", "charge.succeeded"), "not in STRIPE_WEBHOOK_ALLOWED_EVENTS"),
    ],
)
def test_bad_arguments_exit_2(
    make_settings: SettingsFactory,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    message: str,
) -> None:
    assert cli.run(make_settings(stripe_api_key="sk_test_x"), backfill(*argv)) == 2
    assert message in capsys.readouterr().err
