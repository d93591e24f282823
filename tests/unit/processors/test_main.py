"""The worker process keeps the garbage collector off its per-record path."""

from __future__ import annotations

import gc

from billstream.processors.main import GC_THRESHOLDS, tune_gc


def test_objects_built_at_start_are_frozen_and_full_collections_are_rarer() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == GC_THRESHOLDS
        assert GC_THRESHOLDS[2] > before[2]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
