"""The Faust app is configured from Settings only: stray Faust variables change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from billstream.processors.runtime.app import FAUST_ENV_PREFIX, create_faust_app
from tests.support.settings import SettingsFactory


def test_settings_map_onto_faust_and_stray_faust_variables_are_ignored(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "BROKER_URL": "kafka://elsewhere:1",
        "PROCESSING_GUARANTEE": "exactly_once",
        "STORE": "rocksdb://",
        "WEB_PORT": "1",
        "WEB_BIND": "0.0.0.0",
        "APP_ENV_PREFIX": "",
        f"{FAUST_ENV_PREFIX}BROKER_URL": "kafka://prefixed:1",
    }.items():
        monkeypatch.setenv(name, value)
    settings = make_settings(
        kafka_bootstrap_servers="k1:9092,k2:9093",
        worker_web_port=16123,
        worker_web_host="127.0.0.3",
        billstream_topic_partitions=6,
        worker_session_timeout=12,
    )

    conf = create_faust_app(settings).conf

    assert [str(url) for url in conf.broker] == ["kafka://k1:9092", "kafka://k2:9093"]
    assert conf.id == settings.billstream_app_id
    # Faust types its settings as their descriptors' converters, not as their values.
    assert conf.processing_guarantee.value == "at_least_once"  # type: ignore[comparison-overlap]
    assert conf.store.scheme == "memory"
    assert (conf.web_port, conf.topic_partitions) == (16123, 6)
    assert conf.web_bind == "127.0.0.3"  # WORKER_WEB_HOST, not Faust's own WEB_BIND
    assert (conf.broker_session_timeout, conf.broker_heartbeat_interval) == (12, 3)


def test_the_data_directorys_parents_exist_so_faust_can_create_it(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    datadir = tmp_path / "var" / "worker"  # `billstream dev` from an empty directory
    app = create_faust_app(make_settings(worker_data_dir=str(datadir)))
    app._create_directories()  # what Faust does at its first start
    assert datadir.is_dir()
