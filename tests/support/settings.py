"""The type of the `make_settings` fixture (tests/conftest.py), for the tests that take it."""

from __future__ import annotations

from collections.abc import Callable

from billstream.settings import Settings

SettingsFactory = Callable[..., Settings]
