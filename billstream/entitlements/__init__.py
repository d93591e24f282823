"""Entitlements beyond the summary's first page: the worker's request and the resolver's fetch."""
