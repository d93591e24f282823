"""Dead-letter re-drive against the real broker and worker: list, replay, replay again.

The DLQ holds what an earlier, buggy worker dead-lettered: a good event (the bug is fixed now)
and a record that is still poison. `billstream dlq list` names them without payloads; `dlq
replay` sends both back with `source: replayed-from-dlq`: the worker applies the good one and
dead-letters the poison again with its real reason. A second replay resumes past them
(nothing sent), and a forced one (`--fresh`) changes no state: the event is a duplicate.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import orjson

from billstream.topics import ACCOUNT_STATE, STRIPE_EVENTS, STRIPE_EVENTS_DLQ, ensure_topics
from tests.integration.kafka import produce
from tests.support import factories as f
from tests.support.children import free_port, settings_env
from tests.support.settings import SettingsFactory
from tests.support.worker_process import (
    WorkerProcess,
    committed_offsets,
    end_offsets,
    read_all,
)

ROOT = Path(__file__).resolve().parents[2]


def dlq(settings_env_: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "billstream.cli", "dlq", *args],
        cwd=ROOT,
        env=settings_env_,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_list_replay_and_replay_again(
    make_settings: SettingsFactory, kafka_bootstrap: str, unique_id: str, tmp_path: Path
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        billing_plan_map=f.PLAN_MAP,
        worker_web_port=free_port(),
        worker_data_dir=str(tmp_path / "worker"),
    )
    await ensure_topics(settings)
    customer = f"cus_{unique_id}"
    good = orjson.dumps(
        f.subscription_event(
            "customer.subscription.created",
            created=1_767_225_600,
            event_id=f"evt_good_{unique_id}",
            customer=customer,
            sub_id=f"sub_{unique_id}",
            prices=[f.pro_monthly()],
        )
    )

    def headers(event_id: str, event_type: str) -> list[tuple[str, bytes]]:
        return [
            ("stripe-event-id", event_id.encode()),
            ("stripe-event-type", event_type.encode()),
            ("received-at", b"1767225600000"),
            ("error", b"reducer_error"),
        ]

    await produce(
        kafka_bootstrap,
        settings.topic(STRIPE_EVENTS_DLQ),
        [
            (
                customer.encode(),
                good,
                headers(f"evt_good_{unique_id}", "customer.subscription.created"),
            ),
            (b"cus_poison", b"not json", headers(f"evt_poison_{unique_id}", "invoice.paid")),
        ],
    )
    env = settings_env(settings)
    checkpoint = str(tmp_path / "replay.json")

    listed = dlq(env, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    summary = json.loads(listed.stdout)
    assert summary["total"] == 2
    assert summary["reasons"][0]["reason"] == "reducer_error"
    assert sorted(summary["reasons"][0]["event_ids"]) == sorted(
        [f"evt_good_{unique_id}", f"evt_poison_{unique_id}"]
    )
    assert "not json" not in listed.stdout  # never payloads

    dry = dlq(env, "replay", "--dry-run", "--checkpoint", checkpoint, "--no-progress")
    assert "would replay 2" in dry.stdout, dry.stderr
    assert not (tmp_path / "replay.json").exists()

    first = dlq(env, "replay", "--checkpoint", checkpoint, "--no-progress")
    assert "replayed 2" in first.stdout, first.stderr
    replayed = await read_all(kafka_bootstrap, settings.topic(STRIPE_EVENTS))
    assert sorted(r.value for r in replayed) == sorted([good, b"not json"])
    for record in replayed:
        names = dict(record.headers)
        assert names["source"] == b"replayed-from-dlq"
        assert "error" not in names

    again = dlq(env, "replay", "--checkpoint", checkpoint, "--no-progress")
    assert "replayed 0" in again.stdout, again.stderr
    forced = dlq(env, "replay", "--checkpoint", checkpoint, "--fresh", "--no-progress")
    assert "replayed 2" in forced.stdout, forced.stderr  # the DLQ's two, sent once more

    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    try:
        await worker.wait_ready()
        end = await end_offsets(kafka_bootstrap, settings.topic(STRIPE_EVENTS))
        source = settings.topic(STRIPE_EVENTS)
        for _ in range(240):  # every replayed record processed: its offset committed
            committed = await committed_offsets(kafka_bootstrap, settings.billstream_app_id, source)
            if all(committed.get(p, 0) >= offset for p, offset in end.items()):
                break
            await asyncio.sleep(0.5)
        else:
            raise AssertionError(f"committed {committed} of {end}:\n{worker.log_tail()}")
    finally:
        worker.stop()
    states = [
        orjson.loads(r.value)
        for r in await read_all(kafka_bootstrap, settings.topic(ACCOUNT_STATE))
    ]
    ours = [s for s in states if s["customer_id"] == customer]
    assert {s["version"] for s in ours} == {1}  # applied once, the second copy a duplicate
    assert ours[-1]["plan"] == "PRO"
    dead = await read_all(kafka_bootstrap, settings.topic(STRIPE_EVENTS_DLQ))
    back = [dict(r.headers) for r in dead if dict(r.headers).get("source")]
    assert len(dead) == 4
    assert [h["error"] for h in back] == [b"not_json", b"not_json"]  # its real reason now
    assert all(h["source"] == b"replayed-from-dlq" for h in back)
