"""Tests of rebuild/verify without a broker."""
