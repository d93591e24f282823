"""`billstream dev`: ingest, worker and api as child processes under one supervisor.

Ctrl-C (or SIGTERM) stops every child; if one child dies, the others are stopped too, so a
broken service is never left half-running. The broker is started around this by `make dev`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import sys
from dataclasses import dataclass

from billstream.settings import Settings

SERVICES = ("ingest", "worker", "api")
# Run only when asked, or when configured: drift-audit when DRIFT_AUDIT_INTERVAL_SECONDS /
# UNDELIVERED_RECOVERY_INTERVAL_SECONDS is set, the resolver when STRIPE_API_KEY is (both call
# Stripe; without a key thin notifications wait on stripe.thin-events until a resolver runs).
OPTIONAL = ("drift-audit", "resolve")
STOP_GRACE_SECONDS = 15.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SERVICES + OPTIONAL,
        default=None,
        help="services to run (default: ingest, worker, api; drift-audit and resolve too when "
        "configured)",
    )


def default_services(settings: Settings) -> list[str]:
    """What `make dev` runs: the pipeline, plus the periodic recovery when it is configured."""
    key = settings.stripe_api_key
    resolver = key is not None and bool(key.get_secret_value())
    return [
        *SERVICES,
        *(["drift-audit"] if settings.periodic_recovery() else []),
        *(["resolve"] if resolver else []),
    ]


@dataclass(frozen=True)
class Generated:
    """What `make dev` made up because the environment did not set it (printed in the banner)."""

    signing_secret: str | None = None
    api_token: str | None = None


def child_environment(settings: Settings) -> tuple[dict[str, str], Generated]:
    """The children's environment, with a dev signing secret and api token when none is set."""
    env = dict(os.environ)
    secret = token = None
    if not settings.stripe_webhook_secrets:
        secret = "whsec_dev_" + secrets.token_hex(16)
        env["STRIPE_WEBHOOK_SECRETS"] = secret
    if not settings.api_tokens and settings.api_auth == "token":
        token = "dev_" + secrets.token_urlsafe(24)
        env["API_TOKENS"] = token
    return env, Generated(secret, token)


async def supervise(settings: Settings, services: list[str]) -> int:
    env, generated = child_environment(settings)
    children = {
        name: await asyncio.create_subprocess_exec(
            sys.executable, "-m", "billstream.cli", name, env=env
        )
        for name in services
    }
    print_banner(settings, generated, services)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waits = {asyncio.ensure_future(proc.wait()): name for name, proc in children.items()}
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait([*waits, stopper], return_when=asyncio.FIRST_COMPLETED)
    exit_code = 0
    for task in done:
        if task in waits:
            print(f"billstream dev: {waits[task]} exited with {task.result()}", file=sys.stderr)
            exit_code = 1
    await stop_children(children)
    stopper.cancel()
    return exit_code


async def stop_children(children: dict[str, asyncio.subprocess.Process]) -> None:
    for proc in children.values():
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    for name, proc in children.items():
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            print(f"billstream dev: {name} ignored SIGTERM; killing", file=sys.stderr)
            proc.kill()
            await proc.wait()


def print_banner(settings: Settings, generated: Generated, services: list[str]) -> None:
    audit = ""
    if "drift-audit" in services:
        host, port = settings.drift_audit_host, settings.drift_audit_port
        audit = f"  drift-audit http://{host}:{port}/metrics\n"
    if "resolve" in services:
        audit += f"  resolver  http://{settings.resolver_host}:{settings.resolver_port}/metrics\n"
    else:
        audit += "  resolver  off (set STRIPE_API_KEY to resolve thin notifications)\n"
    secret = generated.signing_secret or "(from STRIPE_WEBHOOK_SECRETS)"
    token = generated.api_token or "(from API_TOKENS)"
    if settings.api_auth == "none":
        token = "(none: API_AUTH=none, the api is open)"  # noqa: S105 (a label, not a secret)
    print(
        "\nbillstream dev is starting:\n"
        f"  webhooks  POST http://{settings.ingest_host}:{settings.ingest_port}/webhooks/stripe\n"
        f"            (thin event destinations: /webhooks/stripe/thin)\n"
        f"  signing secret  {secret}\n"
        f"  worker    http://{settings.worker_web_host}:{settings.worker_web_port}/metrics\n"
        f"  api       http://{settings.api_host}:{settings.api_port}/accounts\n"
        f"  api token {token}  (Authorization: Bearer <token>)\n"
        f"  kafka     {settings.kafka_bootstrap_servers}\n"
        f"{audit}"
        "Ctrl-C stops everything.\n",
        flush=True,
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(supervise(settings, list(args.only or default_services(settings))))
