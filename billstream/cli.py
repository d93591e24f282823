"""The `billstream` console script: one subcommand per process or tool.

A subcommand's module is imported only when that subcommand runs, so `billstream ingest` never
loads Faust and `billstream --help` is instant. Each module exposes
`add_arguments(parser)` (optional) and `run(settings, args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from billstream.logs import configure_logging
from billstream.settings import load_settings
from billstream.topics import TopicConfigError

COMMANDS: dict[str, tuple[str, str]] = {
    "ingest": ("billstream.ingest.main", "serve POST /webhooks/stripe and publish to Kafka"),
    "worker": ("billstream.processors.main", "run the Faust worker (state, funnels, metrics)"),
    "api": ("billstream.api.main", "consume billing.account-state and serve the read API"),
    "dev": ("billstream.dev", "run ingest, worker and api together (what `make dev` runs)"),
    "topics": ("billstream.topics", "create the contract topics with their configs"),
    "backfill": ("billstream.backfill.cli", "publish missed events from Stripe's Events API"),
    "rebuild": ("billstream.verify.cli", "rebuild account state from stripe.events"),
    "verify": ("billstream.verify.cli", "compare rebuilt state with what is served"),
    "simulate": ("billstream.simulate.cli", "send realistic signed webhook traffic to ingest"),
    "resolve": (
        "billstream.resolver.service",
        "resolve thin notifications and refetch requests into events (calls Stripe)",
    ),
    "drift": ("billstream.drift.cli", "compare served state with Stripe's; --heal repairs it"),
    "drift-audit": (
        "billstream.drift.service",
        "periodic drift audit/heal and undelivered-event recovery (one per deployment)",
    ),
    "dlq": ("billstream.redrive.cli", "list dead letters, or replay them to stripe.events"),
}


def build_parser(command: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="billstream", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_path, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_path)
            add_arguments = getattr(module, "add_arguments", None)
            if add_arguments is not None:
                add_arguments(sub)  # modules serving two commands read `args.command`
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    try:
        args = build_parser(command).parse_args(argv)
    except ModuleNotFoundError as error:
        print(f"billstream: command {command!r} is not available: {error}", file=sys.stderr)
        return 2
    settings = load_settings()
    from billstream import stripe_calls  # imports stripe: not before a command runs

    stripe_calls.configure_rate(settings.stripe_api_rate)  # one limiter per process
    configure_logging(settings, args.command)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        result: int = module.run(settings, args)
    except TopicConfigError as error:  # a cluster that cannot carry what the settings need
        print(f"billstream: {error}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    raise SystemExit(main())
